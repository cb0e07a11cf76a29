"""The embedded source: General MIDI soundfonts rendered with FluidSynth, as NSynth was made.

One instrument is one preset of one soundfont; the engine is :mod:`instclf.render`. The
render holds out a share of each family's instruments itself (their notes form valid and
test), so profiles keep its splits. Each soundfont's lineage is its own, except those that
share samples (``instruments.Soundfont.shares_material_with``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .. import render
from ..config import NSYNTH_VELOCITIES
from ..instruments import SOUNDFONTS
from .base import Source


@dataclass(frozen=True)
class SoundfontRender(Source):
    """Every audible preset of ``soundfonts`` (or ``instruments_per_family`` of each family),
    ``notes_per_instrument`` notes each (None: every pitch of its range at every velocity)."""

    soundfonts: tuple[str, ...] = ()
    instruments_per_family: int | None = None
    notes_per_instrument: int | None = None
    velocities: tuple[int, ...] = NSYNTH_VELOCITIES
    heldout_fraction: float = 0.2
    seed: int = 0

    kind = "soundfonts"
    renders = True

    def is_ready(self, data_dir: Path) -> bool:
        return render.is_rendered(self, self.root(data_dir))

    def render(self, data_dir: Path, workers: int | None = None, progress: bool = True,
               shard: tuple[int, int] | None = None) -> render.RenderReport:
        """Render (or resume rendering) into :meth:`root`; ``instclf data render``."""
        return render.render_dataset(self, self.root(data_dir), workers=workers,
                                     progress=progress, shard=shard)

    def lineage(self, notes: pd.DataFrame) -> pd.Series:
        return notes["soundfont"].map(lambda key: SOUNDFONTS[key].lineage)
