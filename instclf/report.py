"""The results files and the README's tables generated from them (notebooks 04 and 05, make
reproduce, make experiments).

The results file (``figures/results.json`` on the default profile) holds the best model's
accuracy on seen and unseen instruments with its confidence interval, balanced accuracy and
training time (keyed by its experiment's name in :mod:`instclf.experiments`), plus the
leave-one-lineage-out figures, and the environment it ran in (:func:`environment`). The
comparisons between the experiments, over seeds, are ``figures/comparisons.json``'s
(:mod:`instclf.comparisons`); the leave-one-lineage-out ones ``figures/lineages.json``'s. The
README's tables are rewritten from these files between markers, so no result is ever typed by
hand; the runs' labels and the comparisons stated come from the registry.
"""

from __future__ import annotations

import json
import os
import platform
import re
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

from . import evaluate, experiments, storage
from .config import PROJECT_ROOT, InstclfError
from .profiles import Profile
from .sources.samples import SampleLibrary



def results_path(profile: Profile) -> Path:
    """Where the profile's results file lives (beside its figures)."""
    return profile.figures_dir / "results.json"


def model_results(trained, seen: pd.DataFrame, unseen: pd.DataFrame) -> dict:
    """One model's entry: how it was trained and its seen / unseen-instrument metrics."""
    meta = trained.meta
    return {"backbone": meta["backbone"], "weights": meta["weights"],
            "stages": meta["stages_completed"], "epochs": meta["epochs"],
            "training_seconds": meta["training_seconds"],
            "stage_seconds": meta.get("stage_seconds", []),
            "seen": evaluate.summary(seen), "unseen": evaluate.summary(unseen)}


ENVIRONMENT_PACKAGES = ("tensorflow", "keras", "librosa", "numpy")


