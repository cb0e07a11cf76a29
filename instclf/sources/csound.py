"""Csound's physical models and FM instruments as a source (``make_source("csound", ...)``).

A synthesis lineage with no General MIDI sample in it: each family is played by one or more
of Csound's opcodes (:data:`ENGINES`: waveguide flute, clarinet and bowed string, plucked
strings, a struck-string piano, modal bars, FM pianos, organs, bells, brass and basses,
additive organs and brass, FOF voices, analog-style leads and basses), and one instrument is
one seeded draw of its engine's parameters (excitation, body, brightness, vibrato,
envelope), so the instruments of a family differ audibly. Each note is rendered offline by
a fresh Csound engine at 48 kHz (nothing of one note reaches the next) and then goes the way
of the soundfont render's notes (:mod:`instclf.render`): 16 kHz, peak-normalised by name,
written atomically, resumable, a share of each family's instruments held out.

NSynth source of an engine: ``acoustic`` for models of acoustic instruments (waveguides,
plucked strings, the piano, modal bars, additive pipes and brass, FOF voices), ``electronic``
for models of electric ones (Rhodes, Wurlitzer, B3, drawbars, electric guitar), ``synthetic``
for synthesizer sounds (FM brass, bells, basses and voice, analog leads and basses). Instrument
names are numbered from :data:`FIRST_INDEX` in each family, a block the soundfont render
never reaches (its five soundfonts hold far fewer presets), so names never collide.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import json
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .. import render
from ..config import FAMILIES, InstclfError
from . import synth
from .synth import (  # the drawn sources' shared checks (also pyo's)
    FORMANTS, in_tune, level, midi_cps)

ENGINE_VERSION = 1  # bump when a change to this module changes the rendered bytes
FIRST_INDEX = 3000  # instrument_str numbers 3000-3999 of each family belong to this source
KSMPS = 32
NOTE_SECONDS = render.HOLD_SECONDS + render.RELEASE_SECONDS
INSTRUMENT_KEYS = ("engine", "family", "source", "instrument", "params")


# --- Csound through its C library -----------------------------------------------------------

_LIB: ctypes.CDLL | None = None


def _load_libcsound() -> ctypes.CDLL:
    global _LIB
    if _LIB is not None:
        return _LIB
    lib = render.load_library(
        ("libcsound64.so.6.0", ctypes.util.find_library("csound64")),
        "Csound's library (libcsound64) is not installed; install it with: "
        "sudo apt-get install libcsound64-6.0 (or run make test, which installs it)")
    P, I, S = ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p
    signatures = {
        "csoundInitialize": (I, [I]),
        "csoundSetGlobalEnv": (I, [S, S]),
        "csoundCreate": (P, [P]),
        "csoundSetOption": (I, [P, S]),
        "csoundCompileOrc": (I, [P, S]),
        "csoundReadScore": (I, [P, S]),
        "csoundStart": (I, [P]),
        "csoundPerformKsmps": (I, [P]),
        "csoundGetSpout": (ctypes.POINTER(ctypes.c_double), [P]),
        "csoundGetKsmps": (ctypes.c_uint32, [P]),
        "csoundCleanup": (I, [P]),
        "csoundDestroy": (None, [P]),
        "csoundCreateMessageBuffer": (None, [P, I]),
        "csoundGetFirstMessage": (S, [P]),
        "csoundPopFirstMessage": (None, [P]),
        "csoundGetMessageCnt": (I, [P]),
        "csoundDestroyMessageBuffer": (None, [P]),
    }
    for name, (restype, argtypes) in signatures.items():
        function = getattr(lib, name)
        function.restype, function.argtypes = restype, argtypes
    lib.csoundInitialize(1 | 2)  # no signal handlers, no atexit: the host is Python
    # Only core opcodes are used; Debian's plugins are not loaded, since with them a process
    # crashes after some 340 engines. This folder holds no plugin (no .so file).
    lib.csoundSetGlobalEnv(b"OPCODE6DIR64", str(Path(__file__).parent).encode())
    _LIB = lib
    return lib


def _messages(lib, cs) -> str:
    lines = []
    while lib.csoundGetMessageCnt(cs):
        lines.append(lib.csoundGetFirstMessage(cs).decode("utf-8", "replace"))
        lib.csoundPopFirstMessage(cs)
    return "".join(lines)


def perform(orchestra: str, seconds: float = NOTE_SECONDS) -> np.ndarray:
    """Run ``orchestra``'s instr 1 for ``seconds`` in a new Csound engine; its mono output.

    Offline (``-n``): the samples are read from the engine's output buffer, block by block.
    """
    lib = _load_libcsound()
    cs = lib.csoundCreate(None)
    lib.csoundCreateMessageBuffer(cs, 0)
    try:
        for option in ("-n", "-d", "-m0"):
            lib.csoundSetOption(cs, option.encode())
        if (lib.csoundCompileOrc(cs, orchestra.encode())
                or lib.csoundReadScore(cs, f"i1 0 {seconds + 0.1}\n".encode())
                or lib.csoundStart(cs)):
            raise InstclfError(f"Csound rejected an orchestra:\n{_messages(lib, cs)[-2000:]}")
        ksmps = lib.csoundGetKsmps(cs)
        spout = np.ctypeslib.as_array(lib.csoundGetSpout(cs), shape=(ksmps,))
        out = np.zeros(round(seconds * render.RENDER_RATE))
        for start in range(0, len(out), ksmps):
            if lib.csoundPerformKsmps(cs):
                break
            out[start:start + ksmps] = spout[:len(out) - start]
        return out
    finally:
        lib.csoundCleanup(cs)
        lib.csoundDestroyMessageBuffer(cs)
        lib.csoundDestroy(cs)


# --- the engines of each family -------------------------------------------------------------

@dataclass(frozen=True)
class Engine:
    """One Csound instrument design; an instrument of this source is one draw of ``ranges``.

    ``code`` sets ``asig`` from ``{cps}``, ``{vel}`` (0-1) and the drawn parameters
    (``(low, high)``: uniform; a list: one of its items). A ``tuned`` engine's pitch drifts
    with its parameters (a waveguide's jet or bow): its notes are played again with the
    frequency corrected by what they sounded (:func:`play`).
    """

    name: str
    family: str
    source: str
    low: int
    high: int
    ranges: dict
    code: str
    tuned: bool = False
    derive: Callable[[dict, float], dict] | None = None  # more values from params and cps


# drawn for every engine: the body resonance, the brightness and the release after 3 s
COMMON = {"body_hz": (150.0, 3000.0), "body_db": (-4.0, 8.0), "bright_hz": (2500.0, 12000.0),
          "release": (0.1, 0.8)}
VIBRATO = {"vib_hz": (4.0, 6.5), "vib_depth": (0.0, 0.012)}

_FOF = """
kvib poscil {vib_depth} * {cps}, {vib_hz}, giSine
kjit randi {jitter} * {cps}, 7
kfund = {cps} + kvib + kjit
kenv linseg 0, {attack}, 1, 8, 1
{fofs}
anoise rand {breath}
anoise butbp anoise, {f2}, 400
asig = (afof + anoise * 0.3) * kenv
"""


def _fof_lines(params: dict, cps: float) -> dict:
    """The five FOF generators of a voice and vowel (for the ``fof_*`` engines)."""
    freqs, dbs, bands = FORMANTS[params["voice"], params["vowel"]]
    lines = [f"a{k} fof ampdb({db}), kfund, {f * params['shift']:.1f}, 0, {bw}, 0.003, 0.02, "
             f"0.007, 200, giSine, giSigmoid, {NOTE_SECONDS + 0.1}"
             for k, (f, db, bw) in enumerate(zip(freqs, dbs, bands), 1)]
    lines.append("afof = (" + " + ".join(f"a{k}" for k in range(1, 6)) + ") * 0.2")
    return {"fofs": "\n".join(lines), "f2": f"{freqs[1] * params['shift']:.1f}"}


# partial ratios of struck bars: tuned marimba, vibraphone, xylophone, free (glockenspiel)
BARS = {"marimba": (3.99, 10.65), "vibraphone": (4.0, 9.2), "xylophone": (3.0, 6.0),
        "free": (2.76, 5.40)}

_MODAL_BAR = """
aimp mpulse 1, 0
aimp butlp aimp, {mallet_hz} * (0.6 + 0.4 * {vel})
a1 mode aimp, {cps}, {cps} * 0.4547 * {t60}
a2 mode aimp, {f2}, {f2} * 0.4547 * {t60} * {damping}
a3 mode aimp, {f3}, {f3} * 0.4547 * {t60} * {damping} ^ 2
asig = a1 + a2 * {g2} + a3 * {g3}
"""  # Q = pi f T60 / ln(1000): each mode rings for its T60


def _bar_modes(params: dict, cps: float) -> dict:
    """The upper modes of a ``modal_bar`` instrument's bar at one frequency."""
    r2, r3 = BARS[params["bar"]]
    return {"f2": f"{cps * r2:.2f}", "f3": f"{cps * r3:.2f}"}


_PLUCK2 = "asig wgpluck2 {pluck_pos}, 0.5 + 0.5 * {vel}, {cps}, {pickup}, {refl}"

_FM_BASS = """
kenv expseg 0.001, 0.005, 1, {decay}, {sustain}, 8, {sustain}
kndx expseg {index} * (0.5 + 0.5 * {vel}), {index_decay}, 0.3, 8, 0.3
asig foscili kenv, {cps}, 1, {ratio}, kndx, giSine
"""

_ANALOG = """
kenv linseg 0, {attack}, 1, {decay}, {sustain}, 8, {sustain}
kvib poscil {vib_depth}, {vib_hz}, giSine
kcut = {cps} * {cutoff} * (0.6 + 0.4 * {vel}) * (1 + {filter_env} * kenv)
kcut limit kcut, 30, 16000
a1 vco2 0.5, {cps} * (1 + kvib), {wave}, {pw}
a2 vco2 0.5, {cps} * (1 + kvib) * {detune}, {wave}, {pw}
asig moogladder (a1 + a2) * kenv, kcut, {resonance}
"""

_BLOWN = {"attack": (0.03, 0.2), "noise": (0.02, 0.25), **VIBRATO}

ENGINES: tuple[Engine, ...] = (
    Engine("wgflute", "flute", "acoustic", 60, 96,
           {**_BLOWN, "jet": (0.26, 0.34), "jet_refl": (0.4, 0.6), "end_refl": (0.4, 0.6),
            "vib_depth": (0.0, 0.06)},
           "asig wgflute 0.35 + 0.3 * {vel}, {cps}, {jet}, {attack}, 0.1, {noise}, {vib_hz}, "
           "{vib_depth}, giSine, {cps}, {jet_refl}, {end_refl}", tuned=True),
    Engine("wgclar", "reed", "acoustic", 45, 84,
           {**_BLOWN, "stiff": (-0.44, -0.18), "vib_depth": (0.0, 0.08)},
           "asig wgclar 0.3 + 0.3 * {vel}, {cps}, {stiff}, {attack}, 0.1, {noise}, {vib_hz}, "
           "{vib_depth}, giSine, {cps}", tuned=True),
    Engine("wgbow", "string", "acoustic", 43, 96,
           {"attack": (0.05, 0.3), "pressure": (2.0, 3.5), "position": (0.1, 0.16), **VIBRATO},
           "kenv linseg 0, {attack}, 1, 8, 1\n"
           "asig wgbow (0.2 + 0.2 * {vel}) * kenv, {cps}, {pressure}, {position}, {vib_hz}, "
           "{vib_depth}, giSine, {cps}", tuned=True),
    Engine("gbuzz_brass", "brass", "acoustic", 40, 82,
           {"attack": (0.03, 0.12), "decay": (0.1, 0.4), "sustain": (0.6, 0.9),
            "rolloff": (0.55, 0.9), **VIBRATO},
           "kenv linseg 0, {attack}, 1, {decay}, {sustain}, 8, {sustain}\n"
           "kvib poscil {vib_depth} * {cps}, {vib_hz}, giSine\n"
           "kmul = {rolloff} * (0.4 + 0.6 * kenv) * (0.7 + 0.3 * {vel})\n"
           "asig gbuzz kenv, {cps} + kvib, int(18000 / {cps}), 1, kmul, giCosine"),
    Engine("fm_brass", "brass", "synthetic", 36, 84,
           {"attack": (0.03, 0.12), "decay": (0.1, 0.4), "sustain": (0.6, 0.9),
            "ratio": [1, 1, 2], "index": (2.0, 6.0), **VIBRATO},
           "kenv linseg 0, {attack}, 1, {decay}, {sustain}, 8, {sustain}\n"
           "kvib poscil {vib_depth} * {cps}, {vib_hz}, giSine\n"
           "asig foscili kenv, {cps} + kvib, 1, {ratio}, kenv * {index} * (0.6 + 0.4 * {vel}), "
           "giSine"),
    Engine("wgpluck2", "guitar", "acoustic", 40, 79,
           {"pluck_pos": (0.05, 0.4), "pickup": (0.05, 0.3), "refl": (0.1, 0.6)}, _PLUCK2),
    Engine("pluck", "guitar", "acoustic", 40, 84, {"stretch": (1.0, 3.0)},
           "asig pluck 0.5 + 0.5 * {vel}, {cps}, {cps}, 0, 2, {stretch}"),
    Engine("electric_guitar", "guitar", "electronic", 40, 79,
           {"pluck_pos": (0.05, 0.3), "pickup": (0.02, 0.2), "refl": (0.1, 0.5),
            "drive": (1.0, 6.0), "tone_hz": (1500.0, 6000.0)},
           _PLUCK2 + "\nasig butlp tanh(asig * {drive}), {tone_hz}"),
    Engine("wgpluck2_bass", "bass", "acoustic", 28, 55,
           {"pluck_pos": (0.1, 0.5), "pickup": (0.05, 0.3), "refl": (0.1, 0.6),
            "bright_hz": (800.0, 4000.0)}, _PLUCK2),
    Engine("fm_bass", "bass", "synthetic", 28, 55,
           {"decay": (0.2, 1.0), "sustain": (0.2, 0.7), "index": (1.0, 5.0),
            "index_decay": (0.1, 0.8), "ratio": [0.5, 1, 1, 2]}, _FM_BASS),
    Engine("analog_bass", "bass", "synthetic", 28, 55,
           {"attack": (0.003, 0.02), "decay": (0.1, 0.6), "sustain": (0.3, 0.9),
            "cutoff": (2.0, 8.0), "filter_env": (0.0, 3.0), "resonance": (0.0, 0.6),
            "wave": [0, 10, 2], "pw": (0.2, 0.5), "detune": (1.0, 1.008),
            "vib_hz": (4.0, 6.0), "vib_depth": (0.0, 0.002)}, _ANALOG),
    Engine("fmrhode", "keyboard", "electronic", 36, 96,
           {"index": (2.0, 9.0), "crossfade": (0.0, 1.0), **VIBRATO},
           "asig fmrhode 0.3, 2 * {cps}, {index} * (0.5 + 0.5 * {vel}), {crossfade}, {vib_depth}, "
           "{vib_hz}, giSine, giSine, giSine, giBlank, giSine"),
    Engine("fmwurlie", "keyboard", "electronic", 36, 96,
           {"index": (2.0, 9.0), "crossfade": (0.0, 1.0), **VIBRATO},
           "asig fmwurlie 0.3, {cps}, {index} * (0.5 + 0.5 * {vel}), {crossfade}, {vib_depth}, "
           "{vib_hz}, giSine, giSine, giSine, giBlank, giSine"),
    Engine("prepiano", "keyboard", "acoustic", 28, 84,
           {"strings": [2, 3], "detune": (0.0, 8.0), "stiffness": (1.0, 4.0), "t30": (3.0, 8.0),
            "hf_loss": (0.0005, 0.002), "hammer_hz": (3000.0, 8000.0), "strike": (0.05, 0.15),
            "hammer_speed": (15.0, 40.0)},
           "al, ar prepiano {cps}, {strings}, {detune}, {stiffness}, {t30}, {hf_loss}, 2, 2, 1, "
           "{hammer_hz}, -0.01, {strike}, {hammer_speed} * (0.4 + 0.6 * {vel}), 0, 0.1\n"
           "asig = al + ar"),
    Engine("vibes", "mallet", "acoustic", 53, 89,
           {"hardness": (0.2, 0.8), "position": (0.3, 0.7), "trem_hz": (3.0, 7.0),
            "trem_depth": (0.0, 0.3)},
           "asig vibes 0.5, {cps}, {hardness} * (0.6 + 0.4 * {vel}), {position}, giStick, "
           "{trem_hz}, {trem_depth}, giSine, 1"),
    Engine("fmbell", "mallet", "synthetic", 60, 84,
           {"index": (0.5, 3.0), "crossfade": (0.0, 1.0), "vib_hz": (2.0, 5.0),
            "vib_depth": (0.0, 0.005)},
           "asig fmbell 0.3, {cps}, {index} * (0.5 + 0.5 * {vel}), {crossfade}, {vib_depth}, "
           "{vib_hz}, giSine, giSine, giSine, giSine, giSine"),
    Engine("modal_bar", "mallet", "acoustic", 45, 89,
           {"bar": list(BARS), "mallet_hz": (1000.0, 8000.0), "t60": (0.4, 3.0),
            "damping": (0.15, 0.6), "g2": (0.1, 0.8), "g3": (0.0, 0.5)},
           _MODAL_BAR, derive=_bar_modes),
    Engine("fmb3", "organ", "electronic", 36, 96,
           {"index": (0.5, 4.0), "crossfade": (0.0, 1.0), "vib_hz": (4.0, 7.0),
            "vib_depth": (0.0, 0.01)},
           "asig fmb3 0.3, {cps}, {index}, {crossfade}, {vib_depth}, {vib_hz}"),
    Engine("drawbars", "organ", "electronic", 36, 96,
           {"d16": (0.0, 1.0), "d8": (0.5, 1.0), "d513": (0.0, 1.0), "d4": (0.0, 1.0),
            "d223": (0.0, 1.0), "d2": (0.0, 1.0), "d135": (0.0, 0.7), "d113": (0.0, 0.7),
            "d1": (0.0, 0.7), "leslie_hz": [0.8, 6.7], "leslie_depth": (0.0, 0.3),
            "click": (0.0, 0.3)},
           "giOrgan ftgen 0, 0, 16384, 10, {d16}, {d8}, {d513}, {d4}, 0, {d223}, 0, {d2}, 0, "
           "{d135}, 0, {d113}, 0, 0, 0, {d1}\n"
           "kenv linseg 0, 0.005, 1, 8, 1\n"
           "klfo poscil 1, {leslie_hz}, giSine\n"
           "asig poscil kenv * (1 - {leslie_depth} * (0.5 + 0.5 * klfo)), "
           "{cps} / 2 * (1 + 0.002 * {leslie_depth} * klfo), giOrgan\n"
           "aclick rand {click} * expseg:k(1, 0.01, 0.001, 8, 0.001)\n"
           "asig = asig + aclick"),
    Engine("pipes", "organ", "acoustic", 36, 96,
           {"attack": (0.03, 0.15), "rolloff": (0.3, 0.8), "odd": (0.2, 1.0),
            "chiff": (0.0, 0.4)},
           "giPipe ftgen 0, 0, 16384, 10, 1, {odd} * {rolloff}, {rolloff} ^ 2, "
           "{odd} * {rolloff} ^ 3, {rolloff} ^ 4, {odd} * {rolloff} ^ 5, {rolloff} ^ 6, "
           "{odd} * {rolloff} ^ 7\n"
           "kenv linseg 0, {attack}, 1, 8, 1\n"
           "asig poscil kenv, {cps}, giPipe\n"
           "achiff rand {chiff} * expseg:k(1, {attack} * 2, 0.01, 8, 0.01)\n"
           "achiff butbp achiff, {cps} * 2, {cps}\n"
           "asig = asig + achiff"),
    Engine("analog_lead", "synth_lead", "synthetic", 36, 96,
           {"attack": (0.003, 0.1), "decay": (0.1, 0.8), "sustain": (0.4, 1.0),
            "cutoff": (1.5, 10.0), "filter_env": (0.0, 3.0), "resonance": (0.0, 0.8),
            "wave": [0, 10, 2, 4], "pw": (0.1, 0.5), "detune": (1.0, 1.012), **VIBRATO},
           _ANALOG),
    Engine("fof_female", "vocal", "acoustic", 55, 84,
           {"voice": ["soprano", "alto"], "vowel": ["a", "e", "i", "o", "u"],
            "shift": (0.92, 1.08), "attack": (0.05, 0.3), "jitter": (0.0, 0.004),
            "breath": (0.0, 0.1), "vib_hz": (4.5, 6.5), "vib_depth": (0.0, 0.02)}, _FOF,
           derive=_fof_lines),
    Engine("fof_male", "vocal", "acoustic", 40, 69,
           {"voice": ["tenor", "bass"], "vowel": ["a", "e", "i", "o", "u"],
            "shift": (0.92, 1.08), "attack": (0.05, 0.3), "jitter": (0.0, 0.004),
            "breath": (0.0, 0.1), "vib_hz": (4.5, 6.5), "vib_depth": (0.0, 0.02)}, _FOF,
           derive=_fof_lines),
    Engine("fmvoice", "vocal", "synthetic", 45, 79,
           {"vowel": (0.0, 64.0), "tilt": (0.0, 60.0), **VIBRATO},
           "asig fmvoice 0.3, {cps}, {vowel}, {tilt}, {vib_depth}, {vib_hz}"),
)

ENGINES_OF = {family: tuple(e for e in ENGINES if e.family == family) for family in FAMILIES}
BY_NAME = {e.name: e for e in ENGINES}

HEADER = f"""sr = {render.RENDER_RATE}
ksmps = {KSMPS}
nchnls = 1
0dbfs = 1
seed {{seed}}
giSine ftgen 0, 0, 8192, 10, 1
giCosine ftgen 0, 0, 8192, 11, 1
giBlank ftgen 0, 0, 8192, 9, 0.5, 1, 0
giSigmoid ftgen 0, 0, 1024, 19, 0.5, 0.5, 270, 0.5
giStick ftgen 0, 0, 256, 9, 0.5, 1, 0, 1.5, {{stick}}, 0, 2.5, {{stick}} / 2, 0
"""

TAIL = """
asig pareq asig, {body_hz}, ampdb({body_db}), 0.7
asig butlp asig, {bright}
asig dcblock2 asig
kgate expseg 1, {hold}, 1, {release}, 0.0001, 8, 0.0001
out asig * kgate
"""


def orchestra(inst: dict, pitch: int, velocity: int, cps: float | None = None) -> str:
    """The Csound orchestra of one note of one instrument (played at ``cps``, by default the
    pitch's frequency)."""
    engine = BY_NAME[inst["engine"]]
    params = inst["params"]
    cps = cps or midi_cps(pitch)
    values = {**params, "cps": f"{cps:.4f}", "vel": f"{velocity / 127:.4f}"}
    if engine.derive:
        values.update(engine.derive(params, cps))
    name = render.note_str(inst["instrument_str"], pitch, velocity)
    head = HEADER.format(seed=1 + zlib.crc32(name.encode()) % 2**30,
                         stick=f"{0.2 + 0.6 * velocity / 127:.3f}")
    body = engine.code.format(**values)
    tail = TAIL.format(body_hz=params["body_hz"], body_db=params["body_db"],
                       bright=f"{max(params['bright_hz'], 3 * cps):.1f}",
                       hold=render.HOLD_SECONDS, release=params["release"])
    return f"{head}\ninstr 1\n{body}\n{tail}\nendin\n"


def _tuned(inst: dict, pitch: int, velocity: int, y: np.ndarray) -> np.ndarray:
    """The note played again with its frequency corrected by what it sounded, up to
    :data:`TUNING_TRIES` times (a waveguide's pitch moves in steps at high pitches); the
    best one, or silence when none is within :data:`IN_TUNE_CENTS` of the pitch
    (:func:`instclf.sources.synth.in_tune`)."""
    return in_tune(y, midi_cps(pitch), lambda cps: perform(orchestra(inst, pitch, velocity, cps)))


def play(inst: dict, pitch: int, velocity: int) -> np.ndarray:
    """One note at 48 kHz from a new Csound engine (a few for a ``tuned`` engine; a note it
    cannot play at its pitch comes back silent, and is rejected as such)."""
    y = perform(orchestra(inst, pitch, velocity))
    if BY_NAME[inst["engine"]].tuned and np.isfinite(y).all() and np.abs(y).max() > 0:
        y = _tuned(inst, pitch, velocity, y)
    return level(y)


# one instrument's notes not on disk yet, in a render's worker
render_instrument = functools.partial(synth.render_with, play)


# --- what to render -------------------------------------------------------------------------

# one instrument: a value for each of an engine's parameters (and the common ones)
draw_params = functools.partial(synth.engine_params, COMMON)


def plan_instruments(source: CsoundRender) -> list[dict]:
    """The instruments to render, each with its engine, parameters, name, held-out flag and
    notes; deterministic for the source's seed. Used by :meth:`CsoundRender.render`."""
    return synth.plan_instruments(source, ENGINES_OF, draw_params, FIRST_INDEX, "csound",
                                  "Csound")


# --- the source -----------------------------------------------------------------------------

@dataclass(frozen=True)
class CsoundRender(synth.DrawnRender):
    """``instruments_per_family`` drawn instruments of each of ``families``, played by
    Csound's engines (:data:`ENGINES`)."""

    kind = "csound"
    render_one = staticmethod(render_instrument)
    instrument_keys = INSTRUMENT_KEYS

    def stamp(self) -> dict:
        """What the rendered bytes depend on, as ``render.json`` beside the splits holds it."""
        return json.loads(json.dumps({"engine_version": ENGINE_VERSION, **self.settings()}))

    def require_engine(self) -> None:
        _load_libcsound()

    def plan(self) -> list[dict]:
        return plan_instruments(self)
