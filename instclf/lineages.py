"""Leave-one-lineage-out: how well a recipe hears families in sound it never heard.

A lineage is a family of sound material (a soundfont and the banks derived from it, Csound's
instruments, Faust's; a recorded copy keeps its dry note's lineage). For each lineage, a fold
trains the recipe on the profile's fitted and validation notes of every other lineage and
tests on every note of the lineage left out. All folds read one cache of the frozen
activations of every note of the profile (:class:`instclf.activations.Rows`), so the frozen
bottom is computed once, not once per fold. Every fold gets the same schedule
(:data:`FOLD_SCHEDULE`: shorter than the main model's, with one block unfrozen).

The mean over lineages is the headline of notebook 05 and the README; the profile's best
model is the one whose recipe has the best mean (:func:`instclf.models.best_model_path`).

The same folds answer which sources teach families best (notebook 04,
:func:`compare_sources`): the fold without the real instruments, its training notes cut to
one choice of sources at a time (:data:`TRAINING_MIXES`), every choice drawn down to the
same number of notes, each tested on the real instruments it never heard.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from . import backbones, embeddings, evaluate, features, models, storage, subsets, train
from .activations import Rows, chain, output_shape, predict_in_chunks
from .config import FAMILIES, InstclfError
from .profiles import Profile
from .sources.recorded import Recorded
from .sources.samples import SampleLibrary

FOLD_SCHEDULE = train.Schedule(max_unfrozen_blocks=1, head_epochs=12, stage_epochs=6,
                               patience=2)


def pool(profile: Profile, front_end: features.FrontEnd, progress: bool = True) -> train.Data:
    """Every note of the profile with its features (the whole-dataset cache, memory-mapped)."""
    notes = profile.notes(progress=progress).reset_index(drop=True)
    cached = features.dataset_features(profile, front_end, progress=progress)  # in that order
    y = train.labels(notes)
    return train.Data(cached.X, y, notes, train.data_key(cached.digest, y, notes))


def lineage_names(notes: pd.DataFrame) -> list[str]:
    """The lineages of a note table, sorted."""
    return sorted(notes["lineage"].astype(str).unique())


def _subset(everything: train.Data, rows: np.ndarray) -> train.Data:
    rows = np.sort(rows)
    notes = everything.notes.iloc[rows].reset_index(drop=True)
    y = everything.y[rows]
    return train.Data(Rows(everything.X, rows, everything.key), y, notes,
                      storage.content_key("rows", everything.key, train.data_key("", y, notes)))


def folds(profile: Profile, everything: train.Data) -> dict[str, dict[str, train.Data]]:
    """For each lineage: ``fit`` and ``valid`` of the profile's selection without it, and
    ``test``, every note of it (rows of ``everything``, :func:`pool`)."""
    lineages = lineage_names(everything.notes)
    if len(lineages) < 2:
        raise InstclfError(f"profile {profile.name} has one lineage ({lineages[0]}); leaving "
                           "it out leaves nothing to train on (use the default profile)")
    row_of = pd.Series(np.arange(len(everything)), index=everything.notes["note_str"])
    selected = subsets.select(everything.notes, profile.selection)
    lineage = everything.notes["lineage"].astype(str).to_numpy()
    out = {}
    for left_out in lineages:
        fold = {}
        for name in ("fit", "valid"):
            rows = row_of[selected[name]["note_str"]].to_numpy()
            fold[name] = _subset(everything, rows[lineage[rows] != left_out])
        fold["test"] = _subset(everything, np.flatnonzero(lineage == left_out))
        out[left_out] = fold
    return out


def fold_dir(profile: Profile, lineage: str) -> Path:
    """Where the fold without ``lineage`` keeps its models (outside the profile's own models,
    so the best-model choice never picks a fold)."""
    return profile.models_dir / "folds" / f"without-{lineage}"


def test_predictions(trained: train.TrainedModel, backbone: backbones.Backbone,
                     test: train.Data, cache_dir: Path) -> pd.DataFrame:
    """The fold model's predictions table on the lineage left out, from the shared cache of
    frozen activations (only the top of the chain runs here)."""
    model = trained.model
    lowest = (backbones.block_start(model, backbone, trained.meta["schedule"]["max_unfrozen_blocks"])
              if backbone.pretrained else 0)
    X = test.X
    if lowest:
        X = train.rows_activations(model, X, backbone, 0, lowest, cache_dir)
    top = chain(model.layers[lowest:], output_shape(model, lowest))
    return evaluate.predictions_table(predict_in_chunks(top, X), test.notes)


def fold_results(table: pd.DataFrame, seed: int = 0) -> dict:
    """Accuracy with its bootstrap interval over dry instruments
    (:func:`instclf.evaluate.sampling_units`), and per family, of one fold's predictions
    table."""
    recall = evaluate.per_family(table)["recall"]
    return {**evaluate.summary(table, seed=seed),
            "per_family": {str(f): (None if np.isnan(a) else float(a))
                           for f, a in recall.items()}}


def by_condition(table: pd.DataFrame, notes: pd.DataFrame, seed: int = 0) -> dict:
    """Accuracy on the lineages left out, dry notes against recorded copies and per condition
    of the recording chain (a copy counts for every condition it went through), with the
    interval over dry instruments: notebook 06's errors by condition. ``table``: fold
    predictions (any seeds, every fold); ``notes``: the profile's notes with ``conditions``."""
    if "conditions" not in notes:
        return {}
    conditions = notes.set_index("note_str")["conditions"].reindex(table["note_str"])
    recorded = conditions.map(lambda c: isinstance(c, tuple) and len(c) > 0).to_numpy()
    groups = {"dry": ~recorded, "recorded": recorded}
    for name in sorted({c for found in conditions[recorded] for c in found}):
        groups[name] = conditions.map(lambda c, name=name: isinstance(c, tuple)
                                      and name in c).to_numpy()
    out = {}
    for name, rows in groups.items():
        if rows.any():
            result = fold_results(table[rows], seed)
            out[name] = {k: result[k] for k in ("accuracy", "accuracy_ci95", "notes")}
    return out


