"""A trained model exported for prediction without TensorFlow (``instclf export``, ``predict``).

:func:`export_model` converts a saved ``.keras`` classifier to LiteRT (TensorFlow Lite, with
``tf.lite.TFLiteConverter``) and writes it beside the model file as ``<name>.litert.npz``: the
flatbuffer, the front end's mel matrix, the model's description and the SHA-1 of
the ``.keras`` file it was made from. :func:`load_exported` reads it back with the
``ai-edge-litert`` interpreter only, so a prediction needs NumPy, soundfile, soxr and SciPy's
FFT, never TensorFlow or librosa. An export whose ``.keras`` file has changed since is
ignored.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from . import features, storage
from .config import InstclfError

SUFFIX = ".litert.npz"


def export_path(model_path: str | Path) -> Path:
    """Where the export of ``<name>.keras`` lies: ``<name>.litert.npz`` beside it."""
    return Path(model_path).with_suffix(SUFFIX)


class ExportedModel:
    """The LiteRT interpreter behind Keras' ``predict_on_batch``, any batch size."""

    def __init__(self, flatbuffer: bytes, threads: int | None = None):
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(model_content=flatbuffer, num_threads=threads)
        self.input = self.interpreter.get_input_details()[0]["index"]
        self.output = self.interpreter.get_output_details()[0]["index"]
        self.batch = 0

    def predict_on_batch(self, X: np.ndarray) -> np.ndarray:
        X = np.ascontiguousarray(X, dtype=np.float32)
        if len(X) != self.batch:
            self.interpreter.resize_tensor_input(self.input, X.shape)
            self.interpreter.allocate_tensors()
            self.batch = len(X)
        self.interpreter.set_tensor(self.input, X)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output).copy()


def convert(model, front_end: features.FrontEnd) -> bytes:
    """The LiteRT flatbuffer of a Keras classifier taking ``(batch, *front_end.shape)``.

    Through a SavedModel: converting the traced function directly lost Keras 3's variables
    (NaN out, measured).
    """
    import tempfile

    import keras
    import tensorflow as tf

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serve", lambda x: model(x, training=False), input_signature=[
        tf.TensorSpec([None, *front_end.shape], tf.float32, name="features")])
    with tempfile.TemporaryDirectory() as folder:
        archive.write_out(folder, verbose=False)
        return tf.lite.TFLiteConverter.from_saved_model(folder).convert()


def export_model(model_path: str | Path) -> Path:
    """Export the classifier at ``model_path`` to ``<name>.litert.npz`` beside it; its path.

    Used by ``instclf export``; imports TensorFlow (the only step that does).
    """
    from . import train

    model_path = Path(model_path)
    model, meta = train.load_model(model_path)
    front_end = features.FrontEnd.from_dict(meta["front_end"])
    flatbuffer = convert(model, front_end)
    out = export_path(model_path)
    with storage.atomic_path(out) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, model=np.frombuffer(flatbuffer, np.uint8),
                     mel_basis=features._mel_basis(front_end),
                     meta=np.array(json.dumps(meta, sort_keys=True)),
                     source_sha1=np.array(storage.file_digest(model_path)))
    return out


def load_exported(model_path: str | Path,
                  threads: int | None = None) -> tuple[ExportedModel, dict, np.ndarray] | None:
    """The export of ``model_path`` (model, description, mel matrix), or None when there is
    none or it was made from another version of the ``.keras`` file (``instclf predict``)."""
    path = export_path(model_path)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as stored:
            if str(stored["source_sha1"]) != storage.file_digest(model_path):
                return None
            return (ExportedModel(stored["model"].tobytes(), threads),
                    json.loads(str(stored["meta"])), stored["mel_basis"])
    except (OSError, ValueError, KeyError) as error:
        raise InstclfError(f"{path}: not a readable export ({error}); run instclf export "
                           f"--model {model_path} again") from None
