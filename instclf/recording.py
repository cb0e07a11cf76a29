"""The recording chain: what a real recording does to a note, applied when rendering.

A recorded note (:mod:`instclf.sources.recorded`, ``instclf data render``) is a dry note
passed through a seeded draw of named conditions, in the order a recording meets them:

======== ====================================================================== =============
name     what it does                                                           library
======== ====================================================================== =============
detune   the player: -25..+25 cents off; on half the notes a vibrato of        soxr,
         +-5..15 cents at 4-7 Hz                                                pedalboard
amp      guitars and basses only: amp distortion (drive 6-30 dB), speaker       pedalboard
         cabinet low-pass (2.5-6 kHz)
room     a simulated shoebox room (3-12 x 3-10 x 2.4-4 m, RT60 0.2-0.8 s),      pyroomacoustics
         source and microphone at random places in it
mic      microphone or pickup colouring: low cut 40-300 Hz, high cut            pedalboard
         3-7.5 kHz (12 dB/octave each), one bell of -8..+8 dB at 200-5000 Hz
compress a compressor: threshold -35..-10 dB, ratio 2-10, attack 1-30 ms,       pedalboard
         release 50-400 ms
noise    background noise, white to brown, at 15-40 dB SNR                      audiomentations
codec    an MP3 round trip at LAME VBR quality 2-9.5 (10: the lowest)           pedalboard
======== ====================================================================== =============

Each condition is a :class:`Condition`: ``draw(rng)`` gives its parameters (plain numbers,
recorded in the dataset beside ``examples.json``), ``apply(y, parameters)`` is a pure
function of them. A :class:`Chain` decides which conditions a note goes through (each on
``share`` of the notes it suits, at least one per note) and draws their parameters from
generators seeded by the chain's seed, the note's name and the condition's name only: the
same note is recorded the same way whatever else is rendered, in any process. After the
chain the note is 4 s long again and peak-normalised like every note
(:func:`instclf.render.target_peak`).
"""

from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pedalboard as pb
import soxr

from . import nsynth, render, subsets
from .config import InstclfError

SR = nsynth.SAMPLE_RATE
RECORDING_VERSION = 1  # bump when a change to this module changes the recorded bytes
NOISE_SNR_DB = (15.0, 40.0)
DETUNE_CENTS = 25.0
# Image sources up to this order (measured: RT60 within 25% of the asked one, 0.1 s a room
# at most; the full order of a small live room takes seconds)
MAX_ORDER = 40


def _board(y: np.ndarray, *plugins) -> np.ndarray:
    """``y`` through pedalboard plugins, mono float32 in and out."""
    return pb.Pedalboard(list(plugins))(np.asarray(y, np.float32)[None], SR)[0]


def _uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return round(float(rng.uniform(low, high)), 4)


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return round(float(np.exp(rng.uniform(np.log(low), np.log(high)))), 1)


# --- detune: a slightly mistuned player, sometimes with vibrato -------------------------------

def draw_detune(rng: np.random.Generator) -> dict:
    vibrato = rng.random() < 0.5
    return {"cents": _uniform(rng, -DETUNE_CENTS, DETUNE_CENTS),
            "vibrato_hz": _uniform(rng, 4.0, 7.0),
            "vibrato_cents": _uniform(rng, 5.0, 15.0) if vibrato else 0.0}


def apply_detune(y: np.ndarray, p: dict) -> np.ndarray:
    # played a little fast or slow, as a tape or a sampler would (the note changes length by
    # 1.5% at most); measured on a sine: exact, where pedalboard's PitchShift jumped by up
    # to two semitones on 8-40% of it and its offline time_stretch took 80x longer
    y = soxr.resample(np.asarray(y, np.float32), SR * 2 ** (p["cents"] / 1200), SR)
    if not p["vibrato_cents"]:
        return y
    # a fully wet chorus is a vibrato (JUCE's Chorus); measured: depth d at f Hz swings the
    # pitch by +-104 d f cents (tests/test_recording.py checks the swing)
    depth = p["vibrato_cents"] / (104 * p["vibrato_hz"])
    return _board(y, pb.Chorus(rate_hz=p["vibrato_hz"], depth=depth, centre_delay_ms=1.0,
                               feedback=0.0, mix=1.0))


# --- amp: an overdriven guitar or bass amplifier and its speaker ----------------------------

def draw_amp(rng: np.random.Generator) -> dict:
    return {"drive_db": _uniform(rng, 6.0, 30.0), "cabinet_hz": _log_uniform(rng, 2500, 6000)}


