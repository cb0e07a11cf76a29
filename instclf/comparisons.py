"""Comparisons over seeds: each recipe of notebooks 03 and 04 trained from several seeds and
measured on seen and unseen instruments (``instclf train NAME --seeds N``, ``make
experiments``; notebooks 04 and 05 and the README show them from ``figures/comparisons.json``,
which ``instclf results --comparisons`` writes).

Seed k trains an experiment with the schedule's seed ``profile.seed + k``
(:func:`instclf.experiments.schedule`), so seed 0 is the model ``make reproduce`` trains.
Each seed's summary goes to ``models/<profile>/comparisons/<experiment>-seed<k>.json``, its
predictions beside it as CSV, as the leave-one-lineage-out folds' do; both are measured by
:func:`instclf.lineages.fold_results`. Over seeds, an experiment's accuracy is that of all its
seeds' predictions together (every seed predicts the same notes, so it is the mean over
seeds), with a bootstrap interval over instruments, beside each seed's own.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from . import evaluate, experiments, lineages, models, storage, train
from .profiles import Profile

SPLITS = {"seen": "seen", "unseen": "test"}  # a summary's name for a split: its selection
# what a summary keeps of the model's description, and of each epoch
RECORDED = ("backbone", "weights", "schedule", "augmentation", "stages_completed",
            "best_stage", "epochs", "best_val_loss", "training_seconds", "activation_seconds",
            "stage_seconds")
HISTORY = {"stage": int, "unfrozen_blocks": int, "epoch": int, "loss": float, "accuracy": float,
           "val_loss": float, "val_accuracy": float, "seconds": float, "elapsed_seconds": float}
# what the results over seeds keep of each seed besides its accuracy
PER_SEED = ("model", "fit_notes", "stages_completed", "epochs", "best_val_loss",
            "training_seconds", "activation_seconds", "stage_seconds", "history")


def results_dir(profile: Profile) -> Path:
    """Where the profile's per-seed summaries are kept."""
    return profile.models_dir / "comparisons"


def summary_path(profile: Profile, experiment: str, seed: int = 0) -> Path:
    """Where one seed of an experiment keeps its summary (its predictions: the ``.csv``)."""
    return results_dir(profile) / f"{experiment}-seed{seed}.json"


def run_seed(profile: Profile, name: str, seed: int = 0, progress=None,
             data_cache: dict | None = None) -> dict:
    """The experiment trained (or loaded) from ``seed`` and measured on seen and unseen
    instruments: its summary, the model's description and its history with the time spent
    so far after each epoch, and ``predictions`` of both splits (column ``split``)
    (``instclf train NAME --seeds N``)."""
    experiment = experiments.get_experiment(name)
    data = experiments.training_data(profile, experiment, data_cache,
                                     progress=progress is not None)
    trained = experiments.train_experiment(profile, name, progress, data, seed)
    tables = {split: evaluate.cached_predictions(trained, data[selection], selection).assign(
        split=split) for split, selection in SPLITS.items()}
    history = train.elapsed_history(trained.history, trained.meta)
    return {"experiment": name, "profile": profile.name, "seed": seed, "head": experiment.head,
            "model": str(trained.path), **{key: trained.meta.get(key) for key in RECORDED},
            "fit_notes": trained.meta.get("fit_notes", len(data["fit"])),
            **{split: lineages.fold_results(table, profile.seed)
               for split, table in tables.items()},
            "history": {column: history[column].astype(kind).round(6).tolist()
                        for column, kind in HISTORY.items()},
            "predictions": pd.concat(tables.values(), ignore_index=True)}


def write_summary(profile: Profile, result: dict) -> Path:
    """One seed's summary as JSON, its predictions as CSV beside it (``instclf train``)."""
    path = summary_path(profile, result["experiment"], result["seed"])
    storage.write_json(path, {k: v for k, v in result.items() if k != "predictions"})
    with storage.atomic_path(path.with_suffix(".csv")) as tmp:
        result["predictions"].to_csv(tmp, index=False)
    return path


def _pooled(runs: list[tuple[dict, pd.DataFrame]], split: str) -> pd.DataFrame:
    """One split's predictions of every run, one run after the other (each note's dry
    instrument is the bootstrap's unit: :func:`instclf.evaluate.sampling_units`)."""
    return pd.concat([found[found["split"] == split] for _, found in runs], ignore_index=True)


def over_seeds(runs: list[tuple[dict, pd.DataFrame]], seed: int = 0) -> dict:
    """One experiment over its seeds, from each seed's summary and predictions: per split the
    accuracy of every seed's predictions together with its bootstrap interval over
    instruments, and each seed's accuracy; each seed's training (``instclf results
    --comparisons``)."""
    runs = sorted(runs, key=lambda run: run[0]["seed"])
    first = runs[0][0]
    return {**{key: first[key] for key in ("experiment", "backbone", "head", "weights",
                                           "augmentation")},
            "schedule": {k: v for k, v in first["schedule"].items() if k != "seed"},
            "seeds": [summary["seed"] for summary, _ in runs],
            **{split: {**lineages.fold_results(_pooled(runs, split), seed),
                       "seeds": {str(s["seed"]): s[split]["accuracy"] for s, _ in runs}}
               for split in SPLITS},
            "per_seed": {str(s["seed"]): {key: s[key] for key in PER_SEED} for s, _ in runs}}


