"""Faust physical models and synthesizers as a source: a synthesis lineage that is no
General MIDI sample bank (``instclf data render`` for a profile that names it).

One instrument is one seeded draw of one of its family's models (:data:`MODELS`): a register
(its pitch range) and every parameter the model exposes (body, excitation, brightness,
vibrato, envelope), each uniform in a range where the model still sounds like the family.
So a family has as many distinct instruments as one asks for, not one preset. The models
come from the Faust libraries that DawDreamer embeds with the Faust compiler
(``physmodels.lib``: bowed, blown, plucked and struck waveguide and modal models, the formant
singer; ``oscillators.lib``, ``vaeffects.lib``, ``filters.lib``: the synthesizers).

Each model is compiled once per process (an instrument's parameters are sliders of it, set
before each note), and every note plays from a cleared state: DawDreamer clears every delay
line and filter before each render, and the note's gate is the program's own clock (held
3 s, then released), so nothing of one note reaches the next. The rest is the soundfont
render's (:mod:`instclf.render`): 48 kHz, resampled to 16 kHz, peak-normalised by the note's
name, atomic writes, resumable, held-out instruments per family, ``render.json`` stamping
the settings (with DawDreamer's version: its Faust compiler and libraries make the bytes).
A note that is not finite, silent, or speaks only in its release is rejected and counted.

NSynth's source label follows what a model imitates: acoustic for models of acoustic
instruments (bowed, blown, plucked, struck, sung, piano, pipe organ), electronic for
electric ones (electric guitar and bass, electric piano, drawbar organ), synthetic for
synthesizers (leads, synth bass, synth brass). Instruments are numbered from
:data:`FIRST_NUMBER` within each family and source, so their names cannot meet the
soundfont render's.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from string import Template

import numpy as np

from .. import render, subsets
from ..config import FAMILIES, InstclfError
from . import synth

FAUST_VERSION = 1  # bump when a change to this module changes the rendered bytes
FIRST_NUMBER = 700  # instrument numbers 700-999 within a family and source (ids from 700,000)
HOLD_SAMPLES = render.HOLD_SECONDS * render.RENDER_RATE
NOTE_SAMPLES48 = (render.HOLD_SECONDS + render.RELEASE_SECONDS) * render.RENDER_RATE
BLOCK_SIZE = 512
WEAK_HOLD = 0.3  # a held part below this share of the note's peak: the model did not speak


# --- the models -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Model:
    """One Faust model of a family: registers (name -> lowest, highest MIDI pitch, and any
    constants the register fixes), parameter ranges, and its ``process`` (a
    :class:`string.Template` over the parameters)."""

    name: str
    family: str
    source: str
    registers: dict
    params: dict
    code: str
    weight: float = 1.0


# Shared by every model: the note's frequency and velocity (set per note), its clock, gate
# and vibrato. ``after(rt)`` is 1 while the note is held, then decays with time constant rt.
PRELUDE = """
pml = library("physmodels.lib")[maxLength = 16;];  // strings and tubes up to 16 m
freq = hslider("freq", 440, 8, 8000, 0.001);
gain = hslider("gain", 0.8, 0, 1, 0.001);
t = ba.time;
gate = t < $hold;
after(rt) = exp(0 - max(0, t - $hold) / (rt * ma.SR));
decay(t60) = exp(-6.91 * t / (t60 * ma.SR));
vib = 1 + $vib_depth * os.osc($vib_rate) * min(1, t / ($vib_delay * ma.SR + 1));
f = freq * vib;
body2 = _ <: _, fi.resonbp($body1, $q1, $bodymix), fi.resonbp($body2, $q2, $bodymix) :> _;
"""

NO_VIBRATO = {"vib_depth": (0, 0), "vib_rate": (5, 5), "vib_delay": (0, 0)}
NO_BODY = {"body1": (200, 200), "q1": (1, 1), "body2": (1000, 1000), "q2": (1, 1),
           "bodymix": (0, 0)}
BODY = {"body1": (180, 650), "q1": (2, 8), "body2": (900, 3200), "q2": (3, 10),
        "bodymix": (0.1, 0.9)}
WIND_VIBRATO = {"vib_depth": (0, 0.006), "vib_rate": (4.5, 6.5), "vib_delay": (0.1, 0.8)}
STRING_VIBRATO = {"vib_depth": (0.001, 0.007), "vib_rate": (4.5, 6.8), "vib_delay": (0.05, 0.5)}


def _model(name, family, source, registers, params, code, weight=1.0) -> Model:
    return Model(name, family, source, registers, {**NO_VIBRATO, **NO_BODY, **params}, code,
                 weight)


# A modal bar: a strike through the modes at these ratios of the fundamental.
MODAL_BAR = """
strike = pml.strikeModel(10, $cutoff, $sharpness, 0.3 + 0.7 * gain, gate);
mode(r, t60, g) = pml.modeFilter(min(freq * r, 20000), t60 * pow(440 / freq, 0.3), g);
tremolo = 1 - $trem_depth * (0.5 + 0.5 * os.osc($trem_rate));
process = strike <: mode(1, $t1, 1), mode($r2, $t2, $g2), mode($r3, $t3, $g3),
    mode($r4, $t4, $g4) :> _ * tremolo * after($release) : fi.lowpass(2, $bright);