def apply_amp(y: np.ndarray, p: dict) -> np.ndarray:
    return _board(y, pb.Distortion(drive_db=p["drive_db"]),
                  pb.LowpassFilter(cutoff_frequency_hz=p["cabinet_hz"]),
                  pb.LowpassFilter(cutoff_frequency_hz=p["cabinet_hz"]))


# --- room: a simulated room's impulse response ------------------------------------------------

def draw_room(rng: np.random.Generator) -> dict:
    size = [_uniform(rng, 3.0, 12.0), _uniform(rng, 3.0, 10.0), _uniform(rng, 2.4, 4.0)]
    # places at least 0.5 m from every wall
    source, mic = ([_uniform(rng, 0.5, side - 0.5) for side in size] for _ in range(2))
    return {"size_m": size, "rt60_s": _uniform(rng, 0.2, 0.8), "source_m": source,
            "mic_m": mic}


def room_impulse_response(p: dict) -> np.ndarray:
    """The room's impulse response from source to microphone (pyroomacoustics' image
    sources), starting at the direct sound so the note's onset stays where it was."""
    import pyroomacoustics as pra  # 1 s to import (scipy.signal): only where rooms are made

    absorption, max_order = pra.inverse_sabine(p["rt60_s"], p["size_m"])
    room = pra.ShoeBox(p["size_m"], fs=SR, materials=pra.Material(absorption),
                       max_order=min(max_order, MAX_ORDER))
    room.add_source(p["source_m"])
    room.add_microphone(p["mic_m"])
    room.compute_rir()
    rir = np.asarray(room.rir[0][0], np.float64)
    direct = int(np.argmax(np.abs(rir)))
    return rir[max(0, direct - 40):]  # keep the fractional-delay filter's lead-in


def apply_room(y: np.ndarray, p: dict) -> np.ndarray:
    from scipy.signal import fftconvolve

    return fftconvolve(y, room_impulse_response(p))[:len(y)].astype(np.float32)


# --- mic: a microphone's or pickup's colouring ---------------------------------------------

def draw_mic(rng: np.random.Generator) -> dict:
    return {"low_cut_hz": _log_uniform(rng, 40, 300), "high_cut_hz": _log_uniform(rng, 3000, 7500),
            "bell_hz": _log_uniform(rng, 200, 5000), "bell_db": _uniform(rng, -8.0, 8.0),
            "bell_q": _uniform(rng, 0.7, 2.5)}


def apply_mic(y: np.ndarray, p: dict) -> np.ndarray:
    # pedalboard's cuts are first-order (6 dB/octave); two of each make a mic's 12 dB/octave
    low, high = p["low_cut_hz"], p["high_cut_hz"]
    return _board(y, pb.HighpassFilter(low), pb.HighpassFilter(low),
                  pb.LowpassFilter(high), pb.LowpassFilter(high),
                  pb.PeakFilter(cutoff_frequency_hz=p["bell_hz"], gain_db=p["bell_db"],
                                q=p["bell_q"]))


# --- compression ------------------------------------------------------------------------------

def draw_compression(rng: np.random.Generator) -> dict:
    return {"threshold_db": _uniform(rng, -35.0, -10.0), "ratio": _uniform(rng, 2.0, 10.0),
            "attack_ms": _uniform(rng, 1.0, 30.0), "release_ms": _uniform(rng, 50.0, 400.0)}


def apply_compression(y: np.ndarray, p: dict) -> np.ndarray:
    return _board(y, pb.Compressor(**p))


# --- noise: background noise at an SNR ------------------------------------------------------

def draw_noise(rng: np.random.Generator) -> dict:
    return {"snr_db": _uniform(rng, *NOISE_SNR_DB), "decay_db_per_octave": _uniform(rng, -6.0, 0.0),
            "seed": int(rng.integers(2**31))}


@contextlib.contextmanager
def _global_seeds(seed: int):
    """audiomentations draws from the global generators: seed them, then put them back."""
    numpy_state, python_state = np.random.get_state(), random.getstate()
    np.random.seed(seed)
    random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(numpy_state)
        random.setstate(python_state)


def apply_noise(y: np.ndarray, p: dict) -> np.ndarray:
    from audiomentations import AddColorNoise

    add = AddColorNoise(min_snr_db=p["snr_db"], max_snr_db=p["snr_db"],
                        min_f_decay=p["decay_db_per_octave"], max_f_decay=p["decay_db_per_octave"],
                        p=1.0)
    with _global_seeds(p["seed"]):
        return add(np.asarray(y, np.float32), sample_rate=SR)


