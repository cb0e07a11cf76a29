"""NSynth-format reading, validation and balanced subsets."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from instclf import nsynth, subsets
from instclf.config import FAMILIES, InstclfError


def test_parse_note_str():
    parsed = nsynth.parse_note_str("synth_lead_synthetic_012-060-127")
    assert parsed == {"instrument_str": "synth_lead_synthetic_012", "family": "synth_lead",
                      "source": "synthetic", "pitch": 60, "velocity": 127}
    with pytest.raises(ValueError):
        nsynth.parse_note_str("piano-60-100")


def test_read_split_has_nsynth_fields(tiny_dataset):
    folder = nsynth.split_folder(tiny_dataset[0], "train")
    notes = nsynth.read_split(folder)
    assert list(notes.columns[:len(nsynth.COLUMNS)]) == list(nsynth.COLUMNS)
    examples = json.loads((folder / "examples.json").read_text())
    assert len(notes) == len(examples)
    row = notes.iloc[0]
    entry = examples[row.note_str]
    assert (row.pitch, row.velocity, row.family) == (entry["pitch"], entry["velocity"],
                                                     entry["instrument_family_str"])
    assert nsynth.parse_note_str(row.note_str)["instrument_str"] == row.instrument_str
    assert {"soundfont", "bank", "program"} <= set(notes.columns)
    assert notes.soundfont.notna().all()


def test_a_split_without_notes_keeps_the_columns_numeric(tiny_dataset, tmp_path):
    root = tmp_path / "root"
    shutil.copytree(tiny_dataset[0], root)
    valid = nsynth.split_folder(root, "valid")
    shutil.rmtree(valid / "audio")
    (valid / "audio").mkdir()
    (valid / "examples.json").write_text("{}")
    (valid / "instruments.json").write_text("{}")
    notes = nsynth.read_dataset(root)
    assert set(notes.split) == {"train", "test"}
    for column in ("pitch", "velocity", "note", "family_id", "sample_rate"):
        assert pd.api.types.is_integer_dtype(notes[column]), column
    assert notes.groupby("family", observed=True).pitch.describe()["max"].notna().all()


@pytest.fixture
def broken_split(tiny_dataset, tmp_path):
    """A copy of the tiny train split with four different problems."""
    folder = tmp_path / "nsynth-train"
    shutil.copytree(nsynth.split_folder(tiny_dataset[0], "train"), folder)
    wavs = sorted((folder / "audio").glob("*.wav"))
    wavs[0].unlink()  # missing file
    shutil.copy(wavs[1], folder / "audio" / "bass_synthetic_999-040-100.wav")  # extra file
    y, _ = sf.read(wavs[2])
    sf.write(wavs[2], y, 22050, subtype="PCM_16")  # wrong sample rate
    wavs[3].write_bytes(wavs[3].read_bytes()[:20000])  # truncated
    return folder, wavs


def test_validation_reports_every_problem_at_once(broken_split):
    folder, wavs = broken_split
    problems = nsynth.validate_split(folder)
    text = "\n".join(problems)
    assert f"{wavs[0].name}: listed in examples.json but missing" in text
    assert "bass_synthetic_999-040-100.wav: not listed in examples.json" in text
    assert f"{wavs[2].name}: sample rate 22050 Hz" in text
    assert f"{wavs[3].name}:" in text and "samples, expected 64000" in text
    assert len(problems) == 4
    with pytest.raises(InstclfError, match="4 problem"):
        nsynth.check_split(folder)


def test_corrupt_wav_gives_a_clear_error(tmp_path):
    bad = tmp_path / "keyboard_acoustic_000-060-100.wav"
    bad.write_bytes(b"RIFF....not a wav at all")
    assert "not a readable WAV" in nsynth.wav_problems(bad)[0]
    with pytest.raises(InstclfError, match=str(bad)):
        nsynth.load_note(bad)


def test_missing_examples_json_names_the_fix(tmp_path):
    (tmp_path / "nsynth-valid" / "audio").mkdir(parents=True)
    with pytest.raises(InstclfError, match="instclf data render"):
        nsynth.read_split(tmp_path / "nsynth-valid")


def _table(counts: dict[str, int]) -> pd.DataFrame:
    rows = [(f"{family}_acoustic_000-{60 + k:03d}-100", family)
            for family, n in counts.items() for k in range(n)]
    table = pd.DataFrame(rows, columns=["note_str", "family"])
    table["family"] = pd.Categorical(table["family"], categories=FAMILIES)
    return table


def test_balanced_subset_caps_at_the_smallest_family():
    notes = _table({"bass": 10, "brass": 4, "flute": 7})
    subset = subsets.balanced_subset(notes, seed=0)
    assert subsets.family_counts(subset)[["bass", "brass", "flute"]].tolist() == [4, 4, 4]
    assert subsets.family_counts(subset)["vocal"] == 0  # absent stays absent
    assert list(subset.index) == sorted(subset.index)


def test_balanced_subset_is_deterministic_for_a_seed():
    notes = _table({"bass": 30, "brass": 30})
    a = subsets.balanced_subset(notes, per_family=5, seed=3)
    b = subsets.balanced_subset(notes, per_family=5, seed=3)
    c = subsets.balanced_subset(notes, per_family=5, seed=4)
    assert a.note_str.tolist() == b.note_str.tolist()
    assert a.note_str.tolist() != c.note_str.tolist()


def test_balanced_subset_refuses_more_than_a_family_has():
    with pytest.raises(InstclfError, match="brass \\(4\\)"):
        subsets.balanced_subset(_table({"bass": 10, "brass": 4}), per_family=5)


def test_summary_counts_notes_and_instruments(tiny_dataset):
    notes = nsynth.read_dataset(tiny_dataset[0])
    summary = nsynth.summarize(notes)
    assert summary[("train", "notes")].sum() == (notes.split == "train").sum()
    assert summary[("valid", "instruments")].sum() == \
        notes[notes.split == "valid"].groupby("family", observed=True).instrument_str.nunique().sum()
    assert list(summary.index) == list(FAMILIES)


def test_load_note_returns_float_audio(tiny_dataset):
    path = nsynth.read_split(nsynth.split_folder(tiny_dataset[0], "valid")).path.iloc[0]
    y, sr = nsynth.load_note(path)
    assert sr == 16000 and y.shape == (64000,) and y.dtype == np.float32