"""

# A plucked or struck waveguide string of any length (Karplus-Strong with a two-point average
# in the loop), for the low registers the library's strings do not reach.
STRING_LOOP = """
loop(f0, t60) = + ~ (de.fdelay(8192, ma.SR / f0 - 1.5) : (_ <: _, mem :> /(2))
    : *(pow(0.001, 1 / (t60 * f0))));
"""

_DRAWBARS = (0.5, 1.5, 1, 2, 3, 4, 5, 6, 8)  # 16', 5 1/3', 8', 4', 2 2/3', 2', 1 3/5', 1 1/3', 1'
_ORGAN_TONE = " + ".join(f"$bar{k} * os.osc(f * {r})" for k, r in enumerate(_DRAWBARS))

MODELS = (
    _model("bowed string (pm.violinModel)", "string", "acoustic",
           {"violin": (55, 82), "viola": (48, 80), "cello": (36, 76), "double bass": (28, 64)},
           {**STRING_VIBRATO, **BODY, "attack": (0.04, 0.35), "release": (0.1, 0.5),
            "pressure": (0.25, 0.75), "position": (0.1, 0.8), "bright": (2500, 9000)},
           """
bow = en.asr($attack, 1, $release, gate) * (0.55 + 0.45 * gain);
process = pml.violinModel(pml.f2l(f), $pressure, bow, $position) : body2
    : fi.lowpass(2, $bright);
"""),
    _model("clarinet (pm.clarinetModel)", "reed", "acoustic",
           {"clarinet": (50, 82), "bass clarinet": (38, 72), "soprano": (58, 82)},
           {**WIND_VIBRATO, "attack": (0.02, 0.15), "release": (0.05, 0.3),
            "pressure": (0.5, 0.75), "breath": (0.01, 0.08), "breath_cut": (1500, 5000),
            "stiffness": (0.2, 0.7), "bell": (0.2, 0.8), "bright": (3000, 10000)},
           """
env = en.asr($attack, 1, $release, gate);
blow = pml.blower(env * $pressure * (0.8 + 0.2 * gain), $breath, $breath_cut, $vib_rate,
    $vib_depth * 4 * env);
process = pml.clarinetModel(pml.f2l(freq), blow, $stiffness, $bell) : fi.lowpass(2, $bright);
"""),
    _model("free reed (pulse through a reed resonance)", "reed", "acoustic",
           {"accordion": (41, 89), "harmonica": (60, 88)},
           {**WIND_VIBRATO, **BODY, "attack": (0.01, 0.08), "release": (0.03, 0.2),
            "duty": (0.15, 0.45), "musette": (0, 0.8), "detune": (1.002, 1.012),
            "tremolo": (0, 0.3), "trem_rate": (4, 7), "bright": (1500, 6000)},
           """
reed(x) = os.pulsetrain(x, $duty);
env = en.asr($attack, 1, $release, gate) * (0.5 + 0.5 * gain);
process = (reed(f) + $musette * reed(f * $detune)) * env
    * (1 - $tremolo * (0.5 + 0.5 * os.osc($trem_rate))) : body2 : fi.lowpass(2, $bright);
