"""Backbones: pretrained or fresh CNNs, each with its front end and its declared blocks.

Every classifier is one chain of layers, ``backbone layers + head``, so that "the top k
blocks" is a slice of the chain and the frozen bottom can be computed once and cached
(see :mod:`instclf.train`). Each backbone names the layers of each of its blocks; the layers
below the first block (the stem: reshaping, input normalisation) stay frozen with it.
Used by notebooks 03 to 05.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import keras

from . import descriptors, features, images, musicnn, musicnn_arch
from .config import FAMILIES, InstclfError, data_dir

VGG19_WEIGHTS_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
VGG19_WEIGHTS_URL = ("https://storage.googleapis.com/tensorflow/keras-applications/vgg19/"
                     + VGG19_WEIGHTS_FILE)
HEAD_DROPOUT = 0.3
HEAD = ("head_pool", "head_dropout", "head_dense")  # the layers build_classifier puts on top


def _conv_bn_pool_blocks(n_blocks: int) -> tuple[tuple[str, ...], ...]:
    return tuple((f"block{n}_conv", f"block{n}_bn", f"block{n}_pool")
                 for n in range(1, n_blocks + 1))


MUSICNN_BLOCKS = _conv_bn_pool_blocks(5)  # as musicnn.build_musicnn_vgg names them, no dropout
VGG19_BLOCKS = tuple((*(f"block{n}_conv{k}" for k in range(1, convs + 1)), f"block{n}_pool")
                     for n, convs in enumerate((2, 2, 4, 4, 4), start=1))  # keras.applications
SCRATCH_FILTERS = (16, 32, 64, 64)
SCRATCH_BLOCKS = _conv_bn_pool_blocks(len(SCRATCH_FILTERS))


@dataclass(frozen=True)
class Backbone:
    """A feature extractor: its front end, how to make its layers for that front end, and the
    names of the layers of each of its blocks (blocks bottom first, layers in chain order)."""

    name: str
    front_end: features.FrontEnd
    make_layers: Callable[[features.FrontEnd], list[keras.layers.Layer]]
    blocks: tuple[tuple[str, ...], ...]
    weights: str  # where the pretrained values come from ("none" for a fresh network)

    @property
    def pretrained(self) -> bool:
        return self.weights != "none"


# --- musicnn_vgg, and musicnn's own architecture (musicnn_msd, musicnn_mtt) -----------------

def _musicnn_layers(front_end: features.FrontEnd,
                    which: str = "MTT_vgg") -> list[keras.layers.Layer]:
    model = musicnn.musicnn_vgg(which, n_frames=front_end.frames, include_top=False,
                                block_dropout=0.0)
    return [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]


def _musicnn_arch_layers(front_end: features.FrontEnd,
                         which: str = "MSD_musicnn") -> list[keras.layers.Layer]:
    """Up to musicnn's penultimate features (1, 1, 200), its back-end pooling frozen below."""
    return musicnn_arch.backbone_layers(which, n_frames=front_end.frames)


# --- per-clip input normalisation ----------------------------------------------------------

@keras.saving.register_keras_serializable(package="instclf")
class ClipStandardization(keras.layers.Layer):
    """Each clip standardised over all its frames and bands, then given a target mean and
    standard deviation: ``target_mean + target_std * (x - mean(x)) / sqrt(var(x) + epsilon)``.

    Why a layer at the model input, and not a front-end option: the saved ``.keras`` file
    then carries the normalisation (two floats in its config, safe-mode loadable), so every
    path that calls the model on front-end features (notebooks 05 to 07, ``instclf predict``,
    the web page) normalises exactly as training did, with no special case; and the feature
    cache stays shared with the plain backbone (same front end, same key). It has no weights,
    so it runs inside the frozen bottom whose activations are cached.

    Why one mean and one deviation per clip, not per band: standardising each band over time
    would erase the spectral envelope, which is most of what tells a flute from a trumpet.
    Why a target instead of zero mean and unit variance: a pretrained network's input batch
    norm expects the statistics of the music it was trained on; :func:`musicnn_clipnorm_layers`
    sets the target to that batch norm's moving mean and deviation, so every clip reaches the
    pretrained filters with the level and contrast of a typical training clip. ``epsilon``
    floors the deviation of a (near-)silent clip, which then maps to ``target_mean``.
    """

    def __init__(self, target_mean: float = 0.0, target_std: float = 1.0,
                 epsilon: float = 1e-4, **kwargs):
        super().__init__(**kwargs)
        self.target_mean = float(target_mean)
        self.target_std = float(target_std)
        self.epsilon = float(epsilon)

    def call(self, x):
        axes = tuple(range(1, len(x.shape)))
        mean = keras.ops.mean(x, axis=axes, keepdims=True)
        var = keras.ops.var(x, axis=axes, keepdims=True)
        return self.target_mean + self.target_std * (x - mean) / keras.ops.sqrt(var + self.epsilon)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "target_mean": self.target_mean,
                "target_std": self.target_std, "epsilon": self.epsilon}