# --- codec: a lossy round trip ------------------------------------------------------------

def draw_codec(rng: np.random.Generator) -> dict:
    return {"mp3_vbr_quality": _uniform(rng, 2.0, 9.5)}


def apply_codec(y: np.ndarray, p: dict) -> np.ndarray:
    return _board(y, pb.MP3Compressor(vbr_quality=p["mp3_vbr_quality"]))


# --- the chain ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Condition:
    """One named condition: ``draw(rng)`` -> parameters, ``apply(y, parameters)`` -> note.

    ``families``: the families it suits (None: every family).
    """

    name: str
    draw: Callable[[np.random.Generator], dict]
    apply: Callable[[np.ndarray, dict], np.ndarray]
    families: tuple[str, ...] | None = None

    def suits(self, family: str) -> bool:
        return self.families is None or family in self.families

    def __call__(self, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The note through this condition with parameters drawn from ``rng``."""
        return self.apply(y, self.draw(rng))


# in chain order: the player, the amp, the room, the microphone, the desk, the file
CONDITIONS = {c.name: c for c in (
    Condition("detune", draw_detune, apply_detune),
    Condition("amp", draw_amp, apply_amp, families=("guitar", "bass")),
    Condition("room", draw_room, apply_room),
    Condition("mic", draw_mic, apply_mic),
    Condition("compression", draw_compression, apply_compression),
    Condition("noise", draw_noise, apply_noise),
    Condition("codec", draw_codec, apply_codec),
)}
CONDITION_NAMES = tuple(CONDITIONS)


def fit_note(y: np.ndarray, name: str) -> np.ndarray:
    """4 s, finite, peak at the note's level (:func:`render.target_peak`), float32."""
    y = np.asarray(y, np.float64)[:nsynth.NOTE_SAMPLES]
    y = np.pad(y, (0, nsynth.NOTE_SAMPLES - len(y)))
    if not np.isfinite(y).all():
        raise InstclfError(f"recording {name} gave non-finite samples; report it with its "
                           "conditions (conditions.json)")
    peak = np.abs(y).max()
    return (y * (render.target_peak(name) / peak if peak > 0 else 1.0)).astype(np.float32)


@dataclass(frozen=True)
class Chain:
    """Which conditions a note goes through, with their parameters: each of ``conditions``
    on ``share`` of the notes it suits, and at least one on every note.

    Deterministic per (seed, note name): used by the recorded source and notebook 06.
    """

    conditions: tuple[str, ...] = CONDITION_NAMES
    share: float = 0.5
    seed: int = 0

    def __post_init__(self):
        unknown = [c for c in self.conditions if c not in CONDITIONS]
        if unknown:
            raise InstclfError(f"unknown recording condition(s) {', '.join(unknown)}; use "
                               f"{', '.join(CONDITION_NAMES)}")
        if not 0 <= self.share <= 1:
            raise InstclfError(f"share {self.share} of the notes per condition: use 0 to 1")

    def _rng(self, name: str, *keys) -> np.random.Generator:
        return subsets.stable_rng(self.seed, "recording", name, *keys)

    def draw(self, name: str, family: str) -> dict[str, dict]:
        """The conditions of note ``name`` with their parameters, in chain order."""
        suited = [c for c in CONDITION_NAMES
                  if c in self.conditions and CONDITIONS[c].suits(family)]
        chosen = [c for c in suited if self._rng(name, c, "applies").random() < self.share]
        if not chosen and suited:  # a note without a condition would be the dry note again
            chosen = [suited[int(self._rng(name, "fallback").integers(len(suited)))]]
        return {c: CONDITIONS[c].draw(self._rng(name, c)) for c in suited if c in chosen}

    def record(self, y: np.ndarray, name: str, family: str) -> tuple[np.ndarray, dict]:
        """The recorded note (named ``name``) and its conditions with their parameters."""
        drawn = self.draw(name, family)
        return apply_conditions(y, drawn, name), drawn


def apply_conditions(y: np.ndarray, drawn: dict[str, dict], name: str) -> np.ndarray:
    """A dry note through drawn conditions (in chain order), then :func:`fit_note`."""
    for condition in CONDITION_NAMES:
        if condition in drawn:
            y = CONDITIONS[condition].apply(y, drawn[condition])
    return fit_note(y, name)