""", weight=0.5),
    _model("flute (pm.fluteModel)", "flute", "acoustic",
           {"flute": (60, 84), "alto flute": (57, 79)},
           {**WIND_VIBRATO, "attack": (0.03, 0.2), "release": (0.05, 0.3),
            "pressure": (0.75, 1.0), "breath": (0.01, 0.1), "breath_cut": (2000, 8000),
            "bright": (4000, 12000)},
           """
// the model's tube sounds at 1/f = 0.688/f_tube + 0.709 ms (measured at 48 kHz, mouth 0.5)
tube = 0.688 / (1 / freq - 0.000709);
env = en.asr($attack, 1, $release, gate);
blow = pml.blower(env * $pressure * (0.8 + 0.2 * gain), $breath, $breath_cut, $vib_rate,
    $vib_depth * 6 * env);
process = pml.fluteModel(pml.f2l(tube), 0.5, blow) : fi.lowpass(2, $bright);
"""),
    _model("breathy pipe (sine partials and tuned breath noise)", "flute", "acoustic",
           {"pan flute": (60, 96), "ocarina": (60, 84), "recorder": (60, 96)},
           {**WIND_VIBRATO, "attack": (0.02, 0.15), "release": (0.03, 0.25),
            "h2": (0, 0.3), "h3": (0, 0.15), "noise": (0.05, 0.4), "noise_q": (5, 40),
            "chiff": (0, 0.6)},
           """
env = en.asr($attack, 1, $release, gate) * (0.6 + 0.4 * gain);
tone = os.osc(f) + $h2 * os.osc(2 * f) + $h3 * os.osc(3 * f);
breath = no.noise : fi.resonbp(f, $noise_q, $noise);
chiff = no.noise : fi.bandpass(1, f * 2, f * 6) : *($chiff * decay(0.05));
process = (tone + breath) * env + chiff;
""", weight=0.5),
    # pm.brassModel does not speak at the pitch asked for (measured), so brass is a
    # source-filter model: its brightness follows its loudness, as a brass player's does
    _model("brass (buzzing source, loudness-driven brightness, bell)", "brass", "acoustic",
           {"trumpet": (54, 86), "trombone": (40, 72), "horn": (34, 77), "tuba": (28, 58)},
           {**WIND_VIBRATO, "attack": (0.02, 0.1), "release": (0.05, 0.25),
            "brassiness": (2, 10), "buzz": (0, 0.3), "bell": (0.5, 2), "mute": (0, 0.6),
            "mute_freq": (800, 2500)},
           """
env = en.asr($attack, 1, $release, gate) * (0.5 + 0.5 * gain);
// brightness grows with loudness: the cutoff follows the envelope (the brass signature)
fc = min(18000, f * (1 + $brassiness * env * env));
buzz = no.noise : fi.resonbp(f, 2, $buzz * decay(0.08));
bell = fi.highpass(1, f * $bell);
muted = _ <: *(1 - $mute), fi.resonbp($mute_freq, 4, $mute) :> _;
process = (os.sawtooth(f) + buzz) * env : fi.lowpass(3, fc) : bell : muted;
"""),
    _model("synth brass (sawtooth, opening filter)", "brass", "synthetic",
           {"synth brass": (36, 84)},
           {**WIND_VIBRATO, "attack": (0.03, 0.15), "decay": (0.2, 0.8), "sustain": (0.6, 0.95),
            "release": (0.05, 0.3), "detune": (1.001, 1.008), "cutoff": (1.5, 4),
            "env_amount": (2, 8), "res": (0.1, 0.5)},
           """
env = en.adsr($attack, $decay, $sustain, $release, gate);
fc = min(16000, f * $cutoff * (1 + $env_amount * env * (0.4 + 0.6 * gain)));
process = (os.sawtooth(f) + os.sawtooth(f * $detune)) * env : ve.moog_vcf_2bn($res, fc);
""", weight=0.4),
    _model("steel-string guitar (pm.guitar)", "guitar", "acoustic",
           {"guitar": (40, 84)},
           {**BODY, "pluck": (0.1, 0.9), "release": (0.05, 0.3), "bright": (2500, 9000)},
           """
process = pml.guitar(pml.f2l(freq), $pluck, 0.4 + 0.6 * gain, gate) * after($release) : body2
    : fi.lowpass(2, $bright);