def musicnn_clipnorm_layers(front_end: features.FrontEnd, which: str = "MSD_vgg") -> list:
    """musicnn's layers behind a :class:`ClipStandardization` aimed at its input batch norm's
    moving statistics (the mean and deviation of the music it was pretrained on)."""
    layers = _musicnn_layers(front_end, which)
    input_bn = next(layer for layer in layers if layer.name == "input_bn")
    mean = float(keras.ops.convert_to_numpy(input_bn.moving_mean)[0])
    variance = float(keras.ops.convert_to_numpy(input_bn.moving_variance)[0])
    return [ClipStandardization(mean, variance ** 0.5, name="clip_norm"), *layers]


# --- vgg19 (the study's ImageNet network) ---------------------------------------------------

@keras.saving.register_keras_serializable(package="instclf")
class StudyImage(keras.layers.Layer):
    """dB spectrogram (mel, time) -> the colour image VGG19 saw in the study, preprocessed.

    The dB values (-80..0) become 256 colour-map levels, as in the study's PNGs, the image is
    resized to ``size`` with low frequencies at the bottom, and VGG19's ImageNet
    preprocessing (BGR, mean subtracted) is applied.
    """

    def __init__(self, size=(224, 224), **kwargs):
        super().__init__(**kwargs)
        self.size = tuple(size)
        self.lut = images.colour_table()

    def call(self, S_db):
        low, high = images.DB_RANGE  # the same 256 levels as images.db_to_rgb
        levels = keras.ops.clip(keras.ops.round((S_db - low) / (high - low) * 255.0), 0, 255)
        rgb = keras.ops.take(keras.ops.convert_to_tensor(self.lut, "float32"),
                             keras.ops.cast(levels, "int32"), axis=0)
        rgb = keras.ops.flip(rgb, axis=1)  # row 0 = highest band, as in an image
        image = keras.ops.image.resize(rgb, self.size, interpolation="bilinear")
        return keras.applications.vgg19.preprocess_input(image)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *self.size, 3)

    def get_config(self):
        return {**super().get_config(), "size": list(self.size)}


def vgg19_weights_path() -> Path:
    """The ImageNet VGG19 weights: ``INSTCLF_VGG19_WEIGHTS``, <data root>/weights/ or Keras's cache.

    Fails fast, offline, saying what to download and where to put it.
    """
    candidates = [os.environ.get("INSTCLF_VGG19_WEIGHTS"),
                  data_dir() / "weights" / VGG19_WEIGHTS_FILE,
                  Path.home() / ".keras" / "models" / VGG19_WEIGHTS_FILE]
    for candidate in filter(None, candidates):
        if Path(candidate).is_file():
            return Path(candidate)
    raise InstclfError(
        f"ImageNet VGG19 weights not found; download {VGG19_WEIGHTS_URL} and put it at "
        f"{candidates[1]} (or set INSTCLF_VGG19_WEIGHTS to the file)"
    )


def vgg19_layers(front_end: features.FrontEnd = features.STUDY,
                 pretrained: bool = True) -> list[keras.layers.Layer]:
    """The study's image layer (the front end's image size) and VGG19's convolutional blocks
    (random weights if not pretrained)."""
    size = front_end.image_size
    vgg = keras.applications.VGG19(include_top=False, weights=None, input_shape=(*size, 3))
    if pretrained:
        vgg.load_weights(str(vgg19_weights_path()))
    layers = [layer for layer in vgg.layers if not isinstance(layer, keras.layers.InputLayer)]
    return [StudyImage(size, name="study_image"), *layers]


# --- scratch_cnn ----------------------------------------------------------------------------

def _scratch_layers(front_end: features.FrontEnd,
                    filters=SCRATCH_FILTERS) -> list[keras.layers.Layer]:
    """A small CNN from random initialisation: the baseline every transfer result faces."""
    layers = [keras.layers.Reshape((*front_end.shape, 1), name="expand"),
              keras.layers.BatchNormalization(name="input_bn"),
              keras.layers.MaxPooling2D((2, 2), name="input_pool")]
    for n, width in enumerate(filters, start=1):
        layers += [keras.layers.Conv2D(width, 3, padding="same", activation="relu",
                                       name=f"block{n}_conv"),
                   keras.layers.BatchNormalization(name=f"block{n}_bn"),
                   keras.layers.MaxPooling2D((2, 2), name=f"block{n}_pool")]
    return layers


