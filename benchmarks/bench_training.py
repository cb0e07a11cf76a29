"""Training speed with and without cached frozen activations, per backbone.

For each pretrained backbone, stage 1 of the schedule (head + top block trainable) is trained
for one epoch two ways on the same random inputs: the plain model, which recomputes the frozen
bottom at every step, and the cached path, which trains the top on activations computed once.
The one-time cost of computing the activations is reported too. ``scratch_cnn`` has no frozen
part, so only its plain speed is given. VGG19 uses random weights made here (speed does not
depend on the values). Writes benchmarks/results/training.json.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import keras
import numpy as np

from instclf import backbones, train

RESULTS = Path(__file__).resolve().parent / "results"
SAMPLES = {"musicnn_vgg": 512, "scratch_cnn": 512, "vgg19": 48}


def _model(name: str):
    backbone = backbones.get_backbone(name)
    if name == "vgg19":
        layers = backbones.vgg19_layers(pretrained=False)
        return backbone, backbones.build_classifier(backbone, layers=layers)
    return backbone, backbones.build_classifier(backbone)


def _samples_per_second(model, X, y, batch_size=32) -> float:
    model.compile(optimizer=keras.optimizers.Adam(1e-4), loss="sparse_categorical_crossentropy")
    model.fit(X[:batch_size], y[:batch_size], epochs=1, batch_size=batch_size, verbose=0)
    start = time.perf_counter()
    model.fit(X, y, epochs=1, batch_size=batch_size, verbose=0)
    return len(X) / (time.perf_counter() - start)


def measure(name: str) -> dict:
    keras.utils.set_random_seed(0)
    backbone, model = _model(name)
    rng = np.random.default_rng(0)
    n = SAMPLES[name]
    X = rng.uniform(-80 if name == "vgg19" else 0, 0 if name == "vgg19" else 3,
                    (n, *backbone.front_end.shape)).astype("float32")
    y = rng.integers(0, 11, n).astype("int32")
    if not backbone.pretrained:
        return {"backbone": name, "plain_samples_per_second": round(
            _samples_per_second(model, X, y), 1)}
    start = backbones.block_start(model, backbone, 1)
    train.set_trainable(model, start, keep_batchnorm_frozen=True)
    plain = _samples_per_second(model, X, y)
    began = time.perf_counter()
    cached_inputs = train.activations(model, X, 0, start)
    activation_seconds = time.perf_counter() - began
    top = train.chain(model.layers[start:], train.output_shape(model, start))
    cached = _samples_per_second(top, cached_inputs, y)
    return {"backbone": name, "samples": n,
            "plain_samples_per_second": round(plain, 1),
            "cached_samples_per_second": round(cached, 1),
            "ratio_cached_vs_plain": round(cached / plain, 1),
            "activations_once_samples_per_second": round(n / activation_seconds, 1)}


def main() -> dict:
    rows = [measure(name) for name in ("musicnn_vgg", "scratch_cnn", "vgg19")]
    for row in rows:
        if "cached_samples_per_second" in row:
            print(f"{row['backbone']} (stage 1): {row['cached_samples_per_second']:.0f} samples/s "
                  f"on cached activations against {row['plain_samples_per_second']:.1f} samples/s "
                  f"plain ({row['ratio_cached_vs_plain']:.1f}x); activations computed once at "
                  f"{row['activations_once_samples_per_second']:.0f} samples/s")
        else:
            print(f"{row['backbone']}: {row['plain_samples_per_second']:.0f} samples/s "
                  "(no frozen part to cache)")
    result = {"benchmark": "training", "rows": rows}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "training.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