"""),
    _model("nylon-string guitar (pm.nylonGuitar)", "guitar", "acoustic",
           {"guitar": (40, 84)},
           {**BODY, "pluck": (0.1, 0.9), "release": (0.05, 0.3), "bright": (2000, 7000)},
           """
process = pml.nylonGuitar(pml.f2l(freq), $pluck, 0.4 + 0.6 * gain, gate) * after($release)
    : body2 : fi.lowpass(2, $bright);
"""),
    _model("electric guitar (pm.elecGuitar)", "guitar", "electronic",
           {"guitar": (40, 86)},
           {"pluck": (0.05, 0.95), "release": (0.05, 0.3), "drive": (0, 0.5),
            "tone": (2000, 9000)},
           """
process = pml.elecGuitar(pml.f2l(freq), $pluck, 1, 0.4 + 0.6 * gain, gate) * after($release)
    : ef.cubicnl($drive, 0) : fi.lowpass(2, $tone);
"""),
    _model("electric bass (plucked waveguide string)", "bass", "electronic",
           {"bass": (28, 67)},
           {"t60": (1.5, 6), "pluck_cut": (2, 12), "pickup": (0.05, 0.3), "release": (0.05, 0.2),
            "tone": (800, 4000)},
           STRING_LOOP + """
pluck = no.noise : fi.lowpass(2, freq * $pluck_cut * (0.5 + 0.5 * gain))
    : *(en.ar(0.0005, 0.003, gate));
string = pluck : loop(freq, $t60);
process = string - (string : de.fdelay(8192, $pickup * ma.SR / freq)) : *(after($release))
    : fi.lowpass(2, $tone);
"""),
    _model("acoustic bass (plucked string and body)", "bass", "acoustic",
           {"double bass": (28, 67)},
           {**BODY, "t60": (0.8, 3), "pluck_cut": (1.5, 6), "release": (0.05, 0.25),
            "tone": (600, 2500)},
           STRING_LOOP + """
pluck = no.noise : fi.lowpass(2, freq * $pluck_cut * (0.5 + 0.5 * gain))
    : *(en.ar(0.001, 0.006, gate));
process = pluck : loop(freq, $t60) : body2 : *(after($release)) : fi.lowpass(2, $tone);
""", weight=0.5),
    _model("synth bass (oscillators through a Moog filter)", "bass", "synthetic",
           {"synth bass": (24, 60)},
           {"square": (0, 1), "sub": (0, 0.8), "attack": (0.002, 0.02), "decay": (0.1, 1.0),
            "sustain": (0.3, 0.9), "release": (0.03, 0.2), "cutoff": (1.5, 5),
            "env_amount": (1, 12), "env_decay": (0.05, 0.6), "res": (0.1, 0.7)},
           """
env = en.adsr($attack, $decay, $sustain, $release, gate);
fc = min(12000, freq * $cutoff * (1 + $env_amount * decay($env_decay) * (0.3 + 0.7 * gain)));
osc = (1 - $square) * os.sawtooth(freq) + $square * os.square(freq) + $sub * os.osc(freq / 2);
process = osc * env : ve.moog_vcf_2bn($res, fc);
"""),
    _model("marimba (pm.marimbaBarModel, resonator tube)", "mallet", "acoustic",
           {"marimba": (45, 96)},
           {"position": (0, 4), "cutoff": (2000, 9000), "sharpness": (0.1, 0.8),
            "t60": (0.4, 1.5), "release": (0.1, 0.4)},
           """
process = pml.strikeModel(10, $cutoff, $sharpness, 0.3 + 0.7 * gain, gate)
    : pml.marimbaBarModel(freq, $position, $t60 * pow(261.6 / freq, 0.5), 1, 5)
    : pml.marimbaResTube(pml.f2l(freq)) : *(after($release));