def _installed(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def environment() -> dict:
    """What a results file ran on (notebook 05 through :func:`write_results`): Python and the
    key packages' versions, the platform and the CPU count."""
    return {"python": platform.python_version(),
            **{package: _installed(package) for package in ENVIRONMENT_PACKAGES},
            "instclf": _installed("instclf"),
            "platform": platform.platform(), "machine": platform.machine(),
            "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
            else os.cpu_count()}


def write_results(profile: Profile, results: dict) -> Path:
    """Write the results file atomically, with the environment it ran in; returns its path."""
    path = results_path(profile)
    storage.write_json(path, {"profile": profile.name, **results, "environment": environment()})
    return path


def read_results(path: Path) -> dict:
    """The results file at ``path``, with a clear error if it is missing."""
    path = Path(path)
    if not path.is_file():
        raise InstclfError(f"no results file at {path}; make reproduce (notebook 05) writes "
                           "results.json, make experiments comparisons.json and lineages.json")
    return json.loads(path.read_text())


def results_table(results: dict) -> pd.DataFrame:
    """One row per model, best on unseen instruments first: accuracy (95% interval), time.

    The training time includes the one-time pass through the frozen bottom; the time per
    stage does not.
    """
    rows = []
    models = sorted(results["models"].items(), key=lambda item: -item[1]["unseen"]["accuracy"])
    for name, entry in models:
        unseen, seen = entry["unseen"], entry["seen"]
        rows.append({
            "model": experiments.label(name), "stages": entry["stages"],
            "unseen instruments": _with_interval(unseen),
            "unseen, balanced": f"{unseen['balanced_accuracy']:.1%}",
            "seen instruments": _with_interval(seen),
            "training (s)": f"{entry['training_seconds']:.0f}",
            "per stage (s)": " + ".join(f"{t:.0f}" for t in entry.get("stage_seconds", [])),
        })
    return pd.DataFrame(rows)


def _with_interval(summary: dict) -> str:
    low, high = summary["accuracy_ci95"]
    return f"{summary['accuracy']:.1%} ({low:.1%}–{high:.1%})"


def _head_only(measured: dict) -> str:
    """A head-only leave-one-lineage-out measure of the results file, as the rest of a sentence."""
    worst = min(measured["per_lineage"], key=lambda row: row["accuracy"])
    return (f"mean {measured['mean_accuracy']:.1%} over {len(measured['per_lineage'])} lineages; "
            f"unseen instruments in the same setting: "
            f"{measured['unseen_instruments_same_setting']:.1%}; hardest lineage: "
            f"{worst['lineage']} ({worst['accuracy']:.1%}).")


def findings(results: dict) -> list[str]:
    """The results file's headline measurements of the best model as sentences (the README's
    list under the table); the comparisons between recipes are :func:`comparisons_markdown`'s.
    """
    best, label = results["best_model"], experiments.label
    seen, unseen = (results["models"][best][split]["accuracy"] for split in ("seen", "unseen"))
    lines = [f"Seen against unseen instruments ({label(best)}): {seen:.1%} against "
             f"{unseen:.1%}, a gap of {100 * (seen - unseen):.1f} points (the study: 92% and 72%)."]
    sources = results.get("unseen_sources")
    if sources:
        lines.append(f"Unseen sound sources on this profile (leave one lineage out, head only on "
                     f"the frozen {sources['backbone']}): " + _head_only(sources))
        if "block_statistics" in sources:
            blocks = sources["block_statistics"]
            of = (f" of {' and '.join(blocks['backbones'])}"
                  if len(blocks.get("backbones", ())) > 1 else "")
            what = (f"A logistic head on the mean and maximum of the top {blocks['blocks']} blocks"
                    f"{of} and the note's descriptors" if blocks.get("descriptors") else
                    f"The same head on the mean and maximum of the top {blocks['blocks']} blocks")
            lines.append(f"{what} instead: " + _head_only(blocks))
    calibration = results.get("calibration")
    if calibration and "mean_confidence" in calibration:
        lines.append(f"Calibration ({label(calibration['model'])}, {calibration['split']}): mean "
                     f"confidence {calibration['mean_confidence']:.1%} for an accuracy of "
                     f"{calibration['accuracy']:.1%}; expected calibration error "
                     f"{calibration['ece']:.3f}.")
    return lines


def results_markdown(results: dict) -> str:
    """The README's results block: the table, what it measured, and the findings."""
    lines = [markdown_table(results_table(results))]
    data = results["dataset"]
    lines += ["", f"Profile `{results['profile']}`: {data['notes']:,} notes of "
              f"{data['instruments']:,} instruments; seen instruments: {results['seen_notes']:,} "
              f"held-back notes of the training instruments; unseen instruments: "
              f"{results['unseen_notes']:,} notes of {results['unseen_instruments']:,} held-out "
              "instruments. Intervals: 95%, bootstrap over instruments (a note's recorded copy "
              "counts as its dry note's instrument).", ""]
    lines += [f"- {line}" for line in findings(results)]
    return "\n".join(lines)


def markdown_table(table: pd.DataFrame) -> str:
    """A table as Markdown: its columns, then a row per row."""
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines)


def dataset_markdown(results: dict) -> str:
    """The README's dataset table: notes and instruments per family and split."""
    rows = results["dataset"].get("by_family", {})
    splits = ("train", "valid", "test")
    lines = ["| family | train notes | train instruments | valid notes | test notes | "
             "held-out instruments |", "|---|---:|---:|---:|---:|---:|"]
    totals = dict.fromkeys(("train", "train_i", "valid", "test", "held"), 0)
    for family, by_split in rows.items():
        cell = {split: by_split.get(split, {"notes": 0, "instruments": 0}) for split in splits}
        held = cell["valid"]["instruments"]  # valid and test share the held-out instruments
        values = (cell["train"]["notes"], cell["train"]["instruments"], cell["valid"]["notes"],
                  cell["test"]["notes"], held)
        for key, value in zip(totals, values):
            totals[key] += value
        lines.append(f"| {family} | " + " | ".join(f"{v:,}" for v in values) + " |")
    lines.append("| **all** | " + " | ".join(f"**{v:,}**" for v in totals.values()) + " |")
    return "\n".join(lines)


