"""The benchmark table (benchmarks/table.py) from small results files of each benchmark."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "table.py"
spec = importlib.util.spec_from_file_location("bench_table", SCRIPT)
table = importlib.util.module_from_spec(spec)
spec.loader.exec_module(table)

RESULTS = {
    "render.json": {"benchmark": "render", "notes": 100, "cpu_count": 2, "machine": "x86_64",
                    "notes_per_second_1_process": 200.0,
                    "notes_per_second_2_processes": 300.0, "ratio_2_vs_1": 1.5,
                    "lineages": {label: {"notes": 44, "notes_per_second_1_process": 20.0,
                                         "notes_per_second_2_processes": 30.0,
                                         "ratio_2_vs_1": 1.5} for label in ("Csound", "Faust")}},
    "features.json": {"benchmark": "features", "clips": 330, "front_ends": {
        "musicnn": {"batched": 4000.0, "librosa_loop": 1000.0, "ratio_vs_librosa_loop": 4.0},
        "study": {"batched": 1000.0, "librosa_loop": 400.0, "png_route": 50.0,
                  "ratio_vs_librosa_loop": 2.5, "ratio_vs_png_route": 20.0}}},
    "training.json": {"benchmark": "training", "rows": [
        {"backbone": "musicnn_vgg", "samples": 512, "plain_samples_per_second": 100.0,
         "cached_samples_per_second": 1300.0, "ratio_cached_vs_plain": 13.0,
         "activations_once_samples_per_second": 120.0},
        {"backbone": "scratch_cnn", "plain_samples_per_second": 1000.0}]},
    "predict.json": {"benchmark": "predict", "cpu_count": 2, "runs": 30, "musicnn_vgg_ms": {
        "predict_audio": 20.0, "decode_and_clip": 0.3, "features": 0.2,
        "model_predict_on_batch": 10.0, "with_model_predict": 180.0,
        "with_direct_call": 60.0, "load_per_call": 540.0},
        "cold_start": {"process_seconds": 10.0, "import_and_load_seconds": 6.5,
                       "import_load_predict_seconds": 7.4},
        "ratios": {"with_model_predict_vs_predict_audio": 9.0,
                   "with_direct_call_vs_predict_audio": 3.0,
                   "load_per_call_vs_predict_audio": 27.0}},
    "streaming.json": {"benchmark": "streaming", "backbone": "musicnn_vgg_msd", "rows": 1024,
                       "inputs": "random features",
                       "streamed": {"data_mb": 500.0, "epoch_samples_per_second": 900.0,
                                    "numpy_held_mb": 0.1},
                       "in_ram": {"data_mb": 700.0, "epoch_samples_per_second": 1000.0,
                                  "numpy_held_mb": 171.0},
                       "estimates": {name: {"notes": notes, "streamed_gb": 0.5,
                                            "in_ram_gb": gb, "disk_stage1_gb": gb - 0.5}
                                     for name, notes, gb in (("full", 191880, 20.5),
                                                             ("nsynth", 56678, 9.5))}},
    "page.json": {"benchmark": "page", "sessions": 4, "abandoned_loads": 2, "max_kernels": 4,
                  "idle_timeout_s": 10, "median_upload_to_answer_s": 2.0,
                  "median_page_load_s": 40.0, "defaults_median_upload_to_answer_s": 2.5,
                  "bounded": {"peak_rss_mb": 3600, "peak_pss_mb": 2000, "peak_kernels": 4,
                              "sessions_served": 4},
                  "voila_defaults": {"peak_rss_mb": 5400, "peak_pss_mb": 2800,
                                     "peak_kernels": 6, "sessions_served": 4}},
    "determinism.json": {"benchmark": "determinism", "cpu_count": 2, "epochs": 3,
                         "samples_per_second": {"default": 1000.0, "onednn_off": 800.0,
                                                "op_determinism": 900.0},
                         "repeatable": {"default": True, "onednn_off": True},
                         "thread_count_changes_weights": {"default": False,
                                                          "onednn_off": True}},
    "coldstart.json": {"benchmark": "coldstart", "cpu_count": 2,
                       "keras": {"process_seconds": 6.0, "command": 6.0},
                       "exported": {"process_seconds": 1.5, "command": 2.0},
                       "stages": {"scipy.signal": 0.7, "first prediction": 0.1},
                       "folder": {"files": 120, "batched_files_per_second": 25.0,
                                  "one_at_a_time_files_per_second": 20.0, "ratio": 1.25}},
    "pipeline.json": {"benchmark": "pipeline", "notes": 256, "batch_size": 64, "repeats": 8,
                      "cpu_count": 2, "frozen_pass": {name: {
                          "predict_in_chunks": {"median_ms_per_note": 25.0,
                                                "slowest_ms_per_note": 26.0},
                          "model_predict": {"median_ms_per_note": 40.0,
                                            "slowest_ms_per_note": 41.0}}
                          for name in ("musicnn_vgg_msd_whole", "musicnn_mtt")},
                      "training": {"rows": 4096, "batch_size": 32,
                                   "for_fit": {"median_samples_per_second": 3000.0,
                                               "slowest_samples_per_second": 2800.0},
                                   "py_dataset": {"median_samples_per_second": 2000.0,
                                                  "slowest_samples_per_second": 1500.0}}},
    "phrases.json": {"benchmark": "phrases", "by_notes": {
        str(k): {"phrases": 236, "notes_found_exactly": 0.9, "first_note": 0.4,
                 "energy_weighted_log": 0.4 + 0.02 * k} for k in (1, 2, 3, 5)}},
}


@pytest.fixture
def results_dir(tmp_path):
    for name, result in RESULTS.items():
        (tmp_path / name).write_text(json.dumps(result))
    (tmp_path / "reproduce.json").write_text(json.dumps({"seconds": 1500,
                                                         "second_run_seconds": 100}))
    return tmp_path


def test_every_line_has_a_figure_an_alternative_and_a_ratio(results_dir):
    rows = table.bench_rows(results_dir)
    assert len(rows) == 3 + 3 + 1 + 4 + 3 + 4 + 2 + 2 + 2 + 4 + 1  # render (FluidSynth and
    # two lineages), features, training, predict, pipeline (two backbones and training),
    # streaming, page, determinism, coldstart, phrases, reproduce
    for row in rows:
        assert row["figure"] > 0 and row["unit"], row
        assert row["alternative"] and row["alternative_figure"] > 0, row
        assert row["ratio"] > 0 and not row["note"].startswith("not measured"), row


def test_ratios_are_speedups_against_the_alternative(results_dir):
    rows = {(r["measurement"], r["alternative"]): r for r in table.bench_rows(results_dir)}
    by_alternative = {alternative: r for (_, alternative), r in rows.items()}
    assert by_alternative["1 process"]["ratio"] == 1.5
    png = next(r for (_, a), r in rows.items() if a.startswith("PNG route"))
    assert png["ratio"] == 20.0 and png["figure"] == 1000.0
    cold = next(r for (m, _), r in rows.items() if "cold start" in m)
    assert cold["unit"] == "s" and cold["alternative_unit"] == "ms"
    assert cold["ratio"] == pytest.approx(0.002)  # 10 s against 20 ms: 500x slower
    reproduce = next(r for (m, _), r in rows.items() if m.startswith("make reproduce"))
    assert (reproduce["figure"], reproduce["alternative_figure"]) == (100, 1500)
    assert reproduce["ratio"] == 15.0


def test_markdown_has_one_line_per_row_and_says_faster_or_slower(results_dir):
    rows = table.bench_rows(results_dir)
    text = table.markdown(rows, {"cpu_count": 2})
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    assert len(lines) == len(rows) + 2  # header and its rule
    assert "| 1.5× faster |" in text and "500× slower" in text and "2 CPU cores" in text


def test_memory_rows_say_less_or_more_memory(results_dir):
    rows = [r for r in table.bench_rows(results_dir) if r["source"] == "streaming.json"]
    memory = {r["measurement"]: r for r in rows if r["unit"] in ("MB", "GB")}
    assert len(memory) == 3
    assert [r["ratio"] for r in memory.values()] == pytest.approx([1.4, 41, 19])
    text = table.markdown(rows)
    assert "| 1.4× less memory |" in text and "41× less memory" in text
    speed = next(r for r in rows if r["unit"] == "samples/s")
    assert speed["ratio"] == 0.9 and "1.11× slower" in text


def test_missing_files_give_not_measured_lines(tmp_path):
    (tmp_path / "render.json").write_text(json.dumps(RESULTS["render.json"]))
    rows = table.bench_rows(tmp_path)
    missing = [r for r in rows if r["note"].startswith("not measured")]
    assert {r["source"] for r in missing} == {"features.json", "training.json",
                                              "predict.json", "pipeline.json",
                                              "streaming.json",
                                              "page.json", "determinism.json",
                                              "coldstart.json", "phrases.json",
                                              "reproduce.json"}
    assert all(r["figure"] is None and r["ratio"] is None for r in missing)
    assert "bench_predict.py" in next(r["note"] for r in missing if r["source"] == "predict.json")
    assert table.markdown(rows).count("not measured") >= 2 * len(missing)


def test_written_table_and_reproduce_record(results_dir, capsys):
    (results_dir / "reproduce.json").unlink()
    assert table.record_reproduce(1500.04, results_dir=results_dir) == {"seconds": 1500.0}
    assert table.record_reproduce(90, results_dir=results_dir) == {
        "seconds": 1500.0, "second_run_seconds": 90.0}
    assert table.record_reproduce(95, "second", results_dir) == {
        "seconds": 1500.0, "second_run_seconds": 95.0}
    assert table.record_reproduce(1400, "first", results_dir) == {"seconds": 1400.0}
    table.main(["--results", str(results_dir), "--record-reproduce", "80", "--run", "second"])
    rows = table.main(["--results", str(results_dir)])
    printed = capsys.readouterr().out
    assert "| make reproduce, second run (nothing changed) | 80 s |" in printed
    written = json.loads((results_dir / "table.json").read_text())
    assert written["rows"] == rows and written["machine"]["cpu_count"] == 2
    assert (results_dir / "table.md").read_text() in printed
    again = table.bench_rows(results_dir)  # the written table is not read as a benchmark
    assert again == rows


def test_pipeline_rows_compare_each_way_with_keras_own(results_dir):
    rows = [r for r in table.bench_rows(results_dir) if r["source"] == "pipeline.json"]
    assert [r["alternative"] for r in rows] == ["model.predict"] * 2 + [
        "the Batches PyDataset through Keras's adapter"]
    assert [r["ratio"] for r in rows] == [1.6, 1.6, 1.5]  # 40/25 ms per note, 3000/2000 per s
    assert "musicnn_mtt" in rows[1]["measurement"] and "26 against 41" in rows[1]["note"]


def test_page_and_determinism_rows_compare_with_the_defaults(results_dir):
    rows = {r["source"]: r for r in table.bench_rows(results_dir)[::-1]}
    page, determinism = rows["page.json"], rows["determinism.json"]
    assert page["unit"] == "MB" and page["ratio"] == pytest.approx(1.5)
    assert "4 kernels against 6" in page["note"]
    assert determinism["ratio"] == pytest.approx(1.25)  # oneDNN on against off
    assert "identical with oneDNN, different without" in determinism["note"]


def test_first_run_alone_says_the_second_is_not_measured():
    [row] = table.reproduce_rows({"seconds": 1500})
    assert row["figure"] == 1500 and row["ratio"] is None
    assert "second run not measured" in row["note"]
