"""The results file, its table and the README block generated from it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from instclf import cli, experiments, models, report
from instclf.config import InstclfError

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
RESULTS = ROOT / "figures" / "results.json"
LINEAGES = ROOT / "figures" / report.LINEAGES_FILE
SOURCES = ROOT / "figures" / report.SOURCES_FILE
COMPARISONS = ROOT / "figures" / report.COMPARISONS_FILE
BENCH_TABLE = ROOT / "benchmarks" / "results" / "table.md"


def _summary(accuracy, low, high):
    return {"notes": 10, "instruments": 2, "accuracy": accuracy, "accuracy_ci95": [low, high],
            "balanced_accuracy": accuracy - 0.01, "top2_accuracy": accuracy + 0.05}


@pytest.fixture
def results():
    models = {
        "scratch_cnn": {"stages": 1, "training_seconds": 100.4, "stage_seconds": [99.6],
                        "seen": _summary(0.78, 0.7, 0.85), "unseen": _summary(0.716, 0.6, 0.8)},
        "musicnn_vgg": {"stages": 3, "training_seconds": 270.0,
                        "seen": _summary(0.878, 0.8, 0.9), "unseen": _summary(0.772, 0.7, 0.83)},
        "musicnn_vgg_head": {"stages": 1, "training_seconds": 60.0, "stage_seconds": [5.0],
                             "seen": _summary(0.5, 0.4, 0.6), "unseen": _summary(0.466, 0.4, 0.5)},
    }
    return {"profile": "default", "models": models, "best_model": "musicnn_vgg",
            "dataset": {"notes": 11700, "instruments": 585, "by_family": {
                "bass": {"train": {"notes": 740, "instruments": 37},
                         "valid": {"notes": 90, "instruments": 9}, "test": {"notes": 90, "instruments": 9}},
                "vocal": {"train": {"notes": 240, "instruments": 12},
                          "valid": {"notes": 30, "instruments": 3}, "test": {"notes": 30, "instruments": 3}}}},
            "equal_wall_time": {"scratch_seconds": 103.0, "scratch_val_accuracy": 0.714,
                                "val_accuracy_at_scratch_seconds": {"musicnn_vgg": None}},
            "seen_notes": 934, "unseen_notes": 1180, "unseen_instruments": 118,
            "unseen_sources": {"backbone": "musicnn_vgg", "mean_accuracy": 0.5,
                               "unseen_instruments_same_setting": 0.55,
                               "per_lineage": [{"lineage": f"sf{k}", "accuracy": 0.4 + k / 20}
                                               for k in range(5)]}}


def test_table_is_sorted_by_unseen_accuracy_with_intervals(results):
    table = report.results_table(results)
    assert table.model.tolist() == ["musicnn_vgg", "scratch_cnn", "musicnn_vgg (head only)"]
    assert table["unseen instruments"][0] == "77.2% (70.0%–83.0%)"
    assert table["training (s)"].tolist() == ["270", "100", "60"]
    assert table["per stage (s)"].tolist() == ["", "100", "5"]


def _block(name, content=""):
    start, end = report.markers(name)
    return f"{start}\n{content}\n{end}\n" if content else f"{start}\n{end}\n"


def test_readme_block_is_rewritten_between_markers(tmp_path, results):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{_block('results', 'old numbers')}rest\n")
    blocks = {"results": report.results_markdown(results)}
    assert report.update_readme(readme, blocks)
    text = readme.read_text()
    assert "old numbers" not in text and text.startswith("intro\n") and text.endswith("rest\n")
    assert "| musicnn_vgg | 3 | 77.2% (70.0%–83.0%) |" in text
    assert "mean 50.0% over 5 lineages;" in text and "hardest lineage: sf0 (40.0%)" in text
    assert not report.update_readme(readme, blocks)  # a second run changes nothing


def test_findings_are_computed_from_the_results(results):
    lines = report.findings(results)
    assert lines[0] == ("Seen against unseen instruments (musicnn_vgg): 87.8% against 77.2%, a gap "
                        "of 10.6 points (the study: 92% and 72%).")
    assert "mean 50.0% over 5 lineages" in lines[1] and "hardest lineage: sf0 (40.0%)" in lines[1]


def test_findings_add_the_top_blocks_statistics_when_measured(results):
    results["unseen_sources"]["block_statistics"] = {
        "blocks": 3, "mean_accuracy": 0.612, "unseen_instruments_same_setting": 0.5,
        "per_lineage": [{"lineage": f"sf{k}", "accuracy": 0.7 - k / 20} for k in range(5)]}
    lines = report.findings(results)
    assert lines[2] == ("The same head on the mean and maximum of the top 3 blocks instead: mean "
                        "61.2% over 5 lineages; unseen instruments in the same setting: 50.0%; "
                        "hardest lineage: sf4 (50.0%).")
    results["unseen_sources"]["block_statistics"]["descriptors"] = 2
    assert report.findings(results)[2].startswith(
        "A logistic head on the mean and maximum of the top 3 blocks and the note's descriptors "
        "instead: mean 61.2% over 5 lineages;")
    results["unseen_sources"]["block_statistics"]["backbones"] = ["vgg_a", "tagger_b"]
    assert report.findings(results)[2].startswith(
        "A logistic head on the mean and maximum of the top 3 blocks of vgg_a and tagger_b and "
        "the note's descriptors instead: mean 61.2%")


def test_findings_leave_the_comparisons_to_the_comparisons_file(results):
    lines = report.findings(results)  # the file holds three models and an equal-time entry
    assert len(lines) == 2 and not any("scratch_cnn" in line or "Effect" in line for line in lines)


def test_dataset_table_totals(results):
    table = report.dataset_markdown(results).splitlines()
    assert table[2] == "| bass | 740 | 37 | 90 | 90 | 9 |"
    assert table[-1] == "| **all** | **980** | **49** | **120** | **120** | **12** |"


def test_readme_without_markers_is_refused(tmp_path, results):
    readme = tmp_path / "README.md"
    readme.write_text("no markers\n")
    with pytest.raises(InstclfError, match="results markers"):
        report.update_readme(readme, {"results": report.results_markdown(results)})
    assert readme.read_text() == "no markers\n"


def test_results_command_prints_and_rewrites(tmp_path, results, capsys):
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results))
    readme = tmp_path / "README.md"
    readme.write_text(_block("results") + _block("notebooks") + _block("dataset"))
    (tmp_path / "notebooks").mkdir()
    assert cli.main(["results", "--file", str(path), "--readme", str(readme)]) == 0
    out = capsys.readouterr().out
    assert "| scratch_cnn | 1 | 71.6%" in out and "rewritten" in out
    assert cli.main(["results", "--file", str(tmp_path / "missing.json")]) == 2


def test_notebook_table_comes_from_the_notebooks():
    table = report.notebooks_markdown(ROOT / "notebooks")
    names = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert [line.split("](")[0][3:] for line in table.splitlines()[2:]] == names
    assert ("| Validation: seen and unseen instruments | Sound it never heard: leave one lineage "
            "out; One predictions table per split;") in table


def test_the_readme_blocks_are_the_ones_generated_from_the_files():
    results = report.read_results(RESULTS)
    assert results["profile"] == "default"
    text = README.read_text()
    blocks = report.readme_blocks(results, ROOT / "notebooks", BENCH_TABLE, LINEAGES, COMPARISONS,
                                  SOURCES)
    assert set(blocks) >= {"results", "notebooks", "lineages", "comparisons", "sources"}
    assert report.replace_blocks(text, blocks) == text, (
        "README differs from figures/results.json, comparisons.json, lineages.json, "
        "sources.json, the notebooks or the benchmark table; "
        "run: instclf results --readme README.md")


def test_the_headline_leads_with_the_lineage_never_heard_then_unseen_instruments(results):
    lineage_results = {"profile": "lineages", "date": "2026-11-30", "experiments": {
        name: {"mean_accuracy": mean, "seed_means": {"0": mean - 0.01, "1": mean + 0.01},
               "per_lineage": {"a": {"accuracy": mean + 0.1, "accuracy_ci95": [0.5, 0.7]},
                               "b": {"accuracy": mean - 0.1, "accuracy_ci95": [0.2, 0.4]},
                               "samples": {"accuracy": mean, "accuracy_ci95": [0.3, 0.6]}}}
        for name, mean in (("musicnn_vgg_msd_whole", 0.45), (models.BEST_EXPERIMENT, 0.5),
                           ("ensemble_vgg_statistics_musicnn_msd", 0.55))}}
    rows = report.headline_markdown(results, lineage_results).splitlines()[2:10]
    assert rows[0].count("with musicnn_msd") == 1 and "**55.0%** [seeds 54.0%–56.0%]" in rows[0]
    assert "lowest lineage (b)" in rows[1] and "45.0% (20.0%–40.0%)" in rows[1] and "| 50% |" in rows[1]
    assert rows[2].startswith("| real instruments never heard (`samples` left out)")
    assert "55.0% (30.0%–60.0%)" in rows[2] and "with musicnn_msd" in rows[2]
    page = experiments.get_experiment(models.BEST_EXPERIMENT)
    assert ("(the page's recipe" + (f"; an ensemble: the mean of {len(page.members)} models)"
                                    if page.members else ")")) in rows[3]
    assert "**50.0%**" in rows[3] and "| 70% |" in rows[3]
    assert "(the page's recipe" in rows[5] and "50.0% (30.0%–60.0%)" in rows[5]
    assert rows[6].startswith("| unseen instruments") and "**77.2% (70.0%–83.0%)**" in rows[6]
    assert rows[7].startswith("| seen instruments")
    del lineage_results["experiments"][models.BEST_EXPERIMENT]["per_lineage"]["samples"]
    rows = report.headline_markdown(results, lineage_results).splitlines()
    assert sum("real instruments never heard" in row for row in rows) == 1
