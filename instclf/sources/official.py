"""The official NSynth (jsonwav archives), fetched by ``instclf data download``.

Its splits are NSynth's own: ``nsynth-train`` (1,006 instruments), and ``nsynth-valid`` and
``nsynth-test``, which share 53 instruments absent from train and have no synth_lead. The
source never downloads by itself: a missing split is an error that says how to fetch it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .. import nsynth
from ..config import InstclfError, SPLITS
from .base import Source


@dataclass(frozen=True)
class OfficialNSynth(Source):
    """The splits of the official NSynth under ``<data root>/nsynth-official/``."""

    name: str = "official"

    kind = "nsynth"

    def ensure(self, data_dir: Path, progress: bool = True) -> Path:
        root = self.root(data_dir)
        missing = [s for s in SPLITS
                   if not (nsynth.split_folder(root, s) / "examples.json").is_file()]
        if missing:
            raise InstclfError(
                f"the official NSynth has no {', '.join(f'nsynth-{s}' for s in missing)} under "
                f"{root}; download it with: instclf data download --splits {' '.join(missing)}")
        return root

    def lineage(self, notes: pd.DataFrame) -> pd.Series:
        return pd.Series("nsynth", index=notes.index)
