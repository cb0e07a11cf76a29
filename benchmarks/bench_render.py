"""Rendering speed: notes per second with one process against two (the obvious alternative).

Renders the same plan (the smoke profile's instruments, 60 notes each) into fresh folders,
timing only the rendering, not the planning. Writes benchmarks/results/render.json.
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

RESULTS = Path(__file__).resolve().parent / "results"


def notes_per_second(plan: list[dict], workers: int) -> float:
    with tempfile.TemporaryDirectory() as root:
        start = time.perf_counter()
        results = render.render_plan(plan, Path(root), workers, progress=False)
        seconds = time.perf_counter() - start
    return sum(r["counts"].get("written", 0) for r in results) / seconds


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
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "render.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"rendering {notes} notes: {one:.0f} notes/s with 1 process, {two:.0f} notes/s "
          f"with 2 processes ({two / one:.2f}x)")
    return result


if __name__ == "__main__":
    main()
