"""Transformations that change the recording but not the instrument (notebook 04).

They act on musicnn features, ``log10(1 + 10000 * mel power)`` laid out as (frames, 96 mel
bands), with any leading batch axes. Gain and equalisation multiply mel power, so they invert
the scaling first (:func:`to_power`) and apply it again afterwards (:func:`from_power`); the
time shift and the masks work on the features directly. Every function is pure: it returns a
new array of the input's shape and dtype and never changes its input. Randomness lives in one
place, :func:`draw_parameters`, which takes a seed, so the same seed always gives the same
augmented notes.

Masks and the time shift fill with :data:`SILENT`, the feature value of zero mel power, rather
than the clip's mean. Zero is what the front end itself produces where there is no sound, so a
masked band or frame looks like a recording that lost energy there (a band-stop filter, a late
start), which cannot turn one instrument into another. The clip's mean would instead *add*
broadband energy, for example above a bass note whose upper bands are silent, and that energy
is itself a cue to the family. (SpecAugment fills with zero too, but its features are
mean-normalised, so its zero is the mean; ours is silence.)

Augmented copies are made once, before training ("offline"), so that the frozen bottom of the
backbone still runs once per note and copy (see :mod:`instclf.train`): fresh transformations
every epoch would defeat that cache.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

SILENT = 0.0  # log10(1 + 10000 * 0): the feature value of a band or frame with no energy
_SCALE = 10_000.0
_LN10 = np.log(10.0)
_CHUNK = 512  # clips transformed at a time: bounds the float32 temporaries


@dataclass(frozen=True)
class Augmentation:
    """How many augmented copies of each fitted note, and how far each transformation goes.

    Each copy draws, per note: a gain uniform in ``±gain_db``; a smooth equalisation curve
    (a tilt across the bands plus one broad bump or dip) held within ``±eq_db`` in every band;
    a delay of 0 to ``max_shift_frames`` frames (16 ms each); one frequency mask of 0 to
    ``freq_mask_bands`` adjacent bands and one time mask of 0 to ``time_mask_frames`` frames.
    """

    copies: int = 1
    gain_db: float = 6.0
    eq_db: float = 3.0
    max_shift_frames: int = 8
    freq_mask_bands: int = 8
    time_mask_frames: int = 16
    seed: int = 0

    def settings(self) -> dict:
        """Everything that decides the augmented notes (part of the training run's key)."""
        return asdict(self)


# --- the scaling, undone and redone ---------------------------------------------------------

def to_power(X: np.ndarray) -> np.ndarray:
    """Mel power from musicnn features: the inverse of ``log10(1 + 10000 * S)`` (float32)."""
    return np.expm1(np.asarray(X, dtype=np.float32) * np.float32(_LN10)) / np.float32(_SCALE)


def from_power(S: np.ndarray) -> np.ndarray:
    """musicnn features ``log10(1 + 10000 * S)`` of mel power ``S`` (float32)."""
    return np.log1p(np.float32(_SCALE) * np.asarray(S, dtype=np.float32)) / np.float32(_LN10)


def _per_clip(values, X: np.ndarray, trailing: int) -> np.ndarray:
    """``values`` (a scalar or one per clip) shaped to broadcast over ``X``'s last two axes,
    keeping ``trailing`` of its own axes (0 for scalars per clip, 1 for a curve per clip)."""
    values = np.asarray(values, dtype=np.float32)
    lead = X.ndim - 2
    if values.ndim - trailing < lead:  # one value for every clip
        values = values.reshape((1,) * (lead - values.ndim + trailing) + values.shape)
    if trailing == 0:
        return values[..., None, None]
    return values[..., None, :]


# --- gain and equalisation (on mel power) ---------------------------------------------------

def apply_gain(X: np.ndarray, gain_db) -> np.ndarray:
    """Features of the same notes played ``gain_db`` dB louder (a scalar or one per clip)."""
    factor = 10.0 ** (_per_clip(gain_db, X, 0) / 10.0)
    return from_power(to_power(X) * factor).astype(X.dtype)


def eq_curve(n_mels: int, tilt_db: float, bump_db: float, bump_centre: float,
             bump_width: float, limit_db: float) -> np.ndarray:
    """A smooth gain in dB per mel band: a linear tilt from ``-tilt_db`` (lowest band) to
    ``+tilt_db`` (highest) plus a Gaussian bump of ``bump_db`` at band ``bump_centre`` with a
    standard deviation of ``bump_width`` bands, held within ``±limit_db``."""
    bands = np.arange(n_mels, dtype=np.float32)
    tilt = tilt_db * (2 * bands / max(n_mels - 1, 1) - 1)
    bump = bump_db * np.exp(-0.5 * ((bands - bump_centre) / bump_width) ** 2)
    return np.clip(tilt + bump, -limit_db, limit_db).astype(np.float32)


def apply_eq(X: np.ndarray, curve_db: np.ndarray) -> np.ndarray:
    """Features after an equaliser with gain ``curve_db`` per mel band ((n_mels,) or one per
    clip)."""
    factor = 10.0 ** (_per_clip(curve_db, X, 1) / 10.0)
    return from_power(to_power(X) * factor).astype(X.dtype)


# --- time shift and masks (on the features) -------------------------------------------------

def time_shift(X: np.ndarray, frames) -> np.ndarray:
    """The notes delayed by ``frames`` (a non-negative integer, or one per clip): the first
    frames become :data:`SILENT` and the last ones fall off the end."""
    frames = np.broadcast_to(np.asarray(frames, dtype=np.int64), X.shape[:-2])
    if (frames < 0).any():
        raise ValueError("time_shift delays notes: frames must be >= 0")
    index = np.arange(X.shape[-2]) - frames[..., None]  # (..., n_frames): source frame
    shifted = np.take_along_axis(X, np.maximum(index, 0)[..., None], axis=-2)
    return np.where((index < 0)[..., None], np.asarray(SILENT, X.dtype), shifted)


def _span(size: int, start, width) -> np.ndarray:
    """Boolean (..., size): True on ``[start, start + width)`` of each clip."""
    positions = np.arange(size)
    start, width = np.asarray(start)[..., None], np.asarray(width)[..., None]
    return (positions >= start) & (positions < start + width)


def mask_bands(X: np.ndarray, start, width, fill: float = SILENT) -> np.ndarray:
    """Mel bands ``[start, start + width)`` set to ``fill`` (SpecAugment's frequency mask)."""
    mask = _span(X.shape[-1], start, width)[..., None, :]
    return np.where(mask, np.asarray(fill, X.dtype), X)


def mask_frames(X: np.ndarray, start, width, fill: float = SILENT) -> np.ndarray:
    """Frames ``[start, start + width)`` set to ``fill`` (SpecAugment's time mask)."""
    mask = _span(X.shape[-2], start, width)[..., :, None]
    return np.where(mask, np.asarray(fill, X.dtype), X)


# --- random draws, applied ------------------------------------------------------------------

PARAMETER_COLUMNS = ("gain_db", "tilt_db", "bump_db", "bump_centre", "bump_width", "shift",
                     "band_start", "band_width", "frame_start", "frame_width")


def draw_parameters(n_clips: int, shape: tuple[int, int], settings: Augmentation,
                    copy: int = 1) -> pd.DataFrame:
    """One row of transformation parameters per clip for augmented copy ``copy`` (1, 2, ...).

    Deterministic: the draws depend only on ``settings`` (its seed included), ``copy``, the
    number of clips and their (frames, mel bands) ``shape``.
    """
    n_frames, n_mels = shape
    rng = np.random.default_rng([settings.seed, copy])
    band_width = rng.integers(0, min(settings.freq_mask_bands, n_mels) + 1, n_clips)
    frame_width = rng.integers(0, min(settings.time_mask_frames, n_frames) + 1, n_clips)
    return pd.DataFrame({
        "gain_db": rng.uniform(-settings.gain_db, settings.gain_db, n_clips),
        "tilt_db": rng.uniform(-settings.eq_db, settings.eq_db, n_clips),
        "bump_db": rng.uniform(-settings.eq_db, settings.eq_db, n_clips),
        "bump_centre": rng.uniform(0, n_mels - 1, n_clips),
        "bump_width": rng.uniform(4, 16, n_clips),
        "shift": rng.integers(0, min(settings.max_shift_frames, n_frames - 1) + 1, n_clips),
        "band_start": rng.integers(0, n_mels - band_width + 1),
        "band_width": band_width,
        "frame_start": rng.integers(0, n_frames - frame_width + 1),
        "frame_width": frame_width,
    }, columns=list(PARAMETER_COLUMNS))


def eq_curves(parameters: pd.DataFrame, n_mels: int, limit_db: float) -> np.ndarray:
    """(n_clips, n_mels) equalisation curves in dB, one per row of ``parameters``."""
    return np.stack([eq_curve(n_mels, row.tilt_db, row.bump_db, row.bump_centre,
                              row.bump_width, limit_db)
                     for row in parameters.itertuples()]) if len(parameters) else \
        np.zeros((0, n_mels), np.float32)


def transform(X: np.ndarray, parameters: pd.DataFrame, eq_limit_db: float) -> np.ndarray:
    """Clips ``X`` (n, frames, mel bands) with each row of ``parameters`` applied in turn:
    gain and equalisation (on mel power, in one step), delay, frequency mask, time mask."""
    if len(X) != len(parameters):
        raise ValueError(f"{len(X)} clips but {len(parameters)} rows of parameters")
    dtype = X.dtype
    X = np.asarray(X, dtype=np.float32)
    gain_db = parameters["gain_db"].to_numpy(np.float32)[:, None]
    X = apply_eq(X, gain_db + eq_curves(parameters, X.shape[-1], eq_limit_db))  # one step
    X = time_shift(X, parameters["shift"].to_numpy())
    X = mask_bands(X, parameters["band_start"].to_numpy(), parameters["band_width"].to_numpy())
    X = mask_frames(X, parameters["frame_start"].to_numpy(),
                    parameters["frame_width"].to_numpy())
    return X.astype(dtype)


def augment_clips(X: np.ndarray, settings: Augmentation, copy: int = 1,
                  out: np.ndarray | None = None) -> np.ndarray:
    """Augmented copy number ``copy`` of every clip of ``X`` (same shape and dtype).

    Works a chunk at a time, so ``X`` may be a float16 memory map of the whole cache;
    ``out`` (an array of ``X``'s shape) receives the result if given.
    """
    parameters = draw_parameters(len(X), X.shape[1:], settings, copy)
    out = np.empty(X.shape, X.dtype) if out is None else out
    for begin in range(0, len(X), _CHUNK):
        stop = min(begin + _CHUNK, len(X))
        out[begin:stop] = transform(np.asarray(X[begin:stop]),
                                    parameters.iloc[begin:stop], settings.eq_db)
    return out


def augmented(data, settings: Augmentation):
    """A :class:`instclf.train.Data` with ``settings.copies`` augmented copies appended.

    Rows ``0..n-1`` are the original notes, then copy 1, copy 2, ...; the note table gains a
    ``copy`` column (0 for the originals) and the labels repeat.
    """
    from .train import Data  # train imports this module when it trains on augmented data

    if settings.copies < 0:
        raise ValueError("copies must be >= 0")
    n = len(data.X)
    X = np.empty((n * (settings.copies + 1), *data.X.shape[1:]), data.X.dtype)
    X[:n] = data.X
    for copy in range(1, settings.copies + 1):
        augment_clips(data.X, settings, copy, out=X[copy * n:(copy + 1) * n])
    notes = pd.concat([data.notes.assign(copy=copy) for copy in range(settings.copies + 1)],
                      ignore_index=True)
    return Data(X, np.tile(data.y, settings.copies + 1), notes)


def augmented_data(data: dict, settings: Augmentation) -> dict:
    """The selections of :func:`instclf.train.training_data` with only ``fit`` augmented
    (validation and test notes stay as recorded). Used by ``train.trained_model``."""
    return {**data, "fit": augmented(data["fit"], settings)}