BACKBONES = {
    backbone.name: backbone for backbone in (
        Backbone("musicnn_vgg", features.MUSICNN, _musicnn_layers, MUSICNN_BLOCKS,
                 "musicnn package, MTT_vgg checkpoint (music tagging, MagnaTagATune)"),
        Backbone("musicnn_vgg_msd", features.MUSICNN,
                 lambda front_end: _musicnn_layers(front_end, "MSD_vgg"), MUSICNN_BLOCKS,
                 "musicnn package, MSD_vgg checkpoint (music tagging, Million Song Dataset)"),
        Backbone("musicnn_vgg_msd_whole", features.MUSICNN_WHOLE,
                 lambda front_end: _musicnn_layers(front_end, "MSD_vgg"), MUSICNN_BLOCKS,
                 "musicnn package, MSD_vgg checkpoint, shown the whole 4 s note"),
        Backbone("musicnn_vgg_msd_clipnorm", features.MUSICNN, musicnn_clipnorm_layers,
                 MUSICNN_BLOCKS,
                 "musicnn package, MSD_vgg checkpoint, each clip standardised at the input"),
        Backbone("musicnn_msd", features.MUSICNN_WHOLE,
                 lambda front_end: _musicnn_arch_layers(front_end, "MSD_musicnn"),
                 musicnn_arch.BACKBONE_BLOCKS, "musicnn package, MSD_musicnn checkpoint (musicnn's "
                 "architecture, Million Song Dataset), shown the whole 4 s note"),
        Backbone("musicnn_mtt", features.MUSICNN_WHOLE,
                 lambda front_end: _musicnn_arch_layers(front_end, "MTT_musicnn"),
                 musicnn_arch.BACKBONE_BLOCKS, "musicnn package, MTT_musicnn checkpoint (musicnn's "
                 "architecture, MagnaTagATune), shown the whole 4 s note"),
        Backbone("vgg19", features.STUDY, vgg19_layers, VGG19_BLOCKS,
                 "ImageNet (keras.applications), downloaded by hand: see vgg19_weights_path"),
        Backbone("scratch_cnn", features.MUSICNN, _scratch_layers, SCRATCH_BLOCKS, "none"),
    )
}


def get_backbone(name: str) -> Backbone:
    """The backbone called ``name`` (see :data:`BACKBONES`)."""
    if name not in BACKBONES:
        raise InstclfError(f"unknown backbone {name!r}; use one of {', '.join(BACKBONES)}")
    return BACKBONES[name]


@keras.saving.register_keras_serializable(package="instclf")
class StatisticsPooling2D(keras.layers.Layer):
    """Mean and maximum of every channel over time and frequency, side by side: the
    statistics pooling head of :data:`HEADS` (``(batch, t, f, c)`` -> ``(batch, 2c)``; a
    ``(batch, t, c)`` map is pooled over time alone)."""

    def call(self, x):
        axes = tuple(range(1, len(x.shape) - 1))
        return keras.ops.concatenate([keras.ops.mean(x, axis=axes),
                                      keras.ops.max(x, axis=axes)], axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 2 * input_shape[-1])


# how the head pools the top block's feature map before its dropout and softmax
HEADS = {"average": keras.layers.GlobalAveragePooling2D, "statistics": StatisticsPooling2D}


def build_classifier(backbone: Backbone, n_classes: int = len(FAMILIES),
                     layers: list[keras.layers.Layer] | None = None,
                     head: str = "average") -> keras.Sequential:
    """Backbone layers (made for its front end unless given) + the head (pooling of
    :data:`HEADS`, dropout, softmax) as one chain."""
    if head not in HEADS:
        raise InstclfError(f"unknown head {head!r}; use one of {', '.join(HEADS)}")
    pool, dropout, dense = HEAD
    top = [HEADS[head](name=pool),
           keras.layers.Dropout(HEAD_DROPOUT, name=dropout),
           keras.layers.Dense(n_classes, activation="softmax", name=dense)]
    return keras.Sequential([keras.Input(backbone.front_end.shape, name="features"),
                             *(layers or backbone.make_layers(backbone.front_end)), *top],
                            name=f"{backbone.name}_classifier")


STATISTICS_BLOCKS = 3  # the top blocks whose statistics notebook 05's frozen heads also read
# bump when frozen_embeddings changes what its statistics hold (their cache key holds it)
STATISTICS_VERSION = 2  # 2: a block already pooled to one value per channel gives it once