def notebooks_markdown(folder: Path) -> str:
    """The README's notebook table, generated from the notebooks: title and numbered steps."""
    import nbformat

    lines = ["| notebook | title | steps |", "|---|---|---|"]
    for path in sorted(Path(folder).glob("[0-9][0-9]_*.ipynb")):
        cells = nbformat.read(path, as_version=4).cells
        title = cells[0].source.splitlines()[0].lstrip("# ").split("·", 1)[-1].strip()
        steps = [line[3:].split(" ", 1)[-1] for c in cells if c.cell_type == "markdown"
                 for line in c.source.splitlines() if re.match(r"## \d+\. ", line)]
        lines.append(f"| [{path.stem}](notebooks/{path.name}) | {title} | {'; '.join(steps)} |")
    return "\n".join(lines)


LINEAGES_FILE = "lineages.json"  # in figures/: the last leave-one-lineage-out results


def read_summaries(folder: Path) -> dict[str, list[tuple[dict, pd.DataFrame]]]:
    """Per experiment, each seed's summary (``<experiment>-seed<k>.json`` in ``folder``) and
    the predictions table beside it (leave one lineage out, comparisons over seeds)."""
    runs: dict[str, list] = {}
    for path in sorted(Path(folder).glob("*.json")):
        summary = json.loads(path.read_text())
        runs.setdefault(summary["experiment"], []).append(
            (summary, pd.read_csv(path.with_suffix(".csv"))))
    return runs


def lineage_results(profile: Profile) -> dict:
    """Every leave-one-lineage-out result recorded for the profile (``instclf train NAME
    --lineages``), with the date and the machine (``instclf results --lineages``)."""
    from datetime import date

    from . import lineages, models

    runs = read_summaries(models.lineage_results_dir(profile))
    notes = profile.notes(progress=False) if runs else None
    found = {name: {**lineages.over_seeds(seeds, profile.seed),
                    "per_condition": lineages.by_condition(
                        pd.concat([table for _, table in seeds]), notes, profile.seed)}
             for name, seeds in runs.items()}
    if not found:
        raise InstclfError(f"no leave-one-lineage-out results for profile {profile.name}; run "
                           f"INSTCLF_PROFILE={profile.name} instclf train NAME --lineages "
                           "(or make experiments)")
    return {"profile": profile.name, "date": date.today().isoformat(),
            "environment": environment(), "experiments": found}


def lineages_markdown(results: dict) -> str:
    """The README's leave-one-lineage-out table: accuracy on each lineage left out (95%
    interval over instruments), per recipe, then the mean and the lowest."""
    runs = results["experiments"]
    names = list(runs)
    lineages = sorted({lineage for run in runs.values() for lineage in run["per_lineage"]})
    lines = ["| lineage left out | " + " | ".join(experiments.label(n) for n in names) + " |",
             "|---|" + "---:|" * len(names)]
    for lineage in lineages:
        cells = [_with_interval(runs[n]["per_lineage"][lineage])
                 + _seed_range(runs[n]["per_lineage"][lineage].get("seeds", {}))
                 if lineage in runs[n]["per_lineage"] else "" for n in names]
        lines.append(f"| {lineage} | " + " | ".join(cells) + " |")
    lines.append("| **mean** | " + " | ".join(
        f"**{runs[n]['mean_accuracy']:.1%}**" + _seed_range(runs[n].get("seed_means", {}))
        for n in names) + " |")
    lines.append("| lowest | " + " | ".join(f"{runs[n]['lowest_accuracy']:.1%}"
                                            for n in names) + " |")
    fold = next(iter(runs.values()))
    schedule = fold["schedule"]
    return "\n".join(lines + [
        "", f"Profile `{results['profile']}`, measured {results['date']} "
        f"({results['environment'].get('cpus')} CPUs). Each fold trains on every other "
        f"lineage with the same schedule (head up to {schedule['head_epochs']} epochs, then "
        f"{schedule['max_unfrozen_blocks']} block unfrozen up to {schedule['stage_epochs']}, "
        f"patience {schedule['patience']}) and is tested on every note of the lineage left "
        "out, its recorded copies included. Seeds per recipe: "
        + ", ".join(str(len(runs[n].get("seeds", [0]))) for n in names)
        + "; a cell is the accuracy of all its seeds' predictions together (their mean), "
        "the 95% interval of a bootstrap over instruments, and the lowest and highest seed."])


