"""The frozen bottom's activations, in RAM or cached on disk, and batches to train from them.

Staged training (:mod:`instclf.train`, notebooks 03 and 04) computes the frozen layers of the
chain once per note into a float32 ``.npy`` file named by a content key, memory-maps it, and
trains the top from it a batch at a time (:class:`Batches`): peak RAM is one chunk or one
batch, not the whole array, whatever the number of notes (the ``full`` and ``nsynth``
profiles). ``benchmarks/bench_streaming.py`` measures both ways.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import keras
import numpy as np
from tqdm.auto import tqdm

from . import storage
from .config import InstclfError


def chain(layers: list[keras.layers.Layer], input_shape: tuple) -> keras.Sequential:
    """A model of existing layers (their weights are shared, not copied)."""
    return keras.Sequential([keras.Input(input_shape), *layers])


def output_shape(model: keras.Sequential, start: int) -> tuple:
    """The shape of what ``model.layers[start]`` receives (batch dimension dropped)."""
    if start == 0:
        return tuple(model.input_shape[1:])
    return tuple(model.layers[start - 1].output.shape[1:])


def activations(model: keras.Sequential, X: np.ndarray, start: int, stop: int,
                batch_size: int = 64, progress: bool = False) -> np.ndarray:
    """``model.layers[start:stop]`` applied to ``X`` in inference mode, as float32 in RAM
    (notebook 05's backbone embeddings, notebook 03's check of the plain Keras recipe,
    ``benchmarks/bench_streaming.py``'s in-RAM path); ``progress``: a bar per chunk."""
    if start == stop:
        return np.asarray(X, dtype=np.float32)
    part = chain(model.layers[start:stop], output_shape(model, start))
    return predict_in_chunks(part, X, batch_size, progress=progress)


def predict_in_chunks(model: keras.Model, X: np.ndarray, batch_size: int = 64,
                      out: np.ndarray | None = None, progress: bool = False) -> np.ndarray:
    """``model.predict`` over float16 or memory-mapped ``X``, converted a chunk at a time,
    into ``out`` (a new float32 array if not given; a memory map keeps RAM to one chunk)."""
    if out is None:
        out = np.empty((len(X), *model.output_shape[1:]), np.float32)
    chunk = 16 * batch_size  # chunks bound the float32 copy
    for begin in tqdm(range(0, len(X), chunk), disable=not progress, unit="chunk",
                      desc="activations"):
        batch = np.asarray(X[begin:begin + chunk], dtype=np.float32)
        # predict_on_batch, not predict: on 2 cores predict's input pipeline often leaves the
        # model one core (musicnn_mtt 40 instead of 25 ms/note; benchmarks/bench_pipeline.py)
        for start in range(0, len(batch), batch_size):
            part = batch[start:start + batch_size]
            out[begin + start:begin + start + len(part)] = model.predict_on_batch(part)
    return out


class Rows:
    """Some rows of a (memory-mapped) array, read only when indexed: a selection of notes
    out of one array of every note (the leave-one-lineage-out folds of
    :mod:`instclf.lineages` share the frozen activations of the whole profile this way).

    ``key`` is the content key of ``base``; ``rows`` are kept sorted, so a batch of them
    reads the memory map in order.
    """

    def __init__(self, base: np.ndarray, rows, key: str):
        self.base, self.key = base, key
        self.rows = np.sort(np.asarray(rows, dtype=np.int64))
        self.shape = (len(self.rows), *base.shape[1:])
        self.dtype = base.dtype

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index) -> np.ndarray:
        return np.asarray(self.base[self.rows[index]])

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        return np.asarray(self[:], dtype=dtype)


def profile_cache_dir(profile) -> Path:
    """Where a profile's frozen activations are cached: ``<data root>/cache/activations``."""
    return Path(profile.cache_dir) / "activations"


def cached_activations(model: keras.Sequential, X: np.ndarray, start: int, stop: int,
                       key: str, folder: Path, batch_size: int = 64,
                       progress: bool = False) -> np.ndarray:
    """:func:`activations`, written chunk by chunk to ``<folder>/<key>.npy`` (atomically) and
    returned memory-mapped read-only; an existing file of the right shape is reused.

    ``key`` is a content key (:func:`instclf.storage.content_key` of what the file is
    computed from), so an existing file is the right one. ``start == stop`` returns ``X``.
    Used by :func:`instclf.train.staged_training`.
    """
    if start == stop:
        return X
    path = Path(folder) / f"{key}.npy"
    shape = (len(X), *output_shape(model, stop))
    found = _stored(path, shape)
    if found is not None:
        return found
    _check_space(path, 4 * math.prod(shape))
    part = chain(model.layers[start:stop], output_shape(model, start))
    with storage.atomic_path(path) as tmp:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=shape)
        predict_in_chunks(part, X, batch_size, out=out, progress=progress)
        out.flush()
        del out
    return np.load(path, mmap_mode="r")