def frozen_embeddings(model: keras.Sequential, backbone: Backbone,
                      blocks: int = STATISTICS_BLOCKS, pooled: bool = True,
                      with_descriptors: bool = True) -> tuple[keras.Model, int]:
    """One frozen pass, two embeddings per note (notebook 05, :func:`instclf.embeddings.
    backbone_embeddings`): the head's pooled input (the top block, pooled as ``model``'s head
    pools it), then the statistics: the mean and maximum over time and frequency of each of
    the top ``blocks`` blocks' outputs (a block that is one value per channel already, as
    musicnn's back-end, gives it once) and, ``with_descriptors``, the note's descriptors
    (:class:`instclf.descriptors.NoteDescriptors` of the input), side by side in one vector.
    Returns the model and where the second part begins; without ``pooled``, the statistics
    alone (where they begin: 0)."""
    if not 1 <= blocks <= len(backbone.blocks):
        raise InstclfError(f"{backbone.name} has {len(backbone.blocks)} blocks, not {blocks}")
    ends = [names[-1] for names in backbone.blocks[-blocks:]]
    x = inputs = keras.Input(model.input_shape[1:], name="features")
    statistics = []
    for layer in model.layers[:block_start(model, backbone, 0) + 1]:  # through the pooling
        x = layer(x)
        if layer.name in ends:
            one_value = all(size == 1 for size in x.shape[1:-1])
            pooling = keras.layers.Flatten if one_value else StatisticsPooling2D
            statistics.append(pooling(name=f"{layer.name}_statistics")(x))
    if with_descriptors:
        statistics.append(descriptors.for_front_end(backbone.front_end)(inputs))
    parts = [x, *statistics] if pooled else statistics
    joined = keras.layers.Concatenate(name="block_statistics")(parts) if len(parts) > 1 else parts[0]
    name = f"{backbone.name}_{'embeddings' if pooled else 'block_statistics'}"
    return keras.Model(inputs, joined, name=name), x.shape[-1] if pooled else 0


def block_statistics_classifier(frozen: Sequence[Backbone], head: keras.Model,
                                blocks: int = STATISTICS_BLOCKS) -> keras.Model:
    """The pretrained layers of every backbone of ``frozen`` (one front end), frozen, then
    ``head`` on the mean and maximum of each one's top ``blocks`` blocks, in that order, and
    the note's descriptors once (:func:`frozen_embeddings` without the pooled part): one model
    from features to probabilities, as a head trained on those embeddings sees them
    (:func:`instclf.embeddings.block_statistics_model`)."""
    if len({backbone.front_end for backbone in frozen}) != 1:
        raise InstclfError("the backbones of one block-statistics head must share a front end: "
                           + ", ".join(backbone.name for backbone in frozen))
    inputs = keras.Input(frozen[0].front_end.shape, name="features")
    parts = []
    for backbone in frozen:
        extract, _ = frozen_embeddings(build_classifier(backbone), backbone, blocks,
                                       pooled=False, with_descriptors=False)
        extract.trainable = False
        parts.append(extract(inputs))
    parts.append(descriptors.for_front_end(frozen[0].front_end)(inputs))
    name = "_".join(backbone.name for backbone in frozen)
    return keras.Model(inputs, head(keras.layers.Concatenate(name="block_statistics")(parts)),
                       name=f"{name}_block_statistics_classifier")


def averaged(models: list[keras.Model], name: str = "ensemble") -> keras.Model:
    """One model whose output is the mean of ``models``' probabilities on the same input: an
    ensemble served as one file (:func:`instclf.train.ensemble_model`)."""
    inputs = keras.Input(models[0].input_shape[1:], name="features")
    return keras.Model(inputs, keras.layers.Average(name="mean_probability")(
        [model(inputs) for model in models]), name=name)


def block_start(model: keras.Sequential, backbone: Backbone, unfrozen_blocks: int) -> int:
    """Index in ``model.layers`` of the first trainable layer with the top k blocks unfrozen:
    the first layer the backbone declares for block ``n - k + 1`` of its n blocks.

    ``unfrozen_blocks=0`` points at the head.
    """
    if not 0 <= unfrozen_blocks <= len(backbone.blocks):
        raise InstclfError(f"{backbone.name} has {len(backbone.blocks)} blocks, "
                           f"not {unfrozen_blocks}")
    first = backbone.blocks[-unfrozen_blocks][0] if unfrozen_blocks else HEAD[0]
    names = [layer.name for layer in model.layers]
    if first not in names:
        raise InstclfError(f"{model.name} has no layer {first}: not built from {backbone.name}?")
    return names.index(first)
