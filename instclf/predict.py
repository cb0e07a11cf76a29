"""Any audio file -> the probability of each family (notebook 07, ``instclf predict``, web page).

One pure path, shared by the CLI, the widget of notebook 07 and the Voila page:
:func:`read_audio` decodes a path or bytes (WAV, FLAC, OGG, MP3 through libsndfile, in
memory; nothing is written to disk), :func:`prepare_clip` turns the recording into a note
like the training notes (mono, 16 kHz, onset at 0, 4 s, peak inside the training notes'
range), and :func:`predict_audio` runs it through the model's own front end and returns one
probability per family. A :class:`Predictor` is loaded once per model file and reused.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import soundfile as sf

from . import export, features, nsynth, render
from .config import FAMILIES, InstclfError
from .profiles import Profile, get_profile

if TYPE_CHECKING:  # TensorFlow is imported only when a model has no current export
    import keras

MAX_BYTES = 50 * 1024 * 1024  # size limit for one input
SILENT_PEAK = render.SILENT_PEAK  # below -80 dBFS: nothing to classify
FORMATS = "WAV, FLAC, OGG or MP3"
# What a recording must be to hold a note (README, "When something goes wrong"). The best
# default model's accuracy on unseen instruments' notes cut short: 15% at 0.1 s, 20% at
# 0.25 s (guessing: 9%), 42% at 1 s, 56% at 2 s, 79% whole (400 test notes).
MIN_SECONDS = 0.25
RATE_RANGE = (8_000, 384_000)  # Hz: telephone audio to the fastest common converters
# The shortest training note sounds for 0.068 s within 40 dB of its peak (a mallet; 11,700
# notes of the default profile): what sounds for less than half that is a click, not a note.
MIN_SOUND_SECONDS = 0.03
# "Not sure" (see doubt): below this top probability the best default model's answers on
# unseen instruments are right less than half the time (evaluate.not_sure_threshold of its
# table, printed by notebook 05: 0.693 for the page's logistic head on two frozen backbones'
# blocks' statistics and the descriptors, 2026-12-01, 35% of those notes below it; 0.678 for
# the same head on the VGG alone (54% below it); 0.646 for the
# ensemble before it, 0.775 for the network alone; 0.786 with 24 notes per sampled
# instrument, 0.730 without them, the soundfonts-only model's 0.686).
NOT_SURE_BELOW = 0.693
# Noise: median spectral flatness of the loud frames (features.spectral_flatness). Training
# notes reach 0.044 at most; pink noise 0.16, white 0.56; a tone under white noise at 15 dB
# SNR 0.019.
NOISE_FLATNESS = 0.1
# Onset (see find_onset). Every rendered training note reaches -40 dB within 93 ms and
# starts within 30 ms of its first sample (11,700 notes of the default profile), so a lead-in
# shorter than ATTACK_SECONDS counts as the note's own attack and the note is left as is.
ONSET_DB = -40.0  # the note is where the level first comes within this of the peak...
NOTE_DB = -20.0  # ...or 12 dB above the noise, but never asking for more than this
LEAD_DB = -30.0  # the lead-in ends below this (or twice the noise level, if lower)
FLOOR_DB = -90.0  # lowest level counted as sound (a 16-bit LSB below a 0.6 peak)
ATTACK_SECONDS = 0.2
ENVELOPE_FRAME = 64  # samples at 16 kHz (4 ms) per envelope value


@dataclass
class Predictor:
    """A loaded classifier with its description and front end, loaded once and reused."""

    model: keras.Model
    meta: dict
    front_end: features.FrontEnd
    path: Path | None = None
    mel_basis: np.ndarray | None = None  # stored with an export: no librosa at prediction


_PREDICTORS: dict = {}  # by model file fingerprint (path, size, modification time)


def predictor_from(model: keras.Model, meta: dict, path: Path | None = None) -> Predictor:
    """A :class:`Predictor` for a model already in memory; checks its description."""
    if "front_end" not in meta:
        raise InstclfError(f"model description {path or ''} has no front_end; save the model "
                           "with instclf.train.save_model")
    classes = list(meta.get("classes", FAMILIES))
    if classes != list(FAMILIES):
        raise InstclfError(f"model {path or ''} predicts {classes}, not NSynth's families "
                           f"{list(FAMILIES)}; use a model trained by instclf")
    front_end = features.FrontEnd.from_dict(meta["front_end"])
    shapes = getattr(model, "input_shape", None), getattr(model, "output_shape", None)
    if shapes[0] is not None and (tuple(shapes[0][1:]) != front_end.shape
                                  or tuple(shapes[1][1:]) != (len(FAMILIES),)):
        raise InstclfError(f"model {path or ''} takes {tuple(shapes[0][1:])} and gives "
                           f"{tuple(shapes[1][1:])}, but its front end {front_end.name} makes "
                           f"{front_end.shape} and there are {len(FAMILIES)} families; use a "
                           "model trained by instclf")
    return Predictor(model, meta, front_end, path)


def _loaded(path: Path, exported: bool) -> Predictor:
    """The model's current export (LiteRT, :mod:`instclf.export`) if wanted and present,
    else the Keras model itself."""
    found = export.load_exported(path) if exported else None
    if found is not None:
        model, meta, mel_basis = found
        return replace(predictor_from(model, meta, path), mel_basis=mel_basis)
    from . import train

    model, meta = train.load_model(path)
    return predictor_from(model, meta, path)


def load_predictor(model_path: str | Path | None = None,
                   profile: Profile | str | None = None, exported: bool = True) -> Predictor:
    """The classifier at ``model_path``, or the profile's best recorded model.

    Loaded once per file and process, then reused (notebook 07, ``instclf predict``, the
    page). Reads only the model file (and, without a path, the profile's models folder):
    never the dataset, never a write. No trained model is an :class:`InstclfError` that
    says how to get one. With ``exported``, the model's export (``instclf export``) serves
    instead when it is current: no TensorFlow is imported then.
    """
    if model_path is None:
        from . import models  # the models on disk, without TensorFlow

        profile = profile if isinstance(profile, Profile) else get_profile(profile)
        model_path = models.best_model_path(profile)
        if model_path is None:
            raise InstclfError(
                f"profile {profile.name} has no trained model in {profile.models_dir}; train "
                f"one (instclf train {models.BEST_EXPERIMENT} --profile {profile.name}, or make "
                "reproduce), or give a model file with --model PATH")
    path = Path(model_path).expanduser().resolve()
    if not path.is_file():
        raise InstclfError(f"model {path} not found; give a .keras file saved by instclf "
                           "(instclf train, notebook 03 or make reproduce trains one)")
    # a retrained model (same path) loads again
    key = (features.inputs_fingerprint([path]), exported)
    if key not in _PREDICTORS:
        try:
            _PREDICTORS[key] = _loaded(path, exported)
        except (ValueError, TypeError, KeyError, AttributeError, OSError) as error:
            reason = " ".join(str(error).split())[:300]  # Keras safe mode: a Lambda layer...
            raise InstclfError(f"model {path} cannot be loaded ({type(error).__name__}: "
                               f"{reason}); give a .keras file saved by instclf (instclf "
                               "train, notebook 03 or make reproduce)") from None
    return _PREDICTORS[key]


# --- decoding -------------------------------------------------------------------------------

def _label(source: str | Path | bytes, name: str | None) -> str:
    if name:
        return str(name)
    return "the audio" if isinstance(source, (bytes, bytearray, memoryview)) else str(source)


def _too_large(label: str, size: int) -> InstclfError:
    return InstclfError(f"{label}: too large ({size / 2**20:.1f} MB; the limit is "
                        f"{MAX_BYTES / 2**20:.0f} MB); cut out the note (a few seconds are "
                        "enough) and try again")


def _input(source: str | Path | bytes, label: str) -> str | io.BytesIO:
    """What libsndfile reads: the path itself, or the bytes wrapped in memory."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        size = len(source)
        handle = io.BytesIO(bytes(source))
    else:
        path = Path(source).expanduser()
        if path.is_dir():
            raise InstclfError(f"{label}: a folder, not an audio file; give the recordings "
                               f"in it (instclf predict takes a folder that holds {FORMATS} "
                               "files)")
        if not path.is_file():
            raise InstclfError(f"{label}: no such file; check the path")
        size, handle = path.stat().st_size, str(path)
    if size == 0:
        raise InstclfError(f"{label}: empty file (0 bytes); record or export the note again")
    if size > MAX_BYTES:
        raise _too_large(label, size)
    return handle


def read_audio(source: str | Path | bytes,
               name: str | None = None) -> tuple[np.ndarray, int]:
    """``y, sr`` of a WAV, FLAC, OGG or MP3 file or its bytes, decoded in memory.

    ``y`` is float32, mono ``(samples,)`` or ``(channels, samples)``, at the file's own rate.
    ``name`` (an upload's file name) only labels error messages. Refuses a file that is not
    audio, is empty, or holds less than ``MIN_SECONDS``. Notebook 07.
    """
    label = _label(source, name)
    handle = _input(source, label)
    try:
        y, sr = sf.read(handle, dtype="float32", always_2d=True)
    except (sf.SoundFileError, RuntimeError, ValueError, EOFError) as error:
        reason = getattr(error, "error_string", None) or str(error)
        raise InstclfError(f"{label}: not audio, or a format instclf cannot read "
                           f"({reason.strip().rstrip('.')}); give a {FORMATS} file") from None
    if y.size == 0:
        raise InstclfError(f"{label}: empty (the file holds no samples); record or export the "
                           "note again")
    if len(y) / sr < MIN_SECONDS:
        raise InstclfError(f"{label}: too short: {len(y) / sr:.3f} s of audio, and a note needs "
                           f"at least {MIN_SECONDS} s (the model learned from 4 s notes); "
                           "record the whole note")
    y = np.ascontiguousarray(y.T)
    return (y[0] if len(y) == 1 else y), int(sr)


# --- the clip -------------------------------------------------------------------------------

def check_recording(y: np.ndarray, sr: int) -> np.ndarray:
    """A decoded recording's samples as float32, or an :class:`InstclfError` saying why they
    cannot hold a note.

    Refused: NaN or infinite samples (counted, never repaired: zeroing them would change the
    note unheard, and a file that holds them is damaged) and a rate outside ``RATE_RANGE``.
    A float recording beyond full scale is scaled down to it (its level is normalised later
    anyway). Through :func:`to_mono_16k`.
    """
    y = np.asarray(y)
    bad = int(y.size - np.count_nonzero(np.isfinite(y)))
    if bad:
        raise InstclfError(f"{bad:,} of {y.size:,} samples are not numbers (NaN or infinite): "
                           "a damaged file or a broken export; export the recording again")
    if not RATE_RANGE[0] <= sr <= RATE_RANGE[1]:
        raise InstclfError(f"sample rate {sr} Hz; instclf takes {RATE_RANGE[0]:,} to "
                           f"{RATE_RANGE[1]:,} Hz: export the recording at 44.1 or 48 kHz")
    peak = float(np.abs(y).max())
    return (y / peak).astype(np.float32) if peak > 1 else y.astype(np.float32, copy=False)


def to_mono_16k(y: np.ndarray, sr: int) -> np.ndarray:
    """Mix to mono (mean of the channels) and resample to 16 kHz (soxr, as the features do).

    Refuses what :func:`check_recording` refuses, and a constant level (DC) with no sound.
    """
    y = check_recording(y, sr)
    mono = y.mean(axis=0) if y.ndim == 2 else y
    offset = float(mono.mean())
    if abs(offset) >= SILENT_PEAK and float(np.ptp(mono)) < SILENT_PEAK:
        raise InstclfError(f"no note: a constant level (DC offset {offset:+.3f}) and no sound "
                           "on it; check the microphone and record the note again")
    if sr != nsynth.SAMPLE_RATE:
        mono = features.resample(mono, sr, nsynth.SAMPLE_RATE)
    return np.ascontiguousarray(mono, dtype=np.float32)


def _gain(db: float) -> float:
    return 10 ** (db / 20)


def _envelope(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``|y|`` zero-padded to whole frames, and the peak of each 4 ms frame."""
    n_frames = -(-len(y) // ENVELOPE_FRAME)
    padded = np.zeros(n_frames * ENVELOPE_FRAME, np.float32)
    padded[:len(y)] = np.abs(y)
    return padded, padded.reshape(n_frames, ENVELOPE_FRAME).max(axis=1)


def sound_seconds(y: np.ndarray) -> float:
    """How long a 16 kHz recording sounds: its 4 ms frames within 40 dB of the loudest."""
    envelope = _envelope(y)[1]
    loud = envelope >= envelope.max() * _gain(ONSET_DB)
    return float(np.count_nonzero(loud) * ENVELOPE_FRAME / nsynth.SAMPLE_RATE)


def find_onset(y: np.ndarray) -> int:
    """The sample where the note starts in a 16 kHz recording (0: it starts with the note).

    On an envelope of 4 ms frames (peak level of each), with the recording's noise taken as
    its 10th-percentile frame: the note is the first frame within ``ONSET_DB`` of the peak
    and 12 dB above the noise (at most ``NOTE_DB`` below the peak); the onset then moves
    back through the attack while the level stays above the lead-in's (twice the noise,
    between ``FLOOR_DB`` and ``LEAD_DB`` below the peak), to the first sample above it.
    Silence before a note is dropped exactly; a note that starts within ``ATTACK_SECONDS``
    is left as is, as the rendered training notes are.
    """
    padded, envelope = _envelope(y)
    peak, noise = float(envelope.max()), float(np.percentile(envelope, 10))
    level = min(max(peak * _gain(ONSET_DB), 4 * noise), peak * _gain(NOTE_DB))
    loud = int(np.argmax(envelope >= level))
    floor = min(max(2 * noise, peak * _gain(FLOOR_DB)), peak * _gain(LEAD_DB))
    start = loud
    while start > 0 and envelope[start - 1] > floor:
        start -= 1
    frame = padded[start * ENVELOPE_FRAME:(start + 1) * ENVELOPE_FRAME]
    onset = start * ENVELOPE_FRAME + int(np.argmax(frame > floor))
    return onset if onset >= ATTACK_SECONDS * nsynth.SAMPLE_RATE else 0


def fit_length(y: np.ndarray, samples: int = nsynth.NOTE_SAMPLES) -> np.ndarray:
    """Cut to ``samples`` or zero-pad at the end (training notes are 4 s long)."""
    out = np.zeros(samples, np.float32)
    out[:min(len(y), samples)] = y[:samples]
    return out


def normalise_level(y: np.ndarray) -> np.ndarray:
    """Peak into the training notes' range (``render.PEAK_RANGE``), the nearest end of it.

    Training notes were peak-normalised to levels spread over that range, so a note whose
    peak is already inside it is left as is (a rendered note passes through unchanged);
    a quieter one is raised to the bottom of the range, a louder one lowered to the top.
    """
    peak = float(np.abs(y).max())
    low, high = render.PEAK_RANGE
    target = min(max(peak, low), high)
    return y if target == peak else (y * np.float32(target / peak)).astype(np.float32)


def _dbfs(peak: float) -> str:
    return "-inf" if peak == 0 else f"{20 * np.log10(peak):.0f}"


def prepare_clip(y: np.ndarray, sr: int, front_end: features.FrontEnd) -> np.ndarray:
    """A recording -> a note like the training notes: float32, 16 kHz, 4 s, onset at 0.

    Mono mix, resampling, onset alignment (:func:`find_onset`), cut or pad to 4 s, peak
    into the training range (:func:`normalise_level`). ``front_end`` then takes its own clip
    of this note, as in training. Refuses (:class:`InstclfError`) what :func:`to_mono_16k`
    refuses, silence, and a sound shorter than ``MIN_SOUND_SECONDS`` (a click). Notebook 07.
    """
    if front_end.clip_start + front_end.clip_seconds > nsynth.NOTE_SECONDS:
        raise InstclfError(f"front end {front_end.name} wants a clip beyond the 4 s note; "
                           "use a model trained by instclf")
    mono = to_mono_16k(y, sr)
    peak = float(np.abs(mono).max()) if mono.size else 0.0
    if peak < SILENT_PEAK:
        raise InstclfError(f"silent: its loudest sample is at {_dbfs(peak)} dBFS, below "
                           f"{_dbfs(SILENT_PEAK)} dBFS; record the note louder or check the "
                           "microphone")
    sounding = sound_seconds(mono)
    if sounding < MIN_SOUND_SECONDS:
        raise InstclfError(f"no note: it sounds for {sounding:.3f} s within 40 dB of its peak "
                           f"(a click?), and a note for at least {MIN_SOUND_SECONDS} s; record "
                           "the note again")
    note = fit_length(mono[find_onset(mono):])
    return normalise_level(note)


# --- prediction -----------------------------------------------------------------------------

def clip_features(clip: np.ndarray, predictor: Predictor) -> np.ndarray:
    """The front end's features of a prepared 4 s note: the spectrogram the model hears."""
    return features.batch_features(clip[None], predictor.front_end, fft_workers=1,
                                   mel_basis=predictor.mel_basis)[0]


def feature_probabilities(X: np.ndarray, predictor: Predictor) -> np.ndarray:
    """Probabilities (float64, summing to 1) of one clip's features."""
    p = np.asarray(predictor.model.predict_on_batch(X[None]), dtype=np.float64)[0]
    return p / p.sum()


def read_clip(source: str | Path | bytes, front_end: features.FrontEnd,
              name: str | None = None) -> np.ndarray:
    """:func:`read_audio`, then :func:`prepare_clip`; every refusal names the file
    (:func:`hear`, ``instclf evaluate``)."""
    y, sr = read_audio(source, name)
    try:
        return prepare_clip(y, sr, front_end)
    except InstclfError as error:
        raise InstclfError(f"{_label(source, name)}: {error}") from None


def hear(source: str | Path | bytes, predictor: Predictor,
         name: str | None = None) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    """:func:`predict_audio`, the features the model heard (the page's spectrogram) and the
    prepared clip (for :func:`doubt`)."""
    clip = read_clip(source, predictor.front_end, name)
    X = clip_features(clip, predictor)
    probabilities = pd.Series(feature_probabilities(X, predictor),
                              index=pd.Index(FAMILIES, name="family"), name="probability")
    return probabilities, X, clip


def predict_audio(source: str | Path | bytes, predictor: Predictor,
                  name: str | None = None) -> pd.Series:
    """The probability of every family (index: NSynth's order) for one recording.

    ``source`` is a path or the bytes of an upload; ``name`` labels error messages. Pure:
    nothing is written to disk. Notebook 07, the web page and ``instclf predict``.
    """
    return hear(source, predictor, name)[0]


def top_families(probabilities: pd.Series, k: int = 3) -> list[tuple[str, float]]:
    """The ``k`` most probable families, most probable first, as (family, probability)."""
    ordered = probabilities.sort_values(ascending=False, kind="stable")
    return [(str(family), float(p)) for family, p in ordered.iloc[:k].items()]


def doubt(probabilities: pd.Series, y: np.ndarray | None = None) -> str | None:
    """Why the answer is "not sure", or None when it is an answer.

    Not sure: the 16 kHz recording or clip ``y`` sounds like noise (spectral flatness above
    ``NOISE_FLATNESS``), or the top family's probability is below ``NOT_SURE_BELOW``. The
    top families are still shown. ``instclf predict``, notebook 07's widget and the page.
    """
    if y is not None and (flatness := features.spectral_flatness(y)) > NOISE_FLATNESS:
        return (f"not sure: it sounds like noise, not a note (spectral flatness {flatness:.2f}, "
                f"above {NOISE_FLATNESS}; every training note stays below 0.05)")
    family, p = top_families(probabilities, 1)[0]
    if p < NOT_SURE_BELOW:
        return (f"not sure: {family} has only {p:.0%}, and below {NOT_SURE_BELOW:.0%} the "
                "model was right less than half the time on instruments it never heard")
    return None