def leave_one_lineage_out(profile: Profile, backbone_name: str, progress=None,
                          schedule: train.Schedule = FOLD_SCHEDULE, head: str = "average",
                          seed: int = 0) -> dict:
    """Train and test every fold of the recipe (``backbone_name`` and ``head`` with
    ``schedule``, its weights drawn and its batches shuffled from ``seed``); returns per
    lineage its results and the mean over lineages (notebook 05, ``make experiments``).
    Folds already trained are loaded from disk."""
    backbone = backbones.get_backbone(backbone_name)
    everything = pool(profile, backbone.front_end, progress=progress is not None)
    schedule = replace(schedule, seed=profile.seed + seed, batch_size=profile.batch_size)
    per_lineage, tables = {}, []
    for lineage, fold in folds(profile, everything).items():
        path, table = _trained_and_tested(profile, backbone, fold, fold["test"], schedule,
                                          fold_dir(profile, lineage), head, progress)
        tables.append(table.assign(lineage=lineage))
        per_lineage[lineage] = {**fold_results(tables[-1], profile.seed),
                                "fit_notes": len(fold["fit"]), "model": str(path)}
        if progress:
            progress(f"without {lineage}: {per_lineage[lineage]['accuracy']:.1%} on its "
                     f"{len(table)} notes")
    return _results(profile, backbone_name, head, schedule, seed, "lineage", per_lineage, tables)


def _trained_and_tested(profile: Profile, backbone: backbones.Backbone, data: dict,
                        test: train.Data, schedule: train.Schedule, models_dir: Path,
                        head: str, progress) -> tuple[Path, pd.DataFrame]:
    """The recipe trained (or loaded) on ``data``'s ``fit`` and ``valid``: its file and its
    predictions table on ``test``."""
    trained = train.trained_model(profile, backbone.name, data=data, progress=progress,
                                  schedule=schedule, models_dir=models_dir, head=head)
    return trained.path, test_predictions(trained, backbone, test,
                                          train.profile_cache_dir(profile))


