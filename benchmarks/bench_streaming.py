"""Training streamed from on-disk caches against activations held in RAM: peak memory, speed.

Stage 1 of musicnn_vgg_msd (head + block 5 trainable) under the default profile's schedule
(at most 2 blocks unfrozen: the frozen bottom is cached up to block 4, stage 1 learns from
block 5's input), on the same rows, each path in a fresh child process:
- in RAM (training before ``instclf.activations``): both activations computed into RAM,
  ``fit`` on the arrays with ``class_weight``;
- streamed (``train.staged_training`` now): both written to ``.npy`` caches chunk by chunk,
  memory-mapped, ``fit`` on ``activations.Batches``.
Inputs: the default profile's features when their cache exists, else random features of its
shape (187 x 96); the first ``ROWS`` notes only, so that each path runs in well under a
minute on 2 cores. Memory: the child's peak anonymous RSS (``RssAnon`` of /proc/<pid>/status,
sampled every 10 ms by this process), less its value before the data; file-backed pages of
the memory maps are page cache the kernel may drop, so they are left out (``ru_maxrss`` from
``os.wait4``, which counts them, is recorded too); and, by tracemalloc, the numpy arrays
computing the activations allocated (peak) and what they leave held for training. Speed: the
fastest epoch of one ``fit`` of 5 epochs, after a warm-up.
From the layer shapes, the memory each way at 11,700 notes (default), about 234,000 notes
(``full``: every audible pitch at 5 velocities, 20x default) and the ``nsynth`` profile's
44,000 fitted + 12,678 validation notes. Writes benchmarks/results/streaming.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
BACKBONE = "musicnn_vgg_msd"
ROWS = 1024
EPOCHS = 5  # timed; the fastest counts
BATCH = 64
CHUNK_ROWS = 16 * BATCH  # activations.predict_in_chunks
DEFAULT_BLOCKS, FULL_BLOCKS = 2, 5  # the profiles' max_unfrozen_blocks
TRAINED_SHARE = 0.82  # fit + valid of a profile's notes (10% test, 10% x 0.9 seen held back)
PROFILE_NOTES = {"default": 11_700 * TRAINED_SHARE, "full": 234_000 * TRAINED_SHARE,
                 "nsynth": 44_000 + 12_678}
MB, GB = 2 ** 20, 2 ** 30


# --- inputs ---------------------------------------------------------------------------------

def default_features(rows: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The first ``rows`` notes of the default profile's feature caches and their labels."""
    from instclf import features, profiles
    from instclf.config import FAMILIES

    folder = features.profile_cache_dir(profiles.get_profile("default")) / features.MUSICNN.key
    caches = sorted(folder.glob("*.npy"), key=lambda path: path.stat().st_size)
    if not caches or not caches[-1].with_suffix(".json").is_file():
        return None
    X = np.load(caches[-1], mmap_mode="r")
    names = json.loads(caches[-1].with_suffix(".json").read_text())["note_str"]
    families = [name.split("-")[0].rsplit("_", 2)[0] for name in names[:rows]]
    y = np.array([FAMILIES.index(f) if f in FAMILIES else 0 for f in families], np.int32)
    return (X[:rows], y) if len(X) >= rows else None


def write_inputs(folder: Path, rows: int) -> str:
    """features.npy (float16) and labels.npy in ``folder``; says where they come from."""
    found = default_features(rows)
    if found is None:
        rng = np.random.default_rng(0)
        X = rng.uniform(0, 3, (rows, 187, 96)).astype(np.float16)
        y = rng.integers(0, 11, rows).astype(np.int32)
        source = "random features of the default profile's shape (its cache is not here)"
    else:
        X, y = np.asarray(found[0]), found[1]
        source = "the default profile's features"
    np.save(folder / "features.npy", X)
    np.save(folder / "labels.npy", y)
    return source


# --- one path, in a child process -----------------------------------------------------------

