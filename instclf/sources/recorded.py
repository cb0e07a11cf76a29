"""Another source's notes as a real recording would give them (:mod:`instclf.recording`).

``Recorded(name, of=source)`` passes every note of ``of`` through the recording chain and
writes them as its own NSynth-format folder ``nsynth-<name>/``: the same splits, the same
instruments, each note with at least one condition. The dry notes stay where they are: a
profile lists both sources. Names stay distinct from the dry ones: a recorded instrument's
number is the dry one's plus ``instrument_offset`` (``guitar_acoustic_003`` ->
``guitar_acoustic_10003``; two recorded sources of one source need different offsets).
Each split folder also holds ``conditions.json``: for each recorded note, its dry note and
its conditions with their parameters; :meth:`Recorded.read` adds them as the columns
``dry_note`` and ``conditions`` (notebook 06 breaks errors down by them). Its lineage is
the wrapped source's: the same sound material.

``recording.json`` stamps what the notes depend on (the chain, the wrapped source's
settings, the wrapped notes' files); a changed stamp records them again, an unfinished run
resumes (``instclf data render``).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
from tqdm.auto import tqdm

from .. import nsynth, recording, render, storage, subsets
from ..config import InstclfError, keep_freed_memory
from .base import Source

STAMP = "recording.json"
CONDITIONS_FILE = "conditions.json"
INSTRUMENT_NUMBER = re.compile(r"^(?P<prefix>.+_)(?P<number>\d+)$")
BATCH = 8  # notes per task handed to a worker process


@dataclass(frozen=True)
class Recorded(Source):
    """The notes of ``of`` through the recording chain: each of ``conditions`` on ``share``
    of the notes it suits (at least one per note), drawn with ``seed``. ``notes_share``:
    the share of the dry notes recorded (drawn per note with ``seed``; 1 records all)."""

    of: Source
    conditions: tuple[str, ...] = recording.CONDITION_NAMES
    share: float = 0.5
    seed: int = 0
    instrument_offset: int = 10_000
    notes_share: float = 1.0

    def __post_init__(self):
        if not 0 < self.notes_share <= 1:
            raise InstclfError(f"notes_share {self.notes_share} of the dry notes: use (0, 1]")

    kind = "recorded"
    renders = True

    @property
    def chain(self) -> recording.Chain:
        return recording.Chain(tuple(self.conditions), self.share, self.seed)

    def splits(self, data_dir: Path) -> tuple[str, ...]:
        return self.of.splits(data_dir)

    def lineage(self, notes: pd.DataFrame) -> pd.Series:
        return self.of.lineage(notes)

    def settings(self) -> dict:
        return {**super().settings(), "of": self.of.settings(), "conditions": list(self.conditions)}

    def recorded_instrument(self, instrument_str: str) -> str:
        """The recorded instrument's name: its number moved by ``instrument_offset``."""
        match = INSTRUMENT_NUMBER.match(instrument_str)
        if not match:
            raise InstclfError(f"instrument {instrument_str!r} of source {self.of.name} has no "
                               "number (NSynth names are <family>_<source>_<number>)")
        return f"{match['prefix']}{int(match['number']) + self.instrument_offset:03d}"

    def plan(self, data_dir: Path, progress: bool = True) -> pd.DataFrame:
        """The wrapped notes (made available first) with the recorded ``name``,
        ``instrument_name`` and the drawn ``conditions`` of each."""
        dry = self.recorded_notes(self.of.read(data_dir, progress))
        instruments = {i: self.recorded_instrument(i) for i in dry["instrument_str"].unique()}
        names = []
        for note, instrument in zip(dry["note_str"], dry["instrument_str"]):
            if not note.startswith(instrument):
                raise InstclfError(f"note {note!r} of source {self.of.name} does not start with "
                                   f"its instrument's name {instrument!r}")
            names.append(instruments[instrument] + note[len(instrument):])
        chain = self.chain
        return dry.assign(name=names, instrument_name=dry["instrument_str"].map(instruments),
                          drawn=[chain.draw(n, str(f)) for n, f in zip(names, dry["family"])])

    def recorded_notes(self, dry: pd.DataFrame) -> pd.DataFrame:
        """The dry notes that get a recorded copy: ``notes_share`` of them, each drawn on its
        own (the same note is kept whatever else the source holds)."""
        if self.notes_share < 1:
            kept = [subsets.stable_rng(self.seed, "recorded note", name).random() < self.notes_share
                    for name in dry["note_str"]]
            dry = dry[np.array(kept, dtype=bool)]
        return dry.reset_index(drop=True)

    def stamp(self, dry: pd.DataFrame) -> dict:
        """What the recorded notes depend on (``recording.json``): the settings and the dry
        notes' files (name, split, size, time)."""
        files = [(n, s, *_file_state(p)) for n, s, p in
                 zip(dry["note_str"], dry["split"], dry["path"])]
        stamp = {"recording_version": recording.RECORDING_VERSION,
                 "settings": {k: v for k, v in self.settings().items() if k != "name"},
                 "dry_notes": storage.content_key(files)}
        return json.loads(json.dumps(stamp))  # as read back: lists, not tuples

    def is_ready(self, data_dir: Path) -> bool:
        """True when the recorded notes are finished for exactly these settings and notes."""
        root = self.root(data_dir)
        if not self.of.is_ready(data_dir):
            return False
        try:
            dry = self.of.read(data_dir, progress=False, ensure=False)
        except InstclfError:
            return False
        return (_read_json(root / STAMP) == {**self.stamp(self.recorded_notes(dry)),
                                             "finished": True}
                and all((nsynth.split_folder(root, s) / "examples.json").is_file()
                        for s in self.splits(data_dir)))

    def render(self, data_dir: Path, workers: int | None = None, progress: bool = True,
               shard: tuple[int, int] | None = None) -> render.RenderReport:
        """Record (or resume recording) the wrapped notes; ``instclf data render``."""
        return record_dataset(self, data_dir, workers, progress, shard)

    def read(self, data_dir: Path, progress: bool = True, ensure: bool = True) -> pd.DataFrame:
        """The recorded notes with ``split``, ``dry_note`` and ``conditions`` (their names,
        in chain order)."""
        notes = super().read(data_dir, progress, ensure)
        recorded = {}
        for split in self.splits(data_dir):
            path = nsynth.split_folder(self.root(data_dir), split) / CONDITIONS_FILE
            if not path.is_file():
                raise InstclfError(f"{path} is missing (an unfinished recording); finish it "
                                   "with: instclf data render")
            recorded.update(_read_json(path))
        return notes.assign(
            dry_note=[recorded[n]["dry"] for n in notes["note_str"]],
            conditions=[tuple(c for c in recording.CONDITION_NAMES
                              if c in recorded[n]["conditions"]) for n in notes["note_str"]])


