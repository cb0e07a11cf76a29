"""A recording of several notes -> one answer (``instclf predict``, notebook 07, the page).

:func:`find_notes` finds the notes of a 16 kHz recording (``librosa.onset.onset_detect``,
backtracked to where each note's rise begins; at most ``MAX_NOTES``, the loudest). Each note
is prepared as a training note is (:func:`instclf.predict.prepare_clip`) and classified, and
:func:`combine` turns the notes' probabilities into one answer: the mean log-probability
weighted by each note's energy (benchmarks/bench_phrases.py measures it against the first
note alone and other rules). A recording no longer than one note, or with one note found,
is one note, exactly as :func:`instclf.predict.predict_audio` hears it.
:func:`predict_many` does the same for many files in batches (``instclf predict DIR``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from . import nsynth, predict
from .config import FAMILIES, InstclfError

MAX_NOTES = 8  # the loudest notes of a recording that are classified
# Recordings longer than one training note (and its release) from their onset are searched
# for notes; shorter ones are one note, and skip librosa's onset detection (2.5 s to import).
ONE_NOTE_SECONDS = nsynth.NOTE_SECONDS + 0.5
MIN_NOTE_SECONDS = 0.15  # onsets closer than this are one note
QUIET_DB = -30.0  # notes whose peak is this far below the recording's are dropped
RISE_DB, RISE_SECONDS = 6.0, 0.1  # a later note is louder than what precedes it by this
SR = nsynth.SAMPLE_RATE
HOP = 256  # onset detection frames: 16 ms at 16 kHz


def compile_onset_detection() -> np.ndarray:
    """Run librosa's onset detection once on a synthetic two-note phrase, so that numba
    compiles it and caches the result beside librosa's code (``make venv`` does this right
    after installing, in a process without TensorFlow; later processes only load it). Its
    first compile inside the test run, after models had trained, crashed once in CI with a
    segmentation fault in numba. Returns the notes found, as :func:`find_notes` does."""
    t = np.arange(2 * SR) / SR
    tone = np.sin(2 * np.pi * 440 * t) * np.exp(-3 * t)
    return find_notes(np.concatenate([tone, tone, np.zeros(SR)]).astype(np.float32))


@dataclass
class Heard:
    """One recording's answer: combined probabilities, its notes, and what the model heard."""

    probabilities: pd.Series  # index: NSynth's families
    notes: pd.DataFrame  # start_s, stop_s, energy, weight, family, probability (by time)
    X: np.ndarray  # features of the loudest note (the page's spectrogram)
    y: np.ndarray  # the recording, mono at 16 kHz (the page's waveform)


def find_notes(y: np.ndarray, max_notes: int = MAX_NOTES) -> np.ndarray:
    """``(n, 2)`` start and stop samples of the notes of a mono 16 kHz recording, by time.

    The first note starts at :func:`instclf.predict.find_onset`; later ones at librosa's
    onsets, backtracked to the preceding energy minimum, that rise by ``RISE_DB`` (a note's
    release and a sustained note's tremolo are onsets to librosa too: measured, 3 of 4
    single test notes gave several). Each note lasts to the next (4 s at most); notes more
    than ``QUIET_DB`` below the loudest are dropped, then the ``max_notes`` loudest kept.
    """
    import librosa

    first = predict.find_onset(y)
    found = librosa.onset.onset_detect(y=y, sr=SR, hop_length=HOP, backtrack=True,
                                       units="samples",
                                       wait=round(MIN_NOTE_SECONDS * SR / HOP))
    later = [o for o in found if o >= first + MIN_NOTE_SECONDS * SR and _rise_db(y, o) >= RISE_DB]
    onsets = np.array([first, *later], dtype=np.int64)
    stops = np.minimum(np.append(onsets[1:], len(y)), onsets + nsynth.NOTE_SAMPLES)
    spans = np.stack([onsets, stops], axis=1)
    peaks = np.array([np.abs(y[a:b]).max(initial=0.0) for a, b in spans])
    spans = spans[peaks >= peaks.max() * 10 ** (QUIET_DB / 20)]
    keep = np.sort(np.argsort(-note_energy(y, spans), kind="stable")[:max_notes])
    return spans[keep]


def _rise_db(y: np.ndarray, at: int) -> float:
    """Level of the ``RISE_SECONDS`` after sample ``at`` over those before it, in dB."""
    width = round(RISE_SECONDS * SR)
    after, before = (np.sqrt(np.mean(np.square(part, dtype=np.float64)) + 1e-12)
                     for part in (y[at:at + width], y[max(0, at - width):at]))
    return 20 * np.log10(after / before)


def note_energy(y: np.ndarray, spans: np.ndarray) -> np.ndarray:
    """Sum of squares of each note (float64)."""
    return np.array([float(np.sum(np.square(y[a:b], dtype=np.float64))) for a, b in spans])


