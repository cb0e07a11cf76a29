"""Profiles: which sources, which selection of their notes, how long to train.

One profile is chosen by ``INSTCLF_PROFILE`` (default ``default``); every notebook starts
with ``ic.setup()``, which reads it, fixes the seeds and sets the plot style.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from .config import PROJECT_ROOT, InstclfError, data_dir
from .sources.base import Source, read_notes
from .sources.csound import CsoundRender
from .sources.faust import FaustRender
from .sources.official import OfficialNSynth
from .sources.pyo_synth import PyoRender
from .sources.recorded import Recorded
from .sources.samples import SampleLibrary
from .sources.soundfonts import SoundfontRender
from .subsets import Selection

ALL_SOUNDFONTS = ("FluidR3_GM", "MuseScore_General", "TimGM6mb", "sf_GMbank", "OPL3_FM")


@dataclass(frozen=True)
class Profile:
    """Sources, selection and training schedule of a run (README, "Profiles").

    Used by every notebook through ``ic.setup()``.
    """

    name: str
    sources: tuple[Source, ...]
    selection: Selection = Selection()
    # training (notebooks 03 and 04): epochs are upper bounds, early stopping decides
    head_epochs: int = 40
    stage_epochs: int = 15
    max_unfrozen_blocks: int = 2
    patience: int = 4
    batch_size: int = 64
    seed: int = 0
    # its comparisons over seeds (make comparisons) are the report's figures/comparisons.json
    comparisons_in_report: bool = False
    data_dir: Path = PROJECT_ROOT / "data"  # get_profile() sets it from INSTCLF_DATA_DIR

    @property
    def models_dir(self) -> Path:
        """Where the profile's trained models go: ``<data root>/models/<profile>/<run>/``."""
        return self.data_dir / "models" / self.name

    @property
    def cache_dir(self) -> Path:
        """Where the profile's cached results go (``<data root>/cache/<kind>/<profile>``)."""
        return self.data_dir / "cache"

    @property
    def figures_dir(self) -> Path:
        """The default profile's figures are the report's (``figures/``); every other
        profile keeps its own under the data root."""
        if self.name == "default":
            return PROJECT_ROOT / "figures"
        return self.data_dir / f"{self.name}-figures"

    def notes(self, progress: bool = True):
        """Every note of the profile's sources, made available first (rendered if missing),
        with ``split``, ``origin`` and ``lineage`` columns (notebooks 01, 02 and 07)."""
        return read_notes(self.sources, self.data_dir, progress=progress)

    def source_roots(self) -> dict[str, Path]:
        """Each source's NSynth-format dataset root, by source name."""
        return {source.name: source.root(self.data_dir) for source in self.sources}


def with_recordings(sources: tuple[Source, ...], notes_share: float,
                    offset: int = 10_000) -> tuple[Source, ...]:
    """The dry sources, then ``notes_share`` of each one's notes through the recording chain
    (a source ``<name>-recorded`` each; every profile but soundfonts, full and nsynth)."""
    recorded = tuple(Recorded(name=f"{s.name}-recorded", of=s, notes_share=notes_share,
                              instrument_offset=offset) for s in sources)
    return (*sources, *recorded)


DEFAULT_SOUNDFONTS = SoundfontRender(name="embedded-default", soundfonts=ALL_SOUNDFONTS,
                                     notes_per_instrument=20)


def every_lineage(name: str, soundfont_notes: int, drawn_instruments: int, drawn_notes: int,
                  sample_notes: int | None, notes_share: float,
                  soundfonts: tuple[str, ...] = ALL_SOUNDFONTS,
                  soundfont_instruments: int | None = None,
                  velocities: tuple[int, ...] | None = None) -> tuple[Source, ...]:
    """The five soundfonts, the Csound, Faust and pyo lineages (``drawn_instruments`` per
    family, ``drawn_notes`` notes each), the sampled real instruments (``sample_notes`` each;
    None: every playable pitch),
    and ``notes_share`` of every one of them through the recording chain: the sources of the
    default and smoke profiles (issue 12), each named ``<kind>-<name>`` (its folder
    ``nsynth-<kind>-<name>``)."""
    extra = {} if velocities is None else {"velocities": velocities}
    drawn = {"instruments_per_family": drawn_instruments, "notes_per_instrument": drawn_notes,
             **extra}
    return with_recordings((
        SoundfontRender(name=f"embedded-{name}", soundfonts=soundfonts,
                        instruments_per_family=soundfont_instruments,
                        notes_per_instrument=soundfont_notes, **extra),
        CsoundRender(name=f"csound-{name}", **drawn),
        FaustRender(name=f"faust-{name}", **drawn),
        PyoRender(name=f"pyo-{name}", **drawn),
        SampleLibrary(name=f"samples-{name}", notes_per_instrument=sample_notes),
    ), notes_share=notes_share)


PROFILES = {
    "smoke": Profile(
        name="smoke",
        sources=every_lineage("smoke", soundfont_notes=4, drawn_instruments=2, drawn_notes=3,
                              sample_notes=2, notes_share=0.2, soundfonts=("TimGM6mb", "sf_GMbank"),
                              soundfont_instruments=5, velocities=(75, 127)),
        selection=Selection(seen_fraction=0.2),
        head_epochs=1,
        stage_epochs=1,
        max_unfrozen_blocks=1,
        patience=1,
        batch_size=32,
    ),
    # What make reproduce trains, the model the page uses: every lineage the project renders
    # (not the reserved independent check), a fifth of the notes through the recording chain.
    "default": Profile(name="default",
                       sources=every_lineage("mixed", soundfont_notes=8,
                                             drawn_instruments=8, drawn_notes=10,
                                             sample_notes=None, notes_share=0.2),
                       comparisons_in_report=True),
    # The default profile until 2026-11-30: the five soundfonts alone (figures/comparisons.json
    # was measured on it; notebook 04's source comparison).
    "soundfonts": Profile(name="soundfonts", sources=(DEFAULT_SOUNDFONTS,),
                          comparisons_in_report=True),
    # Leave-one-lineage-out (notebook 05, make experiments): the soundfonts, Csound's and
    # Faust's drawn instruments, and a share of each through the recording chain.
    "lineages": Profile(
        name="lineages",
        sources=with_recordings((
            DEFAULT_SOUNDFONTS,
            CsoundRender(name="csound-default", instruments_per_family=20,
                         notes_per_instrument=12),
            FaustRender(name="faust-default", instruments_per_family=20,
                        notes_per_instrument=12),
        ), notes_share=0.25),
    ),
    "full": Profile(
        name="full",
        sources=(SoundfontRender(name="embedded-full", soundfonts=ALL_SOUNDFONTS),),
        head_epochs=60,
        stage_epochs=20,
        max_unfrozen_blocks=5,
        patience=5,
    ),
    # The study's experiment: the official NSynth, a balanced 5,000 training notes per family
    # with 20% held back as seen instruments, evaluated on nsynth-valid and nsynth-test.
    "nsynth": Profile(
        name="nsynth",
        sources=(OfficialNSynth(),),
        selection=Selection(per_family=5000, seen_fraction=0.2),
    ),
}


def get_profile(name: str | None = None) -> Profile:
    """The profile named, or ``INSTCLF_PROFILE`` (default ``default``), with the data root."""
    name = name or os.environ.get("INSTCLF_PROFILE") or "default"
    if name not in PROFILES:
        raise InstclfError(
            f"unknown profile {name!r}; set INSTCLF_PROFILE to one of {', '.join(PROFILES)}"
        )
    return replace(PROFILES[name], data_dir=data_dir())
