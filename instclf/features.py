"""Clips -> spectrogram features, computed in batches and cached on disk (notebook 02).

A :class:`FrontEnd` says exactly how a 16 kHz note becomes the array a backbone expects.
:func:`reference_features` is the straightforward librosa computation of one clip (the
study's way); :func:`batch_features` computes the same numbers for many clips at once with
batched NumPy/SciPy FFTs and librosa's own mel matrix. :func:`cached_features` stores them as
float16, memory-mapped, beside the note names, rebuilt only when the notes or the front end
change. A cache can be computed in shards by several processes or machines
(:func:`cached_shard`, ``instclf features --shard i/n``) and is then assembled from them.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import librosa
import numpy as np
import pandas as pd
import scipy.fft
import soundfile as sf
import soxr
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from . import nsynth, storage
from .config import keep_freed_memory
from .sources.base import read_notes

SOURCE_RATE = nsynth.SAMPLE_RATE


@dataclass(frozen=True)
class FrontEnd:
    """How a note becomes features: clip, resampling, STFT, mel bands, scaling, layout.

    ``scaling``: ``"db_max"`` is librosa's ``power_to_db(S, ref=np.max)`` (top 80 dB);
    ``"log10_1p"`` is musicnn's ``log10(1 + 10000 * S)``. ``layout``: ``"mel_time"`` gives
    (n_mels, frames), low bands first, the study's image orientation; ``"time_mel"`` gives
    (frames, n_mels), musicnn's input orientation.
    """

    name: str
    sample_rate: int
    clip_start: float
    clip_seconds: float
    n_fft: int
    hop_length: int
    n_mels: int
    fmin: float = 0.0
    fmax: float | None = None
    scaling: str = "db_max"
    n_frames: int | None = None  # keep the first n frames (None: all)
    layout: str = "mel_time"
    image_size: tuple[int, int] | None = None  # how a vision backbone is shown the features

    @classmethod
    def from_dict(cls, settings: dict) -> "FrontEnd":
        """The front end a saved model or cache describes (JSON turns tuples into lists)."""
        size = settings.get("image_size")
        return cls(**{**settings, "image_size": tuple(size) if size is not None else None})

    @property
    def key(self) -> str:
        """A stable name for this exact configuration (used in cache file names)."""
        text = json.dumps(asdict(self), sort_keys=True)  # same configuration, same key
        return f"{self.name}-{hashlib.sha1(text.encode()).hexdigest()[:10]}"

    @property
    def frames(self) -> int:
        samples = round(self.clip_seconds * self.sample_rate)
        total = 1 + samples // self.hop_length
        return min(total, self.n_frames) if self.n_frames else total

    @property
    def shape(self) -> tuple[int, int]:
        """The shape of one clip's features."""
        if self.layout == "time_mel":
            return (self.frames, self.n_mels)
        return (self.n_mels, self.frames)

    # --- what augmentation and plots need to know of the layout and the scaling -------------

    TOP_DB = 80.0  # db_max keeps the top 80 dB (librosa's default): features span [-80, 0]
    _AMIN = 1e-10  # librosa's floor on power before taking the log
    _LN10 = np.float32(np.log(10.0))
    _LOG_SCALE = np.float32(10_000.0)

    def __post_init__(self):
        if self.scaling not in ("db_max", "log10_1p"):
            raise ValueError(f"unknown scaling {self.scaling!r}")
        if self.layout not in ("mel_time", "time_mel"):
            raise ValueError(f"unknown layout {self.layout!r}")

    @property
    def mel_axis(self) -> int:
        """The axis of the mel bands, counted from the end (-1 or -2: batch axes may lead)."""
        return -1 if self.layout == "time_mel" else -2

    @property
    def time_axis(self) -> int:
        """The axis of the frames, counted from the end (-1 or -2)."""
        return -2 if self.layout == "time_mel" else -1

    @property
    def silent(self) -> float:
        """The feature value of no energy: 0 for log10_1p, the -80 dB floor for db_max."""
        return -self.TOP_DB if self.scaling == "db_max" else 0.0

    @property
    def units(self) -> str:
        """What one feature value measures (the colour-bar label of notebook 02's plots)."""
        if self.scaling == "db_max":
            return "power (dB re max)"
        return "log10(1 + 10000·mel power)"

    def to_power(self, X: np.ndarray) -> np.ndarray:
        """Mel power of features ``X`` (float32, any leading axes): the scaling undone.

        log10_1p: exact. db_max: power relative to the clip's maximum (the absolute level is
        not in the features), and the floor gives zero power: what lay below it is unknown,
        so it is treated as silence.
        """
        X = np.asarray(X, dtype=np.float32)
        if self.scaling == "log10_1p":
            return np.expm1(X * self._LN10) / self._LOG_SCALE
        return np.where(X <= self.silent, np.float32(0), np.float32(10) ** (X / np.float32(10)))

    def from_power(self, S: np.ndarray) -> np.ndarray:
        """The features of mel power ``S`` (float32, any leading axes): the scaling.

        db_max refers each clip (the last two axes) to its own maximum, as librosa's
        ``power_to_db(S, ref=np.max)`` does, and floors it at -80 dB; a clip with no power
        at all is all floor (librosa would make it all 0 dB).
        """
        S = np.asarray(S, dtype=np.float32)
        if self.scaling == "log10_1p":
            return np.log1p(self._LOG_SCALE * S) / self._LN10
        peak = S.max(axis=(-2, -1), keepdims=True)
        db = 10.0 * np.log10(np.maximum(self._AMIN, S))
        db -= 10.0 * np.log10(np.maximum(self._AMIN, peak))
        return np.where(peak > 0, np.maximum(db, self.silent), np.float32(self.silent))

    def renormalised(self, X: np.ndarray) -> np.ndarray:
        """Features after a change that may have moved the clip's maximum (a delay, a mask).

        db_max: each clip referred to its maximum again, the floor kept as floor (float32);
        log10_1p is absolute, so ``X`` comes back as it is.
        """
        if self.scaling == "log10_1p":
            return np.asarray(X)
        X = np.asarray(X, dtype=np.float32)
        peak = X.max(axis=(-2, -1), keepdims=True)
        return np.where(X <= self.silent, np.float32(self.silent),
                        np.maximum(X - peak, np.float32(self.silent)))


