"""The study's experiment end to end: ``INSTCLF_PROFILE=nsynth`` on small archives in the
official layout, downloaded (from a local mirror), trained on and evaluated (README,
"The official NSynth")."""

from __future__ import annotations

import json

import numpy as np
import pytest

from instclf import cli, download, evaluate, experiments, models, profiles, subsets, train
from instclf.config import FAMILIES
from nsynth_archives import build_archive, wav_bytes

TRAIN_PITCHES, VALID_PITCHES, TEST_PITCHES = (48, 60, 72), (55,), (67,)
HELD_OUT_FAMILIES = tuple(f for f in FAMILIES if f != "synth_lead")  # as in NSynth


def _names(families, instruments, first, pitches) -> list[str]:
    return [f"{family}_acoustic_{first + i:03d}-{pitch:03d}-100"
            for family in families for i in range(instruments) for pitch in pitches]


def _sound(name: str) -> bytes:
    """Each family its own number of harmonics, so the families can be told apart."""
    family = name.split("_acoustic_")[0]
    pitch = int(name.split("-")[1])
    return wav_bytes(pitch, harmonics=1 + 2 * FAMILIES.index(family))


@pytest.fixture(scope="module")
def nsynth_root(tmp_path_factory):
    """A data root where ``instclf data download`` has put three tiny official splits."""
    mirror, root = tmp_path_factory.mktemp("mirror"), tmp_path_factory.mktemp("data")
    splits = {"train": _names(FAMILIES, 2, 0, TRAIN_PITCHES),
              "valid": _names(HELD_OUT_FAMILIES, 1, 100, VALID_PITCHES),
              "test": _names(HELD_OUT_FAMILIES, 1, 100, TEST_PITCHES)}
    for split, names in splits.items():
        build_archive(mirror / download.archive_name(split), split, names, names, sound=_sound)
    assert cli.main(["data", "download", "--splits", *splits, "--base-url", str(mirror),
                     "--root", str(root / "nsynth-official"), "--quiet"]) == 0
    return root


@pytest.fixture
def nsynth_profile(nsynth_root, monkeypatch):
    monkeypatch.setenv("INSTCLF_PROFILE", "nsynth")
    monkeypatch.setenv("INSTCLF_DATA_DIR", str(nsynth_root))
    return profiles.get_profile()


def test_the_study_selection_on_the_official_splits(nsynth_profile):
    notes = nsynth_profile.notes(progress=False)
    chosen = subsets.select(notes, nsynth_profile.selection)
    assert set(notes["origin"]) == {"official"} and set(notes["lineage"]) == {"nsynth"}
    # balanced (at most 5,000 per family: here every family's 6), 20% held back as seen
    assert (chosen["fit"].family.value_counts() == 5).all()
    assert (chosen["seen"].family.value_counts() == 1).all()
    assert set(chosen["fit"].instrument_str) == set(chosen["seen"].instrument_str) | set(
        chosen["fit"].instrument_str)
    # valid and test: NSynth's own held-out instruments, absent from training
    assert set(chosen["valid"].instrument_str) == set(chosen["test"].instrument_str)
    assert not set(chosen["test"].instrument_str) & set(chosen["fit"].instrument_str)
    assert "synth_lead" not in set(chosen["test"].family)


def test_the_nsynth_profile_trains_and_evaluates(nsynth_profile, nsynth_root, capsys):
    best = experiments.get_experiment(models.BEST_EXPERIMENT)
    data = train.training_data(nsynth_profile, train.backbones.get_backbone(best.backbone).front_end,
                               progress=False)
    trained = experiments.train_experiment(nsynth_profile, best.name, data=data)
    assert trained.path.is_relative_to(nsynth_root / "models" / "nsynth")
    assert trained.meta["stages_completed"] >= 1
    assert trained.meta["data"] == {name: data[name].key for name in ("fit", "valid")}
    table = evaluate.cached_predictions(trained, data["test"], "test")
    assert len(table) == len(HELD_OUT_FAMILIES) and set(table.family) == set(HELD_OUT_FAMILIES)
    assert np.isnan(evaluate.per_family(table).loc["synth_lead", "recall"])  # absent, not 0
    # the best model is what training recorded
    assert models.best_model_path(nsynth_profile) == trained.path
    # instclf evaluate on the official test split: the same predictions
    out = nsynth_root / "predictions-test.csv"
    assert cli.main(["evaluate", "--model", str(trained.path), "--data",
                     str(nsynth_root / "nsynth-official" / "nsynth-test"), "--out", str(out),
                     "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "synth_lead" in printed and "absent" in printed
    again = evaluate.read_predictions(out).sort_values("note_str").reset_index(drop=True)
    mine = table.sort_values("note_str").reset_index(drop=True)
    # evaluate computes float32 features; the training caches hold float16
    np.testing.assert_allclose(again[[f"p_{f}" for f in FAMILIES]].to_numpy(),
                               mine[[f"p_{f}" for f in FAMILIES]].to_numpy(), atol=2e-3)
    description = json.loads(trained.path.with_suffix(".json").read_text())
    assert description["profile"] == "nsynth"
