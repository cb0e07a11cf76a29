"""Every bad input gets one clear answer (issue 13): degenerate audio, foreign models, invalid
metadata, broken caches, read-only roots, folders as inputs, and evaluate == predict.

Everything is built here, in temporary folders: synthetic notes (decaying harmonic tones),
NSynth-format folders written by hand, and a tiny dense model on musicnn's features saved the
way training saves one. Nothing needs the network or a trained model.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings, strategies as st

from instclf import cli, evaluate, features, nsynth, predict, train
from instclf.config import FAMILIES, InstclfError

SR = nsynth.SAMPLE_RATE


def tone(pitch: int = 57, seconds: float = 4.0, peak: float = 0.8, sr: int = SR) -> np.ndarray:
    """A decaying harmonic tone at MIDI ``pitch``: a note-like recording (float32)."""
    t = np.arange(round(seconds * sr)) / sr
    f0 = 440 * 2 ** ((pitch - 69) / 12)
    y = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6)) * np.exp(-1.5 * t)
    return (peak * y / np.abs(y).max()).astype(np.float32)


def wav(y: np.ndarray, sr: int = SR, subtype: str = "FLOAT") -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, y, sr, format="WAV", subtype=subtype)
    return buffer.getvalue()


def save_model(path: Path, model: keras.Model | None = None, **meta) -> Path:
    """A tiny dense classifier on musicnn's features, saved as training saves one."""
    keras.utils.set_random_seed(0)
    model = model or keras.Sequential([keras.Input(features.MUSICNN.shape),
                                       keras.layers.Flatten(),
                                       keras.layers.Dense(len(FAMILIES), activation="softmax")])
    train.save_model(model, {"backbone": "tiny_dense", "classes": list(FAMILIES),
                             "front_end": asdict(features.MUSICNN), **meta}, path)
    return path


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    return save_model(tmp_path_factory.mktemp("model") / "tiny.keras")


@pytest.fixture(scope="module")
def predictor(model_path) -> predict.Predictor:
    return predict.load_predictor(model_path)


def refusal(data: bytes, predictor, name: str = "take.wav") -> str:
    with pytest.raises(InstclfError) as caught:
        predict.predict_audio(data, predictor, name=name)
    message = str(caught.value)
    assert message.startswith(f"{name}: ")
    return message


# --- degenerate audio -----------------------------------------------------------------------

@pytest.mark.parametrize("value", [np.nan, np.inf], ids=["nan", "inf"])
def test_a_wav_of_non_finite_samples_is_refused_with_their_count(value, predictor):
    message = refusal(wav(np.full(SR, value, np.float32)), predictor)
    assert "16,000 of 16,000 samples are not numbers" in message and "export" in message


@pytest.mark.parametrize("value, count", [(np.nan, 3), (np.inf, 1), (-np.inf, 1)])
def test_a_note_with_a_few_non_finite_samples_is_refused_not_answered(value, count, predictor):
    y = tone()
    y[[1000, 20_000, 40_000][:count]] = value
    assert f"{count} of 64,000 samples are not numbers" in refusal(wav(y), predictor)


def test_a_dc_offset_is_no_note(predictor):
    message = refusal(wav(np.full(2 * SR, 0.5, np.float32)), predictor)
    assert "no note: a constant level (DC offset +0.500)" in message


@pytest.mark.parametrize("samples", [1, 100, 3999])
def test_a_file_shorter_than_a_quarter_second_is_too_short(samples, predictor):
    message = refusal(wav(tone()[:samples], subtype="PCM_16"), predictor)
    assert "too short" in message and f"at least {predict.MIN_SECONDS} s" in message
    assert predict.predict_audio(wav(tone()[:4000]), predictor) is not None  # 0.25 s: heard


def test_a_click_is_no_note(predictor):
    y = np.zeros(SR, np.float32)
    y[8000] = 0.9
    assert "no note: it sounds for 0.004 s" in refusal(wav(y), predictor)


def test_a_rate_outside_the_range_is_refused(predictor):
    y = np.random.default_rng(0).normal(0, 0.1, 4000).astype(np.float32)
    assert "sample rate 1000 Hz" in refusal(wav(y, sr=1000), predictor)