"""),
    _model("vibraphone (modal bar, tremolo)", "mallet", "acoustic",
           {"vibraphone": (53, 89)},
           {"r2": (3.9, 4.1), "r3": (9.8, 10.4), "r4": (17, 19), "t1": (2, 6), "t2": (1, 3),
            "t3": (0.3, 1.2), "t4": (0.1, 0.5), "g2": (0.1, 0.5), "g3": (0.05, 0.3),
            "g4": (0, 0.1), "cutoff": (1500, 6000), "sharpness": (0.2, 0.8),
            "trem_depth": (0, 0.6), "trem_rate": (3, 7), "release": (0.2, 0.8),
            "bright": (4000, 12000)}, MODAL_BAR),
    _model("glockenspiel (modal free bar)", "mallet", "acoustic",
           {"glockenspiel": (79, 108)},
           {"r2": (2.7, 2.8), "r3": (5.3, 5.5), "r4": (8.8, 9.1), "t1": (1, 4), "t2": (0.5, 2),
            "t3": (0.2, 1), "t4": (0.1, 0.5), "g2": (0.2, 0.7), "g3": (0.1, 0.4),
            "g4": (0.05, 0.2), "cutoff": (4000, 12000), "sharpness": (0.05, 0.4),
            "trem_depth": (0, 0), "trem_rate": (5, 5), "release": (0.1, 0.5),
            "bright": (8000, 16000)}, MODAL_BAR),
    _model("xylophone (modal bar, short)", "mallet", "acoustic",
           {"xylophone": (65, 108)},
           {"r2": (2.9, 3.1), "r3": (5.9, 6.3), "r4": (9.5, 10.5), "t1": (0.3, 1.2),
            "t2": (0.1, 0.5), "t3": (0.05, 0.3), "t4": (0.03, 0.15), "g2": (0.2, 0.6),
            "g3": (0.05, 0.3), "g4": (0, 0.15), "cutoff": (3000, 10000),
            "sharpness": (0.05, 0.4), "trem_depth": (0, 0), "trem_rate": (5, 5),
            "release": (0.05, 0.3), "bright": (5000, 14000)}, MODAL_BAR),
    _model("piano (three hammered waveguide strings)", "keyboard", "acoustic",
           {"piano": (21, 108)},
           {**BODY, "detune": (0.0003, 0.002), "t60": (3, 10), "hardness": (4, 20),
            "release": (0.05, 0.2), "bright": (3000, 12000)},
           STRING_LOOP + """
t60 = $t60 * pow(261.6 / freq, 0.6);
hammer = no.noise : fi.lowpass(2, min(18000, freq * $hardness * (0.3 + 0.7 * gain)))
    : *(en.ar(0.0005, 0.002 + 0.002 * (1 - gain), gate));
process = hammer <: loop(freq, t60), loop(freq * (1 + $detune), t60),
    loop(freq * (1 - $detune), t60) :> body2 : *(after($release)) : fi.lowpass(2, $bright);
"""),
    _model("electric piano (FM tine)", "keyboard", "electronic",
           {"electric piano": (28, 103)},
           {"ratio": (0.99, 1.01), "index": (0.5, 4), "index_t60": (0.2, 2), "t60": (2, 8),
            "tine": (0, 0.4), "tine_ratio": (12, 16), "tremolo": (0, 0.4),
            "trem_rate": (3, 6), "release": (0.05, 0.3), "bright": (3000, 10000)},
           """
mod = os.osc(freq * $ratio) * freq * $ratio * $index * (0.3 + 0.7 * gain)
    * decay($index_t60);
tine = os.osc(freq * $tine_ratio) * $tine * gain * decay(0.08);
process = (os.osc(freq + mod) + tine) * decay($t60 * pow(261.6 / freq, 0.5))
    * (1 - $tremolo * (0.5 + 0.5 * os.osc($trem_rate))) * after($release)
    : fi.lowpass(2, $bright);
"""),
    _model("drawbar organ (additive, click, rotary)", "organ", "electronic",
           {"organ": (36, 96)},
           {**{f"bar{k}": (0, 1) for k in range(len(_DRAWBARS))}, "vib_depth": (0, 0.004),
            "vib_rate": (5.5, 7), "vib_delay": (0, 0), "click": (0, 0.3),
            "perc": (0, 0.6), "perc_ratio": (2, 3), "tremolo": (0, 0.3),
            "release": (0.01, 0.08), "bright": (3000, 12000)},
           f"""
