"""The Csound source: drawn physical-model and FM instruments rendered as NSynth-format notes
(instclf.sources.csound)."""

from __future__ import annotations

import ctypes
import ctypes.util
import filecmp
import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from instclf.sources import base, registry
from instclf import nsynth, render, subsets
from instclf.config import FAMILIES, SOURCES, SPLITS, InstclfError
from instclf.sources import csound, synth

TINY = csound.CsoundRender(name="csound-tiny", instruments_per_family=2, notes_per_instrument=2,
                           velocities=(100,), heldout_fraction=0.5)


@pytest.fixture(scope="module")
def tiny(tiny_profile):
    """The tiny Csound render (one process) in the tiny profile's data root: (data_dir, report)."""
    report = TINY.render(tiny_profile.data_dir, workers=1, progress=False)
    return tiny_profile.data_dir, report


def test_the_render_is_valid_nsynth_with_every_family(tiny):
    data_dir, report = tiny
    root = TINY.root(data_dir)
    for split in SPLITS:
        assert nsynth.validate_split(nsynth.split_folder(root, split)) == []
    notes = nsynth.read_dataset(root)
    assert report.counts == {"written": len(notes)} == {"written": 11 * 2 * 2}
    for split in SPLITS:  # one kept and one held-out instrument per family
        assert set(notes.loc[notes.split == split, "family"]) == set(FAMILIES), split
    train = set(notes.loc[notes.split == "train", "instrument_str"])
    heldout = set(notes.loc[notes.split != "train", "instrument_str"])
    assert len(train) == len(heldout) == 11 and not train & heldout
    assert notes.instrument_str.str.extract(r"_(\d+)$")[0].astype(int).between(3000, 3999).all()


def test_notes_are_normalised_like_the_soundfont_render(tiny):
    notes = nsynth.read_dataset(TINY.root(tiny[0]))
    for path, name in zip(notes.path, notes.note_str):
        peak = float(np.abs(nsynth.load_note(path)[0]).max())
        assert abs(peak - render.target_peak(name)) < 1e-3, name


def test_instruments_json_says_what_each_instrument_is(tiny):
    folder = nsynth.split_folder(TINY.root(tiny[0]), "train")
    instruments = json.loads((folder / "instruments.json").read_text())
    assert len(instruments) == 11
    for entry in instruments.values():
        engine = csound.BY_NAME[entry["engine"]]
        assert entry["family"] == engine.family and entry["source"] == engine.source
        assert set(entry["params"]) == set(csound.COMMON) | set(engine.ranges)


def test_same_seed_gives_identical_bytes(tiny, tmp_path):
    again = TINY.render(tmp_path, workers=1, progress=False)
    assert again.counts == tiny[1].counts
    for split in SPLITS:
        a = nsynth.split_folder(TINY.root(tiny[0]), split)
        b = nsynth.split_folder(TINY.root(tmp_path), split)
        assert (a / "examples.json").read_bytes() == (b / "examples.json").read_bytes()
        names = sorted(p.name for p in (a / "audio").glob("*.wav"))
        match, mismatch, errors = filecmp.cmpfiles(a / "audio", b / "audio", names,
                                                   shallow=False)
        assert len(match) == len(names) and not mismatch and not errors


def test_the_stamp_follows_the_settings(tiny):
    data_dir = tiny[0]
    assert TINY.is_ready(data_dir)
    assert not replace(TINY, seed=1).is_ready(data_dir)
    assert TINY.ensure(data_dir, progress=False) == TINY.root(data_dir)  # nothing to render


def _spectrum(inst: dict, pitch: int) -> np.ndarray:
    """Mean log-magnitude spectrum of a note's first 2 s, in 1/3-octave-like bands (dB)."""
    y = csound.play(inst, pitch, 100)[:2 * render.RENDER_RATE]
    frames = y[:len(y) // 2048 * 2048].reshape(-1, 2048) * np.hanning(2048)
    power = (np.abs(np.fft.rfft(frames, axis=1)) ** 2).mean(axis=0)
    edges = np.unique(np.geomspace(2, len(power), 40).astype(int))
    return 10 * np.log10([power[a:b].mean() + 1e-12 for a, b in zip(edges[:-1], edges[1:])])


@pytest.mark.parametrize("family", ["flute", "string", "organ", "vocal", "keyboard"])
def test_two_instruments_of_a_family_sound_different(family):
    plan = csound.plan_instruments(replace(TINY, families=(family,), instruments_per_family=4))
    same_engine = [i for i in plan if i["engine"] == plan[0]["engine"]][:2]
    pitch = max(i["pitches"][0] for i in same_engine) + 5
    a, b = (_spectrum(inst, pitch) for inst in same_engine)
    assert np.abs(a - b).mean() > 1.0  # dB, averaged over the bands
    assert np.array_equal(a, _spectrum(same_engine[0], pitch))  # the same instrument: the same


@pytest.mark.parametrize("engine", ["wgflute", "wgclar", "wgbow"])
def test_waveguides_play_at_their_pitch(engine):
    inst = {"engine": engine, "instrument_str": "flute_acoustic_3000",
            "params": csound.draw_params(csound.BY_NAME[engine], subsets.stable_rng(0, "t"))}
    for pitch in (csound.BY_NAME[engine].low + 7, csound.BY_NAME[engine].high - 7):
        cps = csound.midi_cps(pitch)
        sounding = synth.sounding_frequency(csound.play(inst, pitch, 100), cps)
        assert abs(1200 * np.log2(sounding / cps)) <= synth.IN_TUNE_CENTS, (engine, pitch)


def test_the_registry_makes_it_and_names_never_meet_the_soundfonts(tiny, tiny_profile,
                                                                   tiny_dataset):
    made = registry.make_source("csound", name="csound-tiny", instruments_per_family=2,
                               notes_per_instrument=2, velocities=(100,), heldout_fraction=0.5)
    assert made == TINY and made.settings()["kind"] == "csound"
    notes = base.read_notes([*tiny_profile.sources, made], tiny[0], progress=False)
    mine = notes[notes.origin == "csound-tiny"]
    assert len(mine) == 44 and set(mine.lineage) == {"csound"}
    assert set(notes[notes.origin != "csound-tiny"].lineage).isdisjoint({"csound"})


def test_every_family_has_an_engine_and_ranges_within_nsynth():
    for family in FAMILIES:
        assert csound.ENGINES_OF[family], family
    for engine in csound.ENGINES:
        assert 21 <= engine.low < engine.high <= 108 and engine.source in SOURCES, engine.name


def test_a_missing_library_says_what_to_install(monkeypatch):
    monkeypatch.setattr(csound, "_LIB", None)
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)

    def no_library(name, *args, **kwargs):
        raise OSError(name)

    monkeypatch.setattr(ctypes, "CDLL", no_library)
    with pytest.raises(InstclfError, match="apt-get install libcsound64-6.0"):
        csound.perform("instr 1\nendin\n")


def test_a_process_outlives_many_engines():
    """Each note is a new engine; with Debian's plugins loaded a process died after ~340."""
    script = ("from instclf.sources import csound\n"
              "orc = csound.HEADER.format(seed=1, stick=0.5) + "
              "'instr 1\\nasig poscil 0.3, 440, giSine\\nout asig\\nendin\\n'\n"
              "for _ in range(500):\n"
              "    csound.perform(orc, 0.01)\n")
    assert subprocess.run([sys.executable, "-c", script], timeout=120).returncode == 0
