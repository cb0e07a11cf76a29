"""The pyo source (instclf.sources.pyo_synth): NSynth's format and levels, same seed same
bytes, notes in tune and independent of each other, distinct instruments per family,
held-out instruments, resuming, the registry."""

from __future__ import annotations

import json
import sys
from dataclasses import replace

import numpy as np
import pytest

import drawn_sources
from instclf.sources import base, registry
from instclf import nsynth, render, subsets
from instclf.config import FAMILIES, SOURCES, InstclfError
from instclf.sources import pyo_synth, synth
from instclf.sources.pyo_synth import PyoRender

TINY = drawn_sources.tiny_source(PyoRender, "pyo-tiny", ("bass", "keyboard", "mallet", "vocal"))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """TINY rendered once (one worker): (data dir, report)."""
    return drawn_sources.rendered_once(TINY, tmp_path_factory)


def test_the_render_is_valid_nsynth_at_nsynth_levels(tiny):
    data_dir, report = tiny
    notes = drawn_sources.rendered_notes(TINY, data_dir, report)
    assert len(notes) == 4 * 2 * 2
    assert set(notes.family) == set(TINY.families) and set(notes.velocity) == {100}
    for note in notes.itertuples():
        y, sr = nsynth.load_note(note.path)
        assert sr == 16_000 and len(y) == 4 * 16_000
        assert abs(np.abs(y).max() - render.target_peak(note.note_str)) < 1e-3, note.note_str
        held = np.abs(y[:3 * sr]).max()  # it speaks while held, and is released by 4 s
        assert held == np.abs(y).max() and np.abs(y[-100:]).max() < 0.01 * held
    numbers = notes.instrument_str.str.extract(r"_(\d+)$")[0].astype(int)
    assert numbers.between(pyo_synth.FIRST_INDEX, pyo_synth.FIRST_INDEX + 999).all()
    assert TINY.is_ready(data_dir) and not replace(TINY, seed=1).is_ready(data_dir)
    assert TINY.ensure(data_dir, progress=False) == TINY.root(data_dir)  # nothing to render


def test_instruments_json_says_what_each_instrument_is(tiny):
    folder = nsynth.split_folder(TINY.root(tiny[0]), "train")
    instruments = json.loads((folder / "instruments.json").read_text())
    assert len(instruments) == len(TINY.families)  # one kept instrument per family
    notes = TINY.read(tiny[0])
    for name, entry in instruments.items():
        engine = pyo_synth.BY_NAME[entry["engine"]]
        assert entry["family"] == engine.family and entry["source"] == engine.source
        assert set(entry["params"]) == set(pyo_synth.COMMON) | set(engine.ranges)
        pitches = notes.pitch[notes.instrument_str == name]
        assert pitches.between(engine.low, engine.high).all()


def test_held_out_instruments_are_not_trained_on(tiny):
    drawn_sources.assert_held_out_instruments_not_trained_on(TINY.read(tiny[0]), TINY.families)


def test_same_seed_same_bytes(tiny, tmp_path):
    drawn_sources.assert_same_bytes(TINY, tiny[0], tiny[1].counts, tmp_path)


def test_another_seed_draws_other_instruments():
    one, two = (pyo_synth.plan_instruments(replace(TINY, seed=seed)) for seed in (0, 1))
    assert [i["instrument_str"] for i in one] == [i["instrument_str"] for i in two]
    assert all(a["params"] != b["params"] for a, b in zip(one, two))
    assert pyo_synth.plan_instruments(TINY) == one  # the same seed: the same plan


def _instrument(engine: str, k: int = 0, seed: int = 0) -> dict:
    spec = pyo_synth.BY_NAME[engine]
    return {"engine": engine, "instrument_str": f"{spec.family}_{spec.source}_{4000 + k}",
            "params": pyo_synth.draw_params(spec, subsets.stable_rng(seed, "test", engine, k))}


def test_a_note_does_not_depend_on_the_notes_before_it():
    one, two = _instrument("voice_female"), _instrument("pipe_organ")
    first = pyo_synth.play(one, 64, 100)
    pyo_synth.play(two, 48, 25)  # another engine, its noise and its tables in between
    assert np.array_equal(pyo_synth.play(one, 64, 100), first)