def test_a_float_file_beyond_full_scale_is_the_same_note_scaled(predictor):
    top = predict.render.PEAK_RANGE[1]  # a louder note is lowered to the training range's top
    np.testing.assert_allclose(predict.predict_audio(wav(tone(peak=1000)), predictor),
                               predict.predict_audio(wav(tone(peak=top)), predictor), atol=1e-4)


def test_the_note_checks_pass_every_rendered_note(tiny_dataset):
    notes = nsynth.read_dataset(tiny_dataset[0])
    for path in notes.path:
        y, _ = nsynth.load_note(path)
        assert predict.sound_seconds(y) >= predict.MIN_SOUND_SECONDS
        assert features.spectral_flatness(y) < predict.NOISE_FLATNESS


# --- "not sure" -----------------------------------------------------------------------------

def _series(p) -> pd.Series:
    return pd.Series(p, index=pd.Index(FAMILIES, name="family"), name="probability")


def test_noise_is_not_sure_and_a_note_is_not_doubted_for_noise():
    noise = np.random.default_rng(0).normal(0, 0.2, 4 * SR).astype(np.float32)
    sure = _series(np.eye(len(FAMILIES))[3])
    assert predict.doubt(sure, noise).startswith("not sure: it sounds like noise")
    assert predict.doubt(sure, tone()) is None and predict.doubt(sure) is None


def test_a_low_top_probability_is_not_sure():
    p = np.full(len(FAMILIES), 0.4 / (len(FAMILIES) - 1))
    p[2] = 0.6
    assert predict.doubt(_series(p)).startswith("not sure: flute has only 60%")
    for top, doubted in ((predict.NOT_SURE_BELOW - 0.01, True), (predict.NOT_SURE_BELOW + 0.01, False)):
        p = np.full(len(FAMILIES), (1 - top) / (len(FAMILIES) - 1))
        p[2] = top
        assert (predict.doubt(_series(p)) is not None) == doubted, top


def _table(confidences, correct) -> pd.DataFrame:
    rows = []
    for c, right in zip(confidences, correct):
        p = np.full(len(FAMILIES), (1 - c) / (len(FAMILIES) - 1))
        p[0] = c
        rows.append({"family": "bass" if right else "brass", "instrument_str": "x",
                     **{f"p_{f}": v for f, v in zip(FAMILIES, p)}})
    table = pd.DataFrame(rows)
    table["predicted"] = "bass"
    return table


def test_the_not_sure_threshold_is_where_answers_turn_mostly_wrong():
    table = _table([0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95],
                   [False, False, True, False, True, True, True, True])
    # right below 0.6: 1 of 3, below 0.7: 1 of 4, below 0.8: 2 of 5, below 0.9: 3 of 6
    assert evaluate.not_sure_threshold(table) == pytest.approx(0.8)
    assert evaluate.not_sure_threshold(table, accuracy_floor=0.3) == pytest.approx(0.7)
    assert evaluate.not_sure_threshold(_table([0.5, 0.9], [True, True])) == 0.0


