"""The benchmark table: every measurement of ``benchmarks/bench_*.py`` on one line.

``make bench`` runs every benchmark, then this script. It reads ``benchmarks/results/*.json``
(and ``reproduce.json``, the wall time ``make reproduce`` records), writes
``benchmarks/results/table.md`` and ``table.json`` and prints the markdown table. Each line
gives the absolute figure, its unit, the named alternative measured in the same run and the
speed-up against it (above 1: faster than the alternative). A benchmark with no results file
gets a line that says "not measured".

``make reproduce`` records its wall time with::

    python benchmarks/table.py --record-reproduce SECONDS --run first|second
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from instclf import storage

RESULTS = Path(__file__).resolve().parent / "results"
REPRODUCE = "reproduce.json"
OUTPUTS = ("table.json", "table.md")
PREDICT_ALTERNATIVES = {
    "with_model_predict": "model.predict instead of predict_on_batch",
    "with_direct_call": "model(x) instead of predict_on_batch",
    "load_per_call": "model loaded again for every file",
}


def row(measurement: str, figure: float | None, unit: str, alternative: str,
        alternative_figure: float | None, alternative_unit: str | None = None,
        ratio: float | None = None, source: str = "", note: str = "") -> dict:
    """One line of the table. ``ratio`` (the speed-up) is computed when not given: figure over
    alternative for a rate (``.../s``), alternative over figure for a time."""
    alternative_unit = alternative_unit or unit
    if ratio is None and figure and alternative_figure:
        ours, theirs = _base(figure, unit), _base(alternative_figure, alternative_unit)
        ratio = round(ours / theirs if unit.endswith("/s") else theirs / ours, 4)
    return {"measurement": measurement, "figure": figure, "unit": unit,
            "alternative": alternative, "alternative_figure": alternative_figure,
            "alternative_unit": alternative_unit, "ratio": ratio, "source": source,
            "note": note}


MEMORY_UNITS = ("MB", "GB")  # a ratio of these says "less memory", not "faster"


def _base(value: float, unit: str) -> float:
    return {"ms": value / 1000, "GB": value * 1024}.get(unit, value)


def not_measured(measurement: str, unit: str, alternative: str, source: str,
                 how: str) -> dict:
    """The line of a measurement whose results file is missing."""
    return row(measurement, None, unit, alternative, None, source=source,
               note=f"not measured: {how}")


# --- one reader per benchmark ----------------------------------------------------------------

def render_rows(result: dict) -> list[dict]:
    """FluidSynth's rate, then each new lineage's (Csound, Faust, pyo, the recording chain)."""
    rates = {"FluidSynth": result, **result.get("lineages", {})}
    return [row(f"rendering ({label}), 2 processes", rate["notes_per_second_2_processes"],
                "notes/s", "1 process", rate["notes_per_second_1_process"],
                ratio=rate.get("ratio_2_vs_1"), source="render.json")
            for label, rate in rates.items()]


def features_rows(result: dict) -> list[dict]:
    rows = []
    for name, fe in result["front_ends"].items():
        measurement = f"features, {name} front end, batched"
        rows.append(row(measurement, fe["batched"], "clips/s", "per-file librosa loop",
                        fe["librosa_loop"], ratio=fe.get("ratio_vs_librosa_loop"),
                        source="features.json"))
        if "librosa_batch" in fe:
            rows.append(row(measurement, fe["batched"], "clips/s",
                            "librosa's batch path (melspectrogram on a batch of clips)",
                            fe["librosa_batch"], ratio=fe.get("ratio_vs_librosa_batch"),
                            source="features.json"))
        if "png_route" in fe:
            rows.append(row(measurement, fe["batched"], "clips/s",
                            "PNG route (a matplotlib figure saved per file, as the study did)",
                            fe["png_route"], ratio=fe.get("ratio_vs_png_route"),
                            source="features.json"))
    return rows


def training_rows(result: dict) -> list[dict]:
    return [row(f"training {r['backbone']} (stage 1) on cached activations",
                r["cached_samples_per_second"], "samples/s",
                "plain: the frozen bottom recomputed at every step",
                r["plain_samples_per_second"], ratio=r.get("ratio_cached_vs_plain"),
                source="training.json",
                note=f"activations computed once at "
                     f"{r['activations_once_samples_per_second']:g} samples/s")
            for r in result["rows"] if "cached_samples_per_second" in r]


def streaming_rows(result: dict) -> list[dict]:
    streamed, in_ram, rows = result["streamed"], result["in_ram"], result["rows"]
    stage = f"training {result['backbone']} (stage 1)"
    on = f"first {rows:,} notes of {result['inputs']}"
    alternative = "activations in RAM, fit on arrays (before streaming)"
    out = [row(f"{stage} streamed from on-disk caches: peak RAM beyond the model", streamed[
                   "data_mb"], "MB", alternative, in_ram["data_mb"], source="streaming.json",
               note=f"{on}; anonymous RSS of a child process per path, mostly TensorFlow's "
                    f"tensors for a batch; numpy arrays held for training: "
                    f"{streamed['numpy_held_mb']:g} MB streamed, {in_ram['numpy_held_mb']:g} MB "
                    "in RAM (tracemalloc)"),
           row(f"{stage} streamed from on-disk caches", streamed["epoch_samples_per_second"],
               "samples/s", alternative, in_ram["epoch_samples_per_second"],
               source="streaming.json", note=f"{on}; fastest of 5 epochs")]
    for name in ("full", "nsynth"):
        estimate = result["estimates"][name]
        out.append(row(f"{stage}, {name} profile: RAM needed, streamed", estimate[
                           "streamed_gb"], "GB", "activations in RAM", estimate["in_ram_gb"],
                       source="streaming.json",
                       note=f"arithmetic from layer shapes, {estimate['notes']:,} fitted and "
                            f"validation notes; streamed needs "
                            f"{estimate['disk_stage1_gb']:g} GB of disk instead"))
    return out


def predict_rows(result: dict) -> list[dict]:
    ms, ratios = result["musicnn_vgg_ms"], result.get("ratios", {})
    warm = "prediction of a 4 s WAV, warm (predict_audio, model loaded once)"
    rows = [row(warm, ms["predict_audio"], "ms", PREDICT_ALTERNATIVES.get(name, name), ms[name],
                ratio=ratios.get(f"{name}_vs_predict_audio"), source="predict.json")
            for name in ms if name in PREDICT_ALTERNATIVES]
    cold = result.get("cold_start")
    if cold:
        rows.append(row("prediction, cold start (fresh process: import, load, predict)",
                        cold["process_seconds"], "s",
                        "warm: the same file, model already loaded", ms["predict_audio"],
                        alternative_unit="ms", source="predict.json"))
    return rows


def pipeline_rows(result: dict) -> list[dict]:
    """How the model is fed: the frozen pass per backbone of the page's model, and training."""
    rows = []
    for name, ways in result["frozen_pass"].items():
        ours, theirs = ways["predict_in_chunks"], ways["model_predict"]
        rows.append(row(f"frozen pass of {name} (top blocks' statistics), {result['notes']} "
                        "notes", ours["median_ms_per_note"], "ms/note", "model.predict",
                        theirs["median_ms_per_note"], source="pipeline.json",
                        note=f"median of {result['repeats']} calls each; slowest "
                             f"{ours['slowest_ms_per_note']:g} against "
                             f"{theirs['slowest_ms_per_note']:g} ms/note"))
    fit = result["training"]
    ours, theirs = fit["for_fit"], fit["py_dataset"]
    rows.append(row("training epochs on cached activations (Batches.for_fit: tf.data, no "
                    "autotuned prefetch)", ours["median_samples_per_second"], "samples/s",
                    "the Batches PyDataset through Keras's adapter",
                    theirs["median_samples_per_second"], source="pipeline.json",
                    note=f"median of {result['repeats']} epochs each; slowest "
                         f"{ours['slowest_samples_per_second']:,.0f} against "
                         f"{theirs['slowest_samples_per_second']:,.0f} samples/s"))
    return rows


