"""Profiles and paths: one configuration object, chosen by ``INSTCLF_PROFILE``.

Every notebook starts with ``ic.setup()``, which reads the profile, fixes the seeds and sets
the plot style. The data root is ``INSTCLF_DATA_DIR`` (default: ``data/`` beside the package).
"""

from __future__ import annotations

import ctypes
import os
import random
import re
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

PROJECT_ROOT = Path(__file__).resolve().parents[1]

FAMILIES = (
    "bass", "brass", "flute", "guitar", "keyboard", "mallet",
    "organ", "reed", "string", "synth_lead", "vocal",
)
SOURCES = ("acoustic", "electronic", "synthetic")
SPLITS = ("train", "valid", "test")
NSYNTH_VELOCITIES = (25, 50, 75, 100, 127)


class InstclfError(Exception):
    """An error a person can act on: it names the path and the command that fixes it."""


@dataclass(frozen=True)
class Profile:
    """How much data and training a run uses (see DESIGN.md, "Profiles").

    Used by every notebook through ``ic.setup()``.
    """

    name: str
    soundfonts: tuple[str, ...]
    instruments_per_family: int | None  # None: every instrument the soundfonts have
    notes_per_instrument: int | None  # None: every pitch and velocity of its range
    velocities: tuple[int, ...] = NSYNTH_VELOCITIES
    heldout_fraction: float = 0.2  # share of each family's instruments held out (valid + test)
    seed: int = 0
    # training (notebooks 03 and 04): epochs are upper bounds, early stopping decides
    head_epochs: int = 40
    stage_epochs: int = 15
    max_unfrozen_blocks: int = 2
    patience: int = 4
    batch_size: int = 64
    seen_fraction: float = 0.1  # training notes held back to measure "seen instruments"
    data_dir: Path = PROJECT_ROOT / "data"  # get_profile() sets it from INSTCLF_DATA_DIR

    @property
    def dataset_dir(self) -> Path:
        """The NSynth-format dataset root this profile renders (holds ``nsynth-<split>/``)."""
        return self.data_dir / f"nsynth-embedded-{self.name}"

    @property
    def models_dir(self) -> Path:
        """Where the profile's trained models go: ``<data root>/models/<profile>/<run>/``."""
        return self.data_dir / "models" / self.name

    @property
    def figures_dir(self) -> Path:
        """Report figures go to ``figures/``; the smoke profile keeps its own away from them."""
        if self.name == "smoke":
            return self.data_dir / "smoke-figures"
        return PROJECT_ROOT / "figures"


PROFILES = {
    "smoke": Profile(
        name="smoke",
        soundfonts=("TimGM6mb", "sf_GMbank"),
        instruments_per_family=5,
        notes_per_instrument=6,
        velocities=(75, 127),
        head_epochs=1,
        stage_epochs=1,
        max_unfrozen_blocks=1,
        patience=1,
        batch_size=32,
        seen_fraction=0.2,
    ),
    "default": Profile(
        name="default",
        soundfonts=("FluidR3_GM", "MuseScore_General", "TimGM6mb", "sf_GMbank", "OPL3_FM"),
        instruments_per_family=None,
        notes_per_instrument=20,
    ),
    "full": Profile(
        name="full",
        soundfonts=("FluidR3_GM", "MuseScore_General", "TimGM6mb", "sf_GMbank", "OPL3_FM"),
        instruments_per_family=None,
        notes_per_instrument=None,
        head_epochs=60,
        stage_epochs=20,
        max_unfrozen_blocks=5,
        patience=5,
    ),
}


def data_dir() -> Path:
    """The data root: ``INSTCLF_DATA_DIR`` if set, else ``data/`` in the project."""
    path = Path(os.environ.get("INSTCLF_DATA_DIR") or PROJECT_ROOT / "data").expanduser()
    if path.exists() and not path.is_dir():
        raise InstclfError(
            f"data root {path} is a file, not a folder; set INSTCLF_DATA_DIR to a folder "
            "(or unset it to use data/)"
        )
    return path


def get_profile(name: str | None = None) -> Profile:
    """The profile named, or ``INSTCLF_PROFILE`` (default ``default``), with the data root."""
    name = name or os.environ.get("INSTCLF_PROFILE") or "default"
    if name not in PROFILES:
        raise InstclfError(
            f"unknown profile {name!r}; set INSTCLF_PROFILE to one of {', '.join(PROFILES)}"
        )
    return replace(PROFILES[name], data_dir=data_dir())


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` -> ``(i, n)``: this process does shard i of n (i counts from 0).

    Used by ``instclf data render --shard`` and ``instclf features --shard``.
    """
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
    if not match:
        raise InstclfError(f"--shard {text!r}: write it as i/n, e.g. 0/4 for the first of "
                           "4 shards (i counts from 0)")
    index, count = int(match[1]), int(match[2])
    if count < 1:
        raise InstclfError(f"--shard {text}: the number of shards n must be at least 1")
    if index >= count:
        raise InstclfError(f"--shard {text}: i counts from 0, so the shards of {count} are "
                           f"0/{count} to {count - 1}/{count}")
    return index, count


def keep_freed_memory() -> None:
    """Let glibc reuse freed buffers instead of unmapping them and faulting them in again.

    Rendering and feature extraction allocate a few MB of short-lived arrays per batch;
    with glibc's defaults these go back to the system each time, and the page faults then
    cost more than the computation (measured: up to 6x slower feature batches).
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return  # not glibc: nothing to tune
    libc.mallopt(-3, 32 * 1024 * 1024)  # M_MMAP_THRESHOLD
    libc.mallopt(-1, 256 * 1024 * 1024)  # M_TRIM_THRESHOLD


def set_seeds(seed: int) -> None:
    """Fix Python's and NumPy's seeds (TensorFlow's too, if it is already imported)."""
    random.seed(seed)
    np.random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    import sys

    if "tensorflow" in sys.modules:
        sys.modules["tensorflow"].random.set_seed(seed)