# The study: first 3 s at 22.05 kHz, librosa's default STFT, 128 bands up to 10 kHz, dB
# relative to the maximum; VGG19 saw it as a 224 x 224 colour image.
STUDY = FrontEnd(name="study", sample_rate=22_050, clip_start=0.0, clip_seconds=3.0,
                 n_fft=2048, hop_length=512, n_mels=128, fmax=10_000.0, scaling="db_max",
                 layout="mel_time", image_size=(224, 224))
# musicnn: 16 kHz, n_fft 512, hop 256, 96 bands, log10(1 + 10000 mel), 187 frames (3 s).
MUSICNN = FrontEnd(name="musicnn", sample_rate=16_000, clip_start=0.0, clip_seconds=3.0,
                   n_fft=512, hop_length=256, n_mels=96, scaling="log10_1p", n_frames=187,
                   layout="time_mel")
# musicnn's front end over the whole note (4 s, 251 frames): the release is kept too.
MUSICNN_WHOLE = FrontEnd(name="musicnn_whole", sample_rate=16_000, clip_start=0.0,
                         clip_seconds=4.0, n_fft=512, hop_length=256, n_mels=96,
                         scaling="log10_1p", layout="time_mel")
FRONT_ENDS = {fe.name: fe for fe in (STUDY, MUSICNN, MUSICNN_WHOLE)}


# --- clips ----------------------------------------------------------------------------------

def cut_clip(y: np.ndarray, front_end: FrontEnd) -> np.ndarray:
    """The front end's clip of a 16 kHz note, zero-padded at the end if the note is shorter."""
    start = round(front_end.clip_start * SOURCE_RATE)
    length = round(front_end.clip_seconds * SOURCE_RATE)
    clip = np.asarray(y, dtype=np.float32)[..., start:start + length]
    missing = length - clip.shape[-1]
    if missing > 0:
        clip = np.pad(clip, [(0, 0)] * (clip.ndim - 1) + [(0, missing)])
    return clip


def load_clips(paths, front_end: FrontEnd) -> np.ndarray:
    """(n_clips, samples) float32 at 16 kHz: the front end's clip of each WAV."""
    start = round(front_end.clip_start * SOURCE_RATE)
    stop = start + round(front_end.clip_seconds * SOURCE_RATE)
    clips = np.zeros((len(paths), stop - start), np.float32)
    for row, path in enumerate(paths):
        y, _ = sf.read(str(path), start=start, stop=stop, dtype="float32", always_2d=False)
        clips[row, :len(y)] = y
    return clips


