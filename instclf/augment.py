"""Transformations that change the recording but not the instrument (notebook 04).

They act on the features of the front end they are given (:class:`instclf.features.FrontEnd`),
one clip in the last two axes, with any leading batch axes: the front end says which axis holds
the mel bands and which the frames, and how its scaling turns mel power into features. Gain and
equalisation multiply mel power, so they undo the scaling (``front_end.to_power``) and apply it
again afterwards (``front_end.from_power``); the time shift and the masks work on the features
directly. Every function is pure: it returns a new array of the input's shape and dtype and
never changes its input. Randomness lives in one place, :func:`draw_parameters`, which takes a
seed, so the same seed always gives the same augmented notes.

Masks and the time shift fill with the front end's ``silent`` value, the feature value of zero
mel power, rather than the clip's mean. Silence is what the front end itself produces where
there is no sound, so a masked band or frame looks like a recording that lost energy there (a
band-stop filter, a late start), which cannot turn one instrument into another. The clip's mean
would instead *add* broadband energy, for example above a bass note whose upper bands are
silent, and that energy is itself a cue to the family. (SpecAugment fills with zero too, but
its features are mean-normalised, so its zero is the mean; ours is silence.)

A scaling relative to each clip's maximum (the study's ``db_max``) gets what the front end
would compute from the changed recording: after every transformation the clip is referred to
its maximum again (``front_end.renormalised``), so values stay within [-80, 0] dB with the
maximum at 0, and what lay at the -80 dB floor stays there (its true level is unknown). A gain
therefore changes nothing there: db_max features do not hold the level. musicnn's
``log10_1p`` is absolute and needs none of this.

Augmented copies are made once, before training ("offline"), so that the frozen bottom of the
backbone still runs once per note and copy (see :mod:`instclf.train`): fresh transformations
every epoch would defeat that cache.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from .features import FrontEnd

_CHUNK = 512  # clips transformed at a time: bounds the float32 temporaries


@dataclass(frozen=True)
class Augmentation:
    """How many augmented copies of each fitted note, and how far each transformation goes.

    Each copy draws, per note: a gain uniform in ``±gain_db``; a smooth equalisation curve
    (a tilt across the bands plus one broad bump or dip) held within ``±eq_db`` in every band;
    a delay of 0 to ``max_shift_frames`` frames (16 ms each for musicnn); one frequency mask of
    0 to ``freq_mask_bands`` adjacent bands and one time mask of 0 to ``time_mask_frames``
    frames.
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


# --- the front end's axes -------------------------------------------------------------------

def _checked(X, front_end: FrontEnd) -> np.ndarray:
    """``X`` as an array, refused unless its clips have the front end's shape."""
    X = np.asarray(X)
    if X.shape[-2:] != front_end.shape:
        raise ValueError(f"clips of shape {X.shape[-2:]} are not features of the "
                         f"{front_end.name} front end {front_end.shape}")
    return X


def _on_axis(values: np.ndarray, axis: int) -> np.ndarray:
    """``values`` (..., n) placed on feature axis ``axis`` (-1 or -2) of clips (..., a, b)."""
    return values[..., None, :] if axis == -1 else values[..., :, None]


def _per_clip(values, X: np.ndarray, trailing: int, axis: int = -1) -> np.ndarray:
    """``values`` (a scalar or one per clip) shaped to broadcast over ``X``'s last two axes,
    keeping ``trailing`` of its own axes (0 for scalars per clip, 1 for a curve per clip,
    which goes on feature axis ``axis``)."""
    values = np.asarray(values, dtype=np.float32)
    lead = X.ndim - 2
    if values.ndim - trailing < lead:  # one value for every clip
        values = values.reshape((1,) * (lead - values.ndim + trailing) + values.shape)
    if trailing == 0:
        return values[..., None, None]
    return _on_axis(values, axis)


# --- gain and equalisation (on mel power) ---------------------------------------------------

