"""Predicting your own audio: same answer as training, any format, onset alignment, refusals,
and a data root that holds nothing but a model, read-only.

The model is musicnn_vgg with a freshly initialised head (seeded, weights from the musicnn
package), saved and loaded like a trained one; the notes are the tiny rendered dataset. The
model-only data root holds a tiny dense model saved the way training saves its models.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, replace
from pathlib import Path

import keras
import librosa
import numpy as np
import pytest
import soundfile as sf

from instclf import backbones, cli, evaluate, features, models, nsynth, predict, train
from instclf.config import FAMILIES, InstclfError
from instclf.profiles import get_profile

# Largest differences measured against the note's own 16 kHz WAV (musicnn_vgg, random head,
# 8 notes): resampled lossless 7e-4; OGG Vorbis at its best quality 0.031, MP3 at 320 kbps
# 0.010. Lossy codecs drop quiet bands, which the log-compressed mel features amplify.
LOSSLESS_ATOL = 2e-3
LOSSY_ATOL = 0.06
FORMATS = {"wav": ("WAV", "PCM_16", {}), "flac": ("FLAC", "PCM_16", {}),
           "ogg": ("OGG", "VORBIS", {"compression_level": 0.0}),
           "mp3": ("MP3", "MPEG_LAYER_III", {"compression_level": 0.0,
                                             "bitrate_mode": "CONSTANT"})}


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    keras.utils.set_random_seed(0)
    backbone = backbones.get_backbone("musicnn_vgg")
    model = backbones.build_classifier(backbone)
    path = tmp_path_factory.mktemp("model") / "m.keras"
    train.save_model(model, {"front_end": asdict(backbone.front_end), "classes": list(FAMILIES),
                             "backbone": backbone.name}, path)
    return path


@pytest.fixture(scope="module")
def predictor(model_path) -> predict.Predictor:
    return predict.load_predictor(model_path)


@pytest.fixture(scope="module")
def notes(tiny_dataset):
    return nsynth.read_dataset(tiny_dataset[0]).reset_index(drop=True)


@pytest.fixture(scope="module")
def training_path(notes, predictor, tmp_path_factory):
    """Every note's predictions the way evaluation computes them: cached features -> model."""
    cached = features.cached_features(notes, predictor.front_end,
                                      tmp_path_factory.mktemp("cache"), progress=False)
    return evaluate.predict(predictor.model, cached.X, notes)


@pytest.fixture(scope="module")
def clear_note(notes, training_path) -> dict:
    """A note that starts on a sound sample, with the clearest top family (largest margin)."""
    p = training_path[[f"p_{f}" for f in FAMILIES]].to_numpy()
    top2 = np.sort(p, axis=1)[:, -2:]
    starts_on_sound = [nsynth.load_note(path)[0][0] != 0 for path in notes.path]
    best = int(np.argmax(np.where(starts_on_sound, top2[:, 1] - top2[:, 0], -1)))
    y, _ = nsynth.load_note(notes.path[best])
    return {"path": notes.path[best], "y": y, "p": p[best], "margin": float(top2[best, 1] - top2[best, 0])}


def _wav_bytes(y: np.ndarray, sr: int = nsynth.SAMPLE_RATE, fmt="WAV", subtype="PCM_16",
               **options) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, y, sr, format=fmt, subtype=subtype, **options)
    return buffer.getvalue()


# --- same answer as the training path -------------------------------------------------------