def rss_anon(pid: int | str = "self") -> int:
    """Anonymous resident memory of a process, bytes (0 once it has gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def child(path: str, folder: Path) -> None:
    """One path: activations of the first notes, then 1 warm-up and 3 timed epochs."""
    import keras

    from instclf import activations, backbones, train

    keras.utils.set_random_seed(0)
    backbone = backbones.get_backbone(BACKBONE)
    model = backbones.build_classifier(backbone)
    lowest = backbones.block_start(model, backbone, DEFAULT_BLOCKS)
    start = backbones.block_start(model, backbone, 1)
    train.set_trainable(model, start, keep_batchnorm_frozen=True)
    X, y = np.load(folder / "features.npy", mmap_mode="r"), np.load(folder / "labels.npy")
    weights = train.class_weights(y)
    baseline = rss_anon()
    tracemalloc.start()  # numpy reports its arrays to tracemalloc; TensorFlow's memory is not seen
    began = time.perf_counter()
    if path == "in_ram":
        bottom = activations.activations(model, X, 0, lowest, BATCH)
        inputs = activations.activations(model, bottom, lowest, start, BATCH)
    else:
        cache = folder / "cache"
        bottom = activations.cached_activations(model, X, 0, lowest, "bottom", cache, BATCH)
        inputs = activations.cached_activations(model, bottom, lowest, start, "stage1", cache,
                                                BATCH)
    activation_seconds = time.perf_counter() - began
    numpy_held, numpy_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    top = train.chain(model.layers[start:], train.output_shape(model, start))
    top.compile(optimizer=keras.optimizers.Adam(3e-4), loss="sparse_categorical_crossentropy",
                metrics=["accuracy"])

    def fit(rows: int, epochs: int) -> list[float]:
        timer = train._EpochTimer()
        if path == "in_ram":  # as fit_stage did before streaming
            top.fit(inputs[:rows], y[:rows], batch_size=BATCH, epochs=epochs,
                    class_weight=weights, shuffle=True, callbacks=[timer], verbose=0)
        else:
            top.fit(activations.Batches(inputs[:rows], y[:rows], BATCH, weights, shuffle=True),
                    epochs=epochs, shuffle=False, callbacks=[timer], verbose=0)
        return timer.seconds

    fit(BATCH, 1)  # builds the train function
    seconds = min(fit(len(y), EPOCHS))  # the least disturbed by other processes
    assert bottom is not None  # held to the end, as staged training holds it for every stage
    (folder / f"{path}.json").write_text(json.dumps({
        "baseline_bytes": baseline, "activation_seconds": activation_seconds,
        "epoch_seconds": seconds, "numpy_held_bytes": numpy_held,
        "numpy_peak_bytes": numpy_peak}))


def run_child(path: str, folder: Path) -> dict:
    """Run one path in a fresh process; its result with peak anonymous RSS and ru_maxrss."""
    process = subprocess.Popen([sys.executable, __file__, "--child", path, str(folder)],
                               stderr=subprocess.DEVNULL)
    peak = 0
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        peak = max(peak, rss_anon(process.pid))
        time.sleep(0.01)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise RuntimeError(f"the {path} child failed (exit {process.returncode})")
    result = json.loads((folder / f"{path}.json").read_text())
    rows = len(np.load(folder / "labels.npy"))
    return {"peak_anon_mb": round(peak / MB, 1),
            "data_mb": round((peak - result["baseline_bytes"]) / MB, 1),
            "maxrss_mb": round(usage.ru_maxrss * 1024 / MB, 1),  # kB on Linux
            "numpy_held_mb": round(result["numpy_held_bytes"] / MB, 1),
            "numpy_peak_mb": round(result["numpy_peak_bytes"] / MB, 1),
            "activations_samples_per_second": round(rows / result["activation_seconds"], 1),
            "epoch_samples_per_second": round(rows / result["epoch_seconds"], 1)}


# --- memory from the layer shapes -----------------------------------------------------------

def per_note_bytes() -> dict[str, int]:
    """float32 bytes per note of what each stage's top receives (``block_start(k)``), and of
    the cached bottom under the default (2 blocks) and full (5 blocks) schedules."""
    from instclf import activations, backbones

    backbone = backbones.get_backbone(BACKBONE)
    model = backbones.build_classifier(backbone)

    def size(blocks: int) -> int:
        shape = activations.output_shape(model, backbones.block_start(model, backbone, blocks))
        return 4 * int(np.prod(shape))

    return {"features": 2 * int(np.prod(backbone.front_end.shape)),
            **{f"stage{k}_input": size(k) for k in range(FULL_BLOCKS + 1)}}


def estimates(sizes: dict[str, int], working_mb: float) -> dict:
    """RAM and disk for stage 1 of each profile, each way (GB). Streamed: what the measured
    streamed child held beyond its model (``working_mb``: TensorFlow's tensors for a batch of
    64 and one chunk of activations), whatever the number of notes; in RAM: that plus the
    cached bottom and stage 1's input of every fitted and validation note, which streaming
    puts on disk instead. ``worst_stage``: the largest stage input of the schedule instead
    of stage 1's; ``every_stage``: the disk the caches of every stage take."""
    out = {}
    for name, notes in PROFILE_NOTES.items():
        blocks = FULL_BLOCKS if name == "full" else DEFAULT_BLOCKS
        bottom, stage1 = sizes[f"stage{blocks}_input"], sizes["stage1_input"]
        inputs = [sizes[f"stage{k}_input"] for k in range(blocks)]
        working = working_mb * MB
        out[name] = {"notes": round(notes), "streamed_gb": round(working / GB, 2),
                     "in_ram_gb": round((working + notes * (bottom + stage1)) / GB, 1),
                     "disk_stage1_gb": round(notes * (bottom + stage1) / GB, 1),
                     "in_ram_worst_stage_gb": round(
                         (working + notes * (bottom + max(inputs))) / GB, 1),
                     "disk_every_stage_gb": round(notes * (bottom + sum(inputs)) / GB, 1)}
    return out