def page_rows(result: dict) -> list[dict]:
    bounded, defaults = result["bounded"], result["voila_defaults"]
    load = (f"the page, {result['sessions']} concurrent browser sessions after "
            f"{result['abandoned_loads']} abandoned page loads")
    alternative = "Voila's defaults: no kernel limit, no culling"
    return [row(f"{load}: peak memory of the server and its kernels", bounded["peak_rss_mb"],
                "MB", alternative, defaults["peak_rss_mb"], source="page.json",
                note=f"sum of RSS; {bounded['peak_kernels']} kernels against "
                     f"{defaults['peak_kernels']}, at most {result['max_kernels']}, idle ones "
                     f"culled (after {result['idle_timeout_s']} s here); counting shared "
                     f"libraries once (PSS): {bounded['peak_pss_mb']:,} MB against "
                     f"{defaults['peak_pss_mb']:,} MB"),
            row(f"{load}: upload to answer", result["median_upload_to_answer_s"], "s",
                alternative, result["defaults_median_upload_to_answer_s"], source="page.json",
                note=f"median; {bounded['sessions_served']} of {result['sessions']} served; "
                     f"page load {result['median_page_load_s']:.0f} s, kernels starting at once")]


def determinism_rows(result: dict) -> list[dict]:
    """TensorFlow's defaults (what the project keeps) against the settings that change bits."""
    speed, repeatable = result["samples_per_second"], result["repeatable"]
    threads = result["thread_count_changes_weights"]
    same = {True: "identical", False: "different"}
    note = (f"stage-1 training on cached activations, fastest of {result['epochs']} epochs; "
            f"weights run to run: {same[repeatable['default']]} with oneDNN, "
            f"{same[repeatable['onednn_off']]} without; with 1 thread instead of "
            f"{result['cpu_count']}: {same[not threads['default']]} with oneDNN, "
            f"{same[not threads['onednn_off']]} without")
    measurement = "training musicnn_vgg (stage 1), TensorFlow's defaults (oneDNN kernels)"
    return [row(measurement, speed["default"], "samples/s", alternative, speed[key],
                source="determinism.json", note=note)
            for alternative, key in (("TF_ENABLE_ONEDNN_OPTS=0", "onednn_off"),
                                     ("op determinism on", "op_determinism"))]