SOURCES_FILE = "sources.json"  # in figures/: the last comparison of training sources


def source_results(profile: Profile) -> dict:
    """Every comparison of training sources recorded for the profile (``instclf train NAME
    --sources``), over its seeds, with the date and the machine (``instclf results
    --sources``)."""
    from datetime import date

    from . import lineages

    runs = read_summaries(lineages.sources_results_dir(profile))
    if not runs:
        raise InstclfError(f"no comparison of sources for profile {profile.name}; run "
                           f"INSTCLF_PROFILE={profile.name} instclf train NAME --sources "
                           "(or make experiments)")
    found = {name: {**lineages.over_seeds(seeds, profile.seed, per="mix"),
                    "tested": seeds[0][0]["tested"],
                    "fit_notes": {mix: r["fit_notes"] for mix, r in seeds[0][0]["per_mix"].items()},
                    "lineages": {mix: r["lineages"] for mix, r in seeds[0][0]["per_mix"].items()}}
             for name, seeds in runs.items()}
    return {"profile": profile.name, "date": date.today().isoformat(),
            "environment": environment(), "experiments": found}


def sources_frame(results: dict) -> pd.DataFrame:
    """The comparison of sources (``figures/sources.json``) as one row per (mix, recipe), in
    the columns of :func:`comparisons_frame` (notebook 04's figure)."""
    rows = [{"model": mix, "split": experiments.label(name), "accuracy": found["accuracy"],
             "low": found["accuracy_ci95"][0], "high": found["accuracy_ci95"][1],
             "seeds": list(found["seeds"].values())}
            for name, run in results["experiments"].items()
            for mix, found in run["per_mix"].items()]
    return pd.DataFrame(rows, columns=["model", "split", "accuracy", "low", "high", "seeds"])


def sources_markdown(results: dict) -> str:
    """The README's comparison of training sources: per mix, the lineages it trains on, its
    notes, and the accuracy on the real instruments it never heard."""
    lines = []
    for name, run in results["experiments"].items():
        lines += [f"| trained on ({experiments.label(name)}) | lineages | training notes | "
                  f"accuracy on `{run['tested']}`, never heard |", "|---|---|---:|---:|"]
        for mix, found in run["per_mix"].items():
            lines.append(f"| {mix} | {', '.join(run['lineages'][mix])} | "
                         f"{run['fit_notes'][mix]:,} | {_with_interval(found)}"
                         f"{_seed_range(found['seeds'])} |")
    schedule = next(iter(results["experiments"].values()))["schedule"]
    seeds = sorted({s for run in results["experiments"].values() for s in run["seeds"]})
    return "\n".join(lines + [
        "", f"Profile `{results['profile']}`, measured {results['date']} "
        f"({results['environment'].get('cpus')} CPUs), seeds {', '.join(map(str, seeds))}. "
        "Every mix leaves the real instruments out, is drawn down to the size of the smallest "
        f"(its validation notes too), and trains with the folds' schedule (head up to "
        f"{schedule['head_epochs']} epochs, then {schedule['max_unfrozen_blocks']} block "
        f"unfrozen up to {schedule['stage_epochs']}); a cell is the accuracy of all seeds' "
        "predictions together, the 95% interval of a bootstrap over instruments, and the "
        "lowest and highest seed."])


# issue 12's aims: the measures the README leads with
AIMS = {"lineage_mean": 0.70, "lineage_lowest": 0.50, "unseen": 0.85}
REAL_LINEAGE = SampleLibrary.kind  # the one lineage of real recordings