def _times_power(X: np.ndarray, front_end: FrontEnd, factor: np.ndarray) -> np.ndarray:
    return front_end.from_power(front_end.to_power(X) * factor).astype(X.dtype)


def apply_gain(X: np.ndarray, front_end: FrontEnd, gain_db) -> np.ndarray:
    """Features of the same notes played ``gain_db`` dB louder (a scalar or one per clip)."""
    X = _checked(X, front_end)
    return _times_power(X, front_end, 10.0 ** (_per_clip(gain_db, X, 0) / 10.0))


def eq_curve(n_mels: int, tilt_db: float, bump_db: float, bump_centre: float,
             bump_width: float, limit_db: float) -> np.ndarray:
    """A smooth gain in dB per mel band: a linear tilt from ``-tilt_db`` (lowest band) to
    ``+tilt_db`` (highest) plus a Gaussian bump of ``bump_db`` at band ``bump_centre`` with a
    standard deviation of ``bump_width`` bands, held within ``±limit_db``."""
    bands = np.arange(n_mels, dtype=np.float32)
    tilt = tilt_db * (2 * bands / max(n_mels - 1, 1) - 1)
    bump = bump_db * np.exp(-0.5 * ((bands - bump_centre) / bump_width) ** 2)
    return np.clip(tilt + bump, -limit_db, limit_db).astype(np.float32)


def apply_eq(X: np.ndarray, front_end: FrontEnd, curve_db: np.ndarray) -> np.ndarray:
    """Features after an equaliser with gain ``curve_db`` per mel band ((n_mels,) or one per
    clip)."""
    X = _checked(X, front_end)
    factor = 10.0 ** (_per_clip(curve_db, X, 1, front_end.mel_axis) / 10.0)
    return _times_power(X, front_end, factor)


# --- time shift and masks (on the features) -------------------------------------------------

def time_shift(X: np.ndarray, front_end: FrontEnd, frames) -> np.ndarray:
    """The notes delayed by ``frames`` (a non-negative integer, or one per clip): the first
    frames become silent and the last ones fall off the end."""
    X = _checked(X, front_end)
    axis = front_end.time_axis
    frames = np.broadcast_to(np.asarray(frames, dtype=np.int64), X.shape[:-2])
    if (frames < 0).any():
        raise ValueError("time_shift delays notes: frames must be >= 0")
    index = np.arange(X.shape[axis]) - frames[..., None]  # (..., n_frames): source frame
    shifted = np.take_along_axis(X, _on_axis(np.maximum(index, 0), axis), axis=axis)
    out = np.where(_on_axis(index < 0, axis), np.asarray(front_end.silent, X.dtype), shifted)
    return front_end.renormalised(out).astype(X.dtype, copy=False)


def _span(size: int, start, width) -> np.ndarray:
    """Boolean (..., size): True on ``[start, start + width)`` of each clip."""
    positions = np.arange(size)
    start, width = np.asarray(start)[..., None], np.asarray(width)[..., None]
    return (positions >= start) & (positions < start + width)


def _masked(X, front_end: FrontEnd, axis: int, start, width, fill) -> np.ndarray:
    X = _checked(X, front_end)
    fill = front_end.silent if fill is None else fill
    mask = _on_axis(_span(X.shape[axis], start, width), axis)
    out = np.where(mask, np.asarray(fill, X.dtype), X)
    return front_end.renormalised(out).astype(X.dtype, copy=False)


def mask_bands(X: np.ndarray, front_end: FrontEnd, start, width,
               fill: float | None = None) -> np.ndarray:
    """Mel bands ``[start, start + width)`` set to ``fill`` (default: silent), SpecAugment's
    frequency mask."""
    return _masked(X, front_end, front_end.mel_axis, start, width, fill)