def coldstart_rows(result: dict) -> list[dict]:
    fast, keras, folder = result["exported"], result["keras"], result["folder"]
    imports = "; ".join(f"{name} {s:.2f} s" for name, s in result["stages"].items())
    return [row("prediction, cold start with the LiteRT export (fresh process: import, load, "
                "predict one 4 s WAV)", fast["process_seconds"], "s",
                "the Keras model (today's path)", keras["process_seconds"],
                source="coldstart.json",
                note=f"instclf predict as a command: {fast['command']:g} s against "
                     f"{keras['command']:g} s; the exported path step by step: {imports}"),
            row(f"instclf predict on {folder['files']} files, batched", folder[
                    "batched_files_per_second"], "files/s", "one file at a time (predict_audio)",
                folder["one_at_a_time_files_per_second"], ratio=folder.get("ratio"),
                source="coldstart.json")]


def phrases_rows(result: dict) -> list[dict]:
    return [row(f"phrases of {k} notes of an unseen instrument (room and noise), accuracy of "
                "the combined answer", 100 * r["energy_weighted_log"], "%",
                "first note alone (today's clip)", 100 * r["first_note"],
                ratio=round(r["energy_weighted_log"] / r["first_note"], 4),
                source="phrases.json", note=f"{r['phrases']} phrases; notes found exactly "
                                            f"{r['notes_found_exactly']:.0%}")
            for k, r in result["by_notes"].items()]


def reproduce_rows(result: dict | None) -> list[dict]:
    """``make reproduce``'s second run against its first (``reproduce.json``)."""
    if not result or "seconds" not in result:
        return [not_measured("make reproduce wall time", "s", "first run", REPRODUCE,
                             "run make reproduce")]
    first, second = result["seconds"], result.get("second_run_seconds")
    if second is None:
        return [row("make reproduce, first run", first, "s", "second run", None,
                    source=REPRODUCE, note="second run not measured: run make reproduce again")]
    return [row("make reproduce, second run (nothing changed)", second, "s",
                "first run (fresh machine)", first, source=REPRODUCE)]


READERS = {  # benchmark name -> (reader, what is missing, unit, alternative)
    "render": (render_rows, "rendering", "notes/s", "1 process"),
    "features": (features_rows, "features", "clips/s", "per-file librosa loop"),
    "training": (training_rows, "training on cached activations", "samples/s", "plain"),
    "predict": (predict_rows, "prediction, warm", "ms", "model.predict"),
    "pipeline": (pipeline_rows, "frozen pass over many notes", "ms/note", "model.predict"),
    "streaming": (streaming_rows, "training streamed from on-disk caches", "MB",
                  "activations in RAM"),
    "page": (page_rows, "the page under load: memory held", "MB", "Voila's defaults"),
    "determinism": (determinism_rows, "training with TensorFlow's defaults", "samples/s",
                    "TF_ENABLE_ONEDNN_OPTS=0"),
    "coldstart": (coldstart_rows, "prediction, cold start with the LiteRT export", "s",
                  "the Keras model"),
    "phrases": (phrases_rows, "phrases, accuracy of the combined answer", "%",
                "first note alone"),
}


# --- the table -------------------------------------------------------------------------------

def read_results(results_dir: Path) -> dict[str, dict]:
    """The results of each benchmark, by the ``benchmark`` name its JSON file carries."""
    results = {}
    for path in sorted(Path(results_dir).glob("*.json")):
        if path.name in OUTPUTS or path.name == REPRODUCE:
            continue
        data = json.loads(path.read_text())
        if isinstance(data, dict) and "benchmark" in data:
            results[data["benchmark"]] = data
    return results


def read_reproduce(results_dir: Path) -> dict | None:
    path = Path(results_dir) / REPRODUCE
    return json.loads(path.read_text()) if path.is_file() else None


