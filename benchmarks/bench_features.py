"""Feature extraction speed: the batched front end against the study's per-file routes.

Alternatives, measured in the same run on the same notes (the smoke profile's 330 notes):
- per-file librosa loop: load, melspectrogram, scaling, one file at a time;
- librosa's own batch path: the clips read as the batched route reads them, then one
  ``librosa.resample`` and one ``librosa.feature.melspectrogram`` per batch of 16 (leading
  axes), in the same threads, against the project's STFT (``features.batch_features``);
- PNG route (study front end only): the same, then one matplotlib figure per file saved as
  a PNG, as the study did.
Writes benchmarks/results/features.json.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import librosa
import matplotlib

matplotlib.use("Agg")
import librosa.display  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from instclf import features, nsynth, profiles  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def librosa_loop(paths, front_end):
    for path in paths:
        y, sr = librosa.load(path, sr=front_end.sample_rate, duration=front_end.clip_seconds)
        S = librosa.feature.melspectrogram(y=y, sr=sr, n_fft=front_end.n_fft,
                                           hop_length=front_end.hop_length,
                                           n_mels=front_end.n_mels, fmax=front_end.fmax)
        if front_end.scaling == "db_max":
            librosa.power_to_db(S, ref=np.max)
        else:
            np.log10(1 + 10_000 * S)


def librosa_batch(paths, front_end, batch_size=16):
    """librosa's batch path in compute_features' threads: only the computation differs."""
    def one_batch(start):
        clips = features.load_clips(paths[start:start + batch_size], front_end)
        if front_end.sample_rate != features.SOURCE_RATE:
            clips = librosa.resample(clips, orig_sr=features.SOURCE_RATE,
                                     target_sr=front_end.sample_rate, res_type="soxr_hq")
        S = librosa.feature.melspectrogram(y=clips, sr=front_end.sample_rate,
                                           n_fft=front_end.n_fft, hop_length=front_end.hop_length,
                                           n_mels=front_end.n_mels, fmin=front_end.fmin,
                                           fmax=front_end.fmax)
        return front_end.from_power(S[..., :front_end.n_frames or None])

    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(os.cpu_count()) as pool:
        list(pool.map(one_batch, range(0, len(paths), batch_size)))


def png_route(paths, front_end, out_dir):
    for k, path in enumerate(paths):
        y, sr = librosa.load(path, sr=front_end.sample_rate, duration=front_end.clip_seconds)
        S = librosa.feature.melspectrogram(y=y, sr=sr, n_mels=front_end.n_mels,
                                           fmax=front_end.fmax)
        S_db = librosa.power_to_db(S, ref=np.max)
        fig, ax = plt.subplots(figsize=(4, 3))
        librosa.display.specshow(S_db, sr=sr, fmax=front_end.fmax, ax=ax)
        fig.savefig(Path(out_dir) / f"{k}.png")
        plt.close(fig)


def clips_per_second(run, paths, repeats=2) -> float:
    best = min(_timed(run, paths) for _ in range(repeats))
    return len(paths) / best


def _timed(run, paths) -> float:
    start = time.perf_counter()
    run(paths)
    return time.perf_counter() - start


def main() -> dict:
    profile = profiles.get_profile("smoke")
    notes = profile.notes(progress=False)
    paths = list(notes.path)
    result = {"benchmark": "features", "clips": len(paths), "front_ends": {}}
    for front_end in (features.MUSICNN, features.STUDY):
        features.compute_features(paths[:8], front_end, progress=False)  # warm up
        row = {
            "batched": clips_per_second(
                lambda p: features.compute_features(p, front_end, progress=False), paths),
            "librosa_loop": clips_per_second(lambda p: librosa_loop(p, front_end), paths),
            "librosa_batch": clips_per_second(lambda p: librosa_batch(p, front_end), paths),
        }
        if front_end is features.STUDY:
            with tempfile.TemporaryDirectory() as out:
                row["png_route"] = clips_per_second(lambda p: png_route(p, front_end, out),
                                                    paths[:100], repeats=1)
        row = {k: round(v, 1) for k, v in row.items()}
        row["ratio_vs_librosa_loop"] = round(row["batched"] / row["librosa_loop"], 2)
        row["ratio_vs_librosa_batch"] = round(row["batched"] / row["librosa_batch"], 2)
        if "png_route" in row:
            row["ratio_vs_png_route"] = round(row["batched"] / row["png_route"], 1)
        result["front_ends"][front_end.name] = row
        print(f"{front_end.name}: batched {row['batched']:.0f} clips/s; per-file librosa loop "
              f"{row['librosa_loop']:.0f} clips/s ({row['ratio_vs_librosa_loop']:.2f}x)"
              f"; librosa's batch path {row['librosa_batch']:.0f} clips/s "
              f"({row['ratio_vs_librosa_batch']:.2f}x)"
              + (f"; PNG route {row['png_route']:.1f} clips/s "
                 f"({row['ratio_vs_png_route']:.0f}x)" if "png_route" in row else ""))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "features.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
