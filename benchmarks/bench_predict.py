"""Prediction latency: one 4 s WAV with a loaded model, against the obvious alternatives.

Measured in the same run on the same rendered note (smoke profile), with musicnn_vgg (its
pretrained weights from the musicnn package, a seeded fresh head, saved and loaded like a
trained model, so no training is needed):
- warm: ``predict.predict_audio`` with a predictor loaded once (median of 30 calls), split
  into decoding + clip, features and model;
- the same with the model run through ``model.predict`` or a plain ``model(x)`` call
  instead of ``predict_on_batch``, and with the model loaded again for every file;
- cold: a fresh Python process that imports instclf, loads the model and predicts one file
  (median of 3), as ``instclf predict`` does.
The trained best model (musicnn_vgg_msd_whole) is timed too when the default profile has one.
Writes benchmarks/results/predict.json.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import keras
import numpy as np

from instclf import backbones, config, features, models, nsynth, predict, profiles, train

RESULTS = Path(__file__).resolve().parent / "results"
RUNS = 30
COLD_RUNS = 3
COLD_SCRIPT = """
import sys, time
start = time.perf_counter()
from instclf import predict
predictor = predict.load_predictor(sys.argv[1])
loaded = time.perf_counter()
predict.predict_audio(sys.argv[2], predictor)
print(loaded - start, time.perf_counter() - start)
"""


def median_ms(run, runs: int = RUNS) -> float:
    run()  # warm up: the first call builds the predict function
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def build_model(folder: Path) -> Path:
    keras.utils.set_random_seed(0)
    backbone = backbones.get_backbone("musicnn_vgg")
    model = backbones.build_classifier(backbone)
    path = folder / "musicnn_vgg.keras"
    train.save_model(model, {"front_end": asdict(backbone.front_end), "backbone": backbone.name,
                             "classes": list(config.FAMILIES)}, path)
    return path


def warm(predictor: predict.Predictor, wav: str) -> dict:
    """Median milliseconds of each route for one file, the model already in memory."""
    model = predictor.model
    y, sr = predict.read_audio(wav)
    clip = predict.prepare_clip(y, sr, predictor.front_end)
    X = features.batch_features(clip[None], predictor.front_end, fft_workers=1)

    def with_model_predict():
        y, sr = predict.read_audio(wav)
        clip = predict.prepare_clip(y, sr, predictor.front_end)
        x = features.batch_features(clip[None], predictor.front_end, fft_workers=1)
        return model.predict(x, verbose=0)

    def with_direct_call():
        y, sr = predict.read_audio(wav)
        clip = predict.prepare_clip(y, sr, predictor.front_end)
        x = features.batch_features(clip[None], predictor.front_end, fft_workers=1)
        return keras.ops.convert_to_numpy(model(x, training=False))

    return {
        "predict_audio": median_ms(lambda: predict.predict_audio(wav, predictor)),
        "decode_and_clip": median_ms(lambda: predict.prepare_clip(
            *predict.read_audio(wav), predictor.front_end)),
        "features": median_ms(lambda: features.batch_features(
            clip[None], predictor.front_end, fft_workers=1)),
        "model_predict_on_batch": median_ms(lambda: model.predict_on_batch(X)),
        "with_model_predict": median_ms(with_model_predict),
        "with_direct_call": median_ms(with_direct_call),
    }


def load_per_call_ms(path: Path, wav: str, runs: int = 5) -> float:
    """The obvious alternative: load the model for every file."""
    def once():
        model, meta = train.load_model(path)
        predict.predict_audio(wav, predict.predictor_from(model, meta, path))
    return median_ms(once, runs)


def cold_start(path: Path, wav: str) -> dict:
    """Seconds from a fresh interpreter to the first prediction (import + load + predict)."""
    rows = []
    for _ in range(COLD_RUNS):
        began = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", COLD_SCRIPT, str(path), wav], check=True,
                             capture_output=True, text=True,
                             env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
        total = time.perf_counter() - began
        loaded, first = map(float, out.stdout.split()[-2:])
        rows.append((total, loaded, first))
    total, loaded, first = (statistics.median(column) for column in zip(*rows))
    return {"process_seconds": round(total, 2), "import_and_load_seconds": round(loaded, 2),
            "import_load_predict_seconds": round(first, 2)}


def trained_best_model() -> Path | None:
    return models.best_model_path(profiles.get_profile("default"))


def main() -> dict:
    profile = profiles.get_profile("smoke")
    notes = profile.notes(progress=False)
    wav = str(notes.path.iloc[0])
    result = {"benchmark": "predict", "cpu_count": os.cpu_count(), "runs": RUNS,
              "file": Path(wav).name}
    with tempfile.TemporaryDirectory() as folder:
        path = build_model(Path(folder))
        predictor = predict.load_predictor(path)
        ms = warm(predictor, wav)
        ms["load_per_call"] = load_per_call_ms(path, wav)
        result["musicnn_vgg_ms"] = {k: round(v, 1) for k, v in ms.items()}
        result["cold_start"] = cold_start(path, wav)
    result["ratios"] = {f"{name}_vs_predict_audio": round(ms[name] / ms["predict_audio"], 1)
                        for name in ("with_model_predict", "with_direct_call", "load_per_call")}
    best = trained_best_model()
    if best is not None:
        result["trained_best_model"] = {"model": f"{best.parent.name}/{best.name}", "predict_audio_ms": round(median_ms(
            lambda: predict.predict_audio(wav, predict.load_predictor(best))), 1)}
    print(f"warm: {ms['predict_audio']:.1f} ms per 4 s WAV (median of {RUNS}; decode + clip "
          f"{ms['decode_and_clip']:.1f}, features {ms['features']:.1f}, model "
          f"{ms['model_predict_on_batch']:.1f}); with model.predict "
          f"{ms['with_model_predict']:.1f} ms ({result['ratios']['with_model_predict_vs_predict_audio']}x), "
          f"with model(x) {ms['with_direct_call']:.1f} ms "
          f"({result['ratios']['with_direct_call_vs_predict_audio']}x), loading the model per "
          f"file {ms['load_per_call']:.0f} ms ({result['ratios']['load_per_call_vs_predict_audio']}x)")
    cold = result["cold_start"]
    print(f"cold: {cold['process_seconds']:.1f} s from a fresh process to the first prediction "
          f"(import + load {cold['import_and_load_seconds']:.1f} s, first prediction at "
          f"{cold['import_load_predict_seconds']:.1f} s in the process)")
    if best is not None:
        print(f"trained {models.BEST_EXPERIMENT}: "
              f"{result['trained_best_model']['predict_audio_ms']:.1f} ms per file")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "predict.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
