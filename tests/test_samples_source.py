"""The sampled source (instclf.sources.samples): npm packages of recorded notes, installed with
their SHA-1 checked, played as a sampler plays them. The packages here are tiny tarballs of
the same layout that the test writes itself (MP3 tones), served from a local folder."""

from __future__ import annotations

import hashlib
import io
import tarfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given
from hypothesis import strategies as st

from drawn_sources import (assert_held_out_instruments_not_trained_on, assert_render_resumes,
                           assert_same_bytes, rendered_notes)
from instclf import render
from instclf.config import InstclfError
from instclf.sources.base import read_source
from instclf.sources.registry import make_source
from instclf.sources import samples
from instclf.sources.synth import midi_cps, sounding_frequency

RATE = 44_100


def tone(pitch: int, seconds: float = 5.0) -> np.ndarray:
    """A decaying harmonic tone at a MIDI pitch, as a recorded sample would hold one."""
    t = np.arange(int(seconds * RATE)) / RATE
    f = midi_cps(pitch)
    return 0.3 * np.exp(-t / 3) * sum(np.sin(2 * np.pi * k * f * t) / k for k in (1, 2, 3))


def tarball(folder: Path, name: str, pitches: tuple[int, ...]) -> Path:
    """An npm-style tarball ``tonejs-instrument-<name>-mp3-1.0.0.tgz`` holding one MP3 per
    pitch (``package/C4.mp3``...), a package.json and a file that is no sample."""
    letters = {0: "C", 1: "Cs", 2: "D", 3: "Ds", 4: "E", 5: "F", 6: "Fs", 7: "G", 8: "Gs",
               9: "A", 10: "As", 11: "B"}
    path = folder / f"tonejs-instrument-{name}-mp3-1.0.0.tgz"
    with tarfile.open(path, "w:gz") as tar:
        files = {"package/package.json": b"{}", "package/F2 v2.mp3": b"not a sample"}
        for pitch in pitches:
            data = io.BytesIO()
            sf.write(data, tone(pitch), RATE, format="MP3")
            files[f"package/{letters[pitch % 12]}{pitch // 12 - 1}.mp3"] = data.getvalue()
        for member, data in files.items():
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def package_of(path: Path, name: str, program: int) -> samples.Package:
    return samples.Package(name, "1.0.0", hashlib.sha1(path.read_bytes()).hexdigest(), program)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A folder of three tiny packages (two strings, one flute) and their Package entries."""
    folder = tmp_path_factory.mktemp("served")
    made = {"violin": (40, (60, 64, 67)), "cello": (42, (48, 52)), "flute": (73, (72, 76))}
    return folder, tuple(package_of(tarball(folder, name, pitches), name, program)
                         for name, (program, pitches) in made.items())


@pytest.fixture(scope="module")
def installed(served, tmp_path_factory):
    """The tiny packages installed from the served folder; the source that plays them."""
    folder, packages = served
    target = tmp_path_factory.mktemp("installed")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(samples.DIR_ENV, str(target))
        source = samples.SampleLibrary(name="samples-tiny", packages=packages,
                                       notes_per_instrument=3, heldout_fraction=0.5)
        source.fetch(progress=False, base_url=str(folder))
    return target, source


@pytest.fixture
def rendered(installed, tmp_path_factory, monkeypatch):
    target, source = installed
    monkeypatch.setenv(samples.DIR_ENV, str(target))
    data_dir = tmp_path_factory.mktemp("samples-data")
    return source, data_dir, source.render(data_dir, workers=1, progress=False)


def test_sample_names_give_midi_pitches():
    assert samples.sample_pitch("package/C4.mp3") == 60
    assert samples.sample_pitch("package/As3.mp3") == 58
    assert samples.sample_pitch("package/C-1.mp3") == 0
    assert samples.sample_pitch("package/F2 v2.mp3") is None
    assert samples.sample_pitch("package/index.js") is None


@given(st.sets(st.integers(21, 108), min_size=1, max_size=12), st.integers(0, 127),
       st.integers(0, 127))
def test_playable_pitches_are_near_a_sample_and_played_from_the_nearest(sampled, low, high):
    playable = samples.playable_pitches(sampled, low, high)
    expected = [p for p in range(low, high + 1)
                if min(abs(p - s) for s in sampled) <= samples.MAX_SHIFT]
    assert playable == expected
    for pitch in playable:
        nearest = samples.nearest_sample(sampled, pitch)
        assert nearest in sampled
        assert abs(pitch - nearest) == min(abs(pitch - s) for s in sampled)


def test_a_shifted_sample_sounds_at_its_new_pitch_held_then_released():
    y48 = samples.play_sample(tone(60).astype(np.float32), RATE, shift=2)
    assert len(y48) == (render.HOLD_SECONDS + render.RELEASE_SECONDS) * render.RENDER_RATE
    cents = 1200 * np.log2(sounding_frequency(y48, midi_cps(62)) / midi_cps(62))
    assert abs(cents) < 5
    fade_end = int((render.HOLD_SECONDS + samples.FADE_SECONDS) * render.RENDER_RATE)
    held = y48[int(2.9 * render.RENDER_RATE):render.HOLD_SECONDS * render.RENDER_RATE]
    assert np.abs(held).max() > 0.1 and not np.any(y48[fade_end:])


def test_a_sample_starts_where_its_sound_does_not_at_the_mp3_delay():
    rng = np.random.default_rng(0)
    y = tone(60, seconds=1.0).astype(np.float32)
    hiss = 1e-6 * rng.standard_normal(200).astype(np.float32)  # -110 dB: below the threshold
    padded = np.concatenate([np.zeros(1000, np.float32), hiss, y])
    assert samples.lead_in(padded) - 1200 == samples.lead_in(y) <= 1
    np.testing.assert_allclose(samples.play_sample(padded, RATE, 0),
                               samples.play_sample(y, RATE, 0), atol=1e-6)


def test_install_checks_the_published_sha1_and_keeps_nothing_else(served, tmp_path,
                                                                  monkeypatch):
    folder, packages = served
    monkeypatch.setenv(samples.DIR_ENV, str(tmp_path / "installed"))
    wrong = replace(packages[0], sha1="0" * 40)
    with pytest.raises(InstclfError, match="nothing was kept"):
        samples.fetch_package(wrong, samples.samples_dir(), base_url=str(folder))
    assert not list((tmp_path / "installed").glob("*.tgz"))
    path = samples.fetch_package(packages[0], samples.samples_dir(), base_url=str(folder))
    assert path.read_bytes() == (folder / packages[0].tarball).read_bytes()
    source = samples.SampleLibrary(name="s", packages=packages)
    with pytest.raises(InstclfError, match="instclf data samples"):
        source.render(tmp_path / "data", workers=1, progress=False)  # two not installed


def test_a_missing_package_says_where_it_was_looked_for(tmp_path):
    package = samples.Package("nothing", "1.0.0", "0" * 40, 40)
    with pytest.raises(InstclfError, match=samples.URL_ENV):
        samples.fetch_package(package, tmp_path / "installed", base_url=str(tmp_path))


def test_the_registry_is_the_default_place_of_a_package(monkeypatch):
    monkeypatch.delenv(samples.URL_ENV, raising=False)
    package = samples.PACKAGES[0]
    assert samples.package_url(package) == (
        f"https://registry.npmjs.org/{package.npm_name}/-/{package.tarball}")
    assert {samples.GM_PROGRAMS[p.program].family for p in samples.PACKAGES} >= {
        "bass", "brass", "flute", "guitar", "keyboard", "mallet", "organ", "reed", "string"}


def test_tiny_render_is_nsynth_with_held_out_strings(rendered):
    source, data_dir, report = rendered
    notes = rendered_notes(source, data_dir, report)
    assert report.notes_planned == 9 and set(notes.velocity) == {100}
    assert_held_out_instruments_not_trained_on(notes, ("string",))
    assert set(notes.split[notes.family == "flute"]) == {"train"}  # its only instrument
    assert set(read_source(source, data_dir).lineage) == {"samples"}
    assert make_source("samples", name="x").kind == "samples"
    for _, note in notes.iterrows():
        y, rate = sf.read(note.path)
        assert rate == 16_000 and len(y) == 64_000
        low, high = render.PEAK_RANGE
        assert low - 1e-3 <= np.abs(y).max() <= high + 1e-3
        # the MP3 encoder's delay is dropped: sound within 40 dB of the peak in the first 5 ms
        assert np.abs(y[:80]).max() > 0.01 * np.abs(y).max(), note.note_str


def test_the_same_render_again_and_resumed(rendered, tmp_path):
    source, data_dir, report = rendered
    assert_same_bytes(source, data_dir, report.counts, tmp_path / "again")
    assert_render_resumes(source, data_dir, tmp_path / "resumed")
