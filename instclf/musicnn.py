"""musicnn's VGG-style tagging networks rebuilt in Keras 3, with the checkpoint values loaded.

The ``musicnn`` package (PyPI, 0.1.0) ships TF1 checkpoints of ``MTT_vgg`` (MagnaTagATune)
and ``MSD_vgg`` (Million Song Dataset), 50 tags each; its own TF1 code no longer runs. This
module rebuilds ``musicnn.models.vgg`` layer by layer and reads the checkpoint directly, so
the original graph is never needed (``tests/test_musicnn_port.py`` proves the two agree).
Used by ``instclf.backbones`` (the ``musicnn_vgg`` backbone of notebooks 03 and 04). The
checkpoint reading here (:func:`checkpoint_dir`, :func:`checkpoint_shapes`,
:func:`load_checkpoint`) also serves :mod:`instclf.musicnn_arch`, musicnn's own architecture.

Input: musicnn's log-mel patch, time x mel, shape (187, 96): 16 kHz audio,
``librosa.feature.melspectrogram(n_fft=512, hop_length=256, n_mels=96).T``, then
``log10(1 + 10000 * mel)`` in float32 (musicnn's extractor casts the mel to float16 first
and so overflows to inf above a mel power of 6.55). Layers, for 187 frames::

    input_bn        batch norm on the (187, 96, 1) patch
    blockN_conv     conv 3x3, 128 filters, 'same', bias, ReLU      (N = 1..5)
    blockN_bn       batch norm (after the ReLU, as musicnn)
    blockN_pool     max-pool, 'valid' (pool = stride unless noted):
                    MTT_vgg: (4, 1) stride 2, (2, 2), (2, 2), (2, 2), (4, 4)
                      -> (92, 48), (46, 24), (23, 12), (11, 6), (2, 1)
                    MSD_vgg: (4, 1), (1, 4), (2, 2), (2, 2), (4, 4)
                      -> (46, 96), (46, 24), (23, 12), (11, 6), (2, 1)
    blockN_dropout  dropout 0.25 after blocks 1-4 (training only)
    flat_pool5      the penultimate features: pool5 flattened, 256 values
    logits, tags    dense 256 -> 50, then the sigmoid tag probabilities

``musicnn.models.vgg`` has MTT_vgg's pooling; the MSD_vgg checkpoint was trained with the
pooling above, read from its stored graph (musicnn's own extractor gets MSD_vgg wrong).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import keras
import numpy as np

from .config import InstclfError

N_FRAMES, N_MELS, N_FILTERS, N_TAGS = 187, 96, 128, 50
POOLS = {  # (pool size, strides) of blocks 1-5, as in each checkpoint's stored graph
    "MTT_vgg": (((4, 1), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)),
                ((4, 4), (4, 4))),
    "MSD_vgg": (((4, 1), (4, 1)), ((1, 4), (1, 4)), ((2, 2), (2, 2)), ((2, 2), (2, 2)),
                ((4, 4), (4, 4))),
}
BN = dict(epsilon=1e-3, momentum=0.99)  # tf.layers.batch_normalization defaults
OPTIMIZER_SLOTS = ("/Adam", "/Adam_1")
OPTIMIZER_VARIABLES = ("beta1_power", "beta2_power")
MODELS = tuple(POOLS)
CHECKPOINTS = (*MODELS, "MTT_musicnn", "MSD_musicnn")  # every checkpoint the package ships


def checkpoint_dir(model: str = "MTT_vgg") -> Path:
    """The installed ``musicnn`` package's folder for ``model`` (holds ``.index``, ``.data-*``)."""
    if model not in CHECKPOINTS:
        raise InstclfError(f"unknown musicnn model {model!r}; use one of {', '.join(CHECKPOINTS)}")
    spec = importlib.util.find_spec("musicnn")
    folder = Path(spec.submodule_search_locations[0]) / model if spec else None
    if folder is None or not (folder / ".index").is_file():
        raise InstclfError(
            f"the musicnn checkpoint {model} is not installed; run "
            "`pip install --no-deps musicnn==0.1.0` in the project's environment "
            "(or `make test` / `make reproduce`, which install it)"
        )
    return folder