def test_the_command_shows_not_sure_for_noise(model_path, tmp_path, capsys):
    path = tmp_path / "hiss.wav"
    path.write_bytes(wav(np.random.default_rng(1).normal(0, 0.2, 2 * SR).astype(np.float32)))
    assert cli.main(["predict", str(path), "--model", str(model_path)]) == 0
    assert "not sure: it sounds like noise" in capsys.readouterr().out
    assert cli.main(["predict", str(path), "--model", str(model_path), "--json"]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    assert result["not_sure"].startswith("not sure: it sounds like noise")


def test_the_widget_says_not_sure(model_path, predictor):
    from instclf import widgets

    noise = np.random.default_rng(2).normal(0, 0.2, 2 * SR).astype(np.float32)
    result = widgets.handle_upload(wav(noise), "hiss.wav", predictor)
    assert result.ok and result.doubt.startswith("not sure") and "not sure" in result.message


# --- foreign and broken models: stopped before any input is tried ---------------------------

def run_cli(*argv) -> tuple[int, str, str]:
    """``instclf ARGV`` in this process: status, stdout, stderr."""
    import contextlib

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = cli.main([str(a) for a in argv])
    return status, out.getvalue(), err.getvalue()


def one_error_line(status, out, err, *words) -> str:
    assert status == 2 and out == "", (status, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("instclf: error: "), err
    assert "Traceback" not in err and all(w in lines[0] for w in words), lines[0]
    return lines[0]


@pytest.fixture
def two_notes(tmp_path) -> list[Path]:
    paths = [tmp_path / "a.wav", tmp_path / "b.wav"]
    for pitch, path in zip((50, 62), paths):
        path.write_bytes(wav(tone(pitch)))
    return paths


def test_a_text_file_named_keras_stops_before_any_input(tmp_path, two_notes, monkeypatch):
    monkeypatch.setattr(predict, "_PREDICTORS", {})
    model = tmp_path / "model.keras"
    model.write_text("not a model\n")
    one_error_line(*run_cli("predict", *two_notes, "--model", model), str(model),
                   "not a Keras model")


def test_a_lambda_layer_is_refused_by_safe_mode_in_one_line(tmp_path, two_notes, monkeypatch):
    monkeypatch.setattr(predict, "_PREDICTORS", {})
    model = keras.Sequential([keras.Input(features.MUSICNN.shape),
                              keras.layers.Lambda(lambda x: x * 2), keras.layers.Flatten(),
                              keras.layers.Dense(len(FAMILIES), activation="softmax")])
    path = save_model(tmp_path / "lambda.keras", model)
    one_error_line(*run_cli("predict", *two_notes, "--model", path), str(path),
                   "cannot be loaded", "Lambda")


def test_an_unknown_layer_class_is_refused_in_one_line(tmp_path, two_notes, monkeypatch):
    monkeypatch.setattr(predict, "_PREDICTORS", {})

    @keras.saving.register_keras_serializable(package="instclf_reliability")
    class Doubling(keras.layers.Layer):
        def call(self, x):
            return x * 2

    model = keras.Sequential([keras.Input(features.MUSICNN.shape), Doubling(),
                              keras.layers.Flatten(),
                              keras.layers.Dense(len(FAMILIES), activation="softmax")])
    path = save_model(tmp_path / "custom.keras", model)
    del keras.saving.get_custom_objects()["instclf_reliability>Doubling"]
    one_error_line(*run_cli("predict", *two_notes, "--model", path), str(path),
                   "cannot be loaded")


def test_a_keras_model_without_instclf_description_is_refused(tmp_path, two_notes, monkeypatch):
    monkeypatch.setattr(predict, "_PREDICTORS", {})
    model = keras.Sequential([keras.Input(features.MUSICNN.shape), keras.layers.Flatten(),
                              keras.layers.Dense(len(FAMILIES), activation="softmax")])
    path = tmp_path / "plain.keras"
    model.save(path)
    one_error_line(*run_cli("predict", *two_notes, "--model", path), str(path),
                   "no instclf description")


def test_a_model_whose_input_does_not_fit_stops_before_the_files(tmp_path, two_notes,
                                                                 monkeypatch):
    monkeypatch.setattr(predict, "_PREDICTORS", {})
    model = keras.Sequential([keras.Input((10, 10)), keras.layers.Flatten(),
                              keras.layers.Dense(len(FAMILIES), activation="softmax")])
    path = save_model(tmp_path / "small.keras", model)
    one_error_line(*run_cli("predict", *two_notes, "--model", path), str(path),
                   "takes (10, 10)", "(187, 96)")
    one_error_line(*run_cli("evaluate", "--model", path, "--data", tmp_path), str(path))


# --- inputs: a failing one never stops the others; folders ----------------------------------

def test_a_bad_input_and_an_empty_folder_do_not_stop_the_others(model_path, tmp_path, two_notes):
    empty = tmp_path / "nothing here"
    empty.mkdir()
    nan = tmp_path / "nan.wav"
    nan.write_bytes(wav(np.full(SR, np.nan, np.float32)))
    status, out, err = run_cli("predict", two_notes[0], empty, nan, two_notes[1],
                               "--model", model_path, "--json")
    assert status == 1 and "Traceback" not in err
    results = json.loads(out)
    assert [r["file"] for r in results] == [str(p) for p in (two_notes[0], empty, nan,
                                                              two_notes[1])]
    assert "top" in results[0] and "top" in results[3]
    assert "a folder, not an audio file" in results[1]["error"]
    assert "not numbers" in results[2]["error"]
    assert len(err.strip().splitlines()) == 2


def test_a_folder_of_recordings_is_every_recording_in_it(model_path, tmp_path, two_notes):
    status, out, err = run_cli("predict", tmp_path, "--model", model_path, "--json")
    assert status == 0, err
    assert [r["file"] for r in json.loads(out)] == [str(p) for p in two_notes]


def test_the_api_says_a_folder_is_a_folder(predictor, tmp_path):
    with pytest.raises(InstclfError, match="a folder, not an audio file"):
        predict.predict_audio(tmp_path, predictor)


# --- NSynth-format folders: every entry checked --------------------------------------------

def nsynth_folder(root: Path, entries: dict, peak: float = 0.8) -> Path:
    """``root/examples.json`` with ``entries`` and a 4 s tone for each note."""
    (root / "audio").mkdir(parents=True)
    for k, name in enumerate(entries):
        sf.write(root / "audio" / f"{name}.wav", tone(45 + 3 * k, peak=peak), SR,
                 subtype="FLOAT")
    (root / "examples.json").write_text(json.dumps(entries))
    return root


def full_entry(name: str, family: str = "guitar", pitch=60, **changes) -> dict:
    entry = {"note": 1, "note_str": name, "instrument": 3, "instrument_str": name.split("-")[0],
             "instrument_family": FAMILIES.index(family) if family in FAMILIES else 99,
             "instrument_family_str": family, "instrument_source": 0,
             "instrument_source_str": "acoustic", "pitch": pitch, "velocity": 100,
             "sample_rate": SR, "qualities": [0] * 10, "qualities_str": []}
    return {**entry, **changes}


@pytest.mark.parametrize("change, problem", [
    ({"pitch": "garbage"}, "pitch 'garbage' is not an integer from 0 to 127"),
    ({"velocity": 300}, "velocity 300 is not an integer from 0 to 127"),
    ({"instrument_family_str": "kazoo"}, "instrument_family_str 'kazoo' is not one of NSynth's 11"),
    ({"instrument_source_str": "alien"}, "instrument_source_str 'alien' is not one of NSynth's 3"),
    ({"instrument_family": 2}, "instrument_family 2 is flute, not guitar"),
    ({"sample_rate": 44_100}, "sample_rate 44100, expected 16000"),
])
def test_validate_reports_each_bad_entry_and_info_refuses_it(change, problem, tmp_path):
    bad = "guitar_acoustic_003-060-100"
    folder = nsynth_folder(tmp_path / "nsynth-train", {
        "guitar_acoustic_001-050-100": full_entry("guitar_acoustic_001-050-100"),
        bad: full_entry(bad, **change)})
    status, out, _ = run_cli("data", "validate", "--root", tmp_path, "--splits", "train")
    assert status == 1 and f"{bad}: {problem}" in out and "1 problem(s)" in out
    status, out, err = run_cli("data", "info", "--root", tmp_path, "--splits", "train")
    assert status == 2 and f"{bad}: {problem}" in err and "Traceback" not in err
    with pytest.raises(InstclfError, match="instclf data validate"):
        nsynth.read_split(folder)  # what training reads: refused, never read in part


def test_an_unknown_family_is_never_dropped(tmp_path):
    name = "kazoo_acoustic_000-060-100"
    folder = nsynth_folder(tmp_path, {name: full_entry(name, family="kazoo")})
    assert any("kazoo" in p for p in nsynth.validate_split(folder))
    with pytest.raises(InstclfError, match="kazoo"):
        nsynth.read_split(folder)


def test_evaluate_refuses_an_invalid_folder_with_the_report(model_path, tmp_path):
    name = "guitar_acoustic_000-060-100"
    folder = nsynth_folder(tmp_path / "f", {name: full_entry(name, sample_rate=44_100)})
    status, out, err = run_cli("evaluate", "--model", model_path, "--data", folder)
    assert status == 2 and "sample_rate 44100" in err and name in err


def test_a_wav_at_another_rate_is_reported_by_validate(tmp_path):
    name = "guitar_acoustic_000-060-100"
    folder = nsynth_folder(tmp_path, {name: full_entry(name)})
    sf.write(folder / "audio" / f"{name}.wav", tone(sr=44_100), 44_100)
    assert any("sample rate 44100 Hz" in p for p in nsynth.validate_split(folder))


MINIMAL = {f"{family}_acoustic_00{k}-0{50 + k}-100": {
    "instrument_family_str": family, "instrument_str": f"{family}_acoustic_00{k}",
    "pitch": 50 + k, "velocity": 100} for k, family in enumerate(("bass", "flute", "organ"))}


def test_evaluate_works_on_entries_with_only_the_fields_it_needs(model_path, tmp_path):
    folder = nsynth_folder(tmp_path / "minimal", MINIMAL)
    assert nsynth.validate_split(folder) == []
    out = tmp_path / "p.csv"
    status, printed, err = run_cli("evaluate", "--model", model_path, "--data", folder,
                                   "--out", out, "--quiet")
    assert status == 0, err
    table = evaluate.read_predictions(out)
    assert sorted(table.note_str) == sorted(MINIMAL) and list(table.family) == [
        MINIMAL[n]["instrument_family_str"] for n in table.note_str]
    ids = {n: {"instrument_family": FAMILIES.index(e["instrument_family_str"]), "instrument": k,
               "pitch": e["pitch"], "velocity": e["velocity"]}
           for k, (n, e) in enumerate(MINIMAL.items())}
    notes = nsynth.read_split(nsynth_folder(tmp_path / "ids", ids))
    assert list(notes.family.astype(str)) == ["bass", "flute", "organ"]


def test_evaluate_gives_quiet_notes_the_answers_predict_gives(model_path, predictor, tmp_path):
    folder = nsynth_folder(tmp_path / "quiet", MINIMAL, peak=0.1)
    table, metrics = evaluate.evaluate_folder(model_path, folder)
    assert metrics["refused"] == {}
    columns = [f"p_{f}" for f in FAMILIES]
    by_predict = np.stack([predict.predict_audio(folder / "audio" / f"{n}.wav", predictor)
                           for n in table.note_str])
    np.testing.assert_allclose(table[columns].to_numpy(), by_predict, atol=1e-5)
    # the old path (features of the raw quiet WAVs) answers otherwise: this test can fail
    X = features.compute_features([folder / "audio" / f"{n}.wav" for n in table.note_str],
                                  predictor.front_end, progress=False)
    assert np.abs(train.predict_in_chunks(predictor.model, X) - by_predict).max() > 1e-3


# --- caches that do not parse are rebuilt ---------------------------------------------------

@pytest.mark.parametrize("damage", ["sidecar []", "sidecar text", "truncated npy"])
def test_a_feature_cache_that_does_not_parse_is_rebuilt(damage, tmp_path):
    notes = nsynth.read_split(nsynth_folder(tmp_path / "notes", MINIMAL))
    fresh = features.cached_features(notes, features.MUSICNN, tmp_path / "cache",
                                     progress=False)
    expected = np.array(fresh.X)
    if damage == "truncated npy":
        fresh.path.write_bytes(fresh.path.read_bytes()[:1000])
    else:
        fresh.path.with_suffix(".json").write_text("[]" if damage == "sidecar []" else "{nope")
    features._VERIFIED.clear()
    rebuilt = features.cached_features(notes, features.MUSICNN, tmp_path / "cache",
                                       progress=False)
    np.testing.assert_array_equal(np.array(rebuilt.X), expected)
    assert json.loads(rebuilt.path.with_suffix(".json").read_text())["sha1"] == rebuilt.digest


# --- read-only data roots -------------------------------------------------------------------

@pytest.fixture
def shared_dir():
    """A temporary folder another user can read (pytest's own is private to its user)."""
    folder = Path(tempfile.mkdtemp(prefix="instclf-reliability-"))
    folder.chmod(0o755)
    yield folder
    for path in (folder, *folder.rglob("*")):
        path.chmod(0o755 if path.is_dir() else 0o644)
    shutil.rmtree(folder)


def as_reader(argv: list, root: Path, home: Path) -> subprocess.CompletedProcess:
    """``instclf ARGV`` with ``root`` as the data root, as a user who cannot write it."""
    prefix = ()
    if os.geteuid() == 0:  # permission bits stop no write of root's
        if not shutil.which("setpriv"):
            pytest.skip("running as root without setpriv to run as another user")
        prefix = ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
           "INSTCLF_DATA_DIR": str(root), "INSTCLF_PROFILE": "smoke",
           "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run([*prefix, sys.executable, "-m", "instclf.cli", *map(str, argv)],
                          capture_output=True, text=True, env=env, cwd=home, timeout=300)


def readable_tree(shared_dir) -> tuple[Path, Path]:
    root, home = shared_dir / "data", shared_dir / "home"
    root.mkdir()
    home.mkdir()
    home.chmod(0o777)
    return root, home


def freeze(root: Path) -> None:
    for path in (root, *root.rglob("*")):
        path.chmod(0o555 if path.is_dir() else 0o444)


def test_render_on_a_read_only_root_says_what_it_could_not_write(shared_dir):
    root, home = readable_tree(shared_dir)
    freeze(root)
    result = as_reader(["data", "render", "--quiet"], root, home)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("instclf: error: ") and str(root) in line
    assert "INSTCLF_DATA_DIR" in line


def test_predict_and_evaluate_on_a_read_only_root(shared_dir):
    root, home = readable_tree(shared_dir)
    model = save_model(root / "tiny.keras")
    (root / "take.wav").write_bytes(wav(tone()))
    folder = nsynth_folder(root / "notes", MINIMAL)
    freeze(root)
    result = as_reader(["predict", root / "take.wav", "--model", model, "--json"], root, home)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout)[0]["file"] == str(root / "take.wav")
    result = as_reader(["evaluate", "--model", model, "--data", folder, "--quiet"], root, home)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    line = result.stderr.strip().splitlines()[-1]
    assert str(folder / "predictions.csv") in line and "--out" in line


