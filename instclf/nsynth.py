"""NSynth-format folders: ``examples.json`` + ``audio/<note_str>.wav`` -> a note table.

The official NSynth splits and the embedded dataset are both read here, by the same code.
Used by every notebook (through :func:`read_split`) and by ``instclf data info``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from .config import FAMILIES, SOURCES, InstclfError

SAMPLE_RATE = 16_000
NOTE_SECONDS = 4
NOTE_SAMPLES = SAMPLE_RATE * NOTE_SECONDS
QUALITIES = (
    "bright", "dark", "distortion", "fast_decay", "long_release",
    "multiphonic", "nonlinear_env", "percussive", "reverb", "tempo-synced",
)
NOTE_STR = re.compile(
    r"^(?P<instrument_str>(?P<family>[a-z_]+?)_(?P<source>acoustic|electronic|synthetic)_"
    r"(?P<index>\d+))-(?P<pitch>\d{3})-(?P<velocity>\d{3})$"
)
COLUMNS = (
    "note_str", "note", "instrument_str", "instrument", "family", "family_id", "source",
    "source_id", "pitch", "velocity", "sample_rate", "qualities_str", "path",
)
RENDER_HINT = "instclf data render"


def parse_note_str(name: str) -> dict:
    """``'guitar_acoustic_003-060-100'`` -> instrument_str, family, source, pitch, velocity."""
    match = NOTE_STR.match(name)
    if not match or match["family"] not in FAMILIES:
        raise ValueError(f"{name!r} is not an NSynth note name (<family>_<source>_<n>-<pitch>-<velocity>)")
    return {
        "instrument_str": match["instrument_str"], "family": match["family"],
        "source": match["source"], "pitch": int(match["pitch"]),
        "velocity": int(match["velocity"]),
    }


def split_folder(root: Path, split: str) -> Path:
    """``<root>/nsynth-<split>``, the folder NSynth's archives extract to."""
    return Path(root) / f"nsynth-{split}"


def _read_examples(folder: Path) -> dict:
    path = Path(folder) / "examples.json"
    if not Path(folder).is_dir():
        raise InstclfError(f"{folder} does not exist; create it with: {RENDER_HINT}")
    if not path.is_file():
        raise InstclfError(
            f"{path} is missing (an unfinished render or download); finish it with: {RENDER_HINT}"
        )
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise InstclfError(f"{path} is not valid JSON ({error}); render or download it again")


def read_split(folder: Path) -> pd.DataFrame:
    """The note table of one NSynth-format folder, one row per note, sorted by note name.

    Columns: :data:`COLUMNS`, plus those of ``soundfont``, ``bank``, ``program`` and
    ``preset_name`` that the folder's ``instruments.json`` holds (the soundfont render's has
    all four; other rendered sources some).
    """
    folder = Path(folder)
    examples = _read_examples(folder)
    table = pd.DataFrame({
        "note_str": list(examples),
        "note": [e["note"] for e in examples.values()],
        "instrument_str": [e["instrument_str"] for e in examples.values()],
        "instrument": [e["instrument"] for e in examples.values()],
        "family": [e["instrument_family_str"] for e in examples.values()],
        "family_id": [e["instrument_family"] for e in examples.values()],
        "source": [e["instrument_source_str"] for e in examples.values()],
        "source_id": [e["instrument_source"] for e in examples.values()],
        "pitch": [e["pitch"] for e in examples.values()],
        "velocity": [e["velocity"] for e in examples.values()],
        "sample_rate": [e["sample_rate"] for e in examples.values()],
        "qualities_str": [tuple(e.get("qualities_str", ())) for e in examples.values()],
    }, columns=COLUMNS[:-1])
    table["path"] = [str(folder / "audio" / f"{name}.wav") for name in table["note_str"]]
    table["family"] = pd.Categorical(table["family"], categories=FAMILIES)
    table["source"] = pd.Categorical(table["source"], categories=SOURCES)
    instruments = folder / "instruments.json"
    if instruments.is_file():
        info = pd.DataFrame.from_dict(json.loads(instruments.read_text()), orient="index")
        extra = info[[c for c in ("soundfont", "bank", "program", "preset_name") if c in info]]
        table = table.join(extra, on="instrument_str")  # what a source's engine recorded
    return table.sort_values("note_str", ignore_index=True)