def pairs(names) -> list[tuple[str, str, str]]:
    """The comparisons the notebooks state among the experiments ``names``, as (the run held
    against, the run, what changes): every transfer recipe against the baseline trained from
    scratch, every experiment against the one it is ``compared_with``."""
    names, baseline = list(names), experiments.BASELINE
    against_scratch = [(baseline, name, "transfer instead of training from scratch")
                       for name in names if baseline in names and name != baseline]
    return against_scratch + [(e.compared_with, e.name, e.change)
                              for e in experiments.EXPERIMENTS.values()
                              if e.name in names and e.compared_with in names]


def difference(runs_a: list, runs_b: list, seed: int = 0) -> dict | None:
    """``runs_b``'s accuracy minus ``runs_a``'s over the seeds both have (None: none), per
    split: the mean over seeds, each seed's, and the interval of a paired bootstrap over
    instruments of the two pooled predictions (:func:`instclf.evaluate.paired_bootstrap`)."""
    by_seed = [{summary["seed"]: (summary, table) for summary, table in runs}
               for runs in (runs_a, runs_b)]
    seeds = sorted(set(by_seed[0]) & set(by_seed[1]))
    if not seeds:
        return None
    found = {"seeds": seeds}
    for split in SPLITS:
        a, b = (_pooled([runs[k] for k in seeds], split) for runs in by_seed)
        mean, (low, high) = evaluate.paired_bootstrap(a, b, seed=seed)
        found[split] = {"difference": mean, "ci95": [low, high], "seeds": {
            str(k): by_seed[1][k][0][split]["accuracy"] - by_seed[0][k][0][split]["accuracy"]
            for k in seeds}}
    return found


def _history(summary: dict) -> pd.DataFrame:
    return pd.DataFrame(summary["history"])


def equal_wall_time(runs: dict[str, list], baseline: str = experiments.BASELINE) -> dict | None:
    """Notebook 04's equal-wall-time question, seed by seed: the baseline's training time and
    final validation accuracy (held-out instruments), and the validation accuracy each other
    experiment's run from the same seed would have kept had it stopped then (None: no epoch
    had finished) (:func:`instclf.train.accuracy_at`). None without the baseline."""
    if baseline not in runs:
        return None
    scratch = {str(s["seed"]): _history(s) for s, _ in runs[baseline]}
    seconds = {seed: float(history["elapsed_seconds"].iloc[-1])
               for seed, history in scratch.items()}
    at = {name: {str(s["seed"]): train.accuracy_at(_history(s), seconds[str(s["seed"])])
                 for s, _ in found if str(s["seed"]) in seconds}
          for name, found in runs.items() if name != baseline}
    return {"baseline": baseline, "seconds": seconds,
            "val_accuracy": {seed: train.accuracy_at(history, seconds[seed])
                             for seed, history in scratch.items()},
            "at_baseline_seconds": {name: {seed: None if np.isnan(v) else v
                                           for seed, v in by_seed.items()}
                                    for name, by_seed in at.items() if by_seed}}


def over_experiments(runs: dict[str, list], seed: int = 0) -> dict:
    """Every experiment over its seeds (in the registry's order), the paired differences of
    :func:`pairs` and :func:`equal_wall_time`: what ``figures/comparisons.json`` holds besides
    its date and environment (``instclf results --comparisons``)."""
    names = [name for name in experiments.EXPERIMENTS if name in runs]
    names += sorted(set(runs) - set(names))
    differences = [{"against": a, "experiment": b, "change": change, **found}
                   for a, b, change in pairs(names)
                   if (found := difference(runs[a], runs[b], seed)) is not None]
    return {"seeds": sorted({s["seed"] for found in runs.values() for s, _ in found}),
            "experiments": {name: over_seeds(runs[name], seed) for name in names},
            "differences": differences, "equal_wall_time": equal_wall_time(runs)}


def experiment_of(profile: Profile, path: Path, data_cache: dict | None = None) -> str | None:
    """The registry's experiment a model on disk is the seed-0 run of: the one it records,
    else the one whose run it is (models trained before runs recorded it); None if none is
    (notebook 05's best model)."""
    recorded = models.model_description(path).get("experiment")
    if recorded:
        return recorded
    for experiment in experiments.EXPERIMENTS.values():
        if experiments.available(experiment):
            data = experiments.training_data(profile, experiment, data_cache, progress=False)
            if experiments.model_path(profile, experiment.name, data) == Path(path):
                return experiment.name
    return None
