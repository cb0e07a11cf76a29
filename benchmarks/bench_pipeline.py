"""How the model is fed, on this machine's cores: the project's way against Keras's obvious one,
on the same arrays, alternately, ``REPEATS`` times (which calls run slowly varies from run to
run, hence the repeats; median and slowest).

- The frozen pass over many notes (:func:`instclf.activations.predict_in_chunks`, i.e.
  ``predict_on_batch`` batch by batch, against ``model.predict``): the extractor of the top
  blocks' statistics (:func:`instclf.backbones.frozen_embeddings`) of the two backbones the
  page's model reads, the pass notebook 04 and ``make reproduce`` pay over every note;
  milliseconds per note.
- Training epochs on cached activations (:meth:`instclf.activations.Batches.for_fit` against
  the ``Batches`` ``PyDataset`` itself): stage 1 of musicnn_vgg_msd_whole (head and top block)
  on random activations; samples per second.

On 2 cores Keras's own input pipelines often leave the model one core for a whole call or
epoch. Writes benchmarks/results/pipeline.json.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path

import keras
import numpy as np

from instclf import backbones, train
from instclf.activations import Batches, predict_in_chunks

RESULTS = Path(__file__).resolve().parent / "results"
BACKBONES = ("musicnn_vgg_msd_whole", "musicnn_mtt")
NOTES = 256
BATCH = 64
REPEATS = 8
TRAIN_ROWS = 4096
TRAIN_BATCH = 32


def seconds(run) -> float:
    began = time.perf_counter()
    run()
    return time.perf_counter() - began


def summary(values: list[float], unit: str, slowest) -> dict:
    return {f"median_{unit}": round(statistics.median(values), 2),
            f"slowest_{unit}": round(slowest(values), 2), unit: [round(v, 2) for v in values]}


def frozen_pass(name: str) -> dict:
    backbone = backbones.get_backbone(name)
    extract, _ = backbones.frozen_embeddings(backbones.build_classifier(backbone), backbone)
    X = np.random.default_rng(0).normal(size=(NOTES, *backbone.front_end.shape))
    X = X.astype(np.float32)
    ours = lambda: predict_in_chunks(extract, X, BATCH)  # noqa: E731
    theirs = lambda: extract.predict(X, batch_size=BATCH, verbose=0)  # noqa: E731
    assert np.allclose(ours(), theirs(), atol=1e-4)  # also the warm-up of both
    times = {"predict_in_chunks": [], "model_predict": []}
    for _ in range(REPEATS):
        times["predict_in_chunks"].append(1000 * seconds(ours) / NOTES)
        times["model_predict"].append(1000 * seconds(theirs) / NOTES)
    return {way: summary(t, "ms_per_note", max) for way, t in times.items()}


def training_epochs() -> dict:
    keras.utils.set_random_seed(0)
    backbone = backbones.get_backbone("musicnn_vgg_msd_whole")
    model = backbones.build_classifier(backbone)
    start = backbones.block_start(model, backbone, 1)
    train.set_trainable(model, start, keep_batchnorm_frozen=True)
    shape = train.output_shape(model, start)
    rng = np.random.default_rng(0)
    A = rng.normal(size=(TRAIN_ROWS, *shape)).astype(np.float32)
    y = rng.integers(0, 11, TRAIN_ROWS)
    top = train.chain(model.layers[start:], shape)
    top.compile(optimizer=keras.optimizers.Adam(1e-4), loss="sparse_categorical_crossentropy")
    ways = {"for_fit": lambda: top.fit(Batches(A, y, TRAIN_BATCH, shuffle=True).for_fit(),
                                       epochs=1, verbose=0),
            "py_dataset": lambda: top.fit(Batches(A, y, TRAIN_BATCH, shuffle=True),
                                          epochs=1, verbose=0)}
    for run in ways.values():
        run()  # warm-up
    rates = {way: [] for way in ways}
    for _ in range(REPEATS):
        for way, run in ways.items():
            rates[way].append(TRAIN_ROWS / seconds(run))
    return {way: summary(r, "samples_per_second", min) for way, r in rates.items()}


def main() -> None:
    result = {"benchmark": "pipeline", "notes": NOTES, "batch_size": BATCH,
              "repeats": REPEATS, "cpu_count": os.cpu_count(),
              "frozen_pass": {name: frozen_pass(name) for name in BACKBONES},
              "training": {"rows": TRAIN_ROWS, "batch_size": TRAIN_BATCH, **training_epochs()}}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "pipeline.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