def _read_json(path: Path):
    return json.loads(path.read_text()) if path.is_file() else None


def _file_state(path: str) -> tuple[int, int]:
    state = os.stat(path)
    return state.st_size, state.st_mtime_ns


def record_notes(batch: list[tuple[str, str, str, dict]]) -> list[str]:
    """Record the notes not on disk yet: (dry WAV, recorded WAV, name, conditions) each."""
    outcomes = []
    for dry_path, path, name, drawn in batch:
        if nsynth.is_complete_wav(path):
            outcomes.append("resumed")
            continue
        y, _ = nsynth.load_note(dry_path)
        y = recording.apply_conditions(y, drawn, name)
        with storage.atomic_path(Path(path)) as tmp:
            sf.write(tmp, np.round(y * 32767).astype(np.int16), nsynth.SAMPLE_RATE,
                     subtype="PCM_16", format="WAV")
        outcomes.append("written")
    return outcomes


def _run(tasks: list[tuple], workers: int, progress: bool, desc: str) -> Counter:
    batches = [tasks[k:k + BATCH] for k in range(0, len(tasks), BATCH)]
    counts, bar = Counter(), tqdm(total=len(tasks), unit="note", disable=not progress, desc=desc)
    if workers <= 1:
        keep_freed_memory()
        results = map(record_notes, batches)
    else:
        pool = ProcessPoolExecutor(workers, mp_context=get_context("spawn"),
                                   initializer=keep_freed_memory)
        results = pool.map(record_notes, batches)
    try:
        for outcomes in results:
            counts.update(outcomes)
            bar.update(len(outcomes))
    finally:
        bar.close()
        if workers > 1:
            pool.shutdown(cancel_futures=True)
    return counts


