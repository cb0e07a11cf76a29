"""What the drawn-instrument sources share (:mod:`instclf.sources.csound`,
:mod:`instclf.sources.faust`, :mod:`instclf.sources.pyo_synth`): their base class
:class:`DrawnRender`; pitch, tuning and level checks of a 48 kHz note, the seeded draw of an
engine's parameters, the plan of drawn instruments, and sung formants (Csound and pyo).

A drawn source has engines, each of one family (``engine.family``, ``engine.source``, its
pitch range ``engine.low`` to ``engine.high``); one instrument is one seeded draw of an
engine's parameters. The notes then go the way of every rendered source
(:func:`instclf.render.render_notes`): 16 kHz, peak-normalised by name, written atomically,
resumable, a share of each family's instruments held out.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from .. import render, subsets
from ..config import FAMILIES, NSYNTH_VELOCITIES, InstclfError
from .base import Source

TUNING_TRIES, IN_TUNE_CENTS = 4, 25  # a tuned engine's note: renders at most, and accepted


def midi_cps(pitch: float) -> float:
    """The frequency of a MIDI pitch (A4 = 440 Hz)."""
    return 440.0 * 2 ** ((pitch - 69) / 12)


def sounding_frequency(y: np.ndarray, cps: float, semitones: float = 3.0) -> float | None:
    """The frequency of the strongest partial within ``semitones`` of ``cps`` in the held part
    of a 48 kHz note; None when the note has no such partial (it plays another note)."""
    rate = render.RENDER_RATE
    held = y[rate // 2:int(2.5 * rate)]
    spectrum = np.abs(np.fft.rfft(held * np.hanning(len(held)), 1 << 18))
    freqs = np.fft.rfftfreq(1 << 18, 1 / rate)
    band = np.flatnonzero((freqs > cps * 2 ** (-semitones / 12))
                          & (freqs < cps * 2 ** (semitones / 12)))
    k = band[np.argmax(spectrum[band])]
    if not spectrum[k] or spectrum[k] < 0.05 * spectrum.max():
        return None
    a, b, c = np.log(spectrum[k - 1:k + 2] + 1e-30)  # the peak between bins (parabola)
    return float(freqs[k] + (a - c) / (2 * (a - 2 * b + c)) * freqs[1])


def level(y: np.ndarray) -> np.ndarray:
    """A float engine has no full scale: a note of a sane level is brought to a peak of 0.5;
    others pass unchanged, so that :func:`render.finish_note` rejects them (silent below
    -80 dB, clipped when it ran away, not finite when the model blew up)."""
    peak = float(np.abs(y).max()) if np.isfinite(y).all() else np.inf
    return y * (0.5 / peak) if render.SILENT_PEAK <= peak <= 1e3 else y


def in_tune(y: np.ndarray, cps: float, replay: Callable[[float], np.ndarray]) -> np.ndarray:
    """A note at ``cps`` kept in tune: played again at a frequency corrected by what it
    sounded (``replay(frequency)``), up to :data:`TUNING_TRIES` renders in all (a waveguide's
    pitch moves in steps at high pitches); the best one, or silence when none is within
    :data:`IN_TUNE_CENTS` of ``cps`` (so that the note is rejected)."""
    played = cps
    best, best_cents = None, IN_TUNE_CENTS
    for attempt in range(TUNING_TRIES):
        sounding = sounding_frequency(y, cps)
        if sounding is None:
            break
        cents = abs(1200 * np.log2(sounding / cps))
        if cents <= best_cents:
            best, best_cents = y, cents
        if cents <= 5 or attempt == TUNING_TRIES - 1:
            break
        played *= cps / sounding
        y = replay(played)
    return np.zeros_like(y) if best is None else best


def draw_params(ranges: dict, rng: np.random.Generator) -> dict:
    """One instrument: a value for each parameter of ``ranges`` (``(low, high)``: uniform,
    rounded to 4 decimals; a list: one of its items), drawn in order from ``rng``."""
    params = {}
    for key, spec in ranges.items():
        if isinstance(spec, list):
            params[key] = spec[int(rng.integers(len(spec)))]
        else:
            params[key] = round(float(rng.uniform(*spec)), 4)
    return params


def engine_params(common: dict, engine, rng: np.random.Generator) -> dict:
    """One instrument of ``engine``: a value for each of its parameters (``engine.ranges``)
    and the ``common`` ones (Csound's and pyo's ``draw_params``, bound with
    ``functools.partial``)."""
    return draw_params({**common, **engine.ranges}, rng)


def render_with(play: Callable, inst: dict, root: Path) -> dict:
    """Render one instrument's notes that are not on disk yet with ``play(inst, pitch,
    velocity)``, in a render's worker: Csound's and pyo's ``render_instrument``, bound with
    ``functools.partial`` (a partial of module functions pickles for the workers)."""
    return render.render_notes(inst, root, lambda pitch, velocity: play(inst, pitch, velocity))


def plan_instruments(source, engines_of: dict, draw: Callable, first_index: int,
                     key: str, title: str) -> list[dict]:
    """The instruments of a drawn source, each with its engine, parameters, name, held-out
    flag and notes; deterministic for the source's seed (``source``: its
    ``instruments_per_family``, ``heldout_fraction``, ``seed``, ``families``, and what
    :func:`render._choose_notes` reads).

    Instrument ``k`` of a family plays its family's engines in turn (``engines_of``), its
    parameters ``draw(engine, rng)`` from a generator of the seed, ``key``, family and ``k``
    alone; it is named ``<family>_<source>_<first_index + k>`` (numbers of a block the other
    sources never reach) with the id ``(first_index + family's index) * 1000 + k``.
    """
    if source.instruments_per_family > 1000:
        raise InstclfError(f"a {title} render numbers at most 1000 instruments per family")
    plan = []
    for family in source.families:
        engines = engines_of.get(family, ())
        if not engines:
            raise InstclfError(f"no {title} engine plays family {family!r}")
        flags = subsets.heldout_flags(source.instruments_per_family, source.heldout_fraction,
                                      source.seed, family)
        for k, heldout in enumerate(flags):
            engine = engines[k % len(engines)]
            rng = subsets.stable_rng(source.seed, key, family, k)
            inst = {
                "engine": engine.name, "family": family, "source": engine.source,
                "params": draw(engine, rng), "heldout": heldout, "seed": source.seed,
                "instrument": (first_index + FAMILIES.index(family)) * 1000 + k,
                "instrument_str": f"{family}_{engine.source}_{first_index + k}",
                "pitches": list(range(engine.low, engine.high + 1)),
            }
            inst["notes"] = render._choose_notes(inst, source)
            plan.append(inst)
    return plan


# formants of five vowels sung by four voices (Csound manual, appendix "Formant values")
#      vowel   frequencies (Hz)                amplitudes (dB)        bandwidths (Hz)
FORMANT_TABLE = """
soprano a    800  1150  2900  3900  4950     0  -6 -32 -20 -50    80  90 120 130 140
soprano e    350  2000  2800  3600  4950     0 -20 -15 -40 -56    60 100 120 150 200
soprano i    270  2140  2950  3900  4950     0 -12 -26 -26 -44    60  90 100 120 120
soprano o    450   800  2830  3800  4950     0 -11 -22 -22 -50    70  80 100 130 135
soprano u    325   700  2700  3800  4950     0 -16 -35 -40 -60    50  60 170 180 200
alto    a    800  1150  2800  3500  4950     0  -4 -20 -36 -60    80  90 120 130 140
alto    e    400  1600  2700  3300  4950     0 -24 -30 -35 -60    60  80 120 150 200
alto    i    350  1700  2700  3700  4950     0 -20 -30 -36 -60    50 100 120 150 200
alto    o    450   800  2830  3500  4950     0  -9 -16 -28 -55    70  80 100 130 135
alto    u    325   700  2530  3500  4950     0 -12 -30 -40 -64    50  60 170 180 200
tenor   a    650  1080  2650  2900  3250     0  -6  -7  -8 -22    80  90 120 130 140
tenor   e    400  1700  2600  3200  3580     0 -14 -12 -14 -20    70  80 100 120 120
tenor   i    290  1870  2800  3250  3540     0 -15 -18 -20 -30    40  90 100 120 120
tenor   o    400   800  2600  2800  3000     0 -10 -12 -12 -26    40  80 100 120 120
tenor   u    350   600  2700  2900  3300     0 -20 -17 -14 -26    40  60 100 120 120
bass    a    600  1040  2250  2450  2750     0  -7  -9  -9 -20    60  70 110 120 130
bass    e    400  1620  2400  2800  3100     0 -12  -9 -12 -18    40  80 100 120 120
bass    i    250  1750  2600  3050  3340     0 -30 -16 -22 -28    60  90 100 120 120
bass    o    400   750  2400  2600  2900     0 -11 -21 -20 -40    40  80 100 120 120
bass    u    350   600  2400  2675  2950     0 -20 -32 -28 -36    40  80 100 120 120
"""


def _parse_formants(text: str) -> dict:
    table = {}
    for line in text.strip().splitlines():
        voice, vowel, *numbers = line.split()
        values = tuple(map(int, numbers))
        table[voice, vowel] = (values[:5], values[5:10], values[10:])
    return table


FORMANTS = _parse_formants(FORMANT_TABLE)  # (voice, vowel) -> (Hz, dB, bandwidth Hz) x 5


@dataclass(frozen=True)
class DrawnRender(Source):
    """A source of drawn instruments (Csound's, Faust's, pyo's): ``instruments_per_family``
    of each of ``families``, ``notes_per_instrument`` notes each (None: every pitch of its
    range at every velocity), rendered in isolated worker processes; its lineage is its kind.

    A subclass gives ``stamp`` (what the rendered bytes depend on, ``render.json``),
    ``require_engine`` (one clear error when the engine is missing), ``plan`` (the
    instruments), and the module-level ``render_one`` and ``instrument_keys`` of its notes.
    """

    instruments_per_family: int = 20
    notes_per_instrument: int | None = 20
    velocities: tuple[int, ...] = NSYNTH_VELOCITIES
    heldout_fraction: float = 0.2
    seed: int = 0
    families: tuple[str, ...] = FAMILIES

    renders = True

    def is_ready(self, data_dir: Path) -> bool:
        return render.is_written(self.root(data_dir), self.stamp())

    def render(self, data_dir: Path, workers: int | None = None, progress: bool = True,
               shard: tuple[int, int] | None = None) -> render.RenderReport:
        """Render (or resume rendering) into :meth:`root`; ``instclf data render``."""
        self.require_engine()  # before any worker starts
        return render.render_planned(self.plan(), self.stamp(), self.root(data_dir),
                                     render_one=self.render_one, keys=self.instrument_keys,
                                     workers=workers, progress=progress, shard=shard,
                                     isolated=True)

    def lineage(self, notes: pd.DataFrame) -> pd.Series:
        return pd.Series(self.kind, index=notes.index)