def bench_rows(results_dir: Path = RESULTS) -> list[dict]:
    """Every line of the table, benchmark by benchmark, then ``make reproduce``."""
    results, rows = read_results(results_dir), []
    for name, (reader, measurement, unit, alternative) in READERS.items():
        if name in results:
            try:
                rows += reader(results[name])
            except (KeyError, TypeError) as error:
                raise ValueError(f"{Path(results_dir) / name}.json lacks {error}: run "
                                 f"benchmarks/bench_{name}.py again, or update {name}_rows "
                                 "in benchmarks/table.py") from error
        else:
            rows.append(not_measured(measurement, unit, alternative, f"{name}.json",
                                     f"run benchmarks/bench_{name}.py"))
    return rows + reproduce_rows(read_reproduce(results_dir))


def _number(value: float | None, unit: str) -> str:
    if value is None:
        return "not measured"
    text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
    return f"{text} {unit}"


def _speedup(ratio: float | None, unit: str = "") -> str:
    if not ratio:
        return "—"
    if unit == "%":  # an accuracy: the ratio of the two
        return f"{ratio:.3g}×"
    better, worse = ("less memory", "more memory") if unit in MEMORY_UNITS else ("faster",
                                                                                 "slower")
    return f"{ratio:.3g}× {better}" if ratio >= 1 else f"{1 / ratio:.3g}× {worse}"


def markdown(rows: list[dict], machine: dict | None = None) -> str:
    """The table as markdown (``table.md``; the README and the issue note copy it)."""
    lines = ["| Measurement | Figure | Alternative (same run) | Alternative figure | Ratio |",
             "| --- | ---: | --- | ---: | ---: |"]
    for r in rows:
        measurement = r["measurement"] + (f" ({r['note']})" if r["note"] else "")
        lines.append(f"| {measurement} | {_number(r['figure'], r['unit'])} | "
                     f"{r['alternative']} | "
                     f"{_number(r['alternative_figure'], r['alternative_unit'])} | "
                     f"{_speedup(r['ratio'], r['unit'])} |")
    machine = machine or {}
    where = " ".join(filter(None, [f"{machine['cpu_count']} CPU cores" if "cpu_count" in machine
                                   else "", f"({machine['machine']})" if "machine" in machine
                                   else ""]))
    lines += ["", "Ratio: the figure against the alternative measured in the same run (faster "
              "or slower; less or more memory)" + (f"; measured on {where}." if where else ".")]
    return "\n".join(lines) + "\n"


def machine(results_dir: Path = RESULTS) -> dict:
    """The cores and processor the benchmarks reported."""
    found = {}
    for result in read_results(results_dir).values():
        found.update({k: result[k] for k in ("cpu_count", "machine") if k in result})
    return found


def write_table(results_dir: Path = RESULTS) -> tuple[list[dict], str]:
    """Write ``table.json`` and ``table.md`` beside the results; the rows and the markdown."""
    rows, found = bench_rows(results_dir), machine(results_dir)
    text = markdown(rows, found)
    storage.write_json(Path(results_dir) / "table.json", {"machine": found, "rows": rows})
    storage.write_bytes(Path(results_dir) / "table.md", text.encode())
    return rows, text


def record_reproduce(seconds: float, run: str = "auto", results_dir: Path = RESULTS) -> dict:
    """Store ``make reproduce``'s wall time in ``reproduce.json`` as its first or second run.

    ``run="first"`` starts afresh (a fresh machine; an older second run is dropped);
    ``"second"`` keeps the first run and sets the second; ``"auto"``: second when a first
    run is recorded. Used by ``make reproduce``.
    """
    path = Path(results_dir) / REPRODUCE
    current = read_reproduce(results_dir) or {}
    if run == "auto":
        run = "second" if "seconds" in current else "first"
    if run == "first":
        current = {"seconds": round(seconds, 1)}
    elif run == "second":
        current = {**current, "second_run_seconds": round(seconds, 1)}
    else:
        raise ValueError(f"run must be first, second or auto, not {run!r}")
    storage.write_json(path, current)
    return current


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=RESULTS, help="the results folder")
    parser.add_argument("--record-reproduce", type=float, metavar="SECONDS",
                        help="record make reproduce's wall time instead of writing the table")
    parser.add_argument("--run", choices=("first", "second", "auto"), default="auto",
                        help="which run of make reproduce SECONDS is (default: auto)")
    args = parser.parse_args(argv)
    if args.record_reproduce is not None:
        recorded = record_reproduce(args.record_reproduce, args.run, args.results)
        print(f"{args.results / REPRODUCE}: {json.dumps(recorded)}")
        return reproduce_rows(recorded)
    rows, text = write_table(args.results)
    print(text, end="")
    return rows


if __name__ == "__main__":
    main()
