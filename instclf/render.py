"""The FluidSynth engine of the soundfont source (:mod:`instclf.sources.soundfonts`, ``instclf data render``).

NSynth was made by playing sample-based instruments one note at a time: held 3 s, released
for 1 s, 16 kHz mono, each note normalised to near full scale. We do the same over the
General MIDI soundfonts Debian packages. Each note is rendered at 48 kHz from a silent synth
with reverb and chorus off (nothing of one note reaches the next), resampled to 16 kHz,
peak-normalised to a level between 0.6 and 0.99 of full scale, and written atomically.

The writing half (:func:`render_notes`, :func:`render_planned`) is engine-independent:
other rendered sources (:mod:`instclf.sources.faust`) plan their own instruments and play
their own notes through it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import time
import zlib
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm.auto import tqdm

from . import nsynth, storage, subsets
from .config import FAMILIES, SOURCES, SPLITS, InstclfError, keep_freed_memory
from .instruments import GM_PROGRAMS, MELODIC_BANKS, SOUNDFONTS, pitch_range, soundfont_path

RENDER_RATE = 48_000
HOLD_SECONDS, RELEASE_SECONDS = 3, 1
SILENT_PEAK = 1e-4  # -80 dBFS at FluidSynth's default gain: the preset has no sample there
MIN_PITCHES = 4  # a preset audible at fewer pitches of its range is left out
PEAK_RANGE = (0.6, 0.99)  # NSynth's notes peak between about 0.57 and 1.0 of full scale


# --- FluidSynth through its C library -------------------------------------------------------

def load_library(candidates, missing: str) -> ctypes.CDLL:
    """The first of ``candidates`` (file names or paths; None skipped) that loads, else an
    :class:`InstclfError` saying ``missing`` (what to install). Used by the engines' sources."""
    for name in filter(None, candidates):
        try:
            return ctypes.CDLL(name)
        except OSError:
            continue
    raise InstclfError(missing)


def _load_libfluidsynth() -> ctypes.CDLL:
    candidates = [ctypes.util.find_library("fluidsynth"), "libfluidsynth.so.3"]
    if os.environ.get("CONDA_PREFIX"):
        candidates.append(str(Path(os.environ["CONDA_PREFIX"]) / "lib" / "libfluidsynth.so.3"))
    lib = load_library(candidates,
                       "FluidSynth's library (libfluidsynth) is not installed; install it with: "
                       "sudo apt-get install fluidsynth (conda: conda install -c conda-forge "
                       "fluidsynth)")
    P, I, S = ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p
    signatures = {
        "new_fluid_settings": (P, []),
        "new_fluid_synth": (P, [P]),
        "delete_fluid_synth": (None, [P]),
        "delete_fluid_settings": (None, [P]),
        "fluid_settings_setnum": (I, [P, S, ctypes.c_double]),
        "fluid_settings_setint": (I, [P, S, I]),
        "fluid_synth_sfload": (I, [P, S, I]),
        "fluid_synth_get_sfont_by_id": (P, [P, I]),
        "fluid_sfont_iteration_start": (None, [P]),
        "fluid_sfont_iteration_next": (P, [P]),
        "fluid_preset_get_name": (S, [P]),
        "fluid_preset_get_banknum": (I, [P]),
        "fluid_preset_get_num": (I, [P]),
        "fluid_synth_program_select": (I, [P, I, I, I, I]),
        "fluid_synth_noteon": (I, [P, I, I, I]),
        "fluid_synth_noteoff": (I, [P, I, I]),
        "fluid_synth_all_sounds_off": (I, [P, I]),
        "fluid_synth_system_reset": (I, [P]),
        "fluid_synth_write_float": (I, [P, I, P, I, I, P, I, I]),
        "fluid_synth_add_sfont": (I, [P, P]),
        "fluid_synth_remove_sfont": (I, [P, P]),
        "fluid_set_log_function": (P, [I, P, P]),
    }
    for name, (restype, argtypes) in signatures.items():
        function = getattr(lib, name)
        function.restype, function.argtypes = restype, argtypes
    lib.fluid_set_log_function(2, None, None)  # warnings about empty channels of a new synth
    return lib