def _results(profile: Profile, backbone_name: str, head: str, schedule: train.Schedule,
             seed: int, per: str, found: dict, tables: list[pd.DataFrame], **extra) -> dict:
    """One run's results: per lineage (or mix) ``found``, their mean and lowest accuracy,
    and every predictions table."""
    accuracies = [r["accuracy"] for r in found.values()]
    return {"backbone": backbone_name, "head": head, "schedule": schedule.__dict__,
            "profile": profile.name, "seed": seed, **extra,
            f"per_{per}": found, "mean_accuracy": float(np.mean(accuracies)),
            "lowest_accuracy": float(np.min(accuracies)),
            "predictions": pd.concat(tables, ignore_index=True)}


def block_statistics_out(profile: Profile, backbone_names: tuple[str, ...], progress=None,
                         seed: int = 0) -> dict:
    """Leave-one-lineage-out of the head alone on the frozen backbones' top blocks'
    statistics and the notes' descriptors (:func:`instclf.embeddings.block_statistics_model`):
    in every fold, a head fitted on the same notes as the staged folds (every seed gives the
    same one: :func:`instclf.embeddings.statistics_head`), tested
    on every note of the lineage left out. One frozen pass of each backbone over every note
    serves every fold (``instclf train musicnn_vgg_msd_whole_block_statistics --lineages``)."""
    backbone = backbones.get_backbone(backbone_names[0])
    everything = pool(profile, backbone.front_end, progress=progress is not None)
    S, _ = embeddings.statistics_embeddings(profile, tuple(backbone_names),
                                            {"every note": everything}, progress)
    schedule = replace(train.schedule_for(profile, 0), seed=profile.seed + seed)
    per_lineage, tables = {}, []
    for lineage, fold in folds(profile, everything).items():
        fit, valid = (np.isin(np.arange(len(everything)), fold[name].X.rows)
                      for name in ("fit", "valid"))
        head, _ = embeddings.statistics_head(S, everything.y, fit, valid)
        rows = fold["test"].X.rows
        table = evaluate.predictions_table(head.predict(S[rows], verbose=0), fold["test"].notes)
        tables.append(table.assign(lineage=lineage))
        per_lineage[lineage] = {**fold_results(tables[-1], profile.seed),
                                "fit_notes": int(fit.sum())}
        if progress:
            progress(f"without {lineage}: {per_lineage[lineage]['accuracy']:.1%} on its "
                     f"{len(table)} notes")
    return _results(profile, "+".join(backbone_names), train.BLOCK_STATISTICS, schedule, seed,
                    "lineage", per_lineage, tables)


def ensemble_table(tables: list[pd.DataFrame]) -> pd.DataFrame:
    """The predictions table of an ensemble: the mean of its members' probabilities on the
    same notes (each member's table, any row order), the family of the highest mean."""
    key = ["lineage", "note_str"]
    first = tables[0].set_index(key)
    aligned = [t.set_index(key).loc[first.index] for t in tables]
    columns = [f"p_{family}" for family in FAMILIES]
    mean = np.mean([t[columns].to_numpy(np.float64) for t in aligned], axis=0)
    notes = first.reset_index()
    table = evaluate.predictions_table(mean, notes)
    return table.assign(dry_instrument=notes["dry_instrument"].to_numpy(),
                        lineage=notes["lineage"].to_numpy())