def test_a_rendered_note_gets_the_training_path_probabilities(notes, predictor, training_path):
    rows = range(0, len(notes), max(1, len(notes) // 8))
    ours = np.stack([predict.predict_audio(notes.path[i], predictor).to_numpy() for i in rows])
    cached = training_path[[f"p_{f}" for f in FAMILIES]].to_numpy()[list(rows)]
    np.testing.assert_allclose(ours, cached, atol=5e-4)  # the cache holds float16 features
    X = features.compute_features([notes.path[i] for i in rows], predictor.front_end,
                                  progress=False)
    exact = train.predict_in_chunks(predictor.model, X)
    np.testing.assert_allclose(ours, exact, atol=1e-5)


def test_probabilities_are_a_series_over_the_families(clear_note, predictor):
    p = predict.predict_audio(clear_note["path"], predictor)
    assert list(p.index) == list(FAMILIES)
    assert abs(p.sum() - 1) < 1e-9 and (p >= 0).all()
    top = predict.top_families(p, k=3)
    assert [f for f, _ in top] == list(p.sort_values(ascending=False).index[:3])
    assert top[0][1] == pytest.approx(p.max()) and len(predict.top_families(p, k=11)) == 11


def test_bytes_and_path_give_the_same_answer_and_nothing_is_written(clear_note, predictor,
                                                                    tmp_path, monkeypatch):
    data = Path(clear_note["path"]).read_bytes()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    from_bytes = predict.predict_audio(data, predictor, name="my note.wav")
    assert list(tmp_path.iterdir()) == []
    np.testing.assert_array_equal(from_bytes, predict.predict_audio(clear_note["path"],
                                                                    predictor))


# --- onset alignment ------------------------------------------------------------------------

def test_rendered_notes_are_left_where_they_start(notes):
    assert all(predict.find_onset(nsynth.load_note(p)[0]) == 0 for p in notes.path)


def test_leading_silence_does_not_change_the_answer(clear_note, predictor):
    silence = np.zeros(24_000, np.float32)  # 1.5 s
    padded = predict.predict_audio(_wav_bytes(np.concatenate([silence, clear_note["y"]])),
                                   predictor)
    np.testing.assert_allclose(padded, clear_note["p"], atol=1e-3)


def test_silence_is_dropped_up_to_the_first_sound_sample(notes):
    y = next(y for y in (nsynth.load_note(p)[0] for p in notes.path) if y[0] == 0)
    first = int(np.argmax(y != 0))
    assert predict.find_onset(np.concatenate([np.zeros(24_000, np.float32), y])) == 24_000 + first


def test_a_noisy_lead_in_is_dropped_too(clear_note):
    rng = np.random.default_rng(0)
    y = np.concatenate([np.zeros(16_000, np.float32), clear_note["y"]])
    noisy = y + rng.normal(0, 10 ** (-60 / 20), len(y)).astype(np.float32)  # -60 dBFS
    assert 16_000 <= predict.find_onset(noisy) < 16_000 + 800  # within 50 ms of the note


def test_prepared_clip_is_a_training_like_note(clear_note, predictor):
    quiet = np.concatenate([np.zeros(8_000), clear_note["y"][:20_000]]) * 0.01
    clip = predict.prepare_clip(np.stack([quiet, quiet]), nsynth.SAMPLE_RATE,
                                predictor.front_end)
    assert clip.dtype == np.float32 and clip.shape == (nsynth.NOTE_SAMPLES,)
    assert np.abs(clip).max() == pytest.approx(0.6, rel=1e-5)  # raised into PEAK_RANGE
    assert (clip[20_000:] == 0).all()  # shorter than 4 s: padded after the note
    loud = predict.prepare_clip(clear_note["y"] * 3, nsynth.SAMPLE_RATE, predictor.front_end)
    assert np.abs(loud).max() == pytest.approx(0.99, rel=1e-5)


# --- formats --------------------------------------------------------------------------------

@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("sr", [16_000, 22_050, 44_100, 48_000])
@pytest.mark.parametrize("extension", list(FORMATS))
def test_every_format_rate_and_channel_count(extension, sr, channels, clear_note, predictor,
                                             tmp_path):
    fmt, subtype, options = FORMATS[extension]
    y = clear_note["y"]
    if sr != nsynth.SAMPLE_RATE:
        y = librosa.resample(y, orig_sr=nsynth.SAMPLE_RATE, target_sr=sr, res_type="soxr_hq")
    path = tmp_path / f"note.{extension}"
    path.write_bytes(_wav_bytes(np.stack([y] * channels, axis=1), sr, fmt, subtype, **options))
    y_read, sr_read = predict.read_audio(path)
    assert sr_read == sr and (y_read.ndim == 1 if channels == 1 else len(y_read) == channels)
    p = predict.predict_audio(path, predictor).to_numpy()
    lossy = extension in ("ogg", "mp3")
    assert abs(p.sum() - 1) < 1e-9 and p.argmax() == clear_note["p"].argmax()
    np.testing.assert_allclose(p, clear_note["p"], atol=LOSSY_ATOL if lossy else LOSSLESS_ATOL)


def test_the_argmax_check_means_something(clear_note):
    assert clear_note["margin"] > 2 * LOSSY_ATOL


# --- refusals -------------------------------------------------------------------------------

def _refusal(source, predictor, **kwargs) -> str:
    with pytest.raises(InstclfError) as caught:
        predict.predict_audio(source, predictor, **kwargs)
    return str(caught.value)


def test_text_renamed_wav_is_not_audio(predictor, tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("this is a shopping list, not a recording\n" * 20)
    message = _refusal(path, predictor)
    assert "not audio" in message and str(path) in message and "MP3" in message


def test_empty_file_and_empty_wav_are_empty(predictor, tmp_path):
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    assert "empty" in _refusal(path, predictor) and "0 bytes" in _refusal(b"", predictor)
    header_only = _wav_bytes(np.zeros((0, 1), np.float32))
    assert "no samples" in _refusal(header_only, predictor, name="upload.wav")


def test_all_zeros_is_silent(predictor):
    message = _refusal(_wav_bytes(np.zeros(32_000, np.float32)), predictor, name="quiet.wav")
    assert message.startswith("quiet.wav: silent") and "louder" in message


def test_too_large_is_refused_before_decoding(predictor, clear_note, monkeypatch, tmp_path):
    monkeypatch.setattr(predict, "MAX_BYTES", 1000)
    data = Path(clear_note["path"]).read_bytes()
    assert "too large" in _refusal(data, predictor, name="big.wav")
    path = tmp_path / "big.flac"
    path.write_bytes(data)
    assert "too large" in _refusal(path, predictor)


def test_missing_file_is_named(predictor, tmp_path):
    assert "no such file" in _refusal(tmp_path / "nowhere.wav", predictor)


# --- loading --------------------------------------------------------------------------------

def test_a_predictor_is_loaded_once_per_file(model_path, predictor):
    assert predict.load_predictor(str(model_path)) is predictor
    assert predictor.front_end == features.MUSICNN


def test_a_model_for_other_classes_is_refused(predictor):
    with pytest.raises(InstclfError, match="NSynth's families"):
        predict.predictor_from(predictor.model, {**predictor.meta, "classes": ["a", "b"]})


# --- the command ----------------------------------------------------------------------------

def test_cli_predicts_good_files_and_reports_bad_ones(clear_note, model_path, tmp_path, capsys):
    bad = tmp_path / "bad.wav"
    bad.write_text("not a recording")
    status = cli.main(["predict", clear_note["path"], str(bad), "--model", str(model_path),
                       "--top", "2"])
    out, err = capsys.readouterr()
    assert status == 1
    top = FAMILIES[int(clear_note["p"].argmax())]
    assert out.splitlines()[0] == clear_note["path"] and top in out.splitlines()[1]
    assert len([line for line in out.splitlines() if "not sure" not in line]) == 3
    assert err.startswith(f"instclf: error: {bad}: not audio") and len(err.splitlines()) == 1


def test_cli_json_is_one_document(clear_note, model_path, tmp_path, capsys):
    empty = tmp_path / "empty.mp3"
    empty.write_bytes(b"")
    status = cli.main(["predict", clear_note["path"], str(empty), "--model", str(model_path),
                       "--json"])
    out, err = capsys.readouterr()
    assert status == 1 and "empty" in err
    good, failed = json.loads(out)
    assert good["file"] == clear_note["path"] and len(good["top"]) == 3
    assert list(good["probabilities"]) == list(FAMILIES)
    assert sum(good["probabilities"].values()) == pytest.approx(1, abs=1e-4)
    assert failed["file"] == str(empty) and "empty" in failed["error"]


def test_cli_all_good_exits_zero(clear_note, model_path, capsys):
    assert cli.main(["predict", clear_note["path"], "--model", str(model_path)]) == 0
    assert os.path.basename(clear_note["path"]) in capsys.readouterr().out


def test_cli_refuses_a_top_outside_the_families(clear_note, model_path, capsys):
    assert cli.main(["predict", clear_note["path"], "--model", str(model_path), "--top", "0"]) == 2
    assert "--top 0" in capsys.readouterr().err


# --- a data root that holds only a model ----------------------------------------------------

UNPRIVILEGED = (("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"),
                ("runuser", "-u", "nobody", "--"))


def save_tiny_model(path: Path, best_val_loss: float = 2.0) -> Path:
    """A dense model on musicnn features, saved as training saves one (description inside)."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input(features.MUSICNN.shape), keras.layers.Flatten(),
                              keras.layers.Dense(len(FAMILIES), activation="softmax")])
    train.save_model(model, {"backbone": "tiny_dense", "weights": None, "classes": list(FAMILIES),
                             "front_end": asdict(features.MUSICNN), "profile": "smoke",
                             "stages_completed": 1, "best_val_loss": best_val_loss}, path)
    return path


def snapshot(root: Path) -> dict:
    """Every path under ``root`` (itself included) with its mode, size and modification time."""
    return {str(p.relative_to(root)): (p.stat().st_mode, p.stat().st_size, p.stat().st_mtime_ns)
            for p in (root, *sorted(root.rglob("*")))}


@contextlib.contextmanager
def read_only(root: Path):
    """No write bits under ``root`` while inside (they come back on leaving)."""
    paths = [root, *root.rglob("*")]
    for path in paths:
        path.chmod(path.stat().st_mode & ~0o222)
    try:
        yield
    finally:
        for path in paths:
            path.chmod(path.stat().st_mode | 0o200)


@pytest.fixture(scope="module")
def shared_dir():
    """A temporary folder any user can read (pytest's own is private to its user)."""
    folder = Path(tempfile.mkdtemp(prefix="instclf-model-only-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder)


@pytest.fixture(scope="module")
def model_only_root(shared_dir) -> Path:
    """``<root>/models/smoke/<run>/stages1.keras`` (+ its JSON), and nothing else."""
    root = shared_dir / "data"
    run = root / "models" / "smoke" / "tiny_dense-0123456789"
    run.mkdir(parents=True)
    save_tiny_model(run / "stages1.keras")
    for path in (root, *root.rglob("*")):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return root


@pytest.fixture(scope="module")
def note_wav(shared_dir) -> Path:
    """A decaying 220 Hz tone with harmonics, 2 s at 44.1 kHz: a recording, not a dataset note."""
    t = np.arange(2 * 44_100) / 44_100
    y = sum(np.sin(2 * np.pi * 220 * k * t) / k for k in range(1, 6)) * np.exp(-2 * t)
    path = shared_dir / "my note.wav"
    sf.write(path, (0.5 * y / np.abs(y).max()).astype(np.float32), 44_100)
    path.chmod(0o644)
    return path


@pytest.fixture
def use_root(monkeypatch):
    """Point INSTCLF_DATA_DIR at a root, on the smoke profile, with no model loaded yet."""
    monkeypatch.setattr(predict, "_PREDICTORS", {})
    monkeypatch.setenv("INSTCLF_PROFILE", "smoke")
    return lambda root: monkeypatch.setenv("INSTCLF_DATA_DIR", str(root))


def _expected_family(model: Path, wav: Path) -> str:
    """The top family, from a predictor made here (not cached: the command loads its own)."""
    predictor = predict.predictor_from(*train.load_model(model), model)
    return predict.top_families(predict.predict_audio(wav, predictor), 1)[0][0]


def test_predict_on_a_read_only_root_that_holds_only_a_model(model_only_root, note_wav, use_root,
                                                              capsys):
    model = models.best_model_path(replace(get_profile("smoke"), data_dir=model_only_root))
    expected = _expected_family(model, note_wav)
    use_root(model_only_root)
    with read_only(model_only_root):
        before = snapshot(model_only_root)
        status = cli.main(["predict", str(note_wav), "--json"])
        out, err = capsys.readouterr()
        assert snapshot(model_only_root) == before
    assert status == 0, err
    (result,) = json.loads(out)
    assert result["file"] == str(note_wav) and result["top"][0][0] == expected


def _unprivileged_prefix() -> tuple[str, ...] | None:
    if os.geteuid() != 0:
        return ()  # permission bits already apply to this user
    return next((tool for tool in UNPRIVILEGED if shutil.which(tool[0])), None)


def test_an_unprivileged_user_predicts_from_the_read_only_root(model_only_root, note_wav,
                                                                shared_dir):
    prefix = _unprivileged_prefix()
    if prefix is None:
        pytest.skip(f"running as root and none of {', '.join(t[0] for t in UNPRIVILEGED)} "
                    "found to run as another user: permission bits stop no write of root's")
    model = sorted(model_only_root.rglob("*.keras"))[0]
    expected = _expected_family(model, note_wav)
    home = shared_dir / "home"  # the user's own (numba, under librosa, caches there)
    home.mkdir(exist_ok=True)
    home.chmod(0o777)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
           "INSTCLF_DATA_DIR": str(model_only_root), "INSTCLF_PROFILE": "smoke",
           "TF_CPP_MIN_LOG_LEVEL": "2"}
    with read_only(model_only_root):
        before = snapshot(model_only_root)
        result = subprocess.run([*prefix, sys.executable, "-m", "instclf.cli", "predict",
                                 str(note_wav), "--json"], capture_output=True, text=True,
                                env=env, cwd=shared_dir, timeout=300)
        assert snapshot(model_only_root) == before
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-3000:]
    (answer,) = json.loads(result.stdout)
    assert answer["top"][0][0] == expected


def test_a_model_whose_json_beside_it_was_deleted_still_predicts(tmp_path, note_wav, use_root,
                                                                 capsys):
    path = save_tiny_model(tmp_path / "model.keras")
    expected = _expected_family(path, note_wav)
    path.with_suffix(".json").unlink()
    use_root(tmp_path / "no data here")
    assert cli.main(["predict", str(note_wav), "--model", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[1].split()[0] == expected
    assert predict.load_predictor(path).meta["backbone"] == "tiny_dense"
    assert not (tmp_path / "no data here").exists()


@pytest.mark.parametrize("holds", ["nothing", "an unfinished run"])
def test_no_trained_model_is_one_line_with_the_fix(holds, tmp_path, note_wav, use_root, capsys):
    root = tmp_path / "data"
    root.mkdir()
    if holds == "an unfinished run":  # stopped before its model file was written
        run = root / "models" / "smoke" / "musicnn_vgg_msd_whole-0123456789"
        run.mkdir(parents=True)
        (run / "state.json").write_text('{"completed_stages": 1}')
    use_root(root)
    before = snapshot(root)
    assert cli.main(["predict", str(note_wav)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1, err
    assert err.startswith("instclf: error: profile smoke has no trained model in "
                          f"{root / 'models' / 'smoke'}")
    for fix in ("instclf train", "make reproduce", "--model PATH"):
        assert fix in err
    assert snapshot(root) == before


def test_evaluate_reads_only_the_model_and_the_folder(model_only_root, tiny_dataset, tmp_path,
                                                      use_root, capsys):
    model = sorted(model_only_root.rglob("*.keras"))[0]
    folder = nsynth.split_folder(tiny_dataset[0], "valid")
    use_root(model_only_root)
    out = tmp_path / "predictions.csv"
    with read_only(model_only_root), read_only(tiny_dataset[0]):
        before = snapshot(model_only_root), snapshot(tiny_dataset[0])
        status = cli.main(["evaluate", "--model", str(model), "--data", str(folder), "--out",
                           str(out), "--quiet"])
        assert (snapshot(model_only_root), snapshot(tiny_dataset[0])) == before
    assert status == 0, capsys.readouterr().err
    assert len(evaluate.read_predictions(out)) == len(nsynth.read_split(folder))