env = en.asr(0.004, 1, $release, gate);
click = no.noise : fi.bandpass(1, 1000, 6000) : *($click * decay(0.006));
perc = $perc * os.osc(f * $perc_ratio) * decay(0.6);
process = (({_ORGAN_TONE}) + perc) * env * (0.5 + 0.5 * gain)
    * (1 - $tremolo * (0.5 + 0.5 * os.osc($vib_rate))) + click : fi.lowpass(2, $bright);
"""),
    _model("pipe organ (flue ranks, chiff)", "organ", "acoustic",
           {"pipe organ": (24, 96)},
           {"rolloff": (0.3, 0.8), "even": (0.2, 1), "octave": (0, 0.7), "fifth": (0, 0.4),
            "celeste": (1.0005, 1.004), "chiff": (0, 0.3), "attack": (0.03, 0.15),
            "release": (0.05, 0.3), "bright": (2500, 9000)},
           """
pipe(x) = os.osc(x) + $even * $rolloff * os.osc(2 * x) + pow($rolloff, 2) * os.osc(3 * x)
    + $even * pow($rolloff, 3) * os.osc(4 * x) + pow($rolloff, 4) * os.osc(5 * x);
env = en.asr($attack, 1, $release, gate);
chiff = no.noise : fi.bandpass(1, freq * 2, freq * 8) : *($chiff * decay(0.06));
process = ((pipe(freq) + 0.5 * pipe(freq * $celeste) + $octave * pipe(2 * freq)
    + $fifth * pipe(3 * freq)) * env * (0.6 + 0.4 * gain) + chiff) : fi.lowpass(2, $bright);
"""),
    _model("synth lead (oscillators through a Moog filter)", "synth_lead", "synthetic",
           {"lead": (36, 96)},
           {**WIND_VIBRATO, "saw": (0, 1), "square": (0, 1), "triangle": (0, 0.6),
            "detune": (1.0, 1.012), "attack": (0.002, 0.1), "decay": (0.05, 0.8),
            "sustain": (0.4, 1), "release": (0.03, 0.4), "cutoff": (1, 6),
            "env_amount": (0, 8), "res": (0.1, 0.85)},
           """
env = en.adsr($attack, $decay, $sustain, $release, gate);
osc = $saw * os.sawtooth(f) + $square * os.square(f * $detune)
    + $triangle * os.triangle(f / $detune) + 0.05 * os.osc(f);
fc = min(16000, f * $cutoff * (1 + $env_amount * env * (0.4 + 0.6 * gain)));
process = osc * env : ve.moog_vcf_2bn($res, fc);
"""),
    _model("singer (pm.SFFormantModelBP)", "vocal", "acoustic",
           {"alto": (53, 77, {"voice": 0}), "bass": (40, 64, {"voice": 1}),
            "countertenor": (55, 76, {"voice": 2}), "soprano": (60, 84, {"voice": 3}),
            "tenor": (48, 72, {"voice": 4})},
           {**STRING_VIBRATO, "vowel": (0, 4), "fricative": (0, 0.15), "attack": (0.05, 0.3),
            "release": (0.1, 0.4), "bright": (3000, 9000)},
           """
env = en.asr($attack, 1, $release, gate) * (0.6 + 0.4 * gain);
process = pml.SFFormantModelBP($voice, $vowel, $fricative, f, env) : fi.lowpass(2, $bright);
"""),
    _model("singer (pm.SFFormantModelFofSmooth)", "vocal", "acoustic",
           {"alto": (53, 77, {"voice": 0}), "bass": (40, 64, {"voice": 1}),
            "countertenor": (55, 76, {"voice": 2}), "soprano": (60, 84, {"voice": 3}),
            "tenor": (48, 72, {"voice": 4})},
           {**STRING_VIBRATO, "vowel": (0, 4), "attack": (0.05, 0.3), "release": (0.1, 0.4),
            "bright": (3000, 9000)},
           """
