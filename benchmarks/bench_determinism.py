"""Same seed, same weights? Training with TensorFlow's numerical settings, each in a fresh process.

Stage 1 of musicnn_vgg (head + top block trainable) is trained through the project's own
``train.fit_stage`` (seeded, shuffled batches, class weights, early stopping) on the same
random inputs, in a fresh process per setting, since ``TF_ENABLE_ONEDNN_OPTS`` is read when
TensorFlow is imported:
- ``default``: TensorFlow's defaults (oneDNN kernels on), twice;
- ``onednn_off``: ``TF_ENABLE_ONEDNN_OPTS=0`` (TensorFlow's own Eigen kernels), twice;
- ``op_determinism``: ``tf.config.experimental.enable_op_determinism()``;
- ``one_thread`` and ``onednn_off_one_thread``: one intra-op thread instead of one per core,
  as a machine with another number of cores would split the work.
Each process reports the digest of its frozen activations (where a forward pass diverges)
and of its trained weights, the largest weight difference from ``default``'s, the speed of
the frozen pass (most of a training's time) and of stage-1 training (fastest epoch).
Writes benchmarks/results/determinism.json.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
SAMPLES, VALID, EPOCHS, BATCH = 512, 128, 3, 64
SETTINGS = {  # name -> (environment, op determinism, intra-op threads)
    "default": ({}, False, 0),
    "default_again": ({}, False, 0),
    "onednn_off": ({"TF_ENABLE_ONEDNN_OPTS": "0"}, False, 0),
    "onednn_off_again": ({"TF_ENABLE_ONEDNN_OPTS": "0"}, False, 0),
    "op_determinism": ({}, True, 0),
    "one_thread": ({}, False, 1),
    "onednn_off_one_thread": ({"TF_ENABLE_ONEDNN_OPTS": "0"}, False, 1),
}


def digest(arrays) -> str:
    sha = hashlib.sha1()
    for array in arrays:
        sha.update(np.ascontiguousarray(array).tobytes())
    return sha.hexdigest()[:16]


def child(determinism: bool, threads: int, weights_path: str) -> dict:
    """One training in this (fresh) process; prints nothing, returns what it measured."""
    import tensorflow as tf

    if determinism:
        tf.config.experimental.enable_op_determinism()
    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
    import keras

    from instclf import backbones, train

    keras.utils.set_random_seed(0)
    backbone = backbones.get_backbone("musicnn_vgg")
    model = backbones.build_classifier(backbone)
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 3, (SAMPLES + VALID, *backbone.front_end.shape)).astype("float32")
    y = (np.arange(SAMPLES + VALID) % 11).astype("int32")
    start = backbones.block_start(model, backbone, 1)
    train.set_trainable(model, start, keep_batchnorm_frozen=True)
    began = time.perf_counter()
    frozen = train.activations(model, X, 0, start)  # the frozen bottom: most of a training
    frozen_speed = len(X) / (time.perf_counter() - began)
    top = train.chain(model.layers[start:], train.output_shape(model, start))
    history = train.fit_stage(top, (frozen[:SAMPLES], y[:SAMPLES]),
                              (frozen[SAMPLES:], y[SAMPLES:]), 3e-4, EPOCHS, EPOCHS, BATCH, 0)
    weights = top.get_weights()
    np.savez(weights_path, *weights)
    fastest = float(history["seconds"].min())  # seconds of each epoch, validation included
    return {"activations": digest([frozen]), "weights": digest(weights),
            "val_loss": [round(float(v), 6) for v in history["val_loss"]],
            "samples_per_second": round(SAMPLES / fastest, 1),
            "frozen_pass_samples_per_second": round(frozen_speed, 1)}


def run(name: str, folder: Path) -> dict:
    environment, determinism, threads = SETTINGS[name]
    weights = folder / f"{name}.npz"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **environment}
    if "TF_ENABLE_ONEDNN_OPTS" not in environment:
        env.pop("TF_ENABLE_ONEDNN_OPTS", None)
    out = subprocess.run([sys.executable, __file__, "--child", str(int(determinism)),
                          str(threads), str(weights)], env=env, check=True,
                         capture_output=True, text=True, timeout=600)
    return {**json.loads(out.stdout.strip().splitlines()[-1]), "weights_file": weights}


def max_difference(a: Path, b: Path) -> float:
    with np.load(a) as first, np.load(b) as second:
        return float(max(np.abs(first[k] - second[k]).max() for k in first.files))


def main() -> dict:
    rows = {}
    with tempfile.TemporaryDirectory() as folder:
        for name in SETTINGS:
            rows[name] = run(name, Path(folder))
            shown = {k: v for k, v in rows[name].items() if k != "weights_file"}
            print(f"{name}: {json.dumps(shown)}", flush=True)
        reference = rows["default"]["weights_file"]
        for name, row in rows.items():
            row["max_weight_difference_vs_default"] = max_difference(reference,
                                                                     row.pop("weights_file"))
            row["identical_to_default"] = row["weights"] == rows["default"]["weights"]
    speed = {name: rows[name]["samples_per_second"] for name in rows}
    frozen = {name: rows[name]["frozen_pass_samples_per_second"] for name in rows}
    result = {"benchmark": "determinism", "cpu_count": os.cpu_count(), "samples": SAMPLES,
              "epochs": EPOCHS, "rows": rows,
              "repeatable": {"default": rows["default"]["weights"] == rows["default_again"][
                                 "weights"],
                             "onednn_off": rows["onednn_off"]["weights"] == rows[
                                 "onednn_off_again"]["weights"]},
              "thread_count_changes_weights": {
                  "default": rows["one_thread"]["weights"] != rows["default"]["weights"],
                  "onednn_off": rows["onednn_off_one_thread"]["weights"] != rows[
                      "onednn_off"]["weights"]},
              "samples_per_second": {
                  "default": max(speed["default"], speed["default_again"]),
                  "onednn_off": max(speed["onednn_off"], speed["onednn_off_again"]),
                  "op_determinism": speed["op_determinism"]},
              "frozen_pass_samples_per_second": {
                  "default": max(frozen["default"], frozen["default_again"]),
                  "onednn_off": max(frozen["onednn_off"], frozen["onednn_off_again"]),
                  "op_determinism": frozen["op_determinism"]}}
    print(json.dumps({k: result[k] for k in ("repeatable", "thread_count_changes_weights",
                                             "samples_per_second",
                                             "frozen_pass_samples_per_second")}))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "determinism.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        print(json.dumps(child(bool(int(sys.argv[2])), int(sys.argv[3]), sys.argv[4])))
    else:
        main()
