"""Rendering speed: notes per second with one process against two (the obvious alternative).

Renders the same plan (the smoke profile's instruments, 60 notes each) into fresh folders,
timing only the rendering, not the planning; then each lineage the default profile adds
(Csound, Faust, pyo, two drawn instruments per family; the sampled real instruments, all 20;
and the recording chain over Csound's notes), the same way. Writes
benchmarks/results/render.json.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from instclf import profiles, render
from instclf.sources.registry import make_source

RESULTS = Path(__file__).resolve().parent / "results"


def notes_per_second(plan: list[dict], workers: int) -> float:
    with tempfile.TemporaryDirectory() as root:
        start = time.perf_counter()
        results = render.render_plan(plan, Path(root), workers, progress=False)
        seconds = time.perf_counter() - start
    return sum(r["counts"].get("written", 0) for r in results) / seconds


LINEAGE_NOTES = 6  # per drawn instrument, two instruments per family


def lineage_sources(root: Path):
    """The new lineages, small: (label, source, data root), the recorded one over Csound's
    notes rendered first under ``root``."""
    csound = make_source("csound", name="bench-csound", instruments_per_family=2,
                         notes_per_instrument=LINEAGE_NOTES)
    faust = make_source("faust", name="bench-faust", instruments_per_family=2,
                        notes_per_instrument=LINEAGE_NOTES)
    pyo = make_source("pyo", name="bench-pyo", instruments_per_family=2,
                      notes_per_instrument=LINEAGE_NOTES)
    samples = make_source("samples", name="bench-samples", notes_per_instrument=LINEAGE_NOTES)
    csound.render(root, progress=False)
    recorded = make_source("recorded", name="bench-recorded", of=csound)
    return [("Csound", csound), ("Faust (DawDreamer)", faust), ("pyo", pyo),
            ("samples (real recordings)", samples),
            ("recording chain over Csound's notes", recorded)]


def source_notes_per_second(source, data_dir: Path, workers: int) -> tuple[int, float]:
    """Notes written per second by a fresh render of ``source`` (its root removed first)."""
    import shutil

    shutil.rmtree(source.root(data_dir), ignore_errors=True)
    start = time.perf_counter()
    report = source.render(data_dir, workers=workers, progress=False)
    seconds = time.perf_counter() - start
    written = report.counts.get("written", 0)
    return written, written / seconds


def lineage_rates() -> dict:
    with tempfile.TemporaryDirectory() as root:
        rates = {}
        for label, source in lineage_sources(Path(root)):
            notes, one = source_notes_per_second(source, Path(root), 1)
            _, two = source_notes_per_second(source, Path(root), 2)
            rates[label] = {"notes": notes, "notes_per_second_1_process": round(one, 1),
                            "notes_per_second_2_processes": round(two, 1),
                            "ratio_2_vs_1": round(two / one, 2)}
            print(f"rendering {label}: {one:.1f} notes/s with 1 process, {two:.1f} with 2")
    return rates


def main() -> dict:
    source = replace(profiles.PROFILES["smoke"].sources[0], notes_per_instrument=60)
    plan = render.plan_dataset(source)
    notes = sum(len(i["notes"]) for i in plan)
    one, two = notes_per_second(plan, 1), notes_per_second(plan, 2)
    result = {
        "benchmark": "render", "notes": notes, "cpu_count": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "notes_per_second_1_process": round(one, 1),
        "notes_per_second_2_processes": round(two, 1),
        "ratio_2_vs_1": round(two / one, 2),
        "lineages": lineage_rates(),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "render.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"rendering {notes} notes: {one:.0f} notes/s with 1 process, {two:.0f} notes/s "
          f"with 2 processes ({two / one:.2f}x)")
    return result


if __name__ == "__main__":  # the renders spawn worker processes
    main()
