"""The Keras port of musicnn's VGG computes what the original TF1 graph computes.

The original ``.meta`` graph is imported (training-only nodes stripped), the checkpoint is
restored into it with a Saver, and both run on the same patches: random ones and a sine
tone through musicnn's front end. Skipped only where the musicnn package is not installed.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

if importlib.util.find_spec("musicnn") is None:
    pytest.skip("musicnn not installed: pip install --no-deps musicnn==0.1.0",
                allow_module_level=True)

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.core.protobuf import meta_graph_pb2  # noqa: E402

from instclf import musicnn  # noqa: E402
from instclf.config import InstclfError  # noqa: E402

X_NODE, TRAINING_NODE = "model/Placeholder", "model/Placeholder_2"  # as extractor.py defines
POOL_NODES = ["model/max_pooling2d/MaxPool"] + [f"model/max_pooling2d_{i}/MaxPool"
                                                for i in range(1, 5)]
FETCHES = {
    "tags": "model/Sigmoid",
    "logits": "model/dense/BiasAdd",
    "flat_pool5": "model/Flatten/flatten/Reshape",
    **{f"block{i}_pool": node for i, node in enumerate(POOL_NODES, start=1)},
}
TOL = dict(atol=1e-4, rtol=1e-4)


def musicnn_log_mel(audio: np.ndarray) -> np.ndarray:
    """musicnn's front end (extractor.batch_data): 16 kHz audio to (frames, 96) log-mel."""
    import librosa

    mel = librosa.feature.melspectrogram(y=audio, sr=16000, hop_length=256, n_fft=512,
                                         n_mels=96).T
    # musicnn also multiplies in float16, which overflows to inf above a mel power of 6.55
    mel = mel.astype(np.float16).astype(np.float32)
    return np.log10(10000 * mel + 1)


@pytest.fixture(scope="module")
def patches() -> np.ndarray:
    """Two fixed-seed patches in the range of real log-mels, and a 440 Hz tone's patch."""
    rng = np.random.default_rng(0)
    random = rng.uniform(0.0, 5.0, size=(2, 187, 96)).astype(np.float32)
    t = np.arange(3 * 16000) / 16000
    tone = musicnn_log_mel((0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32))[:187]
    return np.concatenate([random, tone[None]])


def inference_graph(which: str, fetches: dict = FETCHES) -> meta_graph_pb2.MetaGraphDef:
    """The stored graph cut down to what the fetches need, without stale shape attributes,
    its input open to any number of frames (stored: 187)."""
    meta = meta_graph_pb2.MetaGraphDef()
    meta.ParseFromString((musicnn.checkpoint_dir(which) / ".meta").read_bytes())
    nodes = {node.name: node for node in meta.graph_def.node}
    nodes[X_NODE].attr["shape"].shape.dim[1].size = -1
    keep, todo = set(), list(fetches.values())
    while todo:
        name = todo.pop()
        if name not in keep:
            keep.add(name)
            todo += [i.lstrip("^").split(":")[0] for i in nodes[name].input]
    kept = [node for node in meta.graph_def.node if node.name in keep]
    del meta.graph_def.node[:]
    meta.graph_def.node.extend(kept)
    for node in meta.graph_def.node:
        node.attr.pop("_output_shapes", None)
    for key in list(meta.collection_def):  # optimizer, metrics, cond contexts
        del meta.collection_def[key]
    meta.ClearField("saver_def")
    return meta


def run_original(which: str, batch: np.ndarray, fetches: dict = FETCHES) -> dict[str, np.ndarray]:
    """The fetches of the original graph, checkpoint restored, with is_training False
    (``tests/test_musicnn_arch.py`` too)."""
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.train.import_meta_graph(inference_graph(which, fetches), clear_devices=True)
        variables = {op.name: op.outputs[0] for op in graph.get_operations()
                     if op.type == "VariableV2"}
        saver = tf.compat.v1.train.Saver(var_list=variables)
        x, training = (graph.get_tensor_by_name(f"{n}:0") for n in (X_NODE, TRAINING_NODE))
        assert x.dtype == tf.float32 and training.dtype == tf.bool
        with tf.compat.v1.Session(graph=graph) as session:
            saver.restore(session, str(musicnn.checkpoint_dir(which)) + "/")
            tensors = {k: graph.get_tensor_by_name(f"{v}:0") for k, v in fetches.items()}
            return session.run(tensors, {x: batch, training: False})