def headline_markdown(results: dict, lineage_results: dict) -> str:
    """The README's lead: accuracy on a lineage never heard (the mean over lineages left out,
    the lowest, and the real instruments when they are a lineage) for the best recipe and for
    the page's, next to unseen and seen instruments of the page's model, each against its
    aim."""
    from .models import BEST_EXPERIMENT

    runs, label = lineage_results["experiments"], experiments.label
    best = max(runs, key=lambda n: runs[n]["mean_accuracy"])
    lines = ["| measure | recipe | accuracy | aim |", "|---|---|---:|---:|"]
    for name in dict.fromkeys((best, BEST_EXPERIMENT)):
        if name not in runs:
            continue
        members = experiments.get_experiment(name).members if name in experiments.EXPERIMENTS else ()
        notes = (["the page's recipe"] if name == BEST_EXPERIMENT else []) + (
            [f"an ensemble: the mean of {len(members)} models"] if members else [])
        run, page = runs[name], f" ({'; '.join(notes)})" if notes else ""
        lines.append(f"| sound it never heard: mean over {len(run['per_lineage'])} lineages left "
                     f"out (`{lineage_results['profile']}` profile) | {label(name)}{page} | "
                     f"**{run['mean_accuracy']:.1%}**{_seed_range(run.get('seed_means', {}))} | "
                     f"{AIMS['lineage_mean']:.0%} |")
        worst = min(run["per_lineage"], key=lambda k: run["per_lineage"][k]["accuracy"])
        lines.append(f"| sound it never heard: lowest lineage ({worst}) | {label(name)}{page} | "
                     f"{_with_interval(run['per_lineage'][worst])} | "
                     f"{AIMS['lineage_lowest']:.0%} |")
        if REAL_LINEAGE in run["per_lineage"]:
            lines.append(f"| real instruments never heard (`{REAL_LINEAGE}` left out) | "
                         f"{label(name)}{page} | "
                         f"{_with_interval(run['per_lineage'][REAL_LINEAGE])} | "
                         f"{AIMS['lineage_lowest']:.0%} |")
    model = results["models"][results["best_model"]]
    lines.append(f"| unseen instruments (`{results['profile']}` profile) | "
                 f"{label(results['best_model'])}, the page's model | "
                 f"**{_with_interval(model['unseen'])}** | {AIMS['unseen']:.0%} |")
    lines.append(f"| seen instruments (`{results['profile']}` profile) | "
                 f"{label(results['best_model'])}, the page's model | "
                 f"{_with_interval(model['seen'])} | |")
    return "\n".join(lines + [
        "", f"Leave one lineage out: `make experiments`, measured {lineage_results['date']}; "
        "the page's model: the last `make reproduce`. Intervals: 95%, bootstrap over "
        "instruments; [seeds]: the lowest and highest seed's mean. Details: \"Sound it never "
        "heard\" and \"Results\" below."])


def _seed_range(by_seed: dict) -> str:
    """`` [seeds 47.1–48.3%]`` for several seeds, nothing for one."""
    if len(by_seed) < 2:
        return ""
    return f" [seeds {min(by_seed.values()):.1%}–{max(by_seed.values()):.1%}]"


def lineages_frame(results: dict) -> pd.DataFrame:
    """The leave-one-lineage-out results (``figures/lineages.json``) as one row per (lineage
    left out, recipe): ``model`` (the lineage), ``split`` (the recipe's label), ``accuracy``,
    ``low``, ``high`` (notebook 05's figure, :func:`instclf.plots.plot_accuracy_intervals`)."""
    rows = [{"model": lineage, "split": experiments.label(name), "accuracy": fold["accuracy"],
             "low": fold["accuracy_ci95"][0], "high": fold["accuracy_ci95"][1]}
            for name, run in results["experiments"].items()
            for lineage, fold in run["per_lineage"].items()]
    return pd.DataFrame(rows, columns=["model", "split", "accuracy", "low", "high"])


