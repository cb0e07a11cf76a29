"""Constants, the data root, seeds and the error type every module shares.

The data root is ``INSTCLF_DATA_DIR`` (default: ``data/`` beside the package). Profiles,
which name their sources, live in :mod:`instclf.profiles`.
"""

from __future__ import annotations

import ctypes
import os
import random
import re
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


def data_dir() -> Path:
    """The data root: ``INSTCLF_DATA_DIR`` if set, else ``data/`` in the project."""
    path = Path(os.environ.get("INSTCLF_DATA_DIR") or PROJECT_ROOT / "data").expanduser()
    if path.exists() and not path.is_dir():
        raise InstclfError(
            f"data root {path} is a file, not a folder; set INSTCLF_DATA_DIR to a folder "
            "(or unset it to use data/)"
        )
    return path


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