def run_port(model: keras.Model, batch: np.ndarray) -> dict[str, np.ndarray]:
    """The same taps from the Keras port, in inference mode."""
    taps = keras.Model(model.input, {k: model.get_layer(k).output for k in FETCHES})
    return {k: np.asarray(v) for k, v in taps(batch, training=False).items()}


@pytest.fixture(scope="module", params=musicnn.MODELS)
def outputs(request, patches):
    """(which, original outputs, port outputs, port model) for one checkpoint."""
    which = request.param
    model = musicnn.musicnn_vgg(which)
    return which, run_original(which, patches), run_port(model, patches), model


@pytest.mark.parametrize("tap", list(FETCHES))
def test_port_matches_original_graph(outputs, tap):
    which, original, port, _ = outputs
    assert original[tap].shape == port[tap].shape
    np.testing.assert_allclose(port[tap], original[tap], **TOL, err_msg=f"{which} {tap}")


def test_penultimate_features_are_flat_pool5(outputs):
    _, original, port, model = outputs
    assert model.get_layer("flat_pool5").output.shape == (None, 256)
    assert model.output.shape == (None, 50)
    np.testing.assert_allclose(port["tags"], 1 / (1 + np.exp(-original["logits"])), **TOL)


def test_different_inputs_give_different_outputs(outputs):
    _, original, port, _ = outputs
    for tap in ("tags", "flat_pool5"):
        for result in (original, port):
            assert np.abs(result[tap][0] - result[tap][1]).max() > 1e-3
            assert np.abs(result[tap][0] - result[tap][2]).max() > 1e-3


def test_msd_needs_its_own_pooling(patches):
    """musicnn.models.vgg (MTT's pooling) with MSD_vgg's values is not the trained network."""
    wrong = musicnn.load_musicnn_weights(musicnn.build_musicnn_vgg(which="MTT_vgg"), "MSD_vgg")
    right = musicnn.musicnn_vgg("MSD_vgg")
    difference = wrong.predict(patches, verbose=0) - right.predict(patches, verbose=0)
    assert np.abs(difference).max() > 1e-2


def test_checkpoints_differ_and_loading_changes_the_model(patches):
    mtt = musicnn.musicnn_vgg("MTT_vgg").predict(patches, verbose=0)
    msd = musicnn.musicnn_vgg("MSD_vgg").predict(patches, verbose=0)
    fresh = musicnn.build_musicnn_vgg().predict(patches, verbose=0)
    assert np.abs(mtt - msd).max() > 1e-2
    assert np.abs(mtt - fresh).max() > 1e-2


def test_blocks_are_named_for_unfreezing():
    model = musicnn.build_musicnn_vgg()
    names = [layer.name for layer in model.layers]
    for block in range(1, 6):
        assert {f"block{block}_conv", f"block{block}_bn", f"block{block}_pool"} <= set(names)
    assert "input_bn" in names and names[-1] == "tags"
    bn = model.get_layer("block3_bn")
    assert bn.epsilon == 1e-3 and bn.momentum == 0.99
    assert all(w.dtype == "float32" for w in model.weights)


def test_without_top_matches_original_pool5(outputs, patches):
    which, original, _, _ = outputs
    model = musicnn.musicnn_vgg(which, include_top=False)
    assert model.output.shape == (None, 2, 1, 128)
    np.testing.assert_allclose(np.asarray(model(patches, training=False)),
                               original["block5_pool"], **TOL)


def test_loading_rejects_a_shape_mismatch():
    with pytest.raises(InstclfError, match="dense/kernel"):
        musicnn.musicnn_vgg("MTT_vgg", n_frames=300)
    assert musicnn.musicnn_vgg("MTT_vgg", n_frames=300, include_top=False).output.shape[1] == 4


def test_missing_package_names_the_install_command(monkeypatch):
    monkeypatch.setattr(musicnn.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(InstclfError, match="pip install --no-deps musicnn==0.1.0"):
        musicnn.checkpoint_dir("MTT_vgg")
    with pytest.raises(InstclfError, match="unknown musicnn model"):
        musicnn.checkpoint_dir("MSD_musicnn_big")  # known to musicnn's code, not shipped