def main(rows: int = ROWS) -> dict:
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-streaming-") as tmp:
        folder = Path(tmp)
        source = write_inputs(folder, rows)
        paths = {path: run_child(path, folder) for path in ("streamed", "in_ram")}
    sizes = per_note_bytes()
    predicted_mb = paths["streamed"]["data_mb"] + rows * (
        sizes[f"stage{DEFAULT_BLOCKS}_input"] + sizes["stage1_input"]) / MB
    result = {"benchmark": "streaming", "cpu_count": os.cpu_count(),
              "machine": platform.machine(), "backbone": BACKBONE, "stage": 1,
              "rows": rows, "inputs": source, **paths,
              "in_ram_predicted_data_mb": round(predicted_mb, 1),
              "chunk_mb": round(CHUNK_ROWS * (sizes["features"] * 2 + sizes[
                  f"stage{DEFAULT_BLOCKS}_input"]) / MB, 1),
              "per_note_bytes": sizes,
              "estimates": estimates(sizes, paths["streamed"]["data_mb"]),
              "seconds": round(time.perf_counter() - began, 1)}
    streamed, in_ram = paths["streamed"], paths["in_ram"]
    print(f"{BACKBONE} stage 1, {rows} notes ({source}): streamed {streamed['data_mb']:.0f} MB "
          f"at {streamed['epoch_samples_per_second']:.0f} samples/s, in RAM "
          f"{in_ram['data_mb']:.0f} MB at {in_ram['epoch_samples_per_second']:.0f} samples/s "
          f"(predicted {predicted_mb:.0f} MB)")
    for name, estimate in result["estimates"].items():
        print(f"{name}: {estimate['notes']} notes, stage 1 needs {estimate['in_ram_gb']} GB in "
              f"RAM or {estimate['streamed_gb']} GB streamed ({estimate['disk_stage1_gb']} GB "
              f"on disk; worst stage {estimate['in_ram_worst_stage_gb']} GB in RAM; every "
              f"stage's cache: {estimate['disk_every_stage_gb']} GB on disk)")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "streaming.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=ROWS, help="notes timed (default: 1024)")
    parser.add_argument("--child", nargs=2, metavar=("PATH", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]))
    else:
        main(args.rows)