def ensemble_out(profile: Profile, members: tuple[str, ...], seed: int = 0) -> dict:
    """Leave-one-lineage-out of an ensemble: in every fold, the mean of its members' fold
    models' probabilities, read from their recorded predictions of ``seed``
    (``instclf train NAME --lineages`` on an ensemble experiment)."""
    runs = []
    for member in members:
        path = summary_path(profile, member, seed)
        if not path.is_file():
            raise InstclfError(f"the ensemble needs {member}'s leave-one-lineage-out results of "
                               f"seed {seed} first: INSTCLF_PROFILE={profile.name} instclf "
                               f"train {member} --lineages")
        runs.append((json.loads(path.read_text()), pd.read_csv(path.with_suffix(".csv"))))
    table = ensemble_table([t for _, t in runs])
    per_lineage = {lineage: {**fold_results(table[table["lineage"] == lineage], profile.seed),
                             "members": {m: r["per_lineage"][lineage]["accuracy"]
                                         for m, (r, _) in zip(members, runs)}}
                   for lineage in lineage_names(table)}
    accuracies = [r["accuracy"] for r in per_lineage.values()]
    first = runs[0][0]
    return {"backbone": " + ".join(r["backbone"] for r, _ in runs),
            "head": " + ".join(r["head"] for r, _ in runs), "schedule": first["schedule"],
            "profile": profile.name, "seed": seed, "members": list(members),
            "per_lineage": per_lineage, "mean_accuracy": float(np.mean(accuracies)),
            "lowest_accuracy": float(np.min(accuracies)), "predictions": table}


def summary_path(profile: Profile, experiment: str, seed: int = 0) -> Path:
    """Where an experiment's leave-one-lineage-out results of one seed are kept (read by
    :func:`instclf.models.best_model_path` to choose the profile's best model)."""
    return models.lineage_results_dir(profile) / f"{experiment}-seed{seed}.json"


def write_summary(profile: Profile, experiment: str, result: dict,
                  path: Path | None = None) -> Path:
    """The results without the predictions as JSON (at ``path``, default
    :func:`summary_path`), the predictions as CSV beside them."""
    path = path or summary_path(profile, experiment, result.get("seed", 0))
    storage.write_json(path, {"experiment": experiment,
                              **{k: v for k, v in result.items() if k != "predictions"}})
    with storage.atomic_path(path.with_suffix(".csv")) as tmp:
        result["predictions"].to_csv(tmp, index=False)
    return path



def over_seeds(runs: list[tuple[dict, pd.DataFrame]], seed: int = 0,
               per: str = "lineage") -> dict:
    """One recipe's results over its seeds, from each seed's summary and predictions table:
    per lineage (``per="mix"``: per training mix of :func:`compare_sources`) the accuracy of
    all seeds' predictions together (the mean over seeds) with its bootstrap interval over dry
    instruments, and each seed's accuracy; the mean over them with each seed's mean (their
    spread) (``instclf results --lineages`` and ``--sources``)."""
    first, key = runs[0][0], f"per_{per}"
    found = {}
    for name in first[key]:
        pooled = pd.concat([table[table[per] == name] for _, table in runs])
        found[name] = {**fold_results(pooled, seed),
                       "seeds": {str(s["seed"]): s[key][name]["accuracy"] for s, _ in runs}}
    return {**{k: first[k] for k in ("experiment", "backbone", "head", "schedule", "profile")},
            "seeds": sorted(s["seed"] for s, _ in runs), key: found,
            "mean_accuracy": float(np.mean([f["accuracy"] for f in found.values()])),
            "lowest_accuracy": float(min(f["accuracy"] for f in found.values())),
            "seed_means": {str(s["seed"]): s["mean_accuracy"] for s, _ in runs}}


# --- which sources teach families: notebook 04's comparison at equal size ------------------

@dataclass(frozen=True)
class TrainingMix:
    """One choice of training notes: those whose sound comes from a source of one of
    ``kinds`` (None: every kind), with their recorded copies or without."""

    name: str
    kinds: tuple[str, ...] | None = None
    recorded: bool = True

    def holds(self, kinds: pd.Series, recorded: pd.Series) -> np.ndarray:
        """Which notes (their dry source's kind, recorded copy or not) the mix keeps."""
        keep = np.ones(len(kinds), bool) if self.kinds is None else kinds.isin(self.kinds).to_numpy()
        return keep if self.recorded else keep & ~recorded.to_numpy(bool)


