"""The models a profile has on disk: the description each carries, and the best of them.

Reads zip archives and JSON only, never TensorFlow, so ``instclf predict`` finds its model
fast (:mod:`instclf.predict`, the page). Models are written by :mod:`instclf.train`.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from .config import InstclfError
from .profiles import Profile

DESCRIPTION_MEMBER = "instclf.json"  # the description inside the .keras archive
# The recipe make reproduce trains (notebook 04), and whenever a profile has no model yet: of
# the recipes that fine-tune at most one network (what make reproduce affords), the one whose
# leave-one-lineage-out mean is highest in figures/lineages.json (make experiments;
# tests/test_lineages.py checks that it still is).
BEST_EXPERIMENT = "musicnn_vgg_msd_whole_with_mtt_block_statistics"
# The one network notebook 04 fine-tunes (its unfreezing lesson, and the page's recipe's
# strongest rival that fine-tunes one); make experiments compares training sources with it.
NOTEBOOK_04_NETWORK = "musicnn_vgg_msd_whole_statistics"


def model_description(path: Path) -> dict:
    """The description a saved model carries (or, for older files, the JSON beside it)."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            if DESCRIPTION_MEMBER in archive.namelist():
                return json.loads(archive.read(DESCRIPTION_MEMBER))
    except zipfile.BadZipFile:
        raise InstclfError(f"model {path} is not a Keras model file (.keras); give a model "
                           "saved by instclf")
    beside = path.with_suffix(".json")
    if beside.is_file():
        return json.loads(beside.read_text())
    raise InstclfError(f"model {path} carries no instclf description; give a model saved by "
                       "instclf (instclf train, notebook 03 or make reproduce)")


def recorded_models(profile: Profile) -> list[tuple[Path, dict]]:
    """Every finished model training recorded under the profile's models folder, with the
    description it carries (:func:`model_description`); files that are not models are
    passed over."""
    found = []
    for model_path in sorted([*profile.models_dir.glob("*/stages*.keras"),
                              *profile.models_dir.glob("*/ensemble.keras")]):
        try:
            meta = model_description(model_path)
        except (InstclfError, OSError, ValueError):
            continue
        if meta.get("best_val_loss") is not None:
            found.append((model_path, meta))
    return found


def lineage_results_dir(profile: Profile) -> Path:
    """Where the leave-one-lineage-out results of each experiment are kept
    (:mod:`instclf.lineages`)."""
    return profile.models_dir / "lineages"


def lineage_scores(profile: Profile) -> dict[str, float]:
    """Each experiment's mean accuracy over held-out lineages, as recorded (averaged over the
    seeds recorded)."""
    found: dict[str, list[float]] = {}
    for path in sorted(lineage_results_dir(profile).glob("*.json")):
        try:
            record = json.loads(path.read_text())
            found.setdefault(str(record["experiment"]), []).append(
                float(record["mean_accuracy"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue  # an unreadable record ranks nothing
    return {name: sum(means) / len(means) for name, means in found.items()}


def best_model_path(profile: Profile) -> Path | None:
    """The profile's best model; None when nothing is trained yet.

    Of the models trained for an experiment whose leave-one-lineage-out mean is recorded,
    the one with the highest mean (how it hears sound it never heard); without any, a model
    of :data:`BEST_EXPERIMENT` (the recipe the project's recorded means chose: ``make
    reproduce`` records none), else the one with the lowest validation loss (held-out
    instruments). Reads only the models folder, so it works on a data root that holds
    nothing else.
    """
    recorded = recorded_models(profile)
    if not recorded:
        return None
    scores = lineage_scores(profile)
    scored = [(path, meta) for path, meta in recorded if meta.get("experiment") in scores]
    if scored:
        return max(scored, key=lambda found: (scores[found[1]["experiment"]],
                                              -found[1]["best_val_loss"]))[0]
    page = [(path, meta) for path, meta in recorded if meta.get("experiment") == BEST_EXPERIMENT]
    return min(page or recorded, key=lambda found: (found[1]["best_val_loss"], str(found[0])))[0]