def conditions_frame(results: dict) -> pd.DataFrame:
    """Accuracy on the lineages left out by recording condition (``per_condition`` of
    ``figures/lineages.json``), one row per (condition, recipe), in the columns of
    :func:`lineages_frame` (notebook 06's figure)."""
    rows = [{"model": condition, "split": experiments.label(name), "accuracy": c["accuracy"],
             "low": c["accuracy_ci95"][0], "high": c["accuracy_ci95"][1]}
            for name, run in results["experiments"].items()
            for condition, c in run.get("per_condition", {}).items()]
    frame = pd.DataFrame(rows, columns=["model", "split", "accuracy", "low", "high"])
    first = {"dry": 0, "recorded": 1}  # then the conditions, by name
    return frame.sort_values("model", key=lambda m: m.map(lambda c: (first.get(c, 2), c)),
                             kind="stable").reset_index(drop=True)


COMPARISONS_FILE = "comparisons.json"  # beside the profile's figures: the last comparisons
COMPARISON_SEEDS = 3  # the seeds a comparison wants (issue 12): make experiments' SEEDS
COMPARED_NOTEBOOKS = ("03", "04")  # whose experiments make experiments compares over seeds


def comparisons_path(profile: Profile) -> Path:
    """Where ``instclf results --comparisons`` writes the profile's comparisons over seeds:
    ``figures/comparisons.json``, which notebooks 04 and 05 read, for a profile whose
    comparisons the report shows (the file names its profile), else its own figures folder."""
    if profile.comparisons_in_report:
        return PROJECT_ROOT / "figures" / COMPARISONS_FILE
    return profile.figures_dir / COMPARISONS_FILE


def comparison_results(profile: Profile) -> dict:
    """Every comparison over seeds recorded for the profile (``instclf train NAME --seeds
    N``), with the date and the machine (``instclf results --comparisons``)."""
    from datetime import date

    from . import comparisons

    runs = read_summaries(comparisons.results_dir(profile))
    if not runs:
        raise InstclfError(f"no comparisons recorded for profile {profile.name}; run "
                           f"INSTCLF_PROFILE={profile.name} instclf train NAME --seeds "
                           f"{COMPARISON_SEEDS} (or make experiments)")
    return {"profile": profile.name, "date": date.today().isoformat(),
            "environment": environment(), **comparisons.over_experiments(runs, profile.seed)}


def _over_seeds(split: dict) -> str:
    """``78.8% (73.4%–83.5%) [seeds 77.0%–79.1%]``: the mean over seeds, the interval of
    their pooled predictions, the lowest and highest seed."""
    return _with_interval(split) + _seed_range(split["seeds"])


def _joined(values, form: str = "{:.0f}") -> str:
    return ", ".join(form.format(v) for v in values)


def comparisons_table(results: dict) -> pd.DataFrame:
    """One row per experiment of the comparisons file, best on unseen instruments first:
    seeds, accuracy over seeds (95% interval, lowest and highest seed), each seed's epochs
    and training time (notebooks 04 and 05, the README)."""
    runs = sorted(results["experiments"].items(), key=lambda item: -item[1]["unseen"]["accuracy"])
    return pd.DataFrame([{
        "model": experiments.label(name), "seeds": _joined(run["seeds"], "{}"),
        "unseen instruments": _over_seeds(run["unseen"]),
        "seen instruments": _over_seeds(run["seen"]),
        "epochs": _joined(seed["epochs"] for seed in run["per_seed"].values()),
        "training (s)": _joined(seed["training_seconds"] for seed in run["per_seed"].values()),
    } for name, run in runs], columns=["model", "seeds", "unseen instruments",
                                       "seen instruments", "epochs", "training (s)"])


