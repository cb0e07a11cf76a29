"""Cold start with an exported model, and folders in batches, against today's paths.

With musicnn_vgg (pretrained blocks, a seeded fresh head: ``bench_predict.build_model``):
- cold start: a fresh process that imports instclf, loads the model and predicts one 4 s WAV
  (``bench_predict.cold_start``, median of 3), with the model's LiteRT export beside it
  (``instclf export``) against the Keras model alone (today's path); the same through the
  command ``instclf predict --model M FILE``; and the exported path step by step (imports in
  order, loading, predicting), to say what stands between it and 1 s;
- folders: files/s of ``phrases.predict_many`` (decoding, then features and the model in
  batches of 32 notes) against ``predict.predict_audio`` one file at a time, on the smoke
  profile's first 120 notes, both with the export.
Writes benchmarks/results/coldstart.json.
"""

from __future__ import annotations

import ast
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_predict import build_model, cold_start

from instclf import export, phrases, predict, profiles

RESULTS = Path(__file__).resolve().parent / "results"
FILES = 120
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}


def command_seconds(path: Path, wav: str, runs: int = 3) -> float:
    """Median wall seconds of ``instclf predict --model path wav`` in a fresh process."""
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        subprocess.run([sys.executable, "-m", "instclf.cli", "predict", "--model", str(path),
                        wav], check=True, capture_output=True, env=ENV)
        times.append(time.perf_counter() - began)
    return round(statistics.median(times), 2)


STAGES = """
import sys, time
stages, last = {}, time.perf_counter()
def stage(name):
    global last
    now = time.perf_counter()
    stages[name] = round(now - last, 3)
    last = now
import numpy, soundfile, soxr; stage("numpy, soundfile, soxr")
import pandas; stage("pandas")
import instclf.profiles; stage("instclf package and profiles (sources, recording chain)")
from instclf import predict; stage("instclf.predict and features (scipy.fft)")
import ai_edge_litert.interpreter; stage("ai_edge_litert interpreter")
predictor = predict.load_predictor(sys.argv[1]); stage("load the export")
predict.predict_audio(sys.argv[2], predictor); stage("first prediction")
print(stages)
"""


def stage_seconds(path: Path, wav: str) -> dict:
    """Seconds of each step of the exported path in a fresh process, imports in order (each
    counts only what the ones before it had not imported)."""
    out = subprocess.run([sys.executable, "-c", STAGES, str(path), wav], check=True,
                         capture_output=True, text=True, env=ENV).stdout
    return ast.literal_eval(out.strip().splitlines()[-1])


def files_per_second(run, files) -> float:
    began = time.perf_counter()
    run(files)
    return len(files) / (time.perf_counter() - began)


def main() -> dict:
    notes = profiles.get_profile("smoke").notes(progress=False)
    wavs = [str(p) for p in notes.path.iloc[:FILES]]
    result = {"benchmark": "coldstart", "cpu_count": os.cpu_count(), "file": Path(wavs[0]).name}
    with tempfile.TemporaryDirectory() as folder:
        path = build_model(Path(folder))
        result["keras"] = {**cold_start(path, wavs[0]), "command": command_seconds(path, wavs[0])}
        began = time.perf_counter()
        export.export_model(path)
        result["export_seconds"] = round(time.perf_counter() - began, 1)
        result["exported"] = {**cold_start(path, wavs[0]),
                              "command": command_seconds(path, wavs[0])}
        result["stages"] = stage_seconds(path, wavs[0])
        predictor = predict.load_predictor(path)
        list(phrases.predict_many(wavs[:8], predictor))  # warm up
        one = files_per_second(lambda fs: [predict.predict_audio(f, predictor) for f in fs], wavs)
        batched = files_per_second(lambda fs: list(phrases.predict_many(fs, predictor)), wavs)
    result["folder"] = {"files": FILES, "batched_files_per_second": round(batched, 1),
                        "one_at_a_time_files_per_second": round(one, 1),
                        "ratio": round(batched / one, 2)}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "coldstart.json").write_text(json.dumps(result, indent=2) + "\n")
    keras, fast = result["keras"], result["exported"]
    print(f"cold start, one 4 s WAV: exported {fast['process_seconds']:.2f} s (command "
          f"{fast['command']:.2f} s) against Keras {keras['process_seconds']:.2f} s (command "
          f"{keras['command']:.2f} s); export took {result['export_seconds']:.0f} s")
    print("the exported path, step by step (s): "
          + "; ".join(f"{k} {v:.2f}" for k, v in result["stages"].items()))
    print(f"folder of {FILES} files: batched {batched:.1f} files/s, one at a time {one:.1f} "
          f"files/s ({result['folder']['ratio']:.2f}x)")
    return result


if __name__ == "__main__":
    main()
