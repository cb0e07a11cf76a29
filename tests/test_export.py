"""The exported model (LiteRT) against the Keras model, and ``instclf predict`` on folders:
batched, machine-readable, one bad file among good ones reported without stopping the rest.

The model is a tiny convolutional classifier on musicnn features, built and saved here as
training saves one; the recordings are synthetic tones written here.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import keras
import numpy as np
import pytest
import soundfile as sf

from instclf import backbones, cli, embeddings, export, features, phrases, predict, train
from instclf.config import FAMILIES


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    keras.utils.set_random_seed(0)
    front_end = features.MUSICNN
    model = keras.Sequential([
        keras.Input(front_end.shape), keras.layers.Reshape((*front_end.shape, 1)),
        keras.layers.Conv2D(4, 3, activation="relu"), keras.layers.BatchNormalization(),
        keras.layers.MaxPooling2D(4), keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(len(FAMILIES), activation="softmax")])
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    train.save_model(model, {"backbone": "tiny_conv", "classes": list(FAMILIES),
                             "front_end": asdict(front_end), "best_val_loss": 1.0}, path)
    return path


@pytest.fixture(scope="module")
def exported(model_path) -> Path:
    return export.export_model(model_path)


def tone(path: Path, hz: float, sr: int = 44_100, seconds: float = 2.0) -> Path:
    t = np.arange(int(seconds * sr)) / sr
    y = sum(np.sin(2 * np.pi * hz * k * t) / k for k in range(1, 5)) * np.exp(-2 * t)
    sf.write(path, (0.5 * y / np.abs(y).max()).astype(np.float32), sr)
    return path


def test_exported_probabilities_equal_the_keras_model(model_path, exported):
    model, _ = train.load_model(model_path)
    lite, meta, mel_basis = export.load_exported(model_path)
    X = np.random.default_rng(0).random((5, *features.MUSICNN.shape), dtype=np.float32) * 3
    for batch in (X, X[:1], X):  # resized both ways
        np.testing.assert_allclose(lite.predict_on_batch(batch), model.predict_on_batch(batch),
                                   atol=1e-4)
    assert meta["backbone"] == "tiny_conv"
    np.testing.assert_array_equal(mel_basis, features._mel_basis(features.MUSICNN))


def _exported_and_keras(model, front_end, X, path: Path, **meta) -> tuple[np.ndarray, np.ndarray]:
    train.save_model(model, {"backbone": "two_backbones", "classes": list(FAMILIES),
                             "front_end": asdict(front_end), "best_val_loss": 1.0, **meta}, path)
    export.export_model(path)
    lite, _, _ = export.load_exported(path)
    return lite.predict_on_batch(X), model.predict_on_batch(X)


def test_the_pages_kind_of_model_two_frozen_backbones_and_a_head_exports_and_agrees(tmp_path):
    """The page's model reads two pretrained backbones' statistics and the descriptors
    (:func:`instclf.backbones.block_statistics_classifier`): its export gives its answers."""
    frozen = [backbones.get_backbone(name) for name in ("musicnn_vgg_msd_whole", "musicnn_mtt")]
    front_end = frozen[0].front_end
    t = np.arange(4 * 16_000) / 16_000
    clips = np.stack([sum(np.sin(2 * np.pi * hz * k * t) / k ** (1 + n % 3)
                          for k in range(1, 6)) * np.exp(-t * (1 + n % 4))
                      for n, hz in enumerate(np.geomspace(60, 1500, 22))]).astype(np.float32)
    X = features.batch_features(0.5 * clips, front_end)
    identity = keras.Sequential([keras.Input((None,)), keras.layers.Identity()])
    lite, S = _exported_and_keras(backbones.block_statistics_classifier(frozen, identity),
                                  front_end, X, tmp_path / "statistics.keras")
    assert np.all(np.abs(lite - S) < 1e-3 * (np.abs(S).max(axis=0) + 1e-3))  # each column's scale
    y, rows = np.arange(len(X)) % len(FAMILIES), np.arange(len(X))
    head, _ = embeddings.statistics_head(S, y, rows < 22, rows >= 11)
    lite, P = _exported_and_keras(backbones.block_statistics_classifier(frozen, head), front_end,
                                  X, tmp_path / "page.keras",
                                  frozen_backbones=[b.name for b in frozen])
    assert P.argmax(1).tolist() == y.tolist()  # a head that tells the notes apart
    # columns nearly constant over 22 tones, standardised, magnify float32 rounding: 1e-2
    assert lite.argmax(1).tolist() == y.tolist()
    np.testing.assert_allclose(lite, P, atol=1e-2)


def test_predict_uses_the_export_and_agrees_end_to_end(model_path, exported, tmp_path,
                                                       monkeypatch):
    monkeypatch.setattr(predict, "_PREDICTORS", {})
    wav = tone(tmp_path / "a.wav", 330.0)
    fast = predict.load_predictor(model_path)
    slow = predict.load_predictor(model_path, exported=False)
    assert isinstance(fast.model, export.ExportedModel) and fast.mel_basis is not None
    assert not isinstance(slow.model, export.ExportedModel)
    np.testing.assert_allclose(predict.predict_audio(wav, fast), predict.predict_audio(wav, slow),
                               atol=1e-4)


def test_a_stale_export_is_ignored(model_path, exported, tmp_path):
    copy = tmp_path / "copy.keras"
    copy.write_bytes(model_path.read_bytes())
    export.export_path(copy).write_bytes(exported.read_bytes())
    assert export.load_exported(copy) is not None
    with open(copy, "ab") as handle:  # the model file changed since its export
        handle.write(b"\0")
    assert export.load_exported(copy) is None


def test_prediction_with_an_export_imports_no_tensorflow_nor_librosa(model_path, exported,
                                                                     tmp_path):
    wav = tone(tmp_path / "b.wav", 220.0)
    code = ("import sys; from instclf import predict; "
            f"predict.predict_audio({str(wav)!r}, predict.load_predictor({str(model_path)!r})); "
            "print(sorted(m for m in ('tensorflow', 'keras', 'librosa.core', 'numba') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120).stdout
    assert out.strip() == "[]"


def test_a_folder_with_one_bad_file_reports_it_and_predicts_the_others(model_path, tmp_path,
                                                                      capsys):
    folder = tmp_path / "recordings"
    folder.mkdir()
    good = [tone(folder / f"{k}.wav", 110.0 * (k + 2)) for k in range(5)]
    (folder / "2-broken.wav").write_bytes(b"RIFF not really a wave file")
    (folder / "notes.txt").write_text("not audio, and not an audio name: passed over")
    assert cli.main(["predict", str(folder), "--model", str(model_path), "--format", "csv"]) == 1
    out, err = capsys.readouterr()
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [Path(r["file"]).name for r in rows] == ["0.wav", "1.wav", "2-broken.wav", "2.wav",
                                                    "3.wav", "4.wav"]
    broken = rows[2]
    assert broken["error"] and not broken["family"] and "2-broken.wav" in err
    predictor = predict.load_predictor(model_path, exported=False)
    for row in rows[:2] + rows[3:]:
        expected = predict.predict_audio(row["file"], predictor)
        assert row["family"] == expected.idxmax() and not row["error"]
        assert float(row[f"p_{row['family']}"]) == pytest.approx(expected.max(), abs=1e-4)
    assert len(good) == 5


def test_batches_give_the_answers_of_one_file_at_a_time(model_path, tmp_path):
    predictor = predict.load_predictor(model_path, exported=False)
    wavs = [tone(tmp_path / f"{k}.wav", 100.0 * (k + 1), sr=16_000 + 8_000 * k)
            for k in range(4)]
    batched = list(phrases.predict_many(wavs, predictor, batch_size=3))
    for wav, heard in batched:
        np.testing.assert_allclose(heard.probabilities, predict.predict_audio(wav, predictor),
                                   atol=1e-6)


def test_jsonl_is_one_object_per_file(model_path, tmp_path, capsys):
    wavs = [str(tone(tmp_path / f"{k}.wav", 200.0 + k)) for k in range(2)]
    assert cli.main(["predict", *wavs, "--model", str(model_path), "--format", "jsonl",
                     "--notes"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["file"] for line in lines] == wavs
    assert all(len(line["notes"]) == 1 and line["notes"][0]["family"] == line["top"][0][0]
               for line in lines)