env = en.asr($attack, 1, $release, gate) * (0.6 + 0.4 * gain);
process = pml.SFFormantModelFofSmooth($voice, $vowel, f, env) : fi.lowpass(2, $bright);
"""),
)

FAUST_FAMILIES = tuple(f for f in FAMILIES if any(m.family == f for m in MODELS))


def family_models(family: str) -> list[Model]:
    """The models of one family (:func:`draw_instrument`)."""
    models = [m for m in MODELS if m.family == family]
    if not models:
        raise InstclfError(f"no Faust model for family {family!r}; use some of "
                           f"{', '.join(FAUST_FAMILIES)}")
    return models


def draw_instrument(family: str, index: int, seed: int) -> dict:
    """Instrument ``index`` of a family: a model, a register and its parameters, drawn from
    the seed alone (the same draw whatever else is rendered)."""
    rng = subsets.stable_rng(seed, "faust", family, index)
    models = family_models(family)
    weights = np.array([m.weight for m in models])
    model = models[rng.choice(len(models), p=weights / weights.sum())]
    return make_instrument(model, list(model.registers)[rng.integers(len(model.registers))], rng)


def make_instrument(model: Model, register: str, rng: np.random.Generator) -> dict:
    """An instrument of a model in one register, its parameters drawn from ``rng``."""
    low, high, *fixed = model.registers[register]
    params = {k: float(f"{rng.uniform(lo, hi):.6g}") for k, (lo, hi) in model.params.items()}
    params.update(*fixed)
    return {"family": model.family, "source": model.source, "model": model.name,
            "register": register, "preset_name": f"{model.name}, {register}",
            "pitches": list(range(low, high + 1)), "params": params}


def _number(x: float) -> str:
    return np.format_float_positional(float(x), trim="0")


def parameter_ranges(model: Model) -> dict[str, tuple[float, float]]:
    """Each parameter's range, with those a register fixes (their range over the registers)."""
    fixed = [values for _, _, *rest in model.registers.values() for values in rest]
    keys = {k for values in fixed for k in values}
    return {**model.params, **{k: (min(v[k] for v in fixed), max(v[k] for v in fixed))
                               for k in keys}}


def dsp_code(model: Model) -> str:
    """The Faust program of a model: each parameter that varies is a slider, set per
    instrument, so a model compiles once per process whatever the instruments."""
    values = {k: _number(lo) if lo == hi else
              f'hslider("{k}", {_number(lo)}, {_number(lo)}, {_number(hi)}, 0.000001)'
              for k, (lo, hi) in parameter_ranges(model).items()}
    code = model.code.replace("process =", "voice =")  # then without DC, below 10 Hz
    return Template(PRELUDE + code + "process = voice : fi.dcblockerat(10);\n").substitute(
        values, hold=HOLD_SAMPLES)


def plan_dataset(source: FaustRender) -> list[dict]:
    """The instruments to render, each with its name, held-out flag and notes.

    Deterministic for the source's seed. Used by :meth:`FaustRender.render`.
    """
    plan, counters = [], {}
    for family in source.families:
        members = [draw_instrument(family, k, source.seed)
                   for k in range(source.instruments_per_family)]
        flags = subsets.heldout_flags(len(members), source.heldout_fraction, source.seed, family)
        for inst, heldout in zip(members, flags):
            number = counters.setdefault((family, inst["source"]), FIRST_NUMBER)
            if number > 999:
                raise InstclfError(f"more than {1000 - FIRST_NUMBER} Faust instruments of "
                                   f"{family} {inst['source']}; lower instruments_per_family")
            counters[(family, inst["source"])] += 1
            inst.update(heldout=heldout, seed=source.seed,
                        instrument=FIRST_NUMBER * 1000 + len(plan),  # unique across sources
                        instrument_str=f"{family}_{inst['source']}_{number:03d}")
            inst["notes"] = render._choose_notes(inst, source)
            plan.append(inst)
    return plan


# --- rendering ------------------------------------------------------------------------------

MISSING = ("the Faust source needs DawDreamer; install it with: "
           ".venv/bin/pip install 'dawdreamer>=0.8.3,<0.10' (or make venv)")


def _require_dawdreamer() -> None:
    """Fail clearly when DawDreamer is missing, without importing it here: importing it in a
    process that has loaded TensorFlow crashes that process (both carry LLVM), so only the
    spawned render workers import it."""
    if importlib.util.find_spec("dawdreamer") is None:
        raise InstclfError(MISSING)


def _dawdreamer():
    try:
        import dawdreamer
    except ImportError:
        raise InstclfError(MISSING)
    return dawdreamer


