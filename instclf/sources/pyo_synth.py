"""Additive, subtractive and FM synthesizers of pyo as a source (``make_source("pyo", ...)``).

A synthesis lineage with no General MIDI sample in it and no physical-model library either:
each family is played by one or more designs (:data:`ENGINES`) built from pyo's oscillators
(band-limited saw, square, triangle and pulse, SuperSaw, Blit pulse trains, FM, sines),
filters (Moog and Butterworth low-passes, resonators, equalisers), envelopes and delay-line
waveguides: analog, FM and plucked basses; filtered-saw and synth brass; flutes of sines and
tuned breath, pan pipes; plucked acoustic and electric guitars; FM electric pianos and
additive pianos; additive marimba, vibraphone, xylophone and glockenspiel bars and FM bells;
drawbar, combo and pipe organs; clarinet, saxophone and free-reed voices; bowed strings and
string ensembles; SuperSaw, pulse-width and FM leads; formant voices and a synth choir. One
instrument is one seeded draw of its engine's parameters (excitation, body, brightness,
vibrato, envelope), so the instruments of a family differ audibly. Velocity sets loudness
(which the peak normalisation then evens out) and brightness; organs, like real ones,
barely answer it (a harder key click or chiff, a slightly brighter combo organ).

Each note is rendered offline at 48 kHz by pyo's server driven block by block (``manual``
audio, no sound card), booted afresh for the note with a seed fixed by the note's name and
shut down after it (nothing of one note reaches the next), in spawned worker processes. Then
it goes the way of the other drawn sources (:mod:`instclf.sources.synth`): kept in tune,
brought to a sane level, then to 16 kHz, peak-normalised by name, written atomically,
resumable, a share of each family's instruments held out.

NSynth source of an engine: ``acoustic`` for imitations of acoustic instruments (brass,
flutes, reeds, bowed strings, acoustic guitar, piano, bars, pipe organ, voices),
``electronic`` for electric ones (electric guitar and bass, electric piano, drawbar and combo
organs), ``synthetic`` for synthesizer sounds. Instrument names are numbered from
:data:`FIRST_INDEX` in each family, a block no other source reaches (Csound's is 3000).
"""

from __future__ import annotations

import contextlib
import functools
import gc
import importlib.metadata
import importlib.util
import io
import json
import math
import os
import zlib
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .. import render
from ..config import FAMILIES, InstclfError
from . import synth
from .synth import FORMANTS, midi_cps

ENGINE_VERSION = 1  # bump when a change to this module changes the rendered bytes
FIRST_INDEX = 4000  # instrument_str numbers 4000-4999 of each family belong to this source
BUFFER = 256  # samples per block of pyo's server
NOTE_SECONDS = render.HOLD_SECONDS + render.RELEASE_SECONDS
NOTE_SAMPLES = NOTE_SECONDS * render.RENDER_RATE
END = NOTE_SECONDS + 1  # envelopes hold their last value past the note's end
INSTRUMENT_KEYS = ("engine", "family", "source", "instrument", "params")

MISSING = ("the pyo source needs pyo; install it with: "
           ".venv/bin/pip install 'pyo>=1.1,<1.2' (or make venv)")


# --- pyo, offline ---------------------------------------------------------------------------

def _require_pyo() -> None:
    """Fail clearly when pyo is missing, before any worker starts (without importing it)."""
    if importlib.util.find_spec("pyo") is None:
        raise InstclfError(MISSING)


def _pyo():
    """The pyo module (its GUI toolkit left alone, its banner not printed)."""
    os.environ.setdefault("PYO_GUI_WX", "0")
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            import pyo
    except ImportError:
        raise InstclfError(MISSING)
    return pyo


def pyo_version() -> str | None:
    """The installed pyo (its objects make the bytes)."""
    try:
        return importlib.metadata.version("pyo")
    except importlib.metadata.PackageNotFoundError:
        return None


_SERVER = None


def _server(o):
    """This process's pyo server (pyo has one): 48 kHz mono, processed block by block."""
    global _SERVER
    if _SERVER is None:
        _SERVER = o.Server(sr=render.RENDER_RATE, nchnls=1, buffersize=BUFFER, duplex=0,
                           audio="manual", verbosity=0)
        _SERVER.deactivateMidi()
    return _SERVER


class _Held:
    """The pyo module for one note: every object it makes is held until the note ends (pyo's
    arithmetic keeps only the C streams of its operands, and an oscillator does not keep its
    table alive: a freed one crashes the process)."""

    def __init__(self, module):
        self._module, self.objects = module, []

    def __getattr__(self, name: str):
        made = getattr(self._module, name)
        if not isinstance(made, type):
            return made

        def make(*args, **kwargs):
            self.objects.append(made(*args, **kwargs))
            return self.objects[-1]

        return make


