"""The study's image route: spectrograms saved as 8-bit colour PNGs, one folder per family.

Kept for readers who want to repeat it (notebook 02) and to measure what it loses: an 8-bit
colour map holds 256 levels, so an 80 dB range is stored in steps of about 0.31 dB.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from PIL import Image
from tqdm.auto import tqdm

from . import features, storage

COLORMAP = "magma"
DB_RANGE = (-80.0, 0.0)  # power_to_db(ref=np.max) with top_db=80 spans exactly this


@lru_cache(maxsize=1)
def colour_table() -> np.ndarray:
    """The 256 RGB colours (uint8 values, as floats) the 8-bit levels map to."""
    return (matplotlib.colormaps[COLORMAP](np.arange(256))[:, :3] * 255).round()


def db_to_rgb(S_db: np.ndarray) -> np.ndarray:
    """(mel, time) dB -> (mel, time, 3) uint8 image, low frequencies at the bottom."""
    low, high = DB_RANGE
    levels = np.clip(np.round((S_db - low) / (high - low) * 255), 0, 255).astype(np.uint8)
    return colour_table().astype(np.uint8)[levels[::-1]]


def rgb_to_db(image: np.ndarray) -> np.ndarray:
    """Invert :func:`db_to_rgb` by the nearest colour-map entry: what a PNG still holds."""
    lut = colour_table()
    pixels = image[..., :3].reshape(-1, 1, 3).astype(np.float64)
    levels = np.argmin(((pixels - lut[None]) ** 2).sum(-1), axis=1).reshape(image.shape[:2])
    low, high = DB_RANGE
    return (low + levels / 255 * (high - low))[::-1]


def export_pngs(notes: pd.DataFrame, out_dir: Path, front_end=features.STUDY,
                progress: bool = True) -> pd.DataFrame:
    """Write ``<out_dir>/<family>/<note_str>.png`` for every note; return the paths written."""
    written = []
    for row in tqdm(notes.itertuples(), total=len(notes), disable=not progress, desc="PNG"):
        clip = features.load_clips([row.path], front_end)
        image = db_to_rgb(features.batch_features(clip, front_end)[0])
        path = Path(out_dir) / str(row.family) / f"{row.note_str}.png"
        with storage.atomic_path(path) as tmp:
            Image.fromarray(image).save(tmp, format="PNG")
        written.append((row.note_str, str(path)))
    return pd.DataFrame(written, columns=["note_str", "png"])


def quantisation_error(S_db: np.ndarray) -> dict:
    """How far the PNG route's stored values are from the float spectrogram, in dB."""
    error = rgb_to_db(db_to_rgb(S_db)) - np.clip(S_db, *DB_RANGE)
    return {"max_abs_db": float(np.abs(error).max()),
            "rms_db": float(np.sqrt(np.mean(error ** 2))),
            "levels": 256, "step_db": (DB_RANGE[1] - DB_RANGE[0]) / 255}
