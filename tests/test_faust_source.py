"""The Faust source (instclf.sources.faust): NSynth's format and levels, same seed same bytes,
distinct instruments per family, held-out instruments, the registry."""

from __future__ import annotations

import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from multiprocessing import get_context

import numpy as np
import pytest

import drawn_sources
from instclf.sources import base, registry
from instclf import nsynth, render
from instclf.config import InstclfError
from instclf.sources import faust
from instclf.sources.faust import FaustRender

TINY = drawn_sources.tiny_source(FaustRender, "faust-tiny", ("string", "mallet", "synth_lead"))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """TINY rendered once (one worker): (data dir, report)."""
    return drawn_sources.rendered_once(TINY, tmp_path_factory)


def test_the_render_is_valid_nsynth_at_nsynth_levels(tiny):
    data_dir, report = tiny
    notes = drawn_sources.rendered_notes(TINY, data_dir, report)
    assert len(notes) == 3 * 2 * 2
    peaks = [np.abs(nsynth.load_note(path)[0]).max() for path in notes.path]
    assert render.PEAK_RANGE[0] - 1e-3 <= min(peaks) and max(peaks) <= render.PEAK_RANGE[1] + 1e-3
    assert set(notes.family) == set(TINY.families)
    assert all(int(name.rsplit("_", 1)[1]) >= faust.FIRST_NUMBER for name in notes.instrument_str)
    assert TINY.is_ready(data_dir) and not replace(TINY, seed=1).is_ready(data_dir)


def test_held_out_instruments_are_not_trained_on(tiny):
    drawn_sources.assert_held_out_instruments_not_trained_on(TINY.read(tiny[0]), TINY.families)


def test_same_seed_same_bytes(tiny, tmp_path):
    drawn_sources.assert_same_bytes(TINY, tiny[0], tiny[1].counts, tmp_path)


@pytest.fixture(scope="module")
def engine():
    """Plays notes in a spawned process, as the source's workers do: DawDreamer aborts a
    process where Csound's engine has run (another test module may have run it here)."""
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        yield lambda *notes: pool.submit(faust.play_notes, list(notes)).result()


def test_a_note_does_not_depend_on_the_notes_before_it(engine):
    one, two = faust.draw_instrument("string", 0, 0), faust.draw_instrument("string", 1, 0)
    first, _, again = engine((one, 60, 100), (two, 48, 25), (one, 60, 100))
    assert np.array_equal(again, first)


def _spectrum(y: np.ndarray) -> np.ndarray:
    """Log power per band, a quarter of a second into the note."""
    frame = y[12_000:12_000 + 8192] * np.hanning(8192)
    power = np.abs(np.fft.rfft(frame)) ** 2
    bands = np.array_split(power[:3000], 60)  # up to about 17.6 kHz
    return np.log10(np.array([b.sum() for b in bands]) + 1e-12)


@pytest.mark.parametrize("family", ["string", "vocal"])
def test_two_instruments_of_one_model_differ(family, engine):
    one, two = (faust.draw_instrument(family, k, 0) for k in (0, 1))
    assert one["model"] == two["model"] and one["params"] != two["params"]
    pitch = max(one["pitches"][0], two["pitches"][0]) + 5
    a, b = engine((one, pitch, 100), (two, pitch, 100))
    assert np.abs(_spectrum(a) - _spectrum(b)).mean() > 0.3  # dB/10: 3 dB per band on average


@pytest.mark.parametrize("model", faust.MODELS, ids=lambda m: m.name.split(" (")[0])
def test_every_model_sounds_in_its_register(model, engine):
    """The lowest, middle and highest pitch of its widest register: written (finite, audible,
    speaking while held), near full scale while held."""
    register = max(model.registers, key=lambda r: model.registers[r][1] - model.registers[r][0])
    low, high, *_ = model.registers[register]
    inst = faust.make_instrument(model, register, np.random.default_rng(0))
    pitches = (low, (low + high) // 2, high)
    for pitch, played in zip(pitches, engine(*((inst, p, 75) for p in pitches))):
        y, outcome = render.finish_note(played, f"x-{pitch:03d}-075")
        assert outcome == "written", (register, pitch, outcome)
        held = np.abs(y[:render.HOLD_SECONDS * nsynth.SAMPLE_RATE]).max() / 32767
        assert held > faust.WEAK_HOLD * render.PEAK_RANGE[0], (register, pitch)


def test_at_least_nine_families_and_the_registry():
    assert len(faust.FAUST_FAMILIES) >= 9
    made = registry.make_source("faust", name="f", families=("organ", "vocal"))
    assert isinstance(made, FaustRender) and made.settings()["kind"] == "faust"
    with pytest.raises(InstclfError, match="no Faust model for family 'nope'"):
        faust.plan_dataset(replace(made, families=("nope",)))


def test_every_note_is_of_the_faust_lineage(tiny):
    notes = base.read_notes([TINY], tiny[0])
    assert set(notes.lineage) == {"faust"} and set(notes.origin) == {"faust-tiny"}
    assert notes.preset_name.notna().all()


def test_a_missing_dawdreamer_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "dawdreamer", None)
    with pytest.raises(InstclfError, match="pip install 'dawdreamer"):
        TINY.render(tmp_path, progress=False)


def test_a_render_resumes_where_it_stopped(tiny, tmp_path):
    drawn_sources.assert_render_resumes(TINY, tiny[0], tmp_path)
