"""Sources of NSynth-format notes: what a profile trains and evaluates on.

A source is anything that yields an NSynth-format dataset root (``nsynth-<split>/`` folders,
each with ``examples.json`` and ``audio/<note_str>.wav``): the embedded soundfont render, the
official NSynth archives, any NSynth-format folder. Each source is one module of this
package; adding one is that module plus one line in :data:`KINDS`. A profile
(:mod:`instclf.profiles`) names its sources; :func:`read_notes` gives their notes as one
table with two columns more: ``origin`` (the source's name) and ``lineage`` (sources or
soundfonts that share sound material share a lineage). Splits and selections are then the
same for every source (:mod:`instclf.subsets`).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, fields
from pathlib import Path

import pandas as pd

from .. import nsynth
from ..config import SPLITS, InstclfError

# kind -> "module:class"; the one registry line a new source adds
KINDS = {
    "soundfonts": "instclf.sources.soundfonts:SoundfontRender",
    "nsynth": "instclf.sources.official:OfficialNSynth",
    "folder": "instclf.sources.folder:Folder",
    "recorded": "instclf.sources.recorded:Recorded",
    "csound": "instclf.sources.csound:CsoundRender",
    "faust": "instclf.sources.faust:FaustRender",
    "pyo": "instclf.sources.pyo_synth:PyoRender",
    "samples": "instclf.sources.samples:SampleLibrary",
}


@dataclass(frozen=True)
class Source:
    """The interface every source implements (see the modules of this package).

    ``name`` names its folder under the data root (``nsynth-<name>/``) unless the source
    says otherwise in :meth:`root`.
    """

    name: str

    kind = "source"

    def root(self, data_dir: Path) -> Path:
        """The NSynth-format dataset root of this source under the data root."""
        return Path(data_dir) / f"nsynth-{self.name}"

    def splits(self, data_dir: Path) -> tuple[str, ...]:
        """The split folders this source has (all three unless it says otherwise)."""
        return SPLITS

    def ensure(self, data_dir: Path, progress: bool = True) -> Path:
        """Make the notes available and return the root: a source made here (``renders``) is
        rendered first when it is missing or stale; others check their notes are there."""
        if not self.renders:
            raise NotImplementedError
        if not self.is_ready(data_dir):
            self.render(data_dir, progress=progress)
        return self.root(data_dir)

    def is_ready(self, data_dir: Path) -> bool:
        """Whether a source made here (``renders``) is rendered with exactly its settings; a
        source not made here has nothing to make (``ensure`` checks its notes are there)."""
        if self.renders:
            raise NotImplementedError
        return True

    def read(self, data_dir: Path, progress: bool = True, ensure: bool = True) -> pd.DataFrame:
        """The source's notes with their ``split`` (made available first, unless not
        ``ensure``: then a missing dataset is an error that says how to make it)."""
        root = self.ensure(data_dir, progress) if ensure else self.root(data_dir)
        return nsynth.read_dataset(root, self.splits(data_dir))

    renders = False  # True for sources made here (``instclf data render`` makes them)

    def render(self, data_dir: Path, workers: int | None = None, progress: bool = True,
               shard: tuple[int, int] | None = None):
        """Make the notes here (sources with ``renders``); returns a report with ``as_dict``."""
        raise InstclfError(f"source {self.name} ({self.kind}) is not rendered here")

    def lineage(self, notes: pd.DataFrame) -> pd.Series:
        """The lineage of each note (default: the source's name)."""
        return pd.Series(self.name, index=notes.index)

    def settings(self) -> dict:
        """What the notes depend on (the source's fields), for descriptions and keys."""
        return {"kind": self.kind, **{f.name: getattr(self, f.name) for f in fields(self)}}


def source_class(kind: str) -> type[Source]:
    """The class registered for ``kind`` in :data:`KINDS`."""
    if kind not in KINDS:
        raise InstclfError(f"unknown source kind {kind!r}; use one of {', '.join(KINDS)}")
    module, name = KINDS[kind].split(":")
    return getattr(importlib.import_module(module), name)


def make_source(kind: str, **settings) -> Source:
    """A source of a registered kind, e.g. ``make_source("folder", name="mine", path="...")``."""
    return source_class(kind)(**settings)


def read_source(source: Source, data_dir: Path, progress: bool = True,
                ensure: bool = True) -> pd.DataFrame:
    """The notes of one source (made available first), with ``split``, ``origin``, ``lineage``."""
    notes = source.read(data_dir, progress, ensure)
    return notes.assign(origin=source.name, lineage=source.lineage(notes).to_numpy())


def read_notes(sources, data_dir: Path, progress: bool = True,
               ensure: bool = True) -> pd.DataFrame:
    """The notes of every source, one table (notebooks 01 to 07 through the profile).

    Note names must be unique across the sources: every cache is keyed on them.
    """
    notes = pd.concat([read_source(s, data_dir, progress, ensure) for s in sources],
                      ignore_index=True)
    twice = notes["note_str"][notes["note_str"].duplicated()]
    if len(twice):
        raise InstclfError(
            f"{len(twice)} note names occur in more than one source (first: {twice.iloc[0]}); "
            "give the sources distinct instrument names")
    return notes