def perform(make: Callable, seed: int) -> np.ndarray:
    """A note of 4 s at 48 kHz: the signal ``make(pyo)`` builds, recorded from its first
    sample by a server booted for it with random objects seeded by ``seed``, and shut down
    after it with every object of the note freed (pyo numbers its streams from 0 at each
    boot, so no object of a note may outlive it)."""
    module = _pyo()
    server, o = _server(module), _Held(module)
    server.setGlobalSeed(seed)
    server.boot()
    try:
        table = o.NewTable(NOTE_SECONDS, chnls=1)
        o.TableRec(make(o), table).play()
        server.start()
        for _ in range(NOTE_SAMPLES // BUFFER + 1):
            server.process()
        server.stop()
        y = np.array(memoryview(table.getBuffer()), dtype=np.float64)[:NOTE_SAMPLES]
    finally:
        o.objects.clear()
        table = None
        gc.collect()
        server.shutdown()
    return y


# --- building blocks of the engines (each takes the pyo module first) -----------------------

def _clock(o):
    """Seconds since the note began."""
    return o.Linseg([(0, 0), (END, END)]).play()


def _decay(o, t, t60: float):
    """1 at the onset, falling exponentially by 60 dB in ``t60`` seconds."""
    return o.Pow(0.001, t * (1.0 / t60))


def _adsr(o, attack: float, decay: float = 0.0, sustain: float = 1.0, overshoot: float = 0.0):
    """A rise over ``attack`` (to ``1 + overshoot``), a fall over ``decay`` to ``sustain``,
    held (the release is the common tail's)."""
    points = [(0, 0), (attack, 1 + overshoot)]
    if decay:
        points.append((attack + decay, sustain))
    return o.Linseg(points + [(END, sustain)]).play()


def _vibrato(o, p: dict, f: float):
    """The frequency with a vibrato fading in after ``vib_delay`` (a PyoObject)."""
    delay = p.get("vib_delay", 0.05)
    fade = o.Linseg([(0, 0), (delay, 0), (delay + 0.4, 1), (END, 1)]).play()
    return o.Sine(p["vib_hz"], mul=f * p["vib_depth"]) * fade + f


def _below(f: float, ratio: float, limit: float = 18000.0) -> bool:
    """Whether a partial at ``f * ratio`` stays below ``limit`` (no aliasing)."""
    return f * ratio < limit


def _cutoff(o, value, high: float = 18000.0):
    """A filter frequency kept between 20 Hz and ``high``."""
    if isinstance(value, (int, float)):
        return min(max(float(value), 20.0), high)
    return o.Clip(value, 20, high)


# --- the engines of each family -------------------------------------------------------------

@dataclass(frozen=True)
class Engine:
    """One pyo design; an instrument of this source is one draw of ``ranges``.

    ``build(pyo, params, cps, vel)`` returns the note's signal before the common tail (body,
    brightness, release: :func:`_tail`), from the drawn parameters (``(low, high)``:
    uniform; a list: one of its items), the frequency and the velocity (0-1).
    """

    name: str
    family: str
    source: str
    low: int
    high: int
    ranges: dict
    build: Callable


# drawn for every engine: the body resonance, the brightness and the release after 3 s
COMMON = {"body_hz": (150.0, 3000.0), "body_db": (-4.0, 8.0), "bright_hz": (2500.0, 12000.0),
          "release": (0.1, 0.8)}
VIBRATO = {"vib_hz": (4.0, 6.5), "vib_depth": (0.0, 0.01), "vib_delay": (0.05, 0.6)}
WAVES = {"saw": 0, "square": 2, "triangle": 3, "buzz": 5}  # pyo LFO's band-limited shapes


def _osc(o, wave: str, freq, f: float, sharp: float, duty=0.3, mul=1.0):
    """A band-limited oscillator: one of pyo's :data:`WAVES` (``buzz``: its bipolar pulse,
    odd harmonics of equal strength), or ``pulse``: a saw minus itself delayed by ``duty``
    of a period (a pulse of that width; a PyoObject ``duty`` modulates it)."""
    if wave != "pulse":
        return o.LFO(freq, sharp=sharp, type=WAVES[wave], mul=mul)
    saw = o.LFO(freq, sharp=sharp, type=WAVES["saw"])
    return o.Sub(saw, o.Delay(saw, delay=duty * (1.0 / f), maxdelay=0.1), mul=mul)


def _analog_bass(o, p, f, vel):
    t = _clock(o)
    osc = (_osc(o, p["wave"], f, f, p["sharp"], p["duty"])
           + _osc(o, p["wave"], f * p["detune"], f, p["sharp"], p["duty"], mul=0.5)
           + o.Sine(f / 2, mul=p["sub"]))
    cutoff = f * p["cutoff"] * (0.4 + 0.6 * vel) * (1 + p["filter_env"] * (0.3 + 0.7 * vel)
                                * _decay(o, t, p["filter_decay"]))
    return o.MoogLP(osc * _adsr(o, p["attack"], p["decay"], p["sustain"]), _cutoff(o, cutoff),
                    res=p["res"])


def _fm_bass(o, p, f, vel):
    t = _clock(o)
    index = p["index"] * (0.4 + 0.6 * vel) * _decay(o, t, p["index_decay"]) + p["index_floor"]
    return o.FM(f, ratio=p["ratio"], index=index,
                mul=_adsr(o, 0.003, p["decay"], p["sustain"]))


def _string(o, p, f, vel, t60, cut):
    """A plucked string: the finger's push (a quarter period) and a noise burst (about a
    period, ``noise`` of it), as bright as ``cut`` times the pitch (more with velocity),
    into pyo's waveguide (a delay line in tune, 40 dB down after ``t60`` s)."""
    t = _clock(o)
    push = o.Linseg([(0, 0), (0.125 / f, 1), (0.25 / f, 0), (END, 0)]).play()
    burst = o.Noise(mul=p["noise"] * _decay(o, t, max(0.006, 3.0 / f))) + push
    burst = o.Tone(burst, min(f * cut * (0.2 + 0.8 * vel), 16000.0))
    if "pluck_pos" in p:  # plucked at a share of the string: those harmonics are missing
        burst = burst - o.SDelay(burst, p["pluck_pos"] / f, maxdelay=0.1)
    return o.Waveguide(burst, freq=f, dur=t60, minfreq=20)


def _plucked_bass(o, p, f, vel):
    string = _string(o, p, f, vel, p["t60"], p["pluck_cut"])
    pickup = string - o.SDelay(string, p["pickup"] / f, maxdelay=0.1)  # a pickup's comb
    thump = o.Sine(f, mul=p["thump"] * _decay(o, _clock(o), 0.3))
    return pickup + thump


def _brass(o, p, f, vel):
    t = _clock(o)
    amp = _adsr(o, p["attack"], 0.12, 1.0, overshoot=p["overshoot"])
    freq = _vibrato(o, p, f)
    # brightness grows with loudness: the cutoff follows the envelope (the brass signature)
    cutoff = _cutoff(o, freq * (1 + p["brassiness"] * amp * amp * (0.4 + 0.6 * vel)))
    tone = o.ButLP(o.ButLP(o.LFO(freq, sharp=p["sharp"], type=0, mul=amp), cutoff), cutoff)
    tone = o.ButHP(tone, f * p["bell"] * 0.5)  # the bell passes little below the pitch
    buzz = o.Reson(o.Noise(), f, q=2, mul=p["buzz"] * _decay(o, t, 0.08))
    muted = o.Reson(tone, p["mute_hz"], q=4, mul=p["mute"] * 2)
    return tone * (1 - p["mute"]) + muted + buzz


def _synth_brass(o, p, f, vel):
    amp = _adsr(o, p["attack"], p["decay"], p["sustain"])
    freq = _vibrato(o, p, f)
    saws = o.SuperSaw(freq, detune=p["detune"], bal=p["bal"], mul=amp)
    cutoff = f * p["cutoff"] * (0.4 + 0.6 * vel) * (1 + p["env_amount"] * amp * vel)
    return o.MoogLP(saws, _cutoff(o, cutoff), res=p["res"])


def _flute(o, p, f, vel):
    t = _clock(o)
    freq = _vibrato(o, p, f)
    amp = _adsr(o, p["attack"]) * (1 - p["tremolo"] * (0.5 + 0.5 * o.Sine(p["vib_hz"])))
    tone = o.Sine(freq)
    for n, key in ((2, "h2"), (3, "h3"), (4, "h4")):
        if _below(f, n):
            tone = tone + o.Sine(freq * n, mul=p[key] * (0.3 + 0.7 * vel))
    noise = o.Noise()
    breath = o.Reson(noise, f, q=p["breath_q"], mul=p["breath"] * 4)
    air = o.ButHP(noise, 3000, mul=p["air"])
    chiff = o.ButBP(noise, min(f * 3, 16000.0), q=2, mul=p["chiff"] * _decay(o, t, 0.05))
    return (tone + breath + air) * amp + chiff


def _pan_pipe(o, p, f, vel):
    t = _clock(o)
    freq = _vibrato(o, p, f)
    amp = _adsr(o, p["attack"])
    tone = o.LFO(freq, sharp=p["sharp"], type=WAVES["triangle"])
    if _below(f, 2):  # blown harder, the pipe's octave speaks
        tone = tone + o.Sine(freq * 2, mul=p["h2"] * vel)
    noise = o.Noise()
    breath = o.Reson(noise, f, q=p["breath_q"], mul=p["breath"] * 4)
    breath2 = o.Reson(noise, min(2 * f, 16000.0), q=p["breath_q"], mul=p["breath"] * 2)
    chiff = o.ButBP(noise, min(f * 2, 16000.0), q=1, mul=p["chiff"] * (0.3 + 0.7 * vel)
                    * _decay(o, t, 0.04))
    return (tone + breath + breath2) * amp + chiff


def _guitar_body(o, x, p):
    """A wooden body: two resonances beside the direct sound."""
    return (x + o.Reson(x, p["body1"], q=p["q1"], mul=p["bodymix"])
            + o.Reson(x, p["body2"], q=p["q2"], mul=p["bodymix"] * 0.5))


def _acoustic_guitar(o, p, f, vel):
    t60 = max(0.4, p["t60"] * (110.0 / f) ** 0.5)
    return _guitar_body(o, _string(o, p, f, vel, t60, p["pluck_cut"]), p)


def _electric_guitar(o, p, f, vel):
    string = _string(o, p, f, vel, max(0.5, p["t60"] * (110.0 / f) ** 0.4), p["pluck_cut"])
    pickup = string - o.SDelay(string, p["pickup"] / f, maxdelay=0.1)
    driven = o.Disto(pickup, drive=p["drive"] * (0.5 + 0.5 * vel), slope=p["slope"])
    return o.ButLP(driven, p["tone_hz"])


def _fm_epiano(o, p, f, vel):
    t = _clock(o)
    index = p["index"] * (0.3 + 0.7 * vel) * _decay(o, t, p["index_t60"])
    t60 = p["t60"] * (261.6 / f) ** 0.5
    amp = _adsr(o, 0.002) * _decay(o, t, t60) * (1 - p["tremolo"] * (0.5 + 0.5 * o.Sine(
        p["trem_hz"])))
    tone = o.FM(f, ratio=p["ratio"], index=index)
    if _below(f, p["tine_ratio"]):  # the tine's metallic ping
        tone = tone + o.Sine(f * p["tine_ratio"], mul=p["tine"] * vel * _decay(o, t, 0.1))
    return tone * amp


def _additive_piano(o, p, f, vel):
    """Partials of a stiff string (stretched by ``inharm``), struck at ``strike`` of its
    length, each decaying faster the higher it is; two strings a few cents apart."""
    t = _clock(o)
    stretch = math.sqrt(1 + p["inharm"])
    tilt = p["tilt"] + 1.2 * (1 - vel)  # a soft stroke is a dull one
    t60 = p["t60"] * (261.6 / f) ** 0.6
    detune = 2 ** (p["detune_cents"] / 1200)
    tone = None
    for n in range(1, 25):
        fn = n * f * math.sqrt(1 + p["inharm"] * n * n) / stretch
        if not _below(fn, detune, 16000.0):
            break
        gain = n ** -tilt * (0.2 + abs(math.sin(math.pi * n * p["strike"])))
        envelope = _decay(o, t, t60 / (1 + p["damping"] * (n - 1)))
        pair = o.Sine(fn, mul=gain * envelope) + o.Sine(fn * detune, mul=gain * envelope)
        tone = pair if tone is None else tone + pair
    hammer = o.ButBP(o.Noise(), min(f * 4, 8000.0), q=1, mul=p["hammer"] * vel
                     * _decay(o, t, 0.03))
    return tone * _adsr(o, 0.002) + hammer


# upper modes of a bar (ratios to the fundamental), as tuned by makers (Fletcher & Rossing)
BAR_MODES = {"marimba": (3.99, 10.65), "vibraphone": (4.0, 9.2), "xylophone": (3.0, 6.0),
             "glockenspiel": (2.76, 5.40)}


def _bar(kind):
    def build(o, p, f, vel):
        t = _clock(o)
        hardness = p["hardness"] * (0.15 + 0.85 * vel)  # a harder stroke: the upper modes
        tone = o.Sine(f, mul=_decay(o, t, p["t60"]))
        for k, ratio in enumerate(BAR_MODES[kind], start=2):
            fk = f * ratio * p[f"detune{k}"]
            if _below(fk, 1):
                tone = tone + o.Sine(fk, mul=p[f"g{k}"] * hardness
                                     * _decay(o, t, p["t60"] * p["damping"] ** (k - 1)))
        strike = o.ButBP(o.Noise(), min(f * (1 + 3 * vel), 12000.0), q=1,
                         mul=p["strike"] * hardness * _decay(o, t, 0.01))  # the mallet
        if "trem_depth" in p:  # a vibraphone's rotating discs
            tone = tone * (1 - p["trem_depth"] * (0.5 + 0.5 * o.Sine(p["trem_hz"])))
        return tone * _adsr(o, 0.001) + strike
    return build


def _bar_ranges(t60, **more) -> dict:
    return {"t60": t60, "damping": (0.15, 0.6), "hardness": (0.3, 1.0), "strike": (0.0, 0.3),
            "g2": (0.1, 0.8), "g3": (0.0, 0.5), "detune2": (0.98, 1.02),
            "detune3": (0.97, 1.03), **more}


def _fm_bell(o, p, f, vel):
    t = _clock(o)
    index = p["index"] * (0.4 + 0.6 * vel) * _decay(o, t, p["index_t60"]) + 0.2
    return o.FM(f, ratio=p["ratio"], index=index, mul=_adsr(o, 0.002) * _decay(o, t, p["t60"]))


DRAWBARS = (("d16", 0.5), ("d513", 1.5), ("d8", 1), ("d4", 2), ("d223", 3), ("d2", 4),
            ("d135", 5), ("d113", 6), ("d1", 8))  # a drawbar organ's footages as ratios


def _drawbar_organ(o, p, f, vel):
    t = _clock(o)
    leslie = o.Sine(p["leslie_hz"])
    freq = f * (1 + 0.002 * p["leslie_depth"] * leslie)
    tone = None
    for key, ratio in DRAWBARS:
        if _below(f, ratio, 12000.0):
            bar = o.Sine(freq * ratio, mul=p[key])
            tone = bar if tone is None else tone + bar
    perc = o.Sine(freq * p["perc_ratio"], mul=p["perc"] * _decay(o, t, 0.6))
    click = o.ButBP(o.Noise(), 2500, q=0.7, mul=p["click"] * (0.5 + 0.5 * vel)
                    * _decay(o, t, 0.008))
    amp = _adsr(o, 0.005) * (1 - p["leslie_depth"] * (0.5 + 0.5 * leslie))
    return (tone + perc) * amp + click


COMBO_RANKS = (("r16", 0.5), ("r8", 1), ("r4", 2), ("r2", 4))


def _combo_organ(o, p, f, vel):
    freq = _vibrato(o, p, f)
    tone = None
    for key, ratio in COMBO_RANKS:
        rank = o.LFO(freq * ratio, sharp=p["sharp"], type=WAVES[p["wave"]], mul=p[key])
        tone = rank if tone is None else tone + rank
    return o.ButLP(tone * _adsr(o, 0.004), _cutoff(o, f * p["tone"] * (0.7 + 0.3 * vel)))


def _pipe_organ(o, p, f, vel):
    t = _clock(o)
    roll, even = p["rolloff"], p["even"]
    table = o.HarmTable([1, even * roll, roll ** 2, even * roll ** 3, roll ** 4,
                         even * roll ** 5, roll ** 6, even * roll ** 7])
    pipe = o.Osc(table, f) + o.Osc(table, f * p["celeste"], mul=0.5)
    if _below(f, 16):
        pipe = pipe + o.Osc(table, 2 * f, mul=p["octave"])
    if _below(f, 24):
        pipe = pipe + o.Osc(table, 3 * f, mul=p["fifth"])
    chiff = o.ButBP(o.Noise(), min(f * 4, 12000.0), q=1, mul=p["chiff"] * (0.5 + 0.5 * vel)
                    * _decay(o, t, 0.06))
    return pipe * _adsr(o, p["attack"]) + chiff


def _clarinet(o, p, f, vel):
    freq = _vibrato(o, p, f)
    amp = _adsr(o, p["attack"], 0.1, p["sustain"], overshoot=0.1)
    # a cylindrical bore: odd harmonics, brighter when blown harder
    reed = o.LFO(freq, sharp=p["sharp"] * (0.5 + 0.5 * vel), type=WAVES["square"], mul=amp)
    reed = o.ButLP(reed, _cutoff(o, f * p["tone"] * (0.2 + 0.8 * vel)))
    breath = o.ButBP(o.Noise(), min(f * 3, 12000.0), q=1, mul=p["breath"] * amp)
    body = o.Reson(reed, p["formant"], q=p["formant_q"], mul=p["formant_mix"] * 2)
    return reed + body + breath


def _sax(o, p, f, vel):
    freq = _vibrato(o, p, f)
    amp = _adsr(o, p["attack"], 0.1, p["sustain"], overshoot=p["overshoot"])
    harms = int(max(3, min(p["harms"] * (0.4 + 0.6 * vel), 20000 / f)))
    reed = o.Blit(freq, harms=harms, mul=amp)  # a conical bore: every harmonic
    formants = (o.Reson(reed, p["f1"], q=p["q1"], mul=2)
                + o.Reson(reed, p["f2"], q=p["q2"], mul=p["g2"] * 2))
    breath = o.ButBP(o.Noise(), p["f2"], q=1, mul=p["breath"] * amp)
    return o.ButLP(reed, f * 4) * p["direct"] + formants + breath


def _free_reed(o, p, f, vel):
    freq = _vibrato(o, p, f)
    amp = _adsr(o, p["attack"]) * (1 - p["tremolo"] * (0.5 + 0.5 * o.Sine(p["trem_hz"])))
    reeds = (_osc(o, p["wave"], freq, f, p["sharp"], p["duty"])
             + _osc(o, p["wave"], freq * p["musette"], f, p["sharp"], p["duty"],
                    mul=p["second"]))
    tone = o.ButLP(reeds * amp, _cutoff(o, f * p["tone"] * (0.5 + 0.5 * vel)))
    return tone + o.Reson(tone, p["formant"], q=3, mul=p["formant_mix"])


def _bowed(o, p, f, vel):
    freq = _vibrato(o, p, f) + o.Randi(-1, 1, 9, mul=p["jitter"] * f)
    amp = _adsr(o, p["attack"], 0.2, p["sustain"])
    saw = o.LFO(freq, sharp=p["sharp"] * (0.6 + 0.4 * vel), type=WAVES["saw"], mul=amp)
    saw = o.ButLP(saw, _cutoff(o, f * p["tone"] * (0.3 + 0.7 * vel)))
    bow = o.ButBP(o.Noise(), min(f * 6, 12000.0), q=0.7, mul=p["bow_noise"] * amp)
    body = (o.Reson(saw, p["body1"], q=p["q1"]) + o.Reson(saw, p["body2"], q=p["q2"])
            + o.Reson(saw, p["body3"], q=p["q3"]))
    return saw * (1 - p["bodymix"]) + body * (2 * p["bodymix"]) + bow


def _string_ensemble(o, p, f, vel):
    freq = _vibrato(o, p, f)
    amp = _adsr(o, p["attack"], 0.3, p["sustain"])
    saws = o.SuperSaw(freq, detune=p["detune"], bal=p["bal"], mul=amp)
    tone = o.ButLP(saws, _cutoff(o, f * p["tone"] * (0.6 + 0.4 * vel)))
    return o.Chorus(tone, depth=p["chorus"], feedback=0.1, bal=0.5)


def _supersaw_lead(o, p, f, vel):
    amp = _adsr(o, p["attack"], p["decay"], p["sustain"])
    saws = o.SuperSaw(_vibrato(o, p, f), detune=p["detune"], bal=p["bal"], mul=amp)
    cutoff = f * p["cutoff"] * (0.4 + 0.6 * vel) * (1 + p["env_amount"] * amp * vel)
    return o.MoogLP(saws, _cutoff(o, cutoff), res=p["res"])


def _pulse_lead(o, p, f, vel):
    freq = _vibrato(o, p, f)
    amp = _adsr(o, p["attack"], p["decay"], p["sustain"])
    duty = o.Sine(p["pwm_hz"], mul=p["pwm_depth"], add=p["duty"])  # pulse-width modulation
    oscs = (_osc(o, p["wave"], freq, f, p["sharp"], duty)
            + _osc(o, p["wave2"], freq * p["detune"], f, p["sharp"], duty, mul=p["mix"]))
    cutoff = f * p["cutoff"] * (0.4 + 0.6 * vel) * (1 + p["env_amount"] * amp * vel)
    return o.SVF(oscs * amp, _cutoff(o, cutoff, 16000.0), q=p["q"], type=0)


def _fm_lead(o, p, f, vel):
    freq = _vibrato(o, p, f)
    amp = _adsr(o, p["attack"], p["decay"], p["sustain"])
    index = p["index"] * (0.5 + 0.5 * vel) * (0.5 + 0.5 * amp)
    fm = o.FM(freq, ratio=p["ratio"], index=index)
    feedback = o.SineLoop(freq * p["detune"], feedback=p["feedback"] * (0.5 + 0.5 * vel),
                          mul=p["mix"])  # a sine fed back into its phase: saw-like
    return (fm + feedback) * amp


def _voice(o, p, f, vel):
    """A pulse train through five resonators at a sung vowel's formants (shifted by
    ``shift``), with the fundamental's own warmth, vibrato, jitter and breath."""
    freqs, dbs, bands = FORMANTS[p["voice"], p["vowel"]]
    freq = _vibrato(o, p, f) + o.Randi(-1, 1, 7, mul=p["jitter"] * f)
    amp = _adsr(o, p["attack"])
    glottis = o.Blit(freq, harms=int(max(3, min(60, 16000 / f) * (0.3 + 0.7 * vel))), mul=amp)
    tone = o.ButLP(glottis, f * 1.5, mul=p["warmth"])
    for hz, db, bw in zip(freqs, dbs, bands):
        hz *= p["shift"]
        tone = tone + o.Reson(glottis, hz, q=hz / bw, mul=10 ** (db / 20) * (0.5 + 0.5 * vel))
    breath = o.Reson(o.Noise(), freqs[1] * p["shift"], q=4, mul=p["breath"] * amp)
    return tone + breath


def _synth_choir(o, p, f, vel):
    freqs, dbs, bands = FORMANTS[p["voice"], p["vowel"]]
    amp = _adsr(o, p["attack"], 0.3, p["sustain"])
    saws = o.SuperSaw(_vibrato(o, p, f), detune=p["detune"], bal=p["bal"], mul=amp)
    saws = o.ButLP(saws, _cutoff(o, p["tone"] * (0.3 + 0.7 * vel)))
    tone = o.ButLP(saws, f * 1.5, mul=0.5)
    for hz, db, bw in zip(freqs[:3], dbs, bands):
        tone = tone + o.Reson(saws, hz, q=hz / (bw * p["width"]), mul=10 ** (db / 20) * 2)
    return o.Chorus(tone, depth=p["chorus"], feedback=0.1, bal=0.5)


VOWELS = ["a", "e", "i", "o", "u"]

ENGINES = (
    Engine("analog_bass", "bass", "synthetic", 28, 60,
           {"wave": ["saw", "square", "pulse"], "sharp": (0.6, 1.0), "duty": (0.1, 0.5),
            "sub": (0.0, 0.8), "detune": (1.0, 1.008), "attack": (0.002, 0.02),
            "decay": (0.1, 0.8), "sustain": (0.3, 0.9), "cutoff": (1.5, 6.0),
            "filter_env": (0.5, 8.0), "filter_decay": (0.05, 0.6), "res": (0.0, 0.7),
            "bright_hz": (1500.0, 6000.0)},
           _analog_bass),
    Engine("fm_bass", "bass", "synthetic", 28, 60,
           {"ratio": [1, 1, 2, 3], "index": (1.0, 6.0), "index_decay": (0.05, 0.8),
            "index_floor": (0.0, 0.5), "decay": (0.3, 2.0), "sustain": (0.2, 0.8),
            "bright_hz": (1500.0, 6000.0)}, _fm_bass),
    Engine("plucked_bass", "bass", "electronic", 28, 60,
           {"t60": (1.5, 6.0), "pluck_cut": (2.0, 12.0), "noise": (0.2, 1.0),
            "pluck_pos": (0.05, 0.3), "pickup": (0.05, 0.3), "thump": (0.0, 0.5),
            "bright_hz": (800.0, 4000.0)},
           _plucked_bass),
    Engine("brass", "brass", "acoustic", 34, 84,
           {**VIBRATO, "attack": (0.02, 0.1), "overshoot": (0.0, 0.4), "sharp": (0.8, 1.0),
            "brassiness": (2.0, 10.0), "bell": (0.5, 1.5), "buzz": (0.0, 0.3),
            "mute": (0.0, 0.6), "mute_hz": (800.0, 2500.0)}, _brass),
    Engine("synth_brass", "brass", "synthetic", 36, 84,
           {**VIBRATO, "detune": (0.1, 0.5), "bal": (0.4, 0.9), "attack": (0.03, 0.15),
            "decay": (0.2, 0.8), "sustain": (0.6, 0.95), "cutoff": (1.5, 4.0),
            "env_amount": (2.0, 8.0), "res": (0.1, 0.5)}, _synth_brass),
    Engine("flute", "flute", "acoustic", 60, 96,
           {**VIBRATO, "attack": (0.03, 0.2), "h2": (0.05, 0.5), "h3": (0.0, 0.25),
            "h4": (0.0, 0.1), "breath": (0.02, 0.3), "breath_q": (3.0, 30.0),
            "air": (0.0, 0.15), "chiff": (0.0, 0.5), "tremolo": (0.0, 0.15)}, _flute),
    Engine("pan_pipe", "flute", "acoustic", 60, 96,
           {**VIBRATO, "attack": (0.02, 0.12), "sharp": (0.0, 0.6), "h2": (0.0, 0.4),
            "breath": (0.05, 0.4), "breath_q": (2.0, 15.0), "chiff": (0.1, 0.8)}, _pan_pipe),
    Engine("acoustic_guitar", "guitar", "acoustic", 40, 84,
           {"t60": (2.0, 8.0), "pluck_cut": (2.0, 12.0), "noise": (0.2, 1.0),
            "pluck_pos": (0.05, 0.4), "body1": (90.0, 250.0), "q1": (2.0, 8.0),
            "body2": (180.0, 600.0), "q2": (2.0, 10.0), "bodymix": (0.1, 0.9),
            "bright_hz": (2500.0, 9000.0)},
           _acoustic_guitar),
    Engine("electric_guitar", "guitar", "electronic", 40, 86,
           {"t60": (3.0, 10.0), "pluck_cut": (3.0, 16.0), "noise": (0.2, 1.0),
            "pluck_pos": (0.05, 0.3), "pickup": (0.06, 0.3), "drive": (0.0, 0.9),
            "slope": (0.3, 0.9), "tone_hz": (1500.0, 7000.0)}, _electric_guitar),
    Engine("fm_epiano", "keyboard", "electronic", 28, 103,
           {"ratio": [1, 1, 2], "index": (0.5, 4.0), "index_t60": (0.2, 2.0),
            "t60": (2.0, 8.0), "tine": (0.0, 0.4), "tine_ratio": (12.0, 16.0),
            "tremolo": (0.0, 0.4), "trem_hz": (3.0, 6.0)}, _fm_epiano),
    Engine("additive_piano", "keyboard", "acoustic", 28, 100,
           {"inharm": (0.00005, 0.0006), "detune_cents": (0.2, 2.5), "t60": (3.0, 10.0),
            "damping": (0.1, 0.6), "tilt": (0.6, 1.4), "strike": (0.08, 0.2),
            "hammer": (0.0, 0.4)}, _additive_piano),
    Engine("marimba", "mallet", "acoustic", 45, 96,
           _bar_ranges((0.4, 1.5)), _bar("marimba")),
    Engine("vibraphone", "mallet", "acoustic", 53, 89,
           _bar_ranges((1.5, 6.0), trem_hz=(3.0, 7.0), trem_depth=(0.0, 0.6)),
           _bar("vibraphone")),
    Engine("xylophone", "mallet", "acoustic", 65, 108,
           _bar_ranges((0.2, 0.8)), _bar("xylophone")),
    Engine("glockenspiel", "mallet", "acoustic", 79, 108,
           _bar_ranges((1.0, 4.0)), _bar("glockenspiel")),
    Engine("fm_bell", "mallet", "synthetic", 48, 96,
           {"ratio": [1.4, 2.76, 3.5], "index": (1.0, 5.0), "index_t60": (0.5, 3.0),
            "t60": (2.0, 6.0)}, _fm_bell),
    Engine("drawbar_organ", "organ", "electronic", 36, 96,
           {"d16": (0.0, 1.0), "d513": (0.0, 1.0), "d8": (0.5, 1.0), "d4": (0.0, 1.0),
            "d223": (0.0, 1.0), "d2": (0.0, 1.0), "d135": (0.0, 0.7), "d113": (0.0, 0.7),
            "d1": (0.0, 0.7), "perc": (0.0, 0.6), "perc_ratio": [2, 3],
            "leslie_hz": [0.8, 6.7], "leslie_depth": (0.0, 0.3), "click": (0.0, 0.3),
            "release": (0.05, 0.2)}, _drawbar_organ),
    Engine("combo_organ", "organ", "electronic", 36, 96,
           {**VIBRATO, "vib_hz": (5.5, 7.0), "vib_depth": (0.0, 0.006),
            "wave": ["square", "triangle", "saw"], "sharp": (0.3, 0.9), "r16": (0.0, 0.8),
            "r8": (0.5, 1.0), "r4": (0.0, 0.8), "r2": (0.0, 0.6), "tone": (3.0, 12.0),
            "release": (0.05, 0.2)}, _combo_organ),
    Engine("pipe_organ", "organ", "acoustic", 36, 96,
           {"rolloff": (0.3, 0.8), "even": (0.2, 1.0), "octave": (0.0, 0.7),
            "fifth": (0.0, 0.4), "celeste": (1.0005, 1.004), "chiff": (0.0, 0.3),
            "attack": (0.03, 0.15)}, _pipe_organ),
    Engine("clarinet", "reed", "acoustic", 50, 89,
           {**VIBRATO, "vib_depth": (0.0, 0.004), "attack": (0.02, 0.12),
            "sustain": (0.7, 1.0), "sharp": (0.3, 0.9), "breath": (0.0, 0.15),
            "formant": (1000.0, 3000.0), "formant_q": (2.0, 6.0),
            "formant_mix": (0.1, 0.6), "tone": (3.0, 12.0)}, _clarinet),
    Engine("sax", "reed", "acoustic", 44, 84,
           {**VIBRATO, "attack": (0.02, 0.1), "sustain": (0.7, 1.0), "overshoot": (0.0, 0.3),
            "harms": (10.0, 60.0), "f1": (400.0, 800.0), "q1": (2.0, 6.0),
            "f2": (1200.0, 2500.0), "q2": (2.0, 8.0), "g2": (0.2, 0.8),
            "direct": (0.2, 0.8), "breath": (0.0, 0.2)}, _sax),
    Engine("free_reed", "reed", "acoustic", 41, 89,
           {**VIBRATO, "vib_depth": (0.0, 0.003), "attack": (0.01, 0.08),
            "wave": ["square", "pulse", "saw", "buzz"], "sharp": (0.5, 1.0),
            "duty": (0.1, 0.4), "musette": (1.002, 1.012), "second": (0.0, 0.9),
            "tremolo": (0.0, 0.3), "trem_hz": (4.0, 7.0), "tone": (4.0, 16.0),
            "formant": (800.0, 2500.0), "formant_mix": (0.0, 0.8)}, _free_reed),
    Engine("bowed", "string", "acoustic", 36, 96,
           {**VIBRATO, "vib_depth": (0.001, 0.008), "vib_delay": (0.05, 0.5),
            "jitter": (0.0, 0.002), "attack": (0.05, 0.4), "sustain": (0.7, 1.0),
            "sharp": (0.7, 1.0), "bow_noise": (0.0, 0.1), "body1": (250.0, 500.0),
            "q1": (2.0, 8.0), "body2": (500.0, 1200.0), "q2": (2.0, 8.0),
            "body3": (2000.0, 3500.0), "q3": (1.0, 4.0), "bodymix": (0.2, 0.8),
            "tone": (6.0, 20.0)}, _bowed),
    Engine("string_ensemble", "string", "synthetic", 36, 88,
           {**VIBRATO, "vib_depth": (0.0, 0.005), "attack": (0.1, 0.6),
            "sustain": (0.7, 1.0), "detune": (0.1, 0.5), "bal": (0.3, 0.8),
            "tone": (3.0, 10.0), "chorus": (0.3, 1.0)}, _string_ensemble),
    Engine("supersaw_lead", "synth_lead", "synthetic", 36, 96,
           {**VIBRATO, "attack": (0.003, 0.08), "decay": (0.1, 0.8), "sustain": (0.5, 1.0),
            "detune": (0.1, 0.7), "bal": (0.3, 0.9), "cutoff": (1.5, 8.0),
            "env_amount": (0.0, 6.0), "res": (0.0, 0.7)}, _supersaw_lead),
    Engine("pulse_lead", "synth_lead", "synthetic", 36, 96,
           {**VIBRATO, "attack": (0.003, 0.08), "decay": (0.1, 0.8), "sustain": (0.5, 1.0),
            "wave": ["pulse", "pulse", "square", "saw", "triangle"],
            "wave2": ["pulse", "square", "saw", "triangle"], "sharp": (0.5, 1.0),
            "duty": (0.15, 0.45), "pwm_hz": (0.2, 3.0), "pwm_depth": (0.0, 0.12),
            "detune": (1.0, 1.012), "mix": (0.0, 0.8), "cutoff": (1.5, 8.0),
            "env_amount": (0.0, 6.0), "q": (0.7, 4.0)}, _pulse_lead),
    Engine("fm_lead", "synth_lead", "synthetic", 36, 96,
           {**VIBRATO, "attack": (0.003, 0.08), "decay": (0.1, 0.8), "sustain": (0.5, 1.0),
            "ratio": [1, 2, 3], "index": (0.5, 4.0), "detune": (1.0, 1.008),
            "feedback": (0.0, 0.3), "mix": (0.0, 1.0)}, _fm_lead),
    Engine("voice_female", "vocal", "acoustic", 55, 84,
           {**VIBRATO, "vib_depth": (0.003, 0.015), "voice": ["soprano", "alto"],
            "vowel": VOWELS, "shift": (0.92, 1.08), "attack": (0.05, 0.3),
            "jitter": (0.0, 0.004), "warmth": (0.2, 1.0), "breath": (0.0, 0.1)}, _voice),
    Engine("voice_male", "vocal", "acoustic", 40, 69,
           {**VIBRATO, "vib_depth": (0.003, 0.015), "voice": ["tenor", "bass"],
            "vowel": VOWELS, "shift": (0.92, 1.08), "attack": (0.05, 0.3),
            "jitter": (0.0, 0.004), "warmth": (0.2, 1.0), "breath": (0.0, 0.1)}, _voice),
    Engine("synth_choir", "vocal", "synthetic", 45, 79,
           {**VIBRATO, "vib_depth": (0.0, 0.008), "voice": ["soprano", "alto", "tenor"],
            "vowel": VOWELS, "attack": (0.1, 0.5), "sustain": (0.7, 1.0),
            "detune": (0.05, 0.3), "bal": (0.5, 0.9), "width": (1.0, 3.0),
            "tone": (2500.0, 8000.0), "chorus": (0.3, 1.0)}, _synth_choir),
)

ENGINES_OF = {family: tuple(e for e in ENGINES if e.family == family) for family in FAMILIES}
BY_NAME = {e.name: e for e in ENGINES}
PYO_FAMILIES = tuple(f for f in FAMILIES if ENGINES_OF[f])


def _tail(o, signal, params: dict, cps: float):
    """What every engine's note goes through: a body resonance, a brightness low-pass, no DC,
    and the release after 3 s (a cubed linear fall over ``release`` seconds)."""
    body = o.EQ(signal, freq=params["body_hz"], q=0.7, boost=params["body_db"], type=0)
    bright = o.ButLP(body, min(max(params["bright_hz"], 3 * cps), 20000.0))
    gate = o.Linseg([(0, 1), (render.HOLD_SECONDS, 1),
                     (render.HOLD_SECONDS + params["release"], 0), (END, 0)]).play()
    return o.DCBlock(bright) * (gate * gate * gate)


def note_seed(inst: dict, pitch: int, velocity: int) -> int:
    """The seed of a note's random objects (noise), fixed by its name."""
    name = render.note_str(inst["instrument_str"], pitch, velocity)
    return 1 + zlib.crc32(name.encode()) % 2**30


def play_at(inst: dict, pitch: int, velocity: int, cps: float | None = None) -> np.ndarray:
    """One note of one instrument at 48 kHz, as its engine plays it at ``cps`` (by default
    the pitch's frequency)."""
    engine = BY_NAME[inst["engine"]]
    params, cps = inst["params"], cps or midi_cps(pitch)

    def make(o):
        return _tail(o, engine.build(o, params, cps, velocity / 127), params, cps)

    return perform(make, note_seed(inst, pitch, velocity))


def play(inst: dict, pitch: int, velocity: int) -> np.ndarray:
    """One note at 48 kHz, kept in tune (:func:`synth.in_tune`: a note that does not sound
    its pitch is played again with its frequency corrected; one that cannot comes back
    silent, and is rejected as such) and brought to a sane level."""
    y = play_at(inst, pitch, velocity)
    if np.isfinite(y).all() and np.abs(y).max() > 0:
        y = synth.in_tune(y, midi_cps(pitch), lambda cps: play_at(inst, pitch, velocity, cps))
    return synth.level(y)


def play_notes(notes: list[tuple[dict, int, int]]) -> list[np.ndarray]:
    """``(instrument, pitch, velocity)`` notes played in turn at 48 kHz, in this process."""
    return [play(inst, pitch, velocity) for inst, pitch, velocity in notes]


# one instrument's notes not on disk yet, in a render's worker
render_instrument = functools.partial(synth.render_with, play)


# --- what to render -------------------------------------------------------------------------

# one instrument: a value for each of an engine's parameters (and the common ones)
draw_params = functools.partial(synth.engine_params, COMMON)


def plan_instruments(source: PyoRender) -> list[dict]:
    """The instruments to render, each with its engine, parameters, name, held-out flag and
    notes; deterministic for the source's seed. Used by :meth:`PyoRender.render`."""
    return synth.plan_instruments(source, ENGINES_OF, draw_params, FIRST_INDEX, "pyo", "pyo")


# --- the source -----------------------------------------------------------------------------

@dataclass(frozen=True)
class PyoRender(synth.DrawnRender):
    """``instruments_per_family`` drawn instruments of each of ``families``, played by pyo's
    engines (:data:`ENGINES`)."""

    families: tuple[str, ...] = PYO_FAMILIES

    kind = "pyo"
    render_one = staticmethod(render_instrument)
    instrument_keys = INSTRUMENT_KEYS

    def stamp(self) -> dict:
        """What the rendered bytes depend on, as ``render.json`` beside the splits holds it
        (with pyo's version: its objects make the bytes)."""
        return json.loads(json.dumps({"engine_version": ENGINE_VERSION, "pyo": pyo_version(),
                                      **self.settings()}))

    def require_engine(self) -> None:
        _require_pyo()

    def plan(self) -> list[dict]:
        return plan_instruments(self)
