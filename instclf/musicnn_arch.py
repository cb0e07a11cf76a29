"""musicnn's own architecture (Pons & Serra 2019) rebuilt in Keras 3, checkpoint values loaded.

The ``musicnn`` package ships ``MTT_musicnn`` and ``MSD_musicnn`` (50 tags each) besides the
VGGs of :mod:`instclf.musicnn`; this module rebuilds ``musicnn.models.build_musicnn`` and reads
their checkpoints with that module's helpers (``tests/test_musicnn_arch.py`` runs the stored
TF1 graphs against it). Used by ``instclf.backbones`` (the ``musicnn_msd`` and ``musicnn_mtt``
backbones of notebook 05).

Input: musicnn's log-mel, time x mel (T, 96), any number of frames T. One chain of layers::

    expand, input_bn   (T, 96, 1), batch norm: the stem of the VGG port
    block1_frontend    five parallel branches, each conv + ReLU + batch norm + max over
                       frequency: timbral 7x38 and 7x67 (204 filters each; time padded 3 + 3,
                       frequency 'valid'), temporal 128x1, 64x1, 32x1 (51 each, 'same');
                       concatenated -> (T, 1, 561)
    block2_midend      conv over 7 frames of all 561 channels, ReLU, batch norm (64),
                       appended -> (T, 1, 625)
    block3_midend      the same on the last 64 channels, plus those 64 (residual) -> (T, 1, 689)
    block4_midend      the same again -> (T, 1, 753)
    top:  backend_pool (max and mean over time, interleaved: 1506), backend_bn, dropout 0.5,
          penultimate (dense, ReLU: 200), penultimate_bn, dropout 0.5, logits (50), tags

Each mid-end layer appends its channels to what it got: that is musicnn's dense connection,
so ``block4_midend`` gives the concatenation musicnn's back-end pools. A backbone
(:func:`backbone_layers`) keeps the back-end up to its penultimate features, shaped
(batch, 1, 1, 200) for the heads, and declares :data:`BACKBONE_BLOCKS`: the pooling closes
the block below the back-end, so with the top block unfrozen the cached frozen activations
are 1,506 numbers per note, not (T, 1, 753). The batch norms inside the blocks hold
the checkpoint's values as non-trainable weights and always normalise with its moving
statistics, as :func:`instclf.train.set_trainable` keeps a pretrained backbone's batch norms.
"""

from __future__ import annotations

import keras

from . import musicnn

N_TAGS, TIME_KERNEL = 50, 7  # mid-end and timbral convolutions span 7 frames ('same' in time)
BLOCKS = ("block1_frontend", "block2_midend", "block3_midend", "block4_midend")
BACKBONE_BLOCKS = (("block1_frontend",), ("block2_midend",), ("block3_midend",),
                   ("block4_midend", "backend_pool"),
                   ("backend_bn", "backend_dropout", "penultimate", "penultimate_bn",
                    "backend_expand"))
TOP = ("backend_pool", "backend_bn", "backend_dropout", "penultimate", "penultimate_bn",
       "penultimate_dropout", "logits", "tags")
SCOPES = {  # each layer's variable scopes in the checkpoint, in the order TF1 created them
    "input_bn": ("batch_normalization",),
    "block1_frontend": ("conv2d", "batch_normalization_1", "conv2d_1", "batch_normalization_2",
                        "conv2d_2", "batch_normalization_3", "conv2d_3", "batch_normalization_4",
                        "conv2d_4", "batch_normalization_5"),
    "block2_midend": ("conv2d_5", "batch_normalization_6"),
    "block3_midend": ("conv2d_6", "batch_normalization_7"),
    "block4_midend": ("conv2d_7", "batch_normalization_8"),
    "backend_bn": ("batch_normalization_9",),
    "penultimate": ("dense",),
    "penultimate_bn": ("batch_normalization_10",),
    "logits": ("dense_1",),
}
CONV = ("kernel", "bias")
NORM = ("gamma", "beta", "moving_mean", "moving_variance")