# --- the straightforward computation --------------------------------------------------------

def _scale(S: np.ndarray, front_end: FrontEnd) -> np.ndarray:
    if front_end.scaling == "db_max":
        return librosa.power_to_db(S, ref=np.max)
    if front_end.scaling == "log10_1p":
        return np.log10(1 + 10_000 * S)
    raise ValueError(f"unknown scaling {front_end.scaling!r}")


def _arrange(S: np.ndarray, front_end: FrontEnd) -> np.ndarray:
    if front_end.n_frames:
        S = S[..., :front_end.n_frames]
    return np.swapaxes(S, -1, -2) if front_end.layout == "time_mel" else S


def reference_features(y: np.ndarray, front_end: FrontEnd) -> np.ndarray:
    """One 16 kHz note through the front end with plain librosa calls (the study's way)."""
    clip = cut_clip(y, front_end)
    if front_end.sample_rate != SOURCE_RATE:
        clip = librosa.resample(clip, orig_sr=SOURCE_RATE, target_sr=front_end.sample_rate,
                                res_type="soxr_hq")
    S = librosa.feature.melspectrogram(
        y=clip, sr=front_end.sample_rate, n_fft=front_end.n_fft,
        hop_length=front_end.hop_length, n_mels=front_end.n_mels, fmin=front_end.fmin,
        fmax=front_end.fmax)
    return _arrange(_scale(S, front_end), front_end).astype(np.float32)


# --- the batched computation ----------------------------------------------------------------

@lru_cache(maxsize=8)
def _mel_basis(front_end: FrontEnd) -> np.ndarray:
    return librosa.filters.mel(sr=front_end.sample_rate, n_fft=front_end.n_fft,
                               n_mels=front_end.n_mels, fmin=front_end.fmin,
                               fmax=front_end.fmax)


@lru_cache(maxsize=8)
def _window(n_fft: int) -> np.ndarray:
    # librosa's periodic Hann window bit for bit, without importing scipy.signal (1 s)
    return np.hanning(n_fft + 1)[:-1].astype(np.float32)