def note_clips(y: np.ndarray, sr: int, front_end) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A recording -> ``(clips, spans, mono)``: each note prepared as a training note.

    ``clips`` is ``(n, 64000)`` float32, ``spans`` the notes' start and stop samples in
    ``mono`` (the recording at 16 kHz). One note: :func:`instclf.predict.prepare_clip` of
    the whole recording, as :func:`instclf.predict.predict_audio` does.
    """
    mono = predict.to_mono_16k(y, sr)
    whole = predict.prepare_clip(mono, SR, front_end)  # refuses silence and bad front ends
    onset = predict.find_onset(mono)
    spans = np.array([[onset, min(len(mono), onset + nsynth.NOTE_SAMPLES)]])
    if len(mono) - onset > ONE_NOTE_SECONDS * SR:
        found = find_notes(mono)
        if len(found) > 1:
            clips = [predict.prepare_clip(mono[a:b], SR, front_end) for a, b in found]
            return np.stack(clips), found, mono
    return whole[None], spans, mono


def combine(p: np.ndarray, energy: np.ndarray) -> np.ndarray:
    """One distribution from the notes' ``p`` ``(n, families)``: the mean log-probability
    weighted by each note's share of the energy, normalised again."""
    weights = energy / energy.sum() if energy.sum() > 0 else np.full(len(p), 1 / len(p))
    log_p = weights @ np.log(np.clip(p, 1e-12, 1.0))
    out = np.exp(log_p - log_p.max())
    return out / out.sum()


def _heard(p: np.ndarray, X: np.ndarray, spans: np.ndarray, mono: np.ndarray) -> Heard:
    """The :class:`Heard` of one recording from its notes' probabilities and features."""
    energy = note_energy(mono, spans)
    notes = pd.DataFrame({"start_s": spans[:, 0] / SR, "stop_s": spans[:, 1] / SR,
                          "energy": energy, "weight": energy / max(energy.sum(), 1e-30),
                          "family": np.asarray(FAMILIES)[p.argmax(axis=1)],
                          "probability": p.max(axis=1)})
    probabilities = pd.Series(combine(p, energy), index=pd.Index(FAMILIES, name="family"),
                              name="probability")
    return Heard(probabilities, notes, X[int(np.argmax(energy))], mono)


def _probabilities(X: np.ndarray, predictor: predict.Predictor) -> np.ndarray:
    p = np.asarray(predictor.model.predict_on_batch(X), dtype=np.float64)
    return p / p.sum(axis=1, keepdims=True)


def _features(clips: np.ndarray, predictor: predict.Predictor) -> np.ndarray:
    from . import features

    return features.batch_features(clips, predictor.front_end, fft_workers=1,
                                   mel_basis=predictor.mel_basis)


def hear(source: str | Path | bytes, predictor: predict.Predictor,
         name: str | None = None) -> Heard:
    """The combined answer of one recording, its notes and the loudest note's features
    (the widget, ``instclf predict``). Errors: :class:`InstclfError` naming the file."""
    return next(iter(predict_many([source], predictor, names=[name])))[1]


def _prepared(source, predictor: predict.Predictor, name: str | None):
    y, sr = predict.read_audio(source, name)
    try:
        return note_clips(y, sr, predictor.front_end)
    except InstclfError as error:
        raise InstclfError(f"{predict._label(source, name)}: {error}") from None


def predict_many(sources, predictor: predict.Predictor, batch_size: int = 32,
                 progress: bool = False, names=None,
                 raise_errors: bool = True) -> Iterator[tuple[object, Heard | InstclfError]]:
    """``(source, Heard)`` for each recording, in order, computed in batches of notes.

    Features and the model run once per ``batch_size`` notes, not once per file. With
    ``raise_errors=False`` a file that cannot be used yields its :class:`InstclfError`
    instead and the others go on (``instclf predict DIR``); a progress bar on stderr with
    ``progress``.
    """
    sources = list(sources)
    names = list(names) if names is not None else [None] * len(sources)
    pending: list = []  # (source, clips, spans, mono) waiting for the batch's model call

    def flush():
        X = _features(np.concatenate([item[1] for item in pending]), predictor)
        p = _probabilities(X, predictor)
        start = 0
        for source, clips, spans, mono in pending:
            stop = start + len(clips)
            yield source, _heard(p[start:stop], X[start:stop], spans, mono)
            start = stop
        pending.clear()

    with tqdm(total=len(sources), unit="file", disable=not progress, desc="predict") as bar:
        for source, name in zip(sources, names):
            try:
                pending.append((source, *_prepared(source, predictor, name)))
            except InstclfError as error:
                if raise_errors:
                    raise
                yield from flush() if pending else ()
                yield source, error
            if sum(len(item[1]) for item in pending) >= batch_size:
                yield from flush()
            bar.update(1)
        if pending:
            yield from flush()
