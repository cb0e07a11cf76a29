"""Comparisons over seeds (instclf.comparisons): seeds, their aggregation, the command and the
README block generated from its file."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from instclf import cli, comparisons, evaluate, experiments, plots, profiles, report, train

ROOT = Path(__file__).resolve().parents[1]
FAMILIES = ("bass", "brass")  # the two the notes are of
FAMILY_ORDER = evaluate.FAMILIES


def _table(correct: list[bool], split: str = "unseen") -> pd.DataFrame:
    """Two notes per instrument, the notes in a fixed order; ``correct`` says which are right."""
    family = [FAMILIES[k % 2] for k in range(len(correct))]
    predicted = [f if right else FAMILIES[1 - FAMILIES.index(f)] for f, right in zip(family, correct)]
    probabilities = np.array([[float(p == f) for f in FAMILY_ORDER] for p in predicted])
    return evaluate.predictions_table(probabilities, pd.DataFrame({
        "note_str": [f"n{k}" for k in range(len(correct))], "family": family,
        "instrument_str": [f"i{k // 2}" for k in range(len(correct))]})).assign(
        split=split, dry_instrument=lambda t: t["instrument_str"])


def _run(experiment: str, seed: int, unseen: list[bool], seen: list[bool]) -> tuple:
    tables = {"unseen": _table(unseen, "unseen"), "seen": _table(seen, "seen")}
    summary = {"experiment": experiment, "seed": seed, "backbone": experiment, "head": "average",
               "weights": None, "augmentation": None, "schedule": {"head_epochs": 40, "seed": seed},
               **{split: {"accuracy": evaluate.accuracy(t)} for split, t in tables.items()},
               **{key: seed for key in comparisons.PER_SEED}}
    return summary, pd.concat(tables.values(), ignore_index=True)


RIGHT, WRONG = True, False
A0 = [RIGHT] * 6 + [WRONG] * 2   # 75%
A1 = [RIGHT] * 4 + [WRONG] * 4   # 50%
B0 = [RIGHT] * 8                 # 100%
B1 = [RIGHT] * 5 + [WRONG] * 3   # 62.5%


def test_over_seeds_is_the_mean_of_the_seeds_with_each_seed_and_a_pooled_interval():
    runs = [_run("a", 1, A1, B0), _run("a", 0, A0, B1)]
    found = comparisons.over_seeds(runs)
    assert found["seeds"] == [0, 1]
    assert found["unseen"]["accuracy"] == pytest.approx(0.625)  # (75% + 50%) / 2
    assert found["unseen"]["seeds"] == {"0": 0.75, "1": 0.5}
    assert found["seen"]["accuracy"] == pytest.approx(0.8125)
    assert found["unseen"]["notes"] == 16 and found["unseen"]["instruments"] == 4
    low, high = found["unseen"]["accuracy_ci95"]
    assert low <= 0.625 <= high and low < high
    pooled = pd.concat([_table(A0), _table(A1)]).assign(instrument_str=lambda t: t["dry_instrument"])
    assert [low, high] == list(evaluate.bootstrap_accuracy(pooled))  # the instrument bootstrap
    assert list(found["per_seed"]) == ["0", "1"] and found["schedule"] == {"head_epochs": 40}


def test_a_difference_pairs_the_seeds_both_runs_have():
    a = [_run("a", 0, A0, A0), _run("a", 1, A1, A1)]
    b = [_run("b", 0, B0, B0), _run("b", 1, B1, B1), _run("b", 2, B0, B0)]
    found = comparisons.difference(a, b)
    assert found["seeds"] == [0, 1]
    assert found["unseen"]["seeds"] == {"0": pytest.approx(0.25), "1": pytest.approx(0.125)}
    assert found["unseen"]["difference"] == pytest.approx(0.1875)
    pooled = [pd.concat([_table(x), _table(y)], ignore_index=True) for x, y in ((A0, A1), (B0, B1))]
    assert found["unseen"]["ci95"] == list(evaluate.paired_bootstrap(*pooled)[1])
    assert comparisons.difference(a, [_run("b", 5, B0, B0)]) is None


def test_the_comparisons_stated_are_against_scratch_and_along_the_registry():
    names = ["musicnn_vgg_msd", "scratch_cnn", "musicnn_vgg_msd_whole"]
    assert comparisons.pairs(names) == [
        ("scratch_cnn", "musicnn_vgg_msd", "transfer instead of training from scratch"),
        ("scratch_cnn", "musicnn_vgg_msd_whole", "transfer instead of training from scratch"),
        ("musicnn_vgg_msd", "musicnn_vgg_msd_whole",
         experiments.get_experiment("musicnn_vgg_msd_whole").change)]
    assert comparisons.pairs(["musicnn_vgg_msd_whole"]) == []


def _timed(seconds: list[float], val_accuracy: list[float], val_loss: list[float]) -> dict:
    return {"history": {"elapsed_seconds": seconds, "val_accuracy": val_accuracy,
                        "val_loss": val_loss}, "seed": 0}


def test_equal_wall_time_takes_each_seed_at_its_baseline_time():
    runs = {"scratch_cnn": [(_timed([10, 20, 30], [0.5, 0.7, 0.6], [1.0, 0.8, 0.9]), None)],
            "late": [(_timed([40, 50], [0.9, 0.95], [0.5, 0.4]), None)],
            "early": [(_timed([5, 25, 35], [0.6, 0.8, 0.9], [0.9, 0.7, 0.6]), None)]}
    found = comparisons.equal_wall_time(runs)
    assert found["seconds"] == {"0": 30.0}
    assert found["val_accuracy"] == {"0": 0.7}  # the epoch early stopping keeps: lowest loss
    assert found["at_baseline_seconds"] == {"late": {"0": None}, "early": {"0": 0.8}}
    assert comparisons.equal_wall_time({"late": runs["late"]}) is None
    assert "late no epoch finished; early 80.0%" in report.equal_wall_time_sentence(
        {"equal_wall_time": found})


# what train.run_key named each experiment's seed-0 run before seeds existed (fit and valid
# selections keyed "fit-key" and "valid-key"): make reproduce's models stay seed 0
TODAYS_RUNS = {"musicnn_vgg_head": "musicnn_vgg-71a1709815", "musicnn_vgg": "musicnn_vgg-71a1709815",
               "musicnn_vgg_msd": "musicnn_vgg_msd-1d549aba23",
               "musicnn_vgg_msd_whole": "musicnn_vgg_msd_whole-3aa3f7eb3f",
               "vgg19": "vgg19-809c780145",
               "musicnn_vgg_msd_clipnorm": "musicnn_vgg_msd_clipnorm-8c7a5b8b6f",
               "musicnn_vgg_msd_whole_statistics": "musicnn_vgg_msd_whole-3de09c4bff",
               "musicnn_vgg_msd_augmented": "musicnn_vgg_msd-67646a9d9c"}
KEYED = {name: train.Data(np.zeros(1), np.zeros(1), pd.DataFrame(), f"{name}-key")
         for name in ("fit", "valid")}


@pytest.mark.parametrize("name", TODAYS_RUNS)
def test_seed_zero_is_the_run_make_reproduce_trains(name, tmp_path):
    profile = replace(profiles.PROFILES["default"], data_dir=tmp_path)
    path = experiments.model_path(profile, name, KEYED, seed=0)
    assert path.parent == profile.models_dir / TODAYS_RUNS[name]
    later = experiments.model_path(profile, name, KEYED, seed=1)
    assert later.parent.parent == profile.models_dir / "seeds" / "seed1"
    assert later.parent.name != TODAYS_RUNS[name]


def test_scratch_trains_until_early_stopping_decides(tmp_path):
    profile = replace(profiles.PROFILES["default"], data_dir=tmp_path)
    scratch = experiments.get_experiment(experiments.BASELINE)
    schedule = experiments.schedule(profile, scratch, seed=2)
    assert (schedule.head_epochs, schedule.patience, schedule.seed) == (160, 12, 2)
    transfer = experiments.schedule(profile, experiments.get_experiment("musicnn_vgg"))
    assert transfer == train.schedule_for(profile)


def test_train_seeds_then_results_then_the_readme_block(tiny_profile, tiny_dataset, monkeypatch,
                                                        capsys, tmp_path):
    profile = replace(tiny_profile, head_epochs=1, patience=1, seed=7)
    monkeypatch.setattr(profiles, "get_profile", lambda name=None: profile)
    assert cli.main(["train", "scratch_cnn", "--seeds", "2", "--quiet"]) == 0
    out = capsys.readouterr().out
    written = sorted(comparisons.results_dir(profile).glob("*.json"))
    assert [p.name for p in written] == ["scratch_cnn-seed0.json", "scratch_cnn-seed1.json"]
    summaries = [json.loads(p.read_text()) for p in written]
    assert len({s["model"] for s in summaries}) == 2 and out.count("unseen instruments: acc") == 2
    assert [s["schedule"]["seed"] for s in summaries] == [7, 8]
    assert summaries[0]["schedule"]["head_epochs"] == 4 and summaries[0]["epochs"] <= 4
    predictions = pd.read_csv(written[0].with_suffix(".csv"))
    assert set(predictions["split"]) == {"seen", "unseen"}
    assert len(predictions) == summaries[0]["seen"]["notes"] + summaries[0]["unseen"]["notes"]

    assert cli.main(["results", "--comparisons"]) == 0
    path = report.comparisons_path(profile)
    found = report.read_results(path)
    assert found["seeds"] == [0, 1] and list(found["experiments"]) == ["scratch_cnn"]
    assert found["experiments"]["scratch_cnn"]["unseen"]["accuracy"] == pytest.approx(
        np.mean([s["unseen"]["accuracy"] for s in summaries]))
    block = report.comparisons_markdown(found)
    assert "seeds 0, 1 only so far; `make experiments` runs 3" in block
    assert "one stage of up to 4 epochs, patience 3" in block
    start, end = report.markers("comparisons")
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{start}\n{end}\nrest\n")
    results = report.read_results(ROOT / "figures" / "results.json")
    blocks = report.readme_blocks(results, ROOT / "notebooks", comparisons=path)
    assert blocks["comparisons"] == block
    report.update_readme(readme, {"comparisons": blocks["comparisons"]})
    assert block in readme.read_text()
    assert not report.update_readme(readme, {"comparisons": block}), "regenerates identically"

    fig = plots.plot_accuracy_intervals(report.comparisons_frame(found))
    assert "each seed" in [text.get_text() for text in fig.axes[0].get_legend().texts]
    run = found["experiments"]["scratch_cnn"]
    curves = {"scratch_cnn": [pd.DataFrame(s["history"]) for s in run["per_seed"].values()]}
    fig = plots.plot_accuracy_vs_time(curves, mark_seconds=list(found["equal_wall_time"]["seconds"].values()))
    assert len(fig.axes[0].lines) == 2 + 2  # a curve and a mark per seed
    assert comparisons.experiment_of(profile, Path(summaries[0]["model"])) == "scratch_cnn"