# --- the clip path, over random recordings --------------------------------------------------

RATES = (1, 7_999, 8_000, 11_025, 16_000, 44_100, 96_000, 400_000)
SPECIALS = (np.nan, np.inf, -np.inf, 0.0, 1e30, -3e38, 1e-30)


@st.composite
def recordings(draw):
    channels, sr = draw(st.integers(1, 3)), draw(st.sampled_from(RATES))
    n = draw(st.integers(1, 12_000))
    kind = draw(st.sampled_from(["sine", "noise", "constant", "zeros"]))
    amplitude = draw(st.sampled_from([0.0, 1e-6, 1e-3, 0.1, 1.0, 40.0, 3e38]))
    t = np.arange(n) / sr
    base = {"sine": np.sin(2 * np.pi * 440 * t), "constant": np.ones(n), "zeros": np.zeros(n),
            "noise": np.random.default_rng(draw(st.integers(0, 9))).uniform(-1, 1, n)}[kind]
    y = np.tile((amplitude * base).astype(np.float32), (channels, 1))
    for index, value in draw(st.lists(st.tuples(st.integers(0, channels * n - 1),
                                                st.sampled_from(SPECIALS)), max_size=3)):
        y.reshape(-1)[index] = value
    return (y[0] if channels == 1 else y), sr


@settings(derandomize=True, deadline=None, max_examples=40,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(recording=recordings())
def test_the_clip_path_refuses_or_answers_with_probabilities(recording, predictor):
    y, sr = recording
    try:
        clip = predict.prepare_clip(y, sr, predictor.front_end)
    except InstclfError as error:
        assert str(error)
        return
    assert clip.shape == (nsynth.NOTE_SAMPLES,) and np.isfinite(clip).all()
    p = predict.feature_probabilities(predict.clip_features(clip, predictor), predictor)
    assert np.isfinite(p).all() and (p >= 0).all() and abs(p.sum() - 1) < 1e-9