TRAINING_MIXES = (
    TrainingMix("the soundfonts", ("soundfonts",)),
    TrainingMix("the synthesis engines", ("csound", "faust", "pyo")),
    TrainingMix("every lineage"),
    TrainingMix("every lineage, dry notes only", recorded=False),
)


def origins(profile: Profile) -> dict[str, tuple[str, bool]]:
    """For each source of the profile, by name: the kind of source its sound comes from (a
    recorded copy's: its dry source's) and whether its notes are recorded copies."""
    return {s.name: (s.of.kind, True) if isinstance(s, Recorded) else (s.kind, False)
            for s in profile.sources}


def mix_rows(notes: pd.DataFrame, found: dict[str, tuple[str, bool]],
             mixes: tuple[TrainingMix, ...], seed: int) -> dict[str, np.ndarray]:
    """Per mix, the rows of ``notes`` (with ``origin``) it trains on, every mix drawn down
    (at random from ``seed``, without replacement) to the size of the smallest."""
    kinds = notes["origin"].map(lambda o: found[o][0])
    recorded = notes["origin"].map(lambda o: found[o][1])
    rows = {mix.name: np.flatnonzero(mix.holds(kinds, recorded)) for mix in mixes}
    empty = [name for name, r in rows.items() if not len(r)]
    if empty:
        raise InstclfError(f"no notes for {', '.join(empty)} in this profile's training notes")
    size = min(len(r) for r in rows.values())
    return {name: np.sort(subsets.stable_rng(seed, "mix", name).choice(r, size, replace=False))
            for name, r in rows.items()}


def compare_sources(profile: Profile, backbone_name: str, head: str = "average",
                    seed: int = 0, mixes: tuple[TrainingMix, ...] = TRAINING_MIXES,
                    tested: str = SampleLibrary.kind, schedule: train.Schedule = FOLD_SCHEDULE,
                    progress=None) -> dict:
    """Train the recipe on each mix of sources (:func:`mix_rows`: the fold without the
    ``tested`` lineage, at equal size) and test it on every note of that lineage; returns
    per mix its results (notebook 04, ``instclf train NAME --sources``). Trained mixes are
    loaded from disk."""
    backbone = backbones.get_backbone(backbone_name)
    everything = pool(profile, backbone.front_end, progress=progress is not None)
    all_folds = folds(profile, everything)
    if tested not in all_folds:
        raise InstclfError(f"profile {profile.name} has no lineage {tested}")
    fold = all_folds[tested]
    schedule = replace(schedule, seed=profile.seed + seed, batch_size=profile.batch_size)
    chosen = {name: mix_rows(fold[name].notes, origins(profile), mixes, profile.seed + seed)
              for name in ("fit", "valid")}
    per_mix, tables = {}, []
    for mix in mixes:
        data = {name: _subset(everything, fold[name].X.rows[chosen[name][mix.name]])
                for name in ("fit", "valid")}
        path, table = _trained_and_tested(profile, backbone, data, fold["test"], schedule,
                                          fold_dir(profile, tested), head, progress)
        tables.append(table.assign(lineage=tested, mix=mix.name))
        per_mix[mix.name] = {**fold_results(tables[-1], profile.seed),
                             "fit_notes": len(data["fit"]), "valid_notes": len(data["valid"]),
                             "lineages": lineage_names(data["fit"].notes), "model": str(path)}
        if progress:
            progress(f"{mix.name}: {per_mix[mix.name]['accuracy']:.1%} on the {len(table)} "
                     f"notes of {tested}")
    return _results(profile, backbone_name, head, schedule, seed, "mix", per_mix, tables,
                    tested=tested)


def sources_results_dir(profile: Profile) -> Path:
    """Where the comparisons of sources of each experiment are kept."""
    return profile.models_dir / "sources"


def sources_summary_path(profile: Profile, experiment: str, seed: int = 0) -> Path:
    """Where an experiment's comparison of sources of one seed is kept."""
    return sources_results_dir(profile) / f"{experiment}-seed{seed}.json"