def _check_space(path: Path, size: int) -> None:
    """Fail before writing: a memory map written past a full disk kills the process."""
    path.parent.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(path.parent).free
    if size > free:
        raise InstclfError(f"the frozen activations {path.name} need {size / 2 ** 30:.1f} GB in "
                           f"{path.parent}, which has {free / 2 ** 30:.1f} GB free; free space "
                           "there or set INSTCLF_DATA_DIR to a larger disk")


def _stored(path: Path, shape: tuple) -> np.ndarray | None:
    if not path.is_file():
        return None
    try:
        found = np.load(path, mmap_mode="r")
    except (ValueError, OSError):  # not a whole .npy file: computed again
        return None
    return found if found.shape == shape and found.dtype == np.float32 else None


class Batches(keras.utils.PyDataset):
    """``(x, y, sample_weight)`` batches of (memory-mapped) ``X`` and ``y`` for ``fit``
    (``(x, y)`` without ``class_weight``), as float32.

    ``shuffle``: a new permutation every epoch, drawn from ``seed`` and the epoch number
    (same seed, same batches); each batch reads its rows in index order, which a memory map
    serves fastest. Without ``shuffle`` (validation) the rows come in order.

    The class weights travel as sample weights, not as ``fit(class_weight=...)``: Keras 3.x's
    ``PyDatasetAdapter`` does turn ``class_weight`` into sample weights for a ``PyDataset``,
    but its generator and torch ``DataLoader`` adapters refuse the argument; weights made
    here are the same numbers (``class_weight_to_sample_weights`` does ``weights[y]`` too,
    and the loss is averaged over the batch either way), on every backend and adapter, and
    a test can read them. ``workers=1`` without multiprocessing: batches come in order, in
    this process (deterministic).
    Used by :func:`instclf.train.fit_stage`.
    """

    def __init__(self, X: np.ndarray, y: np.ndarray, batch_size: int,
                 class_weight: dict[int, float] | None = None, shuffle: bool = False,
                 seed: int = 0):
        super().__init__(workers=1, use_multiprocessing=False)
        if len(X) != len(y):
            raise ValueError(f"{len(X)} rows of X but {len(y)} labels")
        self.X, self.y, self.batch_size = X, np.asarray(y), int(batch_size)
        self.weights = None if class_weight is None else sample_weights(self.y, class_weight)
        self.shuffle, self.seed, self.epoch = shuffle, seed, 0
        self.order = self._order()

    def _order(self) -> np.ndarray:
        if not self.shuffle:
            return np.arange(len(self.y))
        return np.random.default_rng([self.seed, self.epoch]).permutation(len(self.y))

    def __len__(self) -> int:
        return math.ceil(len(self.y) / self.batch_size)

    def rows(self, index: int) -> np.ndarray:
        """The rows of batch ``index`` this epoch, in index order."""
        return np.sort(self.order[index * self.batch_size:(index + 1) * self.batch_size])

    def __getitem__(self, index: int):
        rows = self.rows(index)
        x = np.asarray(self.X[rows], dtype=np.float32)
        if self.weights is None:
            return x, self.y[rows]
        return x, self.y[rows], self.weights[rows]

    def on_epoch_end(self):
        self.epoch += 1
        self.order = self._order()

    def for_fit(self):
        """What :func:`instclf.train.fit_stage` hands to ``fit``: with TensorFlow, these batches
        as a ``tf.data`` pipeline without autotuned prefetching, each pass one epoch (the
        first epoch 0, each later pass after :meth:`on_epoch_end`); elsewhere the
        ``PyDataset`` itself. Keras's own adapter for a ``PyDataset`` prefetches with
        autotuning, and on 2 cores about one epoch in four then ran at half speed
        (benchmarks/bench_pipeline.py)."""
        if keras.backend.backend() != "tensorflow":
            return self
        import tensorflow as tf

        signature = (tf.TensorSpec((None, *self.X.shape[1:]), tf.float32),
                     tf.TensorSpec((None,), tf.as_dtype(self.y.dtype)))
        if self.weights is not None:
            signature += (tf.TensorSpec((None,), tf.float32),)
        passes = 0

        def one_epoch():  # Keras stops at len(self) batches, so each pass begins the epoch
            nonlocal passes
            if passes:
                self.on_epoch_end()
            passes += 1
            for index in range(len(self)):
                yield self[index]

        options = tf.data.Options()
        options.autotune.enabled = False
        options.threading.private_threadpool_size = 1
        batches = tf.data.Dataset.from_generator(one_epoch, output_signature=signature)
        batches = batches.apply(tf.data.experimental.assert_cardinality(len(self)))
        return batches.with_options(options)


def sample_weights(y: np.ndarray, class_weight: dict[int, float]) -> np.ndarray:
    """The weight of each row's class (float32; 0 for a class ``class_weight`` lacks)."""
    table = np.zeros(max([*class_weight, int(np.max(y, initial=0))]) + 1, np.float32)
    for k, weight in class_weight.items():
        table[k] = weight
    return table[np.asarray(y, dtype=np.int64)]