class Synth:
    """One soundfont loaded once; each note is played on a new, dry FluidSynth synthesizer.

    A new synthesizer per note (about 0.2 ms) is what makes a note independent of the notes
    played before it: a reused one keeps state (voices, filters, block phase) that changes
    the next note's samples. Reverb and chorus are off.
    """

    def __init__(self, soundfont: Path, sample_rate: int = RENDER_RATE):
        self.lib = _load_libfluidsynth()
        self.sample_rate = sample_rate
        self.settings = self.lib.new_fluid_settings()
        self.lib.fluid_settings_setnum(self.settings, b"synth.sample-rate", float(sample_rate))
        self.lib.fluid_settings_setint(self.settings, b"synth.reverb.active", 0)
        self.lib.fluid_settings_setint(self.settings, b"synth.chorus.active", 0)
        self.lib.fluid_settings_setint(self.settings, b"synth.polyphony", 256)
        self.synth = self.lib.new_fluid_synth(self.settings)  # owns the loaded soundfont
        self.sfont_id = self.lib.fluid_synth_sfload(self.synth, str(soundfont).encode(), 0)
        if self.sfont_id < 0:
            raise InstclfError(f"FluidSynth could not load soundfont {soundfont}; reinstall it")
        self.sfont = self.lib.fluid_synth_get_sfont_by_id(self.synth, self.sfont_id)

    def presets(self) -> list[tuple[int, int, str]]:
        """Every (bank, program, name) the soundfont defines."""
        self.lib.fluid_sfont_iteration_start(self.sfont)
        found = []
        while preset := self.lib.fluid_sfont_iteration_next(self.sfont):
            name = self.lib.fluid_preset_get_name(preset).decode("latin-1").strip()
            found.append((self.lib.fluid_preset_get_banknum(preset),
                          self.lib.fluid_preset_get_num(preset), name))
        return sorted(found)

    def _write(self, synth, n: int) -> np.ndarray:
        left, right = np.zeros(n, np.float32), np.zeros(n, np.float32)
        self.lib.fluid_synth_write_float(synth, n, left.ctypes.data, 0, 1,
                                         right.ctypes.data, 0, 1)
        return (left + right) / 2

    def play_note(self, bank: int, program: int, pitch: int, velocity: int,
                  hold: float = HOLD_SECONDS, release: float = RELEASE_SECONDS) -> np.ndarray:
        """One note on a new synthesizer: held ``hold`` seconds, then released for ``release``."""
        synth = self.lib.new_fluid_synth(self.settings)
        try:
            sfont_id = self.lib.fluid_synth_add_sfont(synth, self.sfont)
            self.lib.fluid_synth_program_select(synth, 0, sfont_id, bank, program)
            self.lib.fluid_synth_noteon(synth, 0, pitch, velocity)
            held = self._write(synth, round(hold * self.sample_rate))
            self.lib.fluid_synth_noteoff(synth, 0, pitch)
            released = self._write(synth, round(release * self.sample_rate))
        finally:
            self.lib.fluid_synth_remove_sfont(synth, self.sfont)
            self.lib.delete_fluid_synth(synth)
        return np.concatenate([held, released])

    def close(self) -> None:
        self.lib.delete_fluid_synth(self.synth)
        self.lib.delete_fluid_settings(self.settings)


# --- what to render -------------------------------------------------------------------------

def list_instruments(soundfonts: tuple[str, ...]) -> list[dict]:
    """Every audible preset of the soundfonts that has an NSynth family, in a stable order.

    Used by notebook 01 and :func:`plan_dataset`.
    """
    instruments = []
    for key in soundfonts:
        synth = Synth(soundfont_path(key))
        for bank, program, name in synth.presets():
            if bank not in MELODIC_BANKS or program not in GM_PROGRAMS:
                continue
            entry = GM_PROGRAMS[program]
            pitches = audible_pitches(synth, bank, program)
            if len(pitches) < MIN_PITCHES:
                continue
            instruments.append({
                "soundfont": key, "bank": bank, "program": program, "preset_name": name,
                "family": entry.family, "source": SOUNDFONTS[key].source or entry.source,
                "pitches": pitches,
            })
        synth.close()
    return instruments


def audible_pitches(synth: Synth, bank: int, program: int) -> list[int]:
    """The pitches of the program's range at which a preset sounds (a 0.2 s probe each).

    Presets cover different key ranges (TimGM6mb's whistle stops at 78), and some
    (MuseScore_General's expressive banks) stay silent until a controller opens them.
    """
    return [pitch for pitch in pitch_range(program)
            if float(np.abs(synth.play_note(bank, program, pitch, 100, hold=0.2,
                                            release=0)).max()) >= SILENT_PEAK]


def _choose_instruments(instruments: list[dict], per_family: int | None, seed: int) -> list[dict]:
    if per_family is None:
        return instruments
    chosen = []
    for family in FAMILIES:
        members = [i for i in instruments if i["family"] == family]
        order = subsets.stable_rng(seed, "instruments", family).permutation(len(members))
        chosen += [members[k] for k in sorted(order[:per_family])]
    return sorted(chosen, key=instruments.index)