def _spectrum(y: np.ndarray) -> np.ndarray:
    """Mean log-magnitude spectrum of a note's first 2 s, in log-spaced bands (dB)."""
    y = y[:2 * render.RENDER_RATE]
    frames = y[:len(y) // 2048 * 2048].reshape(-1, 2048) * np.hanning(2048)
    power = (np.abs(np.fft.rfft(frames, axis=1)) ** 2).mean(axis=0)
    edges = np.unique(np.geomspace(2, len(power), 40).astype(int))
    return 10 * np.log10([power[a:b].mean() + 1e-12 for a, b in zip(edges[:-1], edges[1:])])


@pytest.mark.parametrize("family", ["bass", "flute", "organ", "string", "vocal"])
def test_two_instruments_of_one_engine_sound_different(family):
    engines = pyo_synth.ENGINES_OF[family]
    plan = pyo_synth.plan_instruments(replace(TINY, families=(family,),
                                              instruments_per_family=len(engines) + 1))
    one, two = plan[0], plan[len(engines)]  # the family's engines take turns
    assert one["engine"] == two["engine"] and one["params"] != two["params"]
    pitch = max(one["pitches"][0], two["pitches"][0]) + 5
    a, b = (_spectrum(pyo_synth.play(inst, pitch, 100)) for inst in (one, two))
    assert np.abs(a - b).mean() > 1.0  # dB, averaged over the bands


@pytest.mark.parametrize("engine", pyo_synth.ENGINES, ids=lambda e: e.name)
def test_every_engine_sounds_in_tune_across_its_range(engine):
    """Its lowest and highest pitch: written (finite, audible, not clipped), in tune."""
    inst = _instrument(engine.name)
    for pitch in (engine.low, engine.high):
        y = pyo_synth.play(inst, pitch, 75)
        cps = synth.midi_cps(pitch)
        sounding = synth.sounding_frequency(y, cps)
        assert sounding and abs(1200 * np.log2(sounding / cps)) <= synth.IN_TUNE_CENTS, pitch
        assert render.finish_note(y, f"x-{pitch:03d}-075")[1] == "written", pitch


def _centroid(y: np.ndarray) -> float:
    power = np.abs(np.fft.rfft(y[:2 * render.RENDER_RATE])) ** 2
    return float((power * np.fft.rfftfreq(2 * render.RENDER_RATE, 1 / render.RENDER_RATE)).sum()
                 / power.sum())


@pytest.mark.parametrize("engine", ["analog_bass", "synth_brass", "additive_piano", "fm_bell",
                                    "string_ensemble"])
def test_a_harder_note_is_a_brighter_one(engine):
    inst = _instrument(engine)
    spec = pyo_synth.BY_NAME[engine]
    pitch = (spec.low + spec.high) // 2
    soft, hard = (_centroid(pyo_synth.play(inst, pitch, v)) for v in (25, 127))
    assert hard > 1.05 * soft


def test_engines_cover_nine_families_or_more_within_nsynth():
    assert len(pyo_synth.PYO_FAMILIES) >= 9
    for engine in pyo_synth.ENGINES:
        assert engine.family in FAMILIES and engine.source in SOURCES, engine.name
        assert 21 <= engine.low < engine.high <= 108, engine.name
    assert len(pyo_synth.BY_NAME) == len(pyo_synth.ENGINES)


def test_the_registry_makes_it_and_every_note_is_of_the_pyo_lineage(tiny):
    made = registry.make_source("pyo", name="pyo-tiny", families=TINY.families,
                               instruments_per_family=2, notes_per_instrument=2,
                               velocities=(100,), heldout_fraction=0.5)
    assert made == TINY and made.settings()["kind"] == "pyo"
    notes = base.read_notes([made], tiny[0], progress=False)
    assert set(notes.lineage) == {"pyo"} and set(notes.origin) == {"pyo-tiny"}
    with pytest.raises(InstclfError, match="no pyo engine plays family 'nope'"):
        pyo_synth.plan_instruments(replace(made, families=("nope",)))


def test_a_missing_pyo_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "pyo", None)
    with pytest.raises(InstclfError, match="pip install 'pyo"):
        TINY.render(tmp_path, progress=False)
    with pytest.raises(InstclfError, match="pip install 'pyo"):
        pyo_synth._pyo()


def test_a_render_resumes_where_it_stopped(tiny, tmp_path):
    drawn_sources.assert_render_resumes(TINY, tiny[0], tmp_path)