def read_dataset(root: Path, splits=("train", "valid", "test")) -> pd.DataFrame:
    """The note tables of several splits of one dataset root, with a ``split`` column."""
    tables = [read_split(split_folder(root, s)).assign(split=s) for s in splits]
    return pd.concat(tables, ignore_index=True)


def is_complete_wav(path: Path) -> bool:
    """True when ``path`` is a readable 16 kHz mono WAV of exactly 4 s."""
    try:
        info = sf.info(str(path))
    except (RuntimeError, sf.LibsndfileError, OSError):
        return False
    return (info.samplerate, info.channels, info.frames) == (SAMPLE_RATE, 1, NOTE_SAMPLES)


def wav_problems(path: Path) -> list[str]:
    """What is wrong with one WAV against NSynth's format (empty list: nothing)."""
    try:
        info = sf.info(str(path))
    except (RuntimeError, sf.LibsndfileError, OSError) as error:
        return [f"{path}: not a readable WAV ({str(error).splitlines()[0]})"]
    problems = []
    if info.samplerate != SAMPLE_RATE:
        problems.append(f"{path}: sample rate {info.samplerate} Hz, expected {SAMPLE_RATE}")
    if info.channels != 1:
        problems.append(f"{path}: {info.channels} channels, expected mono")
    if info.frames != NOTE_SAMPLES:
        problems.append(f"{path}: {info.frames} samples, expected {NOTE_SAMPLES}")
    return problems


def validate_split(folder: Path) -> list[str]:
    """Every problem of one NSynth-format folder, all at once (empty list: valid).

    Checks that each entry has its WAV, each WAV its entry, and each WAV's format.
    """
    folder = Path(folder)
    examples = _read_examples(folder)
    listed = set(examples)
    on_disk = {p.stem for p in (folder / "audio").glob("*.wav")}
    problems = [f"{folder / 'audio' / n}.wav: listed in examples.json but missing"
                for n in sorted(listed - on_disk)]
    problems += [f"{folder / 'audio' / n}.wav: not listed in examples.json"
                 for n in sorted(on_disk - listed)]
    for name in sorted(listed & on_disk):
        problems += wav_problems(folder / "audio" / f"{name}.wav")
    return problems


def check_split(folder: Path) -> None:
    """Raise one error listing every problem of the folder (see :func:`validate_split`)."""
    problems = validate_split(folder)
    if problems:
        shown = "\n  ".join(problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise InstclfError(
            f"{folder} has {len(problems)} problem(s); render or download it again:\n  "
            f"{shown}{more}"
        )


def remove_unlisted_audio(folder: Path, names: set[str]) -> int:
    """Delete WAVs in ``folder/audio`` that are not among ``names`` (a render's leftovers)."""
    removed = 0
    for path in (Path(folder) / "audio").glob("*.wav"):
        if path.stem not in names:
            path.unlink()
            removed += 1
    return removed


def load_note(path: str | Path) -> tuple[np.ndarray, int]:
    """``y, sr`` of one note as float32 in [-1, 1]; a clear error if it is not NSynth's format."""
    problems = wav_problems(Path(path))
    if problems:
        raise InstclfError("; ".join(problems) + "; render or download the dataset again")
    y, sr = sf.read(str(path), dtype="float32")
    return y, sr


def summarize(notes: pd.DataFrame) -> pd.DataFrame:
    """Notes, instruments and sources per family and split (``instclf data info``, notebook 01)."""
    grouped = notes.groupby(["split", "family"], observed=False, sort=False)
    table = grouped.agg(notes=("note_str", "size"), instruments=("instrument_str", "nunique"),
                        sources=("source", lambda s: ",".join(sorted(s.astype(str).unique()))))
    table = table.unstack("split").swaplevel(axis=1)
    order = [s for s in ("train", "valid", "test") if s in set(notes["split"])]
    columns = pd.MultiIndex.from_product([order, ["notes", "instruments", "sources"]])
    return table.reindex(columns=columns)