def _assign_splits(instruments: list[dict], heldout_fraction: float, seed: int) -> None:
    """Hold out a share of each family's instruments; their notes form valid and test."""
    for family in FAMILIES:
        members = [i for i in instruments if i["family"] == family]
        for inst, heldout in zip(members, subsets.heldout_flags(len(members), heldout_fraction,
                                                                 seed, family)):
            inst["heldout"] = heldout


def _name_instruments(instruments: list[dict]) -> None:
    """NSynth's names: ``<family>_<source>_<index>``, numbered per family and source."""
    counters = Counter()
    for number, inst in enumerate(instruments):
        kind = (inst["family"], inst["source"])
        inst["instrument"] = number
        inst["instrument_str"] = f"{inst['family']}_{inst['source']}_{counters[kind]:03d}"
        counters[kind] += 1


def _choose_notes(inst: dict, source: SoundfontRender) -> list[tuple[int, int]]:
    """(pitch, velocity) of each note of one instrument."""
    grid = [(p, v) for p in inst["pitches"] for v in source.velocities]
    if source.notes_per_instrument is not None and len(grid) > source.notes_per_instrument:
        rng = subsets.stable_rng(source.seed, "notes", inst["instrument_str"])
        grid = [grid[k] for k in sorted(rng.choice(len(grid), source.notes_per_instrument,
                                                   replace=False))]
    return grid


def note_splits(inst: dict, kept: list[tuple[int, int]]) -> list[str]:
    """The split of each kept note: train, or valid/test alternating for held-out instruments.

    Decided on the notes that were not rejected, so each held-out instrument with two or
    more notes reaches both valid and test.
    """
    if not inst["heldout"]:
        return ["train"] * len(kept)
    return subsets.heldout_note_splits(len(kept), inst["seed"], inst["instrument_str"])


def plan_dataset(source: SoundfontRender) -> list[dict]:
    """The instruments to render, each with its name, held-out flag and notes.

    Deterministic for the source's seed. Used by :func:`render_dataset`.
    """
    instruments = _choose_instruments(list_instruments(source.soundfonts),
                                      source.instruments_per_family, source.seed)
    _assign_splits(instruments, source.heldout_fraction, source.seed)
    _name_instruments(instruments)
    for inst in instruments:
        inst["seed"] = source.seed
        inst["notes"] = _choose_notes(inst, source)
    return instruments


# --- rendering ------------------------------------------------------------------------------

def note_str(instrument_str: str, pitch: int, velocity: int) -> str:
    """NSynth's note name, e.g. ``guitar_acoustic_003-060-100``."""
    return f"{instrument_str}-{pitch:03d}-{velocity:03d}"


def target_peak(name: str) -> float:
    """The peak level a note is normalised to, fixed by its name (spread like NSynth's)."""
    low, high = PEAK_RANGE
    return low + (high - low) * (zlib.crc32(name.encode()) / 2**32)