def dawdreamer_version() -> str | None:
    """The installed DawDreamer (its Faust compiler and libraries make the bytes)."""
    try:
        return importlib.metadata.version("dawdreamer")
    except importlib.metadata.PackageNotFoundError:
        return None


class Voice:
    """One model compiled once; :meth:`play` renders a note of one of its instruments from a
    cleared state (DawDreamer clears every delay line and filter before each render)."""

    def __init__(self, model: Model):
        daw = _dawdreamer()
        self.engine = daw.RenderEngine(render.RENDER_RATE, BLOCK_SIZE)
        self.processor = self.engine.make_faust_processor("faust")
        try:
            self.processor.set_dsp_string(dsp_code(model))
            self.processor.compile()
        except RuntimeError as error:
            raise InstclfError(f"Faust could not compile the model {model.name!r}: {error}")
        self.engine.load_graph([(self.processor, [])])
        self.index = {d["name"].rsplit("/", 1)[-1]: d["index"]
                      for d in self.processor.get_parameters_description()}

    def play(self, inst: dict, pitch: int, velocity: int) -> np.ndarray:
        """One note of ``inst`` at 48 kHz, scaled to at most half of full scale (the models'
        levels differ; :func:`render.finish_note` normalises). A note whose held part is much
        quieter than its release (a blown model that only speaks while its pressure falls)
        comes back silent, so it is rejected and counted as such."""
        values = {**inst["params"], "freq": 440.0 * 2 ** ((pitch - 69) / 12),
                  "gain": velocity / 127}
        for name, index in self.index.items():
            self.processor.set_parameter(index, values[name])
        self.engine.render(NOTE_SAMPLES48 / render.RENDER_RATE)
        y = np.asarray(self.engine.get_audio(), dtype=np.float64)[0, :NOTE_SAMPLES48]
        if not np.isfinite(y).all():
            return y
        peak = float(np.abs(y).max())
        if np.abs(y[:HOLD_SAMPLES]).max() < WEAK_HOLD * peak:
            return np.zeros_like(y)
        return y * (0.5 / peak) if peak > 0.5 else y


_VOICES: dict[str, Voice] = {}


def voice_for(inst: dict) -> Voice:
    """The compiled model of an instrument (compiled on first use in this process)."""
    if inst["model"] not in _VOICES:
        _VOICES[inst["model"]] = Voice(next(m for m in MODELS if m.name == inst["model"]))
    return _VOICES[inst["model"]]


def play_notes(notes: list[tuple[dict, int, int]]) -> list[np.ndarray]:
    """``(instrument, pitch, velocity)`` notes played in turn at 48 kHz, in this process.

    Meant for a spawned process (``tests/test_faust_source.py``): DawDreamer must not share
    a process with Csound's engine (see :func:`instclf.render.render_plan`).
    """
    return [voice_for(inst).play(inst, pitch, velocity) for inst, pitch, velocity in notes]


def render_instrument(inst: dict, root: Path) -> dict:
    """Render one instrument's notes that are not on disk yet (workers of ``render``)."""
    return render.render_notes(inst, root, lambda pitch, velocity: voice_for(inst).play(
        inst, pitch, velocity))


INSTRUMENT_KEYS = ("family", "source", "instrument", "model", "register", "preset_name",
                   "params")


@dataclass(frozen=True)
class FaustRender(synth.DrawnRender):
    """``instruments_per_family`` drawn instruments of each of ``families``, played by the
    Faust library's physical models through DawDreamer."""

    families: tuple[str, ...] = FAUST_FAMILIES
    instruments_per_family: int = 10

    kind = "faust"
    render_one = staticmethod(render_instrument)
    instrument_keys = INSTRUMENT_KEYS

    def stamp(self) -> dict:
        """What the rendered bytes depend on; stored as ``render.json`` beside the splits."""
        return {"faust_version": FAUST_VERSION, "dawdreamer": dawdreamer_version(),
                "families": list(self.families),
                "instruments_per_family": self.instruments_per_family,
                "notes_per_instrument": self.notes_per_instrument,
                "velocities": list(self.velocities), "heldout_fraction": self.heldout_fraction,
                "seed": self.seed}

    def require_engine(self) -> None:
        _require_dawdreamer()

    def plan(self) -> list[dict]:
        return plan_dataset(self)