def resample(y: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """``librosa.resample(y, res_type="soxr_hq")`` bit for bit (last axis), without importing
    librosa's core (2 s of a cold start): soxr, then the length librosa fixes."""
    if orig_sr == target_sr:
        return y
    out = soxr.resample(np.asarray(y).T, orig_sr, target_sr, quality="HQ").T
    length = int(np.ceil(y.shape[-1] * target_sr / orig_sr))
    out = out[..., :length]
    pad = [(0, 0)] * (out.ndim - 1) + [(0, length - out.shape[-1])]
    return np.ascontiguousarray(np.pad(out, pad) if length > out.shape[-1] else out)


def _power_spectrogram(clips: np.ndarray, n_fft: int, hop: int, workers: int) -> np.ndarray:
    """(batch, frames, 1 + n_fft // 2) power, framed like librosa's centred STFT.

    Kept by hand: with the mel product and scaling it measured 1.18-1.23x (musicnn) and
    1.23-1.24x (study) the clips/s of librosa's own batch path (melspectrogram on a batch of
    clips, same threads, idle machine; benchmarks/bench_features.py).
    """
    padded = np.pad(clips, [(0, 0), (n_fft // 2, n_fft // 2)])
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft, axis=-1)[:, ::hop]
    spectrum = scipy.fft.rfft(frames * _window(n_fft), axis=-1, workers=workers)
    return spectrum.real ** 2 + spectrum.imag ** 2


def spectral_flatness(y: np.ndarray, n_fft: int = 512, hop: int = 256,
                      loud_db: float = -40.0) -> float:
    """Median spectral flatness (``librosa.feature.spectral_flatness``) of the frames of a
    16 kHz recording within ``loud_db`` of its loudest: about 0.56 for white noise, near 0
    for a tone (``instclf predict``'s "not sure" for noise)."""
    power = np.maximum(_power_spectrogram(np.atleast_2d(y).astype(np.float32), n_fft, hop,
                                          1)[0].astype(np.float64), 1e-10)
    flatness = np.exp(np.log(power).mean(axis=1)) / power.mean(axis=1)
    energy = power.sum(axis=1)
    return float(np.median(flatness[energy >= energy.max() * 10 ** (loud_db / 10)]))


def batch_features(clips: np.ndarray, front_end: FrontEnd, fft_workers: int | None = None,
                   mel_basis: np.ndarray | None = None) -> np.ndarray:
    """Features of many 16 kHz clips at once; agrees with :func:`reference_features`.

    ``mel_basis``: the front end's mel matrix when it is at hand (an exported model stores
    it, :mod:`instclf.export`), so that prediction needs no librosa.
    """
    clips = cut_clip(np.atleast_2d(clips), front_end)
    if front_end.sample_rate != SOURCE_RATE:  # row by row: soxr is slow on many channels
        clips = np.stack([resample(c, SOURCE_RATE, front_end.sample_rate) for c in clips])
    power = _power_spectrogram(clips, front_end.n_fft, front_end.hop_length,
                               fft_workers or os.cpu_count() or 1)
    if front_end.n_frames:
        power = power[:, :front_end.n_frames]
    basis = _mel_basis(front_end) if mel_basis is None else mel_basis
    mel = np.swapaxes(power @ basis.T, -1, -2)  # (batch, n_mels, frames)
    # db_max per clip ("max" is the clip's): librosa's power_to_db bit for bit, in one call
    # for the batch and without librosa's core; log10_1p as the cached features had it
    scaled = front_end.from_power(mel) if front_end.scaling == "db_max" else _scale(
        mel, front_end)
    return _arrange(scaled, front_end).astype(np.float32)


def compute_features(paths, front_end: FrontEnd, batch_size: int = 16,
                     progress: bool = True, workers: int | None = None) -> np.ndarray:
    """Features of every WAV in ``paths``, in order, with a progress bar.

    Batches are read and computed in ``workers`` threads (default: one per core); reading,
    FFTs and matrix products release the GIL, so the threads really run side by side. BLAS
    is held to one thread meanwhile: its own threads on top of ours made it 30x slower.
    """
    keep_freed_memory()
    paths = list(paths)
    out = np.empty((len(paths), *front_end.shape), np.float32)
    starts = range(0, len(paths), batch_size)

    def one_batch(start: int) -> int:
        chunk = paths[start:start + batch_size]
        clips = load_clips(chunk, front_end)
        out[start:start + len(chunk)] = batch_features(clips, front_end, fft_workers=1)
        return len(chunk)

    with tqdm(total=len(paths), unit="clip", disable=not progress,
              desc=f"features ({front_end.name})") as bar, \
            threadpool_limits(limits=1, user_api="blas"), \
            ThreadPoolExecutor(workers or os.cpu_count() or 1) as pool:
        for done in pool.map(one_batch, starts):
            bar.update(done)
    return out


# --- the cache ------------------------------------------------------------------------------

@dataclass
class FeatureSet:
    """Cached features: ``X`` (memory-mapped float16) row by row with ``note_str``."""

    X: np.ndarray
    note_str: np.ndarray
    front_end: FrontEnd
    path: Path
    digest: str  # SHA-1 of the cached array: the content key of everything computed from it

    def __len__(self) -> int:
        return len(self.note_str)


def inputs_fingerprint(paths) -> str:
    """Changes when any of the WAVs is added, removed, rewritten or reordered."""
    digest = hashlib.sha1()
    for path in paths:
        stat = os.stat(path)
        digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def cache_path(notes: pd.DataFrame, front_end: FrontEnd, cache_dir: Path, label: str) -> Path:
    """``<cache_dir>/<front end key>/<label>-<hash of the note list>.npy``."""
    names = hashlib.sha1("\n".join(notes["note_str"]).encode()).hexdigest()[:12]
    return Path(cache_dir) / front_end.key / f"{label}-{names}.npy"


_VERIFIED: set[tuple] = set()  # files whose checksum this process has already checked


def _as_json(front_end: FrontEnd) -> dict:
    return json.loads(json.dumps(asdict(front_end)))


def _read_cache(path: Path, fingerprint: str, front_end: FrontEnd) -> FeatureSet | None:
    """The cached set if it is complete, intact and made from these inputs; else None."""
    meta_path = path.with_suffix(".json")
    if not (path.is_file() and meta_path.is_file()):
        return None
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError):
        return None
    stat = path.stat()
    if (not isinstance(meta, dict) or not isinstance(meta.get("note_str"), list)
            or meta.get("inputs") != fingerprint or meta.get("front_end") != _as_json(front_end)
            or meta.get("bytes") != stat.st_size):
        return None
    seen = (str(path), stat.st_size, stat.st_mtime_ns)
    if seen not in _VERIFIED:
        if storage.file_digest(path) != meta.get("sha1"):
            return None
        _VERIFIED.add(seen)
    try:
        X = np.load(path, mmap_mode="r")
    except (OSError, ValueError, EOFError):
        return None
    if X.shape != (len(meta["note_str"]), *front_end.shape):
        return None
    return FeatureSet(X, np.array(meta["note_str"]), front_end, path, meta["sha1"])


def _write_cache(path: Path, X: np.ndarray, notes: pd.DataFrame, fingerprint: str,
                 front_end: FrontEnd) -> FeatureSet:
    """Store float16 ``X`` (one row per note of ``notes``) at ``path``, then its metadata."""
    with storage.atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.save(handle, X)
    stat = path.stat()
    storage.write_json(path.with_suffix(".json"), {
        "front_end": _as_json(front_end), "inputs": fingerprint,
        "note_str": list(notes["note_str"]), "bytes": stat.st_size,
        "sha1": storage.file_digest(path),
    })
    _VERIFIED.add((str(path), stat.st_size, stat.st_mtime_ns))  # just checksummed it
    return _read_cache(path, fingerprint, front_end)


def _remove_temporaries_of(path: Path) -> None:
    """Clear what a killed write of ``path`` left; other writers in the folder keep theirs."""
    for name in (path.name, path.with_suffix(".json").name):
        for tmp in path.parent.glob(glob.escape(name) + storage.TEMP_MARK + "*"):
            tmp.unlink(missing_ok=True)


def _computed(path: Path, notes: pd.DataFrame, front_end: FrontEnd,
              progress: bool) -> FeatureSet:
    """Compute the features of ``notes`` and cache them at ``path``."""
    paths = list(notes["path"])
    fingerprint = inputs_fingerprint(paths)  # before computing: a file changed meanwhile shows
    _remove_temporaries_of(path)
    X = compute_features(paths, front_end, progress=progress).astype(np.float16)
    return _write_cache(path, X, notes, fingerprint, front_end)


def _stored(path: Path, notes: pd.DataFrame, front_end: FrontEnd,
            cut=None) -> FeatureSet | None:
    """The valid cache at ``path``, else one assembled from complete shards or taken from
    ``cut()`` (rows of a larger cache) and written there, else None (nothing computed)."""
    fingerprint = inputs_fingerprint(list(notes["path"]))
    found = _read_cache(path, fingerprint, front_end)
    if found is None:
        X = assemble_shards(notes, front_end, path)
        if X is None and cut is not None:
            X = cut()
        if X is not None:
            found = _write_cache(path, X, notes, fingerprint, front_end)
            _remove_shards(path)  # assembled (or cut): the shards have served
    return found


def cached_features(notes: pd.DataFrame, front_end: FrontEnd, cache_dir: Path,
                    label: str = "notes", progress: bool = True) -> FeatureSet:
    """The features of ``notes`` (rows in table order), from the cache or computed and cached.

    Rebuilt when the notes, their files or the front end change, and when the cached file is
    incomplete or corrupt. A complete set of valid shard files (:func:`cached_shard`) is
    assembled into the cache instead of computing, and then removed. Used by notebooks 02
    to 06 and ``instclf features``.
    """
    path = cache_path(notes, front_end, cache_dir, label)
    found = _stored(path, notes, front_end)
    return found if found is not None else _computed(path, notes, front_end, progress)


# --- shards: one cache computed by n processes or machines (``instclf features --shard``) ---

def shard_path(path: Path, shard: tuple[int, int]) -> Path:
    """``<label>-<hash>.shard-<i>-of-<n>.npy``: shard i of n of the cache file ``path``."""
    index, count = shard
    return Path(path).with_name(f"{Path(path).stem}.shard-{index}-of-{count}.npy")


def _shard_files(path: Path) -> dict[Path, int]:
    """The shard files (``.npy`` and ``.json``) of the cache file ``path``, with their n."""
    pattern = re.compile(re.escape(path.stem) + r"\.shard-\d+-of-(\d+)\.(npy|json)")
    return {found: int(match[1]) for found in path.parent.glob(glob.escape(path.stem) + ".shard-*")
            if (match := pattern.fullmatch(found.name))}


def _remove_shards(path: Path) -> None:
    for found in _shard_files(path):
        found.unlink(missing_ok=True)


def cached_shard(notes: pd.DataFrame, front_end: FrontEnd, cache_dir: Path, label: str,
                 shard: tuple[int, int], progress: bool = True) -> FeatureSet:
    """Shard ``(i, n)`` of the cache :func:`cached_features` would write: rows ``i::n``.

    Computed once and kept beside the cache file (resumable); the n shards may come from n
    processes or machines sharing the cache folder. Their fingerprints hold the WAVs' paths,
    sizes and modification times, so machines must see the same files at the same paths (a
    shared folder, or copies made with ``rsync -a``). Used by ``instclf features --shard``.
    """
    index, count = shard
    part = notes.iloc[index::count]
    path = shard_path(cache_path(notes, front_end, cache_dir, label), shard)
    found = _read_cache(path, inputs_fingerprint(list(part["path"])), front_end)
    return found if found is not None else _computed(path, part, front_end, progress)


def assemble_shards(notes: pd.DataFrame, front_end: FrontEnd, path: Path) -> np.ndarray | None:
    """The float16 features of ``notes`` from a complete set of valid shards of ``path``.

    None when no n has all its shards on disk, made from these very files and front end.
    """
    for count in sorted(set(_shard_files(path).values())):
        if not all(shard_path(path, (i, count)).is_file() for i in range(count)):
            continue
        parts = [_read_cache(shard_path(path, (i, count)),
                             inputs_fingerprint(list(notes["path"].iloc[i::count])), front_end)
                 for i in range(count)]
        if any(part is None for part in parts):
            continue
        X = np.empty((len(notes), *front_end.shape), np.float16)
        for i, part in enumerate(parts):
            X[i::count] = part.X
        return X
    return None


# --- the profile's caches -------------------------------------------------------------------

DATASET_LABEL = "dataset"  # the cache of every note of a dataset (``instclf features``)


def profile_cache_dir(profile) -> Path:
    """Where the features of the profile's notes are cached."""
    return profile.cache_dir / "features" / profile.name


def _profile_notes(profile) -> pd.DataFrame:
    return read_notes(profile.sources, profile.data_dir, progress=False)


def dataset_features(profile, front_end: FrontEnd, shard: tuple[int, int] | None = None,
                     progress: bool = True) -> FeatureSet:
    """Every note of the profile's sources (rendered), or only shard ``(i, n)`` of them.

    Without a shard, complete shards are assembled instead of computing. Every selection
    :func:`profile_features` caches later is then cut from this cache. Used by
    ``instclf features [--shard i/n]``.
    """
    notes = _profile_notes(profile)
    if shard is not None:
        return cached_shard(notes, front_end, profile_cache_dir(profile), DATASET_LABEL, shard,
                            progress)
    return cached_features(notes, front_end, profile_cache_dir(profile), DATASET_LABEL,
                           progress)


def _dataset_rows(profile, notes: pd.DataFrame, front_end: FrontEnd) -> np.ndarray | None:
    """The rows of ``notes`` in the whole-dataset cache, when there is one (else None)."""
    folder = profile_cache_dir(profile) / front_end.key
    if not any(folder.glob(f"{DATASET_LABEL}-*.npy")):
        return None
    dataset = _profile_notes(profile)
    found = _stored(cache_path(dataset, front_end, profile_cache_dir(profile), DATASET_LABEL),
                    dataset, front_end)
    if found is None:
        return None
    rows = pd.Series(np.arange(len(dataset)), index=dataset["path"].astype(str)).reindex(
        notes["path"].astype(str))
    if rows.isna().any():
        return None
    return np.asarray(found.X[rows.to_numpy(dtype=np.int64)])


def profile_features(profile, notes: pd.DataFrame, front_end: FrontEnd, label: str,
                     progress: bool = True) -> FeatureSet:
    """The features of ``notes`` of the profile's dataset, cached under the profile's data root.

    ``label`` names the selection (for example ``"train"`` or ``"train-balanced"``); the cache
    key also holds the note list, so two selections never share a file. A missing selection
    is cut from the whole-dataset cache of ``instclf features`` when there is one, else
    computed. Notebooks 02 to 06.
    """
    path = cache_path(notes, front_end, profile_cache_dir(profile), label)
    found = _stored(path, notes, front_end, cut=lambda: _dataset_rows(profile, notes, front_end))
    return found if found is not None else _computed(path, notes, front_end, progress)