def build_musicnn_vgg(n_frames: int = N_FRAMES, n_mels: int = N_MELS, include_top: bool = True,
                      which: str = "MTT_vgg", block_dropout: float = 0.25,
                      name: str = "musicnn_vgg") -> keras.Model:
    """musicnn's VGG with fresh weights and the pooling of ``which``; input (n_frames, n_mels).

    Without the top the output is ``block5_pool``'s feature map. The top (``flat_pool5``,
    dropout 0.5, ``logits``, ``tags``) needs 187 frames to take the checkpoint's dense layer.
    ``block_dropout=0`` leaves out the dropout between blocks.
    """
    if which not in POOLS:
        raise InstclfError(f"unknown musicnn model {which!r}; use one of {', '.join(MODELS)}")
    pools = POOLS[which]
    inputs = keras.Input((n_frames, n_mels), name="log_mel")
    x = keras.layers.Reshape((n_frames, n_mels, 1), name="expand")(inputs)
    x = keras.layers.BatchNormalization(**BN, name="input_bn")(x)
    for block, (pool, strides) in enumerate(pools, start=1):
        x = keras.layers.Conv2D(N_FILTERS, 3, padding="same", activation="relu",
                                name=f"block{block}_conv")(x)
        x = keras.layers.BatchNormalization(**BN, name=f"block{block}_bn")(x)
        x = keras.layers.MaxPooling2D(pool, strides, name=f"block{block}_pool")(x)
        if block < len(pools) and block_dropout:
            x = keras.layers.Dropout(block_dropout, name=f"block{block}_dropout")(x)
    if include_top:
        x = keras.layers.Flatten(name="flat_pool5")(x)
        x = keras.layers.Dropout(0.5, name="flat_pool5_dropout")(x)
        x = keras.layers.Dense(N_TAGS, name="logits")(x)
        x = keras.layers.Activation("sigmoid", name="tags")(x)
    return keras.Model(inputs, x, name=name)


def _checkpoint_names(layer_name: str) -> list[str] | None:
    """The checkpoint variables of one Keras layer, in ``layer.weights`` order (None: none)."""
    if layer_name == "input_bn" or layer_name.endswith("_bn"):
        scope = "batch_normalization" + ("" if layer_name == "input_bn" else f"_{layer_name[5]}")
        return [f"{scope}/{v}" for v in ("gamma", "beta", "moving_mean", "moving_variance")]
    if layer_name.endswith("_conv"):
        return [f"{layer_name[5]}CNN/kernel", f"{layer_name[5]}CNN/bias"]
    if layer_name == "logits":
        return ["dense/kernel", "dense/bias"]
    return None


def _reader(which: str):
    import tensorflow as tf

    return tf.compat.v1.train.NewCheckpointReader(str(checkpoint_dir(which)) + "/")


def checkpoint_shapes(which: str) -> dict[str, tuple[int, ...]]:
    """The network variables of checkpoint ``which``, with their shapes (no optimizer state)."""
    shapes = _reader(which).get_variable_to_shape_map()
    return {name: tuple(shape) for name, shape in shapes.items()
            if not name.endswith(OPTIMIZER_SLOTS) and name not in OPTIMIZER_VARIABLES}


def load_checkpoint(model: keras.Model, which: str, variables_of, optional=()) -> keras.Model:
    """Assign checkpoint ``which``'s values to ``model``; ``variables_of(layer)`` pairs each
    weight of a layer with its checkpoint variable's name (empty: the layer takes none).

    Every weight must get a value of its exact shape; every network variable of the
    checkpoint must be used, except those named in ``optional`` (a top left out).
    """
    reader, shapes = _reader(which), checkpoint_shapes(which)
    unused = set(shapes) - set(optional)
    for layer in model.layers:
        pairs = variables_of(layer)
        if not pairs and layer.weights:
            raise InstclfError(f"layer {layer.name} has weights but no {which} variable")
        for name, weight in pairs:
            if name not in shapes:
                raise InstclfError(f"{which} has no variable {name} for layer {layer.name}")
            if shapes[name] != tuple(weight.shape):
                raise InstclfError(
                    f"{which} variable {name} has shape {shapes[name]} but layer "
                    f"{layer.name} wants {tuple(weight.shape)}; the VGG's top needs "
                    f"{N_FRAMES} frames, every model {N_MELS} mel bands"
                )
            weight.assign(np.asarray(reader.get_tensor(name), dtype="float32"))
            unused.discard(name)
    if unused:
        raise InstclfError(f"{which} variables not used by {model.name}: {sorted(unused)}")
    return model


def _vgg_variables(layer: keras.layers.Layer) -> list:
    names = _checkpoint_names(layer.name)
    return list(zip(names, layer.weights, strict=True)) if names else []


def load_musicnn_weights(model: keras.Model, which: str = "MTT_vgg") -> keras.Model:
    """Assign the ``which`` checkpoint's values to a model from :func:`build_musicnn_vgg`
    (built with the same ``which``: the pooling is not stored with the values).

    See :func:`load_checkpoint`; the dense variables are used only with the top.
    """
    has_top = any(layer.name == "logits" for layer in model.layers)
    return load_checkpoint(model, which, _vgg_variables,
                           optional=() if has_top else ("dense/kernel", "dense/bias"))


def musicnn_vgg(which: str = "MTT_vgg", n_frames: int = N_FRAMES,
                include_top: bool = True, block_dropout: float = 0.25) -> keras.Model:
    """musicnn's pretrained VGG (``MTT_vgg`` or ``MSD_vgg``) as a Keras model.

    With the top, ``model.get_layer("flat_pool5").output`` gives the 256 penultimate
    features and the output is the 50 tag probabilities; without it, the output is
    ``block5_pool`` (batch, 2, 1, 128) for 187 frames, for the shared head.
    """
    model = build_musicnn_vgg(n_frames, include_top=include_top, which=which,
                              block_dropout=block_dropout, name=f"musicnn_{which}")
    return load_musicnn_weights(model, which)