def _pad_time(x, width: int = TIME_KERNEL):
    return keras.ops.pad(x, ((0, 0), (width // 2, width // 2), (0, 0), (0, 0)))


class _ConvUnits(keras.layers.Layer):
    """A layer of musicnn's conv units (conv, ReLU, batch norm frozen at the checkpoint's)."""

    def _unit(self, name: str, kernel_shape: tuple) -> list:
        filters = kernel_shape[-1]
        unit = [self.add_weight(shape=kernel_shape, initializer="glorot_uniform",
                                name=f"{name}_kernel"),
                self.add_weight(shape=(filters,), initializer="zeros", name=f"{name}_bias")]
        unit += [self.add_weight(shape=(filters,), initializer=init, trainable=False,
                                 name=f"{name}_{v}")
                 for v, init in zip(NORM, ("ones", "zeros", "zeros", "ones"))]
        return unit

    @staticmethod
    def _apply(unit: list, x, padding: str):
        kernel, bias, gamma, beta, mean, variance = unit
        x = keras.ops.relu(keras.ops.conv(x, kernel, padding=padding) + bias)
        return (x - mean) * keras.ops.rsqrt(variance + musicnn.BN["epsilon"]) * gamma + beta

    def checkpoint_weights(self) -> list:
        """The weights in checkpoint order: per unit kernel, bias, gamma, beta, mean, variance."""
        return [weight for unit in self.units for weight in unit]


@keras.saving.register_keras_serializable(package="instclf")
class MusicnnFrontEnd(_ConvUnits):
    """musicnn's musically motivated front end: (T, mel, 1) -> (T, 1, channels).

    Timbral branches: kernels 7 frames x ``timbral`` (fractions of the mel bands), frequency
    'valid'; temporal branches: ``temporal`` frames x 1 band; every branch max-pooled over
    frequency, then all concatenated.
    """

    def __init__(self, timbral=(0.4, 0.7), timbral_filters: int = 204,
                 temporal=(128, 64, 32), temporal_filters: int = 51, **kwargs):
        super().__init__(**kwargs)
        self.timbral, self.temporal = tuple(timbral), tuple(temporal)
        self.timbral_filters, self.temporal_filters = timbral_filters, temporal_filters

    def build(self, input_shape):
        n_mels = input_shape[2]
        self.units = [self._unit(f"timbral{k}", (TIME_KERNEL, int(share * n_mels), 1,
                                                 self.timbral_filters))
                      for k, share in enumerate(self.timbral)]
        self.units += [self._unit(f"temporal{length}", (length, 1, 1, self.temporal_filters))
                       for length in self.temporal]

    def call(self, x):
        padded = _pad_time(x)
        maps = [self._apply(unit, padded, "valid") for unit in self.units[:len(self.timbral)]]
        maps += [self._apply(unit, x, "same") for unit in self.units[len(self.timbral):]]
        return keras.ops.concatenate([keras.ops.max(m, axis=2, keepdims=True) for m in maps],
                                     axis=-1)

    def compute_output_shape(self, input_shape):
        channels = (len(self.timbral) * self.timbral_filters
                    + len(self.temporal) * self.temporal_filters)
        return (input_shape[0], input_shape[1], 1, channels)

    def get_config(self):
        return {**super().get_config(), "timbral": list(self.timbral),
                "timbral_filters": self.timbral_filters, "temporal": list(self.temporal),
                "temporal_filters": self.temporal_filters}


@keras.saving.register_keras_serializable(package="instclf")
class MusicnnMidEnd(_ConvUnits):
    """One mid-end layer, its output appended to its input: (T, 1, C) -> (T, 1, C + filters).

    A conv over 7 frames spanning all its input channels, as musicnn's (whose kernel is
    (7, C, 1, filters) on the channels laid out as frequency). ``residual``: it sees only the
    last ``filters`` channels (the previous mid-end layer's) and adds them to its result.
    """

    def __init__(self, filters: int = 64, residual: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.filters, self.residual = filters, residual

    def build(self, input_shape):
        channels = self.filters if self.residual else input_shape[-1]
        self.units = [self._unit("conv", (TIME_KERNEL, channels, 1, self.filters))]

    def call(self, x):
        inputs = x[..., -self.filters:] if self.residual else x
        out = self._apply(self.units[0], _pad_time(keras.ops.swapaxes(inputs, 2, 3)), "valid")
        return keras.ops.concatenate([x, out + inputs if self.residual else out], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], input_shape[-1] + self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "residual": self.residual}


@keras.saving.register_keras_serializable(package="instclf")
class MaxMeanPooling(keras.layers.Layer):
    """musicnn's back-end pooling: each channel's max and mean over time, interleaved as
    musicnn flattens them: (T, 1, C) -> (2C,)."""

    def call(self, x):
        x = keras.ops.squeeze(x, 2)
        pooled = keras.ops.stack([keras.ops.max(x, axis=1), keras.ops.mean(x, axis=1)], -1)
        return keras.ops.reshape(pooled, (-1, 2 * x.shape[-1]))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 2 * input_shape[-1])


def build_musicnn(n_frames: int = musicnn.N_FRAMES, n_mels: int = musicnn.N_MELS,
                  include_top: bool = True, midend_filters: int = 64, units: int = 200,
                  name: str = "musicnn") -> keras.Model:
    """musicnn's architecture with fresh weights; input (n_frames, n_mels).

    Without the top the output is ``block4_midend``'s (batch, n_frames, 1, 753).
    """
    bn = musicnn.BN
    inputs = keras.Input((n_frames, n_mels), name="log_mel")
    x = keras.layers.Reshape((n_frames, n_mels, 1), name="expand")(inputs)
    x = keras.layers.BatchNormalization(**bn, name="input_bn")(x)
    x = MusicnnFrontEnd(name=BLOCKS[0])(x)
    for k, block in enumerate(BLOCKS[1:]):
        x = MusicnnMidEnd(midend_filters, residual=k > 0, name=block)(x)
    if include_top:
        x = MaxMeanPooling(name="backend_pool")(x)
        x = keras.layers.BatchNormalization(**bn, name="backend_bn")(x)
        x = keras.layers.Dropout(0.5, name="backend_dropout")(x)
        x = keras.layers.Dense(units, activation="relu", name="penultimate")(x)
        x = keras.layers.BatchNormalization(**bn, name="penultimate_bn")(x)
        x = keras.layers.Dropout(0.5, name="penultimate_dropout")(x)
        x = keras.layers.Dense(N_TAGS, name="logits")(x)
        x = keras.layers.Activation("sigmoid", name="tags")(x)
    return keras.Model(inputs, x, name=name)


def _names(layer_name: str) -> list[str]:
    return [f"{scope}/{v}" for scope in SCOPES.get(layer_name, ())
            for v in (NORM if scope.startswith("batch_normalization") else CONV)]


def checkpoint_variables(layer: keras.layers.Layer) -> list:
    """(checkpoint variable name, weight) for each weight of one layer of :func:`build_musicnn`."""
    weights = layer.checkpoint_weights() if isinstance(layer, _ConvUnits) else layer.weights
    return list(zip(_names(layer.name), weights, strict=True))


def pretrained_musicnn(which: str = "MSD_musicnn", n_frames: int = musicnn.N_FRAMES,
            include_top: bool = True) -> keras.Model:
    """musicnn's pretrained architecture (``MTT_musicnn`` or ``MSD_musicnn``) as a Keras model.

    The mid-end width and the back-end's dense units are read from the checkpoint. With the
    top, ``model.get_layer("penultimate_bn").output`` gives musicnn's penultimate features.
    """
    shapes = musicnn.checkpoint_shapes(which)
    model = build_musicnn(n_frames, include_top=include_top,
                          midend_filters=shapes["conv2d_5/bias"][0],
                          units=shapes["dense/bias"][0], name=f"musicnn_{which}")
    top = [] if include_top else [name for layer in TOP for name in _names(layer)]
    return musicnn.load_checkpoint(model, which, checkpoint_variables, optional=top)


def backbone_layers(which: str = "MSD_musicnn", n_frames: int = musicnn.N_FRAMES) -> list:
    """The pretrained chain up to the penultimate features, (batch, 1, 1, units), in the
    blocks of :data:`BACKBONE_BLOCKS` (the ``musicnn_msd`` and ``musicnn_mtt`` backbones)."""
    model = pretrained_musicnn(which, n_frames=n_frames, include_top=True)
    names = [layer.name for layer in model.layers]
    kept = model.layers[names.index("expand"):names.index("penultimate_bn") + 1]
    units = model.get_layer("penultimate").units
    return [*kept, keras.layers.Reshape((1, 1, units), name="backend_expand")]

