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
        examples = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InstclfError(f"{path} is not valid JSON ({error}); render or download it again")
    if not isinstance(examples, dict):
        raise InstclfError(f"{path} holds a JSON {type(examples).__name__}, not NSynth's object "
                           "of notes by name; render or download it again")
    return examples


def _int_in(value, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _named_id(entry: dict, field: str, names: tuple, what: str) -> list[str]:
    """Problems of a ``<field>_str`` name and ``<field>`` id pair (either may be absent)."""
    name, number = entry.get(f"{field}_str"), entry.get(field)
    problems = []
    if f"{field}_str" in entry and name not in names:
        problems.append(f"{field}_str {name!r} is not one of NSynth's {len(names)} {what}")
    if field in entry and not _int_in(number, 0, len(names) - 1):
        problems.append(f"{field} {number!r} is not an integer from 0 to {len(names) - 1}")
    if not problems and name is not None and number is not None and names[number] != name:
        problems.append(f"{field} {number} is {names[number]}, not {name}")
    return problems


def entry_problems(name, entry) -> list[str]:
    """What is wrong with one ``examples.json`` entry against NSynth's schema (empty: nothing),
    each problem prefixed with the note's name (``instclf data validate``, :func:`read_split`).

    Required: ``pitch`` and ``velocity`` (integers 0-127), the family
    (``instrument_family_str`` and/or ``instrument_family``: one of the 11) and the instrument
    (``instrument_str`` and/or ``instrument``). NSynth's other fields are checked when present:
    the source (one of the 3), ``sample_rate`` (16000), ``note``, ``note_str`` (the name) and
    the qualities.
    """
    if not isinstance(name, str) or not name or name.startswith(".") or re.search(r"[/\\]", name):
        return [f"{name!r}: not a note name (a file name without folders)"]
    if not isinstance(entry, dict):
        return [f"{name}: a JSON {type(entry).__name__}, not an object of fields"]
    problems = [f"{field} {entry.get(field)!r} is not an integer from 0 to 127"
                for field in ("pitch", "velocity") if not _int_in(entry.get(field), 0, 127)]
    if "instrument_family_str" not in entry and "instrument_family" not in entry:
        problems.append("no family (instrument_family_str or instrument_family)")
    problems += _named_id(entry, "instrument_family", FAMILIES, "families")
    problems += _named_id(entry, "instrument_source", SOURCES, "sources")
    instrument = entry.get("instrument_str", entry.get("instrument"))
    if not (isinstance(instrument, str) and instrument) and not _int_in(instrument, 0, 10**9):
        problems.append(f"instrument {instrument!r}: give instrument_str (a name) or "
                        "instrument (an integer id)")
    if "sample_rate" in entry and entry["sample_rate"] != SAMPLE_RATE:
        problems.append(f"sample_rate {entry['sample_rate']!r}, expected {SAMPLE_RATE}")
    if "note" in entry and not _int_in(entry["note"], 0, 10**9):
        problems.append(f"note {entry['note']!r} is not a non-negative integer")
    if "note_str" in entry and entry["note_str"] != name:
        problems.append(f"note_str {entry['note_str']!r} differs from its name")
    qualities = entry.get("qualities_str", [])
    if not isinstance(qualities, list) or not set(qualities) <= set(QUALITIES):
        problems.append(f"qualities_str {qualities!r}: a list of NSynth's qualities")
    return [f"{name}: {problem}" for problem in problems]


def _refusal(where: Path, problems: list[str], fix: str) -> InstclfError:
    """One error listing the first 20 of ``problems`` (:func:`check_split`, :func:`read_split`)."""
    shown = "\n  ".join(problems[:20])
    more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
    return InstclfError(f"{where} has {len(problems)} problem(s); {fix}:\n  {shown}{more}")


def _field(entry: dict, field: str, names: tuple, default=None) -> tuple:
    """``(name, id)`` of a validated ``<field>_str``/``<field>`` pair, either one given."""
    if f"{field}_str" in entry:
        return entry[f"{field}_str"], entry.get(field, names.index(entry[f"{field}_str"]))
    number = entry.get(field)
    return (names[number], number) if number is not None else (default, -1)


def read_split(folder: Path) -> pd.DataFrame:
    """The note table of one NSynth-format folder, one row per note, sorted by note name.

    Columns: :data:`COLUMNS`, plus those of ``soundfont``, ``bank``, ``program`` and
    ``preset_name`` that the folder's ``instruments.json`` holds (the soundfont render's has
    all four; other rendered sources some). Entries need only what :func:`entry_problems`
    requires (absent ids are -1, an absent source NaN); a folder with an invalid entry is
    refused with every problem, never read in part (``instclf data info``, training).
    """
    folder = Path(folder)
    examples = _read_examples(folder)
    problems = [p for name, entry in examples.items() for p in entry_problems(name, entry)]
    if problems:
        raise _refusal(folder / "examples.json", problems, "fix these entries or render or "
                       "download the folder again (instclf data validate lists them all)")
    rows = []
    for index, (name, e) in enumerate(examples.items()):
        family, family_id = _field(e, "instrument_family", FAMILIES)
        source, source_id = _field(e, "instrument_source", SOURCES)
        instrument = e.get("instrument_str", e.get("instrument"))
        rows.append((name, e.get("note", index), str(instrument), e.get("instrument", -1),
                     family, family_id, source, source_id, e["pitch"], e["velocity"],
                     e.get("sample_rate", SAMPLE_RATE), tuple(e.get("qualities_str", ()))))
    table = pd.DataFrame(rows, columns=COLUMNS[:-1])
    table["path"] = [str(folder / "audio" / f"{name}.wav") for name in table["note_str"]]
    table["family"] = pd.Categorical(table["family"], categories=FAMILIES)
    table["source"] = pd.Categorical(table["source"], categories=SOURCES)
    instruments = folder / "instruments.json"
    if instruments.is_file():
        try:
            info = pd.DataFrame.from_dict(json.loads(instruments.read_text()), orient="index")
        except (ValueError, TypeError, AttributeError) as error:
            raise InstclfError(f"{instruments} does not parse ({error}); render the folder "
                               "again, or delete the file (it only adds soundfont columns)")
        extra = info[[c for c in ("soundfont", "bank", "program", "preset_name") if c in info]]
        table = table.join(extra, on="instrument_str")  # what a source's engine recorded
    return table.sort_values("note_str", ignore_index=True)


def read_dataset(root: Path, splits=("train", "valid", "test")) -> pd.DataFrame:
    """The note tables of several splits of one dataset root, with a ``split`` column (a
    split without notes adds none, and leaves every column's type as the others give it)."""
    tables = [read_split(split_folder(root, s)).assign(split=s) for s in splits]
    return pd.concat([t for t in tables if len(t)] or tables[:1], ignore_index=True)


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

    Checks each entry against NSynth's schema (:func:`entry_problems`), that each entry has
    its WAV, each WAV its entry, and each WAV's format.
    """
    folder = Path(folder)
    examples = _read_examples(folder)
    entries = [p for name, entry in examples.items() for p in entry_problems(name, entry)]
    listed = {name for name in examples if isinstance(name, str) and "/" not in name}
    on_disk = {p.stem for p in (folder / "audio").glob("*.wav")}
    problems = [f"{folder / 'audio' / n}.wav: listed in examples.json but missing"
                for n in sorted(listed - on_disk)]
    problems += [f"{folder / 'audio' / n}.wav: not listed in examples.json"
                 for n in sorted(on_disk - listed)]
    for name in sorted(listed & on_disk):
        problems += wav_problems(folder / "audio" / f"{name}.wav")
    return entries + problems


def check_split(folder: Path) -> None:
    """Raise one error listing every problem of the folder (see :func:`validate_split`)."""
    problems = validate_split(folder)
    if problems:
        raise _refusal(folder, problems, "render or download it again")


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
