"""Any NSynth-format folder a user points at: a dataset root with ``nsynth-<split>/``
folders, or a single split folder (``examples.json`` + ``audio/``), read as ``train``.

A folder's own splits may not be instrument-disjoint: profiles over folders usually hold
out instruments themselves (``subsets.Selection(splits="instruments")``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .. import nsynth
from ..config import InstclfError, SPLITS
from .base import Source

SINGLE_SPLIT = "train"


@dataclass(frozen=True)
class Folder(Source):
    """The NSynth-format notes under ``path`` (a relative path is taken from the data root)."""

    path: str = ""

    kind = "folder"

    def root(self, data_dir: Path) -> Path:
        return Path(data_dir) / Path(self.path).expanduser()

    def _single(self, data_dir: Path) -> bool:
        return (self.root(data_dir) / "examples.json").is_file()

    def splits(self, data_dir: Path) -> tuple[str, ...]:
        if self._single(data_dir):
            return (SINGLE_SPLIT,)
        root = self.root(data_dir)  # a split folder without examples.json is read, and refused
        return tuple(s for s in SPLITS if nsynth.split_folder(root, s).is_dir())

    def read(self, data_dir: Path, progress: bool = True, ensure: bool = True):
        if self._single(data_dir):
            return nsynth.read_split(self.root(data_dir)).assign(split=SINGLE_SPLIT)
        return super().read(data_dir, progress, ensure)

    def ensure(self, data_dir: Path, progress: bool = True) -> Path:
        root = self.root(data_dir)
        if not self.splits(data_dir):
            raise InstclfError(f"{root} holds no NSynth-format notes (no examples.json, nor "
                               "nsynth-<split>/examples.json); point the source at such a folder")
        return root