def finish_note(y48: np.ndarray, name: str) -> tuple[np.ndarray | None, str]:
    """48 kHz float render -> 16 kHz int16 note, or None with the reason it was rejected."""
    if not np.isfinite(y48).all():
        return None, "not finite"  # an unstable model (never FluidSynth)
    peak = float(np.abs(y48).max())
    if peak < SILENT_PEAK:
        return None, "silent"
    if peak >= 1.0:
        return None, "clipped"
    from scipy.signal import resample_poly  # 0.7 s to import: not on predict's cold start

    y = resample_poly(y48.astype(np.float64), 1, RENDER_RATE // nsynth.SAMPLE_RATE)
    y = y * (target_peak(name) / np.abs(y).max())
    return np.round(y * 32767).astype(np.int16), "written"


_SYNTHS: dict[str, Synth] = {}


def _synth_for(soundfont: str) -> Synth:
    if soundfont not in _SYNTHS:
        _SYNTHS[soundfont] = Synth(soundfont_path(soundfont))
    return _SYNTHS[soundfont]


def _existing_wav(root: Path, name: str) -> Path | None:
    for split in SPLITS:
        path = nsynth.split_folder(root, split) / "audio" / f"{name}.wav"
        if nsynth.is_complete_wav(path):
            return path
    return None


def render_instrument(inst: dict, root: Path) -> dict:
    """Render one soundfont instrument's notes that are not on disk yet; count what happened."""
    return render_notes(inst, root, lambda pitch, velocity: _synth_for(inst["soundfont"])
                        .play_note(inst["bank"], inst["program"], pitch, velocity))


def render_notes(inst: dict, root: Path, play) -> dict:
    """Render an instrument's notes that are not on disk yet with ``play(pitch, velocity)``
    (a 48 kHz float note), write them into their splits; count what happened.

    The engine-independent half of every rendered source (the soundfonts', Faust's).
    """
    counts, kept, rendered = Counter(), [], {}
    for pitch, velocity in inst["notes"]:
        name = note_str(inst["instrument_str"], pitch, velocity)
        if _existing_wav(root, name):
            counts["resumed"] += 1
            kept.append((pitch, velocity))
            continue
        y, outcome = finish_note(play(pitch, velocity), name)
        counts[outcome] += 1
        if y is not None:
            rendered[name] = y
            kept.append((pitch, velocity))
    splits = note_splits(inst, kept)
    for (pitch, velocity), split in zip(kept, splits):
        name = note_str(inst["instrument_str"], pitch, velocity)
        path = nsynth.split_folder(root, split) / "audio" / f"{name}.wav"
        if name in rendered:
            with storage.atomic_path(path) as tmp:
                sf.write(tmp, rendered[name], nsynth.SAMPLE_RATE, subtype="PCM_16",
                         format="WAV")
        elif (found := _existing_wav(root, name)) != path:
            found.replace(path)  # only if an earlier render decided differently
    return {"instrument_str": inst["instrument_str"], "counts": dict(counts),
            "kept": [(p, v, s) for (p, v), s in zip(kept, splits)]}


@dataclass
class RenderReport:
    """What :func:`render_dataset` did (shown by notebook 01 and the CLI)."""

    root: str
    notes_planned: int = 0
    counts: dict = field(default_factory=dict)
    seconds: float = 0.0
    workers: int = 1
    shard: tuple[int, int] | None = None  # (i, n): only the instruments of shard i of n

    @property
    def notes_per_second(self) -> float:
        rendered = sum(v for k, v in self.counts.items() if k != "resumed")
        return rendered / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict:
        return {**asdict(self), "notes_per_second": self.notes_per_second}


def render_plan(plan: list[dict], root: Path, workers: int, progress: bool,
                render_one=render_instrument, isolated: bool = False) -> list[dict]:
    """Render every instrument of a plan, in ``workers`` processes; one result per instrument.

    ``render_one(inst, root)`` renders one instrument (a module-level function: workers
    are spawned). ``isolated`` renders in spawned workers even when ``workers`` is 1: an
    engine that must not share a process with another engine's library (Csound and Faust's
    DawDreamer in one process abort it) never runs in the caller's process.
    """
    bar = tqdm(total=sum(len(i["notes"]) for i in plan), unit="note", disable=not progress,
               desc=f"rendering {Path(root).name}")
    results = []
    if workers <= 1 and not isolated:
        keep_freed_memory()
        for inst in plan:
            results.append(render_one(inst, root))
            bar.update(len(inst["notes"]))
    else:
        with ProcessPoolExecutor(max(1, workers), mp_context=get_context("spawn"),
                                 initializer=keep_freed_memory) as pool:
            for inst, result in zip(plan, pool.map(render_one, plan, [root] * len(plan))):
                results.append(result)
                bar.update(len(inst["notes"]))
    bar.close()
    return results


def _examples_for(inst: dict, pitch: int, velocity: int, note_id: int) -> dict:
    return {
        "note": note_id,
        "note_str": note_str(inst["instrument_str"], pitch, velocity),
        "instrument": inst["instrument"],
        "instrument_str": inst["instrument_str"],
        "pitch": pitch,
        "velocity": velocity,
        "sample_rate": nsynth.SAMPLE_RATE,
        "instrument_family": FAMILIES.index(inst["family"]),
        "instrument_family_str": inst["family"],
        "instrument_source": SOURCES.index(inst["source"]),
        "instrument_source_str": inst["source"],
        "qualities": [0] * len(nsynth.QUALITIES),
        "qualities_str": [],
    }


INSTRUMENT_KEYS = ("soundfont", "bank", "program", "preset_name", "family", "source",
                   "instrument")  # what instruments.json holds of a soundfont instrument


def _write_metadata(plan: list[dict], results: list[dict], root: Path,
                    keys: tuple[str, ...] = INSTRUMENT_KEYS) -> None:
    """examples.json and instruments.json (``keys`` of each instrument) per split, matching
    exactly the WAVs written."""
    by_split = {split: ({}, {}) for split in SPLITS}
    note_id = 0
    for inst, result in zip(plan, results):
        for pitch, velocity, split in result["kept"]:
            entry = _examples_for(inst, pitch, velocity, note_id)
            by_split[split][0][entry["note_str"]] = entry
            by_split[split][1][inst["instrument_str"]] = {k: inst[k] for k in keys}
            note_id += 1
    for split, (examples, instruments) in by_split.items():
        folder = Path(root) / f"nsynth-{split}"
        folder.mkdir(parents=True, exist_ok=True)
        nsynth.remove_unlisted_audio(folder, set(examples))
        storage.write_json(folder / "instruments.json", instruments)
        storage.write_json(folder / "examples.json", examples)


RENDER_VERSION = 2  # bump when a change to this module changes the rendered bytes


def render_settings(source: SoundfontRender) -> dict:
    """What the rendered bytes depend on; stored as ``render.json`` beside the splits."""
    return {
        "render_version": RENDER_VERSION, "soundfonts": list(source.soundfonts),
        "instruments_per_family": source.instruments_per_family,
        "notes_per_instrument": source.notes_per_instrument,
        "velocities": list(source.velocities), "heldout_fraction": source.heldout_fraction,
        "seed": source.seed,
    }


def is_rendered(source: SoundfontRender, root: Path) -> bool:
    """True when ``root`` holds a finished render of exactly this source's settings."""
    return is_written(root, render_settings(source))


def is_written(root: Path, settings: dict) -> bool:
    """True when ``root`` holds a finished render stamped with exactly ``settings``."""
    stamp = Path(root) / "render.json"
    if not stamp.is_file() or json.loads(stamp.read_text()) != settings:
        return False
    return all((nsynth.split_folder(root, s) / "examples.json").is_file() for s in SPLITS)


def shard_plan(plan: list[dict], shard: tuple[int, int] | None) -> list[dict]:
    """The instruments of shard ``(i, n)``: those at positions ``i, i + n, ...`` of the plan."""
    if shard is None:
        return plan
    index, count = shard
    return plan[index::count]


def render_dataset(source: SoundfontRender, root: Path, workers: int | None = None,
                   progress: bool = True, shard: tuple[int, int] | None = None) -> RenderReport:
    """Render the soundfont source's notes into the NSynth-format dataset root ``root``.

    Resumes: notes already on disk are kept, not rendered again. ``examples.json`` is written
    last, so a folder without it is an unfinished render. Used by ``instclf data render``.

    ``shard=(i, n)`` (``instclf data render --shard i/n``) renders only the WAVs of shard i of
    the plan, so n processes or machines can share one folder; it writes no metadata and
    leaves other shards' temporary files alone. A final run without a shard then finds every
    WAV on disk and only writes ``examples.json``: the same bytes as an unsharded render.
    """
    start = time.perf_counter()
    check_root(root)
    return render_planned(plan_dataset(source), render_settings(source), root, workers=workers,
                          progress=progress, shard=shard, start=start)


def check_root(root: Path) -> None:
    """A clear error when a dataset root is a file."""
    if Path(root).exists() and not Path(root).is_dir():
        raise InstclfError(f"dataset folder {root} is a file; remove it or set INSTCLF_DATA_DIR")


def render_planned(plan: list[dict], settings: dict, root: Path, render_one=render_instrument,
                   keys: tuple[str, ...] = INSTRUMENT_KEYS, workers: int | None = None,
                   progress: bool = True, shard: tuple[int, int] | None = None,
                   start: float | None = None, isolated: bool = False) -> RenderReport:
    """Render a plan into ``root`` and stamp it with ``settings`` (see :func:`render_dataset`).

    The engine-independent half of every rendered source: ``render_one`` renders one
    instrument, ``keys`` are what ``instruments.json`` holds of each.
    """
    root = Path(root)
    check_root(root)
    workers = workers or min(2, os.cpu_count() or 1)
    start = time.perf_counter() if start is None else start
    (root / "render.json").unlink(missing_ok=True)  # unfinished until the end
    for split in SPLITS:
        (nsynth.split_folder(root, split) / "audio").mkdir(parents=True, exist_ok=True)
        (nsynth.split_folder(root, split) / "examples.json").unlink(missing_ok=True)
    if shard is None:  # a shard cannot tell another shard's unfinished writes from debris
        storage.remove_temporaries(root)
    todo = shard_plan(plan, shard)
    results = render_plan(todo, root, workers, progress, render_one, isolated)
    if shard is None:
        _write_metadata(plan, results, root, keys)
        storage.write_json(root / "render.json", settings)
    counts = sum((Counter(r["counts"]) for r in results), Counter())
    return RenderReport(str(root), sum(len(i["notes"]) for i in todo), dict(counts),
                        time.perf_counter() - start, workers, shard)