def mask_frames(X: np.ndarray, front_end: FrontEnd, start, width,
                fill: float | None = None) -> np.ndarray:
    """Frames ``[start, start + width)`` set to ``fill`` (default: silent), SpecAugment's time
    mask."""
    return _masked(X, front_end, front_end.time_axis, start, width, fill)


# --- random draws, applied ------------------------------------------------------------------

PARAMETER_COLUMNS = ("gain_db", "tilt_db", "bump_db", "bump_centre", "bump_width", "shift",
                     "band_start", "band_width", "frame_start", "frame_width")


def draw_parameters(n_clips: int, front_end: FrontEnd, settings: Augmentation,
                    copy: int = 1) -> pd.DataFrame:
    """One row of transformation parameters per clip for augmented copy ``copy`` (1, 2, ...).

    Deterministic: the draws depend only on ``settings`` (its seed included), ``copy``, the
    number of clips and the front end's numbers of frames and mel bands.
    """
    n_frames, n_mels = front_end.frames, front_end.n_mels
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


def transform(X: np.ndarray, front_end: FrontEnd, parameters: pd.DataFrame,
              eq_limit_db: float) -> np.ndarray:
    """Clips ``X`` (n clips of the front end's features) with each row of ``parameters``
    applied in turn: gain and equalisation (on mel power, in one step), delay, frequency
    mask, time mask."""
    if len(X) != len(parameters):
        raise ValueError(f"{len(X)} clips but {len(parameters)} rows of parameters")
    dtype = X.dtype
    X = np.asarray(X, dtype=np.float32)
    gain_db = parameters["gain_db"].to_numpy(np.float32)[:, None]
    curves = gain_db + eq_curves(parameters, front_end.n_mels, eq_limit_db)
    X = apply_eq(X, front_end, curves)  # gain and equaliser in one step
    X = time_shift(X, front_end, parameters["shift"].to_numpy())
    X = mask_bands(X, front_end, parameters["band_start"].to_numpy(),
                   parameters["band_width"].to_numpy())
    X = mask_frames(X, front_end, parameters["frame_start"].to_numpy(),
                    parameters["frame_width"].to_numpy())
    return X.astype(dtype)


def augment_clips(X: np.ndarray, front_end: FrontEnd, settings: Augmentation, copy: int = 1,
                  out: np.ndarray | None = None) -> np.ndarray:
    """Augmented copy number ``copy`` of every clip of ``X`` (same shape and dtype), features
    of ``front_end``.

    Works a chunk at a time, so ``X`` may be a float16 memory map of the whole cache;
    ``out`` (an array of ``X``'s shape) receives the result if given.
    """
    _checked(X, front_end)
    parameters = draw_parameters(len(X), front_end, settings, copy)
    out = np.empty(X.shape, X.dtype) if out is None else out
    for begin in range(0, len(X), _CHUNK):
        stop = min(begin + _CHUNK, len(X))
        out[begin:stop] = transform(np.asarray(X[begin:stop]), front_end,
                                    parameters.iloc[begin:stop], settings.eq_db)
    return out


def augmented(X: np.ndarray, y: np.ndarray, notes: pd.DataFrame, front_end: FrontEnd,
              settings: Augmentation) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Features, labels and note table with ``settings.copies`` augmented copies appended.

    Rows ``0..n-1`` are the original notes, then copy 1, copy 2, ...; the note table gains a
    ``copy`` column (0 for the originals) and the labels repeat. ``train.trained_model`` makes
    its fitted data of them (notebook 04).
    """
    if settings.copies < 0:
        raise ValueError("copies must be >= 0")
    n = len(X)
    out = np.empty((n * (settings.copies + 1), *X.shape[1:]), X.dtype)
    out[:n] = X
    for copy in range(1, settings.copies + 1):
        augment_clips(X, front_end, settings, copy, out=out[copy * n:(copy + 1) * n])
    notes = pd.concat([notes.assign(copy=copy) for copy in range(settings.copies + 1)],
                      ignore_index=True)
    return out, np.tile(y, settings.copies + 1), notes