def _points_over_seeds(split: dict) -> str:
    low, high = split["ci95"]
    by_seed = split["seeds"].values()
    spread = (f" [seeds {100 * min(by_seed):+.1f} to {100 * max(by_seed):+.1f}]"
              if len(by_seed) > 1 else "")
    return f"{100 * split['difference']:+.1f} ({100 * low:+.1f} to {100 * high:+.1f}){spread}"


def differences_table(results: dict) -> pd.DataFrame:
    """The paired differences of the comparisons file, in points: the mean over the seeds
    both runs have, the 95% interval of a paired bootstrap over instruments, the lowest and
    highest seed (notebook 04, the README)."""
    label = experiments.label
    return pd.DataFrame([{
        "run": label(found["experiment"]), "against": label(found["against"]),
        "what changes": found["change"], "seeds": _joined(found["seeds"], "{}"),
        "unseen instruments (points)": _points_over_seeds(found["unseen"]),
        "seen instruments (points)": _points_over_seeds(found["seen"]),
    } for found in results["differences"]], columns=[
        "run", "against", "what changes", "seeds", "unseen instruments (points)",
        "seen instruments (points)"])


def comparisons_frame(results: dict, names=None) -> pd.DataFrame:
    """The comparisons file's experiments (those in ``names``, default all) as one row per
    (experiment, split): ``model`` (its label), ``split``, ``accuracy`` (over seeds), ``low``,
    ``high`` and ``seeds`` (each seed's accuracy) (notebooks 04 and 05's figures,
    :func:`instclf.plots.plot_accuracy_intervals`)."""
    rows = [{"model": experiments.label(name), "split": f"{split} instruments",
             "accuracy": run[split]["accuracy"], "low": run[split]["accuracy_ci95"][0],
             "high": run[split]["accuracy_ci95"][1], "seeds": list(run[split]["seeds"].values())}
            for name, run in results["experiments"].items()
            if names is None or name in names for split in ("seen", "unseen")]
    return pd.DataFrame(rows, columns=["model", "split", "accuracy", "low", "high", "seeds"])


def seeds_sentence(results: dict) -> str:
    """What the comparisons file's seeds are, and how many a comparison wants."""
    seeds = results["seeds"]
    short = [experiments.label(name) for name, run in results.get("experiments", {}).items()
             if len(run["seeds"]) < COMPARISON_SEEDS]
    if len(seeds) >= COMPARISON_SEEDS and not short:
        return f"seeds {_joined(seeds, '{}')}"
    if len(seeds) >= COMPARISON_SEEDS:
        return (f"seeds {_joined(seeds, '{}')}, but fewer than {COMPARISON_SEEDS} so far for "
                f"{_joined(short, '{}')} (the seeds column); `make experiments` runs "
                f"{COMPARISON_SEEDS}")
    return (f"seed{'s' * (len(seeds) > 1)} {_joined(seeds, '{}')} only so far; `make "
            f"experiments` runs {COMPARISON_SEEDS}")


def equal_wall_time_sentence(results: dict) -> str | None:
    """The equal-wall-time comparison of the comparisons file as one sentence (None without
    the baseline): per experiment the mean over seeds of the validation accuracy it would
    have kept at the baseline's training time."""
    equal = results.get("equal_wall_time")
    if not equal:
        return None
    label, baseline = experiments.label, equal["baseline"]
    seconds, final = equal["seconds"].values(), equal["val_accuracy"].values()
    parts = []
    for name, by_seed in equal["at_baseline_seconds"].items():
        kept = [v for v in by_seed.values() if v is not None]
        parts.append(f"{label(name)} " + (f"{np.mean(kept):.1%}" if kept else "no epoch finished")
                     + (f" ({len(by_seed) - len(kept)} of {len(by_seed)} seeds had no epoch "
                        "finished)" if kept and len(kept) < len(by_seed) else ""))
    return (f"At equal wall time (validation accuracy on held-out instruments each run would "
            f"have kept at its seed's {label(baseline)} time, {_joined(seconds)} s; mean over "
            f"seeds), against {label(baseline)}'s final {np.mean(list(final)):.1%}: "
            + "; ".join(parts) + ". Times include the passes through the frozen blocks (a "
            "seed whose frozen activations an earlier seed had cached reads them in seconds), "
            "and vary with the machine's load.")


