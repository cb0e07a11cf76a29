"""The interface every source of notes implements (:class:`Source`), apart from the registry of
kinds in :mod:`instclf.sources`: that package names its source modules, and they need the
interface, so it stands here, where both read it."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import pandas as pd

from .. import nsynth
from ..config import SPLITS, InstclfError


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
