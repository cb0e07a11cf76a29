"""Checks every drawn-instrument source must pass (test_faust_source, test_pyo_source): its
tiny render, its held-out instruments, the same bytes from the same seed, and resuming."""

from __future__ import annotations

import shutil
from pathlib import Path

from instclf import nsynth
from instclf.config import SPLITS


def tiny_source(render_class, name: str, families: tuple[str, ...]):
    """Two instruments of each of ``families``, two notes each at one velocity, one of the two
    held out: the tiny render each drawn source's tests share."""
    return render_class(name=name, families=families, instruments_per_family=2,
                        notes_per_instrument=2, velocities=(100,), heldout_fraction=0.5)


def rendered_once(source, tmp_path_factory):
    """``source`` rendered (one worker) into a fresh folder: (data dir, report)."""
    data_dir = tmp_path_factory.mktemp(source.kind)
    return data_dir, source.render(data_dir, workers=1, progress=False)


def assert_held_out_instruments_not_trained_on(notes, families) -> None:
    """One of two instruments of each family held out, its two notes ``valid`` and ``test``."""
    train = set(notes.instrument_str[notes.split == "train"])
    heldout = set(notes.instrument_str[notes.split != "train"])
    assert not train & heldout
    for family in families:
        held = notes[(notes.family == family) & (notes.split != "train")]
        assert held.instrument_str.nunique() == 1 and set(held.split) == {"valid", "test"}


def assert_same_bytes(source, rendered: Path, counts, again_dir: Path) -> None:
    """Rendering ``source`` again (two workers) into ``again_dir`` writes the same files."""
    again = source.render(again_dir, workers=2, progress=False)
    assert again.counts == counts
    for split in SPLITS:
        a = nsynth.split_folder(source.root(rendered), split)
        b = nsynth.split_folder(source.root(again_dir), split)
        for name in ("examples.json", "instruments.json"):
            assert (a / name).read_bytes() == (b / name).read_bytes()
        wavs = sorted(p.name for p in (a / "audio").glob("*.wav"))
        assert wavs and wavs == sorted(p.name for p in (b / "audio").glob("*.wav"))
        for wav in wavs:
            assert (a / "audio" / wav).read_bytes() == (b / "audio" / wav).read_bytes(), wav


def rendered_notes(source, data_dir: Path, report):
    """The notes of a finished render, after checking every split is valid NSynth and every
    planned note was written."""
    for split in SPLITS:
        assert nsynth.validate_split(nsynth.split_folder(source.root(data_dir), split)) == []
    notes = source.read(data_dir)
    assert len(notes) == report.counts.get("written", 0) == report.notes_planned
    return notes


def assert_render_resumes(source, rendered: Path, tmp_path: Path) -> None:
    """A copy of ``source``'s render in ``rendered``, unfinished and one note short, resumes:
    the one note is written again, byte for byte, and every other one is kept."""
    root = source.root(tmp_path)
    shutil.copytree(source.root(rendered), root)
    (root / "render.json").unlink()
    lost = sorted((root / "nsynth-train" / "audio").glob("*.wav"))[0]
    original = lost.read_bytes()
    lost.unlink()
    assert not source.is_ready(tmp_path)
    report = source.render(tmp_path, workers=1, progress=False)
    assert report.counts == {"resumed": report.notes_planned - 1, "written": 1}
    assert lost.read_bytes() == original and source.is_ready(tmp_path)