PRESET_COLUMNS = ("soundfont", "bank", "program", "preset_name")  # what read_split joins


def _plain(value):
    """A table's value as JSON has it (numpy scalars as numbers, missing as null)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return value.item() if isinstance(value, np.generic) else value


def _write_metadata(source: Recorded, plan: pd.DataFrame, root: Path,
                    splits: tuple[str, ...]) -> None:
    """examples.json, conditions.json and instruments.json per split, matching exactly the
    WAVs written; instruments.json carries the dry instruments' presets (their lineage)."""
    presets = [c for c in PRESET_COLUMNS if c in plan]
    for split in splits:
        examples, conditions, instruments = {}, {}, {}
        for note in plan[plan["split"] == split].itertuples(index=False):
            qualities = set(note.qualities_str) | {
                q for c, q in (("room", "reverb"), ("amp", "distortion")) if c in note.drawn}
            instrument = int(note.instrument) + source.instrument_offset
            examples[note.name] = {
                "note": int(note.note), "note_str": note.name, "instrument": instrument,
                "instrument_str": note.instrument_name, "pitch": int(note.pitch),
                "velocity": int(note.velocity), "sample_rate": nsynth.SAMPLE_RATE,
                "instrument_family": int(note.family_id), "instrument_family_str": str(note.family),
                "instrument_source": int(note.source_id), "instrument_source_str": str(note.source),
                "qualities": [int(q in qualities) for q in nsynth.QUALITIES],
                "qualities_str": [q for q in nsynth.QUALITIES if q in qualities]}
            conditions[note.name] = {"dry": note.note_str, "conditions": note.drawn}
            instruments[note.instrument_name] = {
                **{c: _plain(getattr(note, c)) for c in presets}, "family": str(note.family),
                "source": str(note.source), "instrument": instrument,
                "dry_instrument": note.instrument_str}
        folder = nsynth.split_folder(root, split)
        nsynth.remove_unlisted_audio(folder, set(examples))
        storage.write_json(folder / "instruments.json", instruments)
        storage.write_json(folder / CONDITIONS_FILE, conditions)
        storage.write_json(folder / "examples.json", examples)


def record_dataset(source: Recorded, data_dir: Path, workers: int | None = None,
                   progress: bool = True, shard: tuple[int, int] | None = None
                   ) -> render.RenderReport:
    """Record the wrapped source's notes into ``source.root(data_dir)``.

    Resumes: recorded notes on disk under the same stamp are kept. A changed stamp (other
    settings or dry notes) removes the old recordings first. ``examples.json`` is written
    last. ``shard=(i, n)`` records only the notes at positions i, i + n, ... and writes no
    metadata (as :func:`instclf.render.render_dataset`).
    """
    root = source.root(data_dir)
    render.check_root(root)
    workers = workers or min(2, os.cpu_count() or 1)
    start = time.perf_counter()
    plan = source.plan(data_dir, progress)
    splits = source.splits(data_dir)
    stamp = source.stamp(plan)
    stored = _read_json(root / STAMP)
    if stored is None or {k: v for k, v in stored.items() if k != "finished"} != stamp:
        for split in splits:  # other settings or other dry notes: nothing on disk is reusable
            nsynth.remove_unlisted_audio(nsynth.split_folder(root, split), set())
    storage.write_json(root / STAMP, {**stamp, "finished": False})
    for split in splits:
        (nsynth.split_folder(root, split) / "audio").mkdir(parents=True, exist_ok=True)
        (nsynth.split_folder(root, split) / "examples.json").unlink(missing_ok=True)
    if shard is None:
        storage.remove_temporaries(root)
    todo = plan if shard is None else plan.iloc[shard[0]::shard[1]]
    tasks = [(dry, str(nsynth.split_folder(root, split) / "audio" / f"{name}.wav"), name, drawn)
             for dry, split, name, drawn in
             zip(todo["path"], todo["split"], todo["name"], todo["drawn"])]
    counts = _run(tasks, workers, progress, f"recording {root.name}")
    if shard is None:
        _write_metadata(source, plan, root, splits)
        storage.write_json(root / STAMP, {**stamp, "finished": True})
    return render.RenderReport(str(root), len(tasks), dict(counts),
                               time.perf_counter() - start, workers, shard)
