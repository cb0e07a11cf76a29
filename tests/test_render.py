"""The embedded dataset: splits, determinism, normalisation, isolation of notes, resume."""

from __future__ import annotations

import filecmp
import shutil
from dataclasses import replace

import numpy as np
import pytest
import soundfile as sf

from instclf import nsynth, render
from instclf.config import FAMILIES, InstclfError
from instclf.instruments import GM_PROGRAMS, soundfont_path


def _notes(root):
    return nsynth.read_dataset(root)


def test_no_instrument_in_train_and_heldout(tiny_dataset):
    notes = _notes(tiny_dataset[0])
    train = set(notes.loc[notes.split == "train", "instrument_str"])
    heldout = set(notes.loc[notes.split != "train", "instrument_str"])
    assert train and heldout
    assert not train & heldout


def test_every_family_in_train_and_heldout_splits(tiny_dataset):
    notes = _notes(tiny_dataset[0])
    for split in ("train", "valid", "test"):
        assert set(notes.loc[notes.split == split, "family"]) == set(FAMILIES), split


def test_rendered_dataset_is_valid_nsynth(tiny_dataset):
    root, report = tiny_dataset
    for split in ("train", "valid", "test"):
        assert nsynth.validate_split(nsynth.split_folder(root, split)) == []
    written = sum(len(nsynth.read_split(nsynth.split_folder(root, s))) for s in
                  ("train", "valid", "test"))
    assert written == report.counts.get("written", 0)
    assert report.notes_planned == written + report.counts.get("silent", 0) + \
        report.counts.get("clipped", 0)


def test_notes_are_normalised_like_nsynth(tiny_dataset):
    notes = _notes(tiny_dataset[0])
    peaks = [np.abs(nsynth.load_note(p)[0]).max() for p in notes.path]
    assert min(peaks) >= render.PEAK_RANGE[0] - 1e-3
    assert max(peaks) <= render.PEAK_RANGE[1] + 1e-3


def test_same_seed_gives_identical_bytes(tiny_profile, tiny_dataset, tmp_path):
    again = tmp_path / "again"
    render.render_dataset(tiny_profile.sources[0], again, workers=1, progress=False)
    for split in ("train", "valid", "test"):
        a, b = nsynth.split_folder(tiny_dataset[0], split), nsynth.split_folder(again, split)
        assert (a / "examples.json").read_bytes() == (b / "examples.json").read_bytes()
        names = sorted(p.name for p in (a / "audio").glob("*.wav"))
        assert names == sorted(p.name for p in (b / "audio").glob("*.wav"))
        match, mismatch, errors = filecmp.cmpfiles(a / "audio", b / "audio", names,
                                                   shallow=False)
        assert not mismatch and not errors and len(match) == len(names)


def test_other_seed_changes_the_selection(tiny_profile):
    plan_a = render.plan_dataset(tiny_profile.sources[0])
    plan_b = render.plan_dataset(replace(tiny_profile.sources[0], seed=1))
    assert [i["notes"] for i in plan_a] != [i["notes"] for i in plan_b]


def test_a_note_does_not_leak_into_the_next():
    synth = render.Synth(soundfont_path("TimGM6mb"))
    fresh = synth.play_note(0, 48, 60, 100)
    synth.close()
    busy = render.Synth(soundfont_path("TimGM6mb"))
    busy.play_note(0, 0, 40, 127)  # a loud piano note with a long tail first
    busy.play_note(0, 52, 72, 127)
    after = busy.play_note(0, 48, 60, 100)
    busy.close()
    np.testing.assert_array_equal(fresh, after)


def test_silent_and_clipped_notes_are_rejected():
    assert render.finish_note(np.zeros(render.RENDER_RATE * 4, np.float32), "x")[1] == "silent"
    loud = np.full(render.RENDER_RATE * 4, 1.2, np.float32)
    assert render.finish_note(loud, "x") == (None, "clipped")
    tone = 0.05 * np.sin(np.arange(render.RENDER_RATE * 4) * 0.01).astype(np.float32)
    y, outcome = render.finish_note(tone, "bass_synthetic_000-040-100")
    assert outcome == "written" and y.dtype == np.int16 and len(y) == nsynth.NOTE_SAMPLES


def test_interrupted_render_resumes_without_rerendering(tiny_profile, tiny_dataset, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(tiny_dataset[0], root)
    train = nsynth.split_folder(root, "train")
    (train / "examples.json").unlink()  # as if killed before the end
    wavs = sorted((train / "audio").glob("*.wav"))
    wavs[0].unlink()
    (train / "audio" / (wavs[1].name + ".tmp-abc")).write_bytes(b"RIFF half")  # killed write
    report = render.render_dataset(tiny_profile.sources[0], root, workers=1, progress=False)
    assert report.counts["resumed"] == tiny_dataset[1].counts["written"] - 1
    assert report.counts["written"] == 1
    assert not list(root.rglob("*.tmp-*"))
    original = nsynth.split_folder(tiny_dataset[0], "train")
    assert (train / "examples.json").read_bytes() == (original / "examples.json").read_bytes()
    assert wavs[0].read_bytes() == (original / "audio" / wavs[0].name).read_bytes()


def test_truncated_wav_is_rendered_again(tiny_profile, tiny_dataset, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(tiny_dataset[0], root)
    victim = sorted((nsynth.split_folder(root, "valid") / "audio").glob("*.wav"))[0]
    victim.write_bytes(victim.read_bytes()[:5000])
    report = render.render_dataset(tiny_profile.sources[0], root, workers=1, progress=False)
    assert report.counts["written"] == 1
    assert nsynth.is_complete_wav(victim)


def test_is_rendered_tracks_the_settings(tiny_profile, tiny_dataset):
    source, root = tiny_profile.sources[0], tiny_dataset[0]
    assert render.is_rendered(source, root)
    assert not render.is_rendered(replace(source, seed=7), root)


def test_missing_soundfont_names_the_package(monkeypatch, tmp_path):
    monkeypatch.setattr("instclf.instruments.SOUNDFONT_DIRS", (tmp_path,))
    monkeypatch.delenv("INSTCLF_SOUNDFONT_DIR", raising=False)
    with pytest.raises(InstclfError, match="apt-get install opl3-soundfont"):
        soundfont_path("OPL3_FM")


def test_dataset_root_that_is_a_file_is_refused(tiny_profile, tmp_path):
    target = tmp_path / "file"
    target.write_text("not a folder")
    with pytest.raises(InstclfError, match=str(target)):
        render.render_dataset(tiny_profile.sources[0], target, progress=False)
    assert target.read_text() == "not a folder"


def test_gm_table_covers_every_family_with_valid_ranges():
    assert {p.family for p in GM_PROGRAMS.values()} == set(FAMILIES)
    for program, entry in GM_PROGRAMS.items():
        assert 0 <= program < 128
        assert 21 <= entry.low < entry.high <= 108, program


def test_rendered_wav_is_16_bit_pcm(tiny_dataset):
    path = nsynth.read_split(nsynth.split_folder(tiny_dataset[0], "test")).path.iloc[0]
    assert sf.info(path).subtype == "PCM_16"