def comparisons_markdown(results: dict) -> str:
    """The README's comparisons block: the table over seeds, the paired differences, equal
    wall time, and how it was measured (``instclf results --comparisons``)."""
    lines = [markdown_table(comparisons_table(results))]
    if results["differences"]:
        lines += ["", "Paired differences (the run minus the one it is held against):", "",
                  markdown_table(differences_table(results))]
    equal = equal_wall_time_sentence(results)
    baseline = results["experiments"].get(experiments.BASELINE)
    if baseline:
        schedule = baseline["schedule"]
        lines += ["", f"{experiments.label(experiments.BASELINE)} trains until early stopping "
                  f"decides: one stage of up to {schedule['head_epochs']} epochs, patience "
                  f"{schedule['patience']}."]
    missing = [e.label for e in experiments.EXPERIMENTS.values()
               if e.notebook in COMPARED_NOTEBOOKS and e.name not in results["experiments"]]
    if missing:
        lines += ["", f"Not in the file yet: {', '.join(missing)} (`make experiments` trains "
                  "them, each only where what it needs is present)."]
    lines += [""] + ([equal, ""] if equal else []) + [
        f"Profile `{results['profile']}`, measured {results['date']} "
        f"({results['environment'].get('cpus')} CPUs); {seeds_sentence(results)}. A model's "
        "accuracy is that of all its seeds' predictions together (their mean), with the 95% "
        "interval of a bootstrap over instruments and the lowest and highest seed; a "
        "difference's interval comes from a paired bootstrap over instruments."]
    return "\n".join(lines)


def readme_blocks(results: dict, notebooks: Path, bench_table: Path | None = None,
                  lineages: Path | None = None, comparisons: Path | None = None,
                  sources: Path | None = None) -> dict[str, str]:
    """The README's generated blocks: results, notebook list and (if measured) benchmarks,
    comparisons over seeds, leave-one-lineage-out results and the comparison of sources."""
    blocks = {"results": results_markdown(results), "notebooks": notebooks_markdown(notebooks)}
    if lineages is not None and Path(lineages).is_file():
        blocks["lineages"] = lineages_markdown(read_results(Path(lineages)))
        blocks["headline"] = headline_markdown(results, read_results(Path(lineages)))
    if comparisons is not None and Path(comparisons).is_file():
        blocks["comparisons"] = comparisons_markdown(read_results(Path(comparisons)))
    if sources is not None and Path(sources).is_file():
        blocks["sources"] = sources_markdown(read_results(Path(sources)))
    if results["dataset"].get("by_family"):
        blocks["dataset"] = dataset_markdown(results)
    if bench_table is not None and Path(bench_table).is_file():
        blocks["benchmarks"] = Path(bench_table).read_text().strip()
    return blocks


def markers(name: str) -> tuple[str, str]:
    """The two comment lines that enclose the generated block ``name`` in the README."""
    return (f"<!-- {name}:start (generated by `instclf results --readme README.md`) -->",
            f"<!-- {name}:end -->")


def replace_blocks(text: str, blocks: dict[str, str]) -> str:
    """``text`` with each generated block rewritten between its markers."""
    for name, content in blocks.items():
        start, end = markers(name)
        if start not in text or end not in text:
            raise InstclfError(f"the README has no {name} markers; add the two lines\n"
                               f"{start}\n{end}")
        head, rest = text.split(start, 1)
        tail = rest.split(end, 1)[1]
        text = f"{head}{start}\n{content}\n{end}{tail}"
    return text


def update_readme(readme: Path, blocks: dict[str, str]) -> bool:
    """Rewrite the generated blocks of ``readme``; True if anything changed."""
    text = Path(readme).read_text()
    updated = replace_blocks(text, blocks)
    if updated != text:
        storage.write_bytes(Path(readme), updated.encode())
    return updated != text
