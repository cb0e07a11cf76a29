"""Leave-one-lineage-out folds (instclf.lineages) and the shared activations they read."""

from __future__ import annotations

import json
from dataclasses import replace

import keras
import numpy as np
import pandas as pd
import pytest

from instclf import backbones, embeddings, evaluate, experiments, lineages, models, report, train
from instclf.activations import Rows
from instclf.config import FAMILIES, PROJECT_ROOT as ROOT, InstclfError
from instclf.profiles import Profile

TINY_FOLDS = train.Schedule(max_unfrozen_blocks=1, head_epochs=2, stage_epochs=1, patience=1,
                            batch_size=16, min_improvement=-1.0)


@pytest.fixture(scope="module")
def everything(tiny_profile, tiny_dataset):
    backbone = backbones.get_backbone("musicnn_vgg")
    return lineages.pool(tiny_profile, backbone.front_end, progress=False)


def test_rows_read_the_rows_they_name_in_order():
    base = np.arange(40, dtype=np.float32).reshape(10, 4)
    rows = Rows(base, [7, 2, 5], "k")
    assert rows.shape == (3, 4) and len(rows) == 3
    np.testing.assert_array_equal(rows[:], base[[2, 5, 7]])
    np.testing.assert_array_equal(rows[np.array([0, 2])], base[[2, 7]])
    np.testing.assert_array_equal(np.asarray(rows), base[[2, 5, 7]])


def test_each_fold_trains_without_its_lineage_and_tests_on_all_of_it(tiny_profile, everything):
    notes = everything.notes
    assert lineages.lineage_names(notes) == ["TimGM6mb", "sf_GMbank"]
    folds = lineages.folds(tiny_profile, everything)
    assert set(folds) == {"TimGM6mb", "sf_GMbank"}
    for left_out, fold in folds.items():
        assert set(fold["test"].notes["lineage"]) == {left_out}
        assert len(fold["test"]) == int((notes["lineage"] == left_out).sum())
        for name in ("fit", "valid"):
            assert len(fold[name]) and left_out not in set(fold[name].notes["lineage"])
            assert set(fold[name].notes["split"]) == ({"train"} if name == "fit" else {"valid"})
            X = fold[name].X
            assert isinstance(X, Rows) and X.key == everything.key
            np.testing.assert_array_equal(X[:], np.asarray(everything.X)[X.rows])
            pd.testing.assert_series_equal(fold[name].notes["note_str"],
                                           everything.notes["note_str"].iloc[X.rows]
                                           .reset_index(drop=True))
    keys = {fold["fit"].key for fold in folds.values()}
    assert len(keys) == 2, "each fold's selection has its own key"


def test_one_lineage_is_refused(tiny_profile, everything):
    one = everything.notes["lineage"] == "TimGM6mb"
    alone = train.Data(everything.X, everything.y[one.to_numpy()], everything.notes[one],
                       everything.key)
    with pytest.raises(InstclfError, match="one lineage"):
        lineages.folds(tiny_profile, alone)


def test_training_on_rows_is_training_on_the_rows_copied(tiny_profile, everything, tmp_path):
    fold = lineages.folds(tiny_profile, everything)["sf_GMbank"]
    backbone = backbones.get_backbone("musicnn_vgg")
    copied = {name: train.Data(np.asarray(fold[name].X), fold[name].y, fold[name].notes, "")
              for name in ("fit", "valid")}
    histories = []
    for name, data in (("rows", fold), ("copied", copied)):
        keras.utils.set_random_seed(0)
        model = backbones.build_classifier(backbone)
        _, history = train.staged_training(model, backbone, data, TINY_FOLDS, tmp_path / name,
                                           cache_dir=tmp_path / "cache")
        histories.append(history)
    np.testing.assert_allclose(histories[0]["loss"].astype(float),
                               histories[1]["loss"].astype(float), rtol=1e-4)
    np.testing.assert_allclose(histories[0]["val_loss"].astype(float),
                               histories[1]["val_loss"].astype(float), rtol=1e-4)
    # the rows' bottom was computed once over every note of the profile
    shapes = sorted(np.load(p, mmap_mode="r").shape[0] for p in (tmp_path / "cache").glob("*.npy"))
    assert len(everything) in shapes


def test_dry_and_recorded_copies_are_one_instrument_for_the_bootstrap():
    notes = pd.DataFrame({
        "note_str": ["flute_synthetic_003-060-100", "flute_synthetic_10003-060-100",
                     "reed_synthetic_004-061-100"],
        "instrument_str": ["flute_synthetic_003", "flute_synthetic_10003", "reed_synthetic_004"],
        "dry_note": [np.nan, "flute_synthetic_003-060-100", np.nan]})
    assert list(evaluate.dry_instruments(notes)) == ["flute_synthetic_003"] * 2 + [
        "reed_synthetic_004"]


def test_leave_one_lineage_out_trains_each_fold_once_and_reports_it(tiny_profile, everything,
                                                                    monkeypatch):
    profile: Profile = replace(tiny_profile, seed=3)
    fits = []
    original = train.fit_stage
    monkeypatch.setattr(train, "fit_stage", lambda *a, **k: fits.append(1) or original(*a, **k))
    result = lineages.leave_one_lineage_out(profile, "musicnn_vgg", schedule=TINY_FOLDS)
    assert len(fits) == 4, "two folds of two stages"
    assert set(result["per_lineage"]) == {"TimGM6mb", "sf_GMbank"}
    for lineage, fold in result["per_lineage"].items():
        table = result["predictions"][result["predictions"]["lineage"] == lineage]
        assert fold["notes"] == len(table)
        assert fold["accuracy"] == pytest.approx(
            (table["predicted"].astype(str) == table["family"].astype(str)).mean())
        low, high = fold["accuracy_ci95"]
        assert low <= fold["accuracy"] <= high
        assert lineages.fold_dir(profile, lineage) in [p.parent.parent for p in
                                                       [train.Path(fold["model"])]]
    assert result["mean_accuracy"] == pytest.approx(
        np.mean([f["accuracy"] for f in result["per_lineage"].values()]))
    fold_models = {train.Path(fold["model"]) for fold in result["per_lineage"].values()}
    assert not fold_models & {path for path, _ in models.recorded_models(profile)}, \
        "folds are never the profile's models"
    again = lineages.leave_one_lineage_out(profile, "musicnn_vgg", schedule=TINY_FOLDS)
    assert len(fits) == 4, "trained folds are loaded, not trained again"
    assert again["mean_accuracy"] == pytest.approx(result["mean_accuracy"])


def test_the_statistics_head_pools_mean_and_maximum_and_loads_in_safe_mode(tmp_path):
    x = np.random.default_rng(0).normal(size=(2, 5, 3, 4)).astype(np.float32)
    pooled = np.asarray(backbones.StatisticsPooling2D()(x))
    np.testing.assert_allclose(pooled, np.concatenate([x.mean(axis=(1, 2)), x.max(axis=(1, 2))],
                                                      axis=-1), rtol=1e-6)
    backbone = backbones.get_backbone("scratch_cnn")
    model = backbones.build_classifier(backbone, head="statistics")
    assert isinstance(model.get_layer(backbones.HEAD[0]), backbones.StatisticsPooling2D)
    assert backbones.block_start(model, backbone, 0) == [l.name for l in model.layers].index(
        backbones.HEAD[0])
    path = tmp_path / "stats.keras"
    train.save_model(model, {"head": "statistics"}, path)
    loaded, _ = train.load_model(path)
    X = np.random.default_rng(1).normal(size=(2, *model.input_shape[1:])).astype(np.float32)
    np.testing.assert_allclose(loaded.predict(X, verbose=0), model.predict(X, verbose=0),
                               rtol=1e-5, atol=1e-6)
    with pytest.raises(InstclfError, match="unknown head"):
        backbones.build_classifier(backbone, head="attention")


def test_the_head_enters_the_run_key_only_when_it_is_not_the_original(everything):
    backbone = backbones.get_backbone("musicnn_vgg")
    data = {"fit": everything, "valid": everything}
    schedule = train.Schedule()
    assert train.run_key(backbone, schedule, data) == train.run_key(backbone, schedule, data,
                                                                    head="average")
    assert train.run_key(backbone, schedule, data) != train.run_key(backbone, schedule, data,
                                                                    head="statistics")


def _recorded(profile: Profile, name: str, experiment: str, val_loss: float):
    path = profile.models_dir / name / "stages1.keras"
    path.parent.mkdir(parents=True)
    model = backbones.build_classifier(backbones.get_backbone("scratch_cnn"))
    train.save_model(model, {"experiment": experiment, "best_val_loss": val_loss}, path)
    return path


def test_the_best_model_follows_leave_one_lineage_out_not_validation_loss(tmp_path):
    profile = Profile(name="choice", sources=(), data_dir=tmp_path)
    in_distribution = _recorded(profile, "a", "low_loss", 0.2)
    generalises = _recorded(profile, "b", "high_loss", 0.5)
    assert models.best_model_path(profile) == in_distribution  # nothing else recorded yet
    page = _recorded(profile, "c", models.BEST_EXPERIMENT, 0.9)
    assert models.best_model_path(profile) == page, "without records, the recipe chosen by them"
    (page.parent / "stages1.json").unlink()
    page.unlink()
    for experiment, mean in (("low_loss", 0.55), ("high_loss", 0.71)):
        (models.lineage_results_dir(profile)).mkdir(exist_ok=True)
        (models.lineage_results_dir(profile) / f"{experiment}.json").write_text(
            f'{{"experiment": "{experiment}", "mean_accuracy": {mean}}}')
    assert models.best_model_path(profile) == generalises
    (models.lineage_results_dir(profile) / "broken.json").write_text("[")
    assert models.best_model_path(profile) == generalises, "an unreadable record ranks nothing"


def test_seeds_train_their_own_folds_and_combine_into_their_mean(tiny_profile, everything,
                                                                 monkeypatch):
    profile: Profile = replace(tiny_profile, seed=5)
    runs = [lineages.leave_one_lineage_out(profile, "musicnn_vgg", schedule=TINY_FOLDS,
                                           seed=seed) for seed in (0, 1)]
    models = [{fold["model"] for fold in run["per_lineage"].values()} for run in runs]
    assert not models[0] & models[1], "each seed trains its own folds"
    summaries = [({"experiment": "tiny", **{k: v for k, v in run.items() if k != "predictions"}},
                  run["predictions"]) for run in runs]
    combined = lineages.over_seeds(summaries)
    assert combined["seeds"] == [0, 1]
    for lineage, fold in combined["per_lineage"].items():
        by_seed = [run["per_lineage"][lineage]["accuracy"] for run in runs]
        assert fold["seeds"] == {"0": by_seed[0], "1": by_seed[1]}
        assert fold["accuracy"] == pytest.approx(np.mean(by_seed))  # equal notes per seed
        assert fold["notes"] == 2 * runs[0]["per_lineage"][lineage]["notes"]
    assert combined["mean_accuracy"] == pytest.approx(
        np.mean([run["mean_accuracy"] for run in runs]))
    assert combined["seed_means"] == {"0": runs[0]["mean_accuracy"], "1": runs[1]["mean_accuracy"]}


def _member_table(probabilities: np.ndarray) -> pd.DataFrame:
    """A fold predictions table of four notes, two per lineage, two instruments each."""
    notes = pd.DataFrame({
        "note_str": [f"{f}_x_00{k}-060-100" for k, f in enumerate(("bass", "flute", "bass",
                                                                      "organ"))],
        "family": ["bass", "flute", "bass", "organ"],
        "instrument_str": [f"i{k}" for k in range(4)],
        "lineage": ["A", "A", "B", "B"]})
    table = evaluate.predictions_table(probabilities, notes)
    return table.assign(dry_instrument=notes["instrument_str"], lineage=notes["lineage"])


def test_an_ensemble_averages_its_members_fold_probabilities(tiny_profile, tmp_path):
    profile: Profile = replace(tiny_profile, data_dir=tmp_path)
    bass, flute, organ = (FAMILIES.index(f) for f in ("bass", "flute", "organ"))
    one, two = np.full((2, 4, len(FAMILIES)), 0.01)
    one[[0, 1, 2, 3], [bass, bass, organ, organ]] = [0.6, 0.5, 0.55, 0.9]  # right: 0 and 3
    two[[0, 1, 2, 3], [flute, flute, bass, bass]] = [0.9, 0.8, 0.9, 0.2]  # right: 1 and 2
    members = {"first": _member_table(one), "second": _member_table(two)}
    for name, table in members.items():
        shuffled = table.sample(frac=1, random_state=1)  # the rows' order does not matter
        accuracy = {lineage: float((t["predicted"].astype(str) == t["family"]).mean())
                    for lineage, t in table.groupby("lineage")}
        lineages.write_summary(profile, name, {
            "backbone": name, "head": "average", "schedule": {}, "profile": profile.name,
            "seed": 0, "per_lineage": {lin: {"accuracy": a} for lin, a in accuracy.items()},
            "mean_accuracy": float(np.mean(list(accuracy.values()))), "predictions": shuffled})
    result = lineages.ensemble_out(profile, ("first", "second"))
    predicted = result["predictions"].set_index("note_str")["predicted"].astype(str)
    # the means: note 0 flute (0.455 against 0.305), 1 flute, 2 bass, 3 organ
    assert list(predicted[members["first"]["note_str"]]) == ["flute", "flute", "bass", "organ"]
    assert result["per_lineage"]["A"]["accuracy"] == 0.5
    assert result["per_lineage"]["B"]["accuracy"] == 1.0
    assert result["per_lineage"]["A"]["members"] == {"first": 0.5, "second": 0.5}
    assert result["mean_accuracy"] == 0.75 and result["lowest_accuracy"] == 0.5
    with pytest.raises(InstclfError, match="instclf train third --lineages"):
        lineages.ensemble_out(profile, ("first", "third"))


def test_an_ensembles_members_read_the_same_features_and_train_before_it(tiny_profile,
                                                                       monkeypatch):
    ensembles = [e for e in experiments.EXPERIMENTS.values() if e.members]
    assert ensembles
    for ensemble in ensembles:
        assert all(m in experiments.EXPERIMENTS for m in ensemble.members)
        front_ends = {backbones.get_backbone(experiments.get_experiment(m).backbone).front_end
                      for m in ensemble.members}
        assert len(front_ends) == 1, "an ensemble's members read the same features"
    ensemble = ensembles[0]
    trained, averaged = [], []
    monkeypatch.setattr(train, "trained_model",
                        lambda *a, experiment=None, **k: trained.append(experiment) or experiment)
    monkeypatch.setattr(embeddings, "block_statistics_model",
                        lambda *a, experiment=None, **k: trained.append(experiment) or experiment)
    monkeypatch.setattr(train, "ensemble_model",
                        lambda profile, name, members, *a: averaged.append((name, members)))
    experiments.train_experiment(tiny_profile, ensemble.name, data={"valid": None})
    assert trained == list(ensemble.members)
    assert averaged == [(ensemble.name, list(ensemble.members))]


def test_accuracy_by_condition_counts_a_copy_for_every_condition_it_went_through():
    notes = pd.DataFrame({
        "note_str": ["d0", "d1", "r0", "r1", "r2"],
        "conditions": [(), (), ("room",), ("room", "noise"), ("noise",)]})
    probabilities = np.full((5, len(FAMILIES)), 0.01)
    probabilities[range(5), [FAMILIES.index(f) for f in ("bass", "bass", "organ", "bass",
                                                         "bass")]] = 0.9
    table = evaluate.predictions_table(probabilities, pd.DataFrame({
        "note_str": ["d0", "d1", "r0", "r1", "r2"], "family": ["bass"] * 5,
        "instrument_str": ["a", "b", "a+", "b+", "a+"]}))
    table["dry_instrument"] = ["a", "b", "a", "b", "a"]
    found = lineages.by_condition(table, notes)
    assert list(found) == ["dry", "recorded", "noise", "room"]
    assert {k: (v["accuracy"], v["notes"]) for k, v in found.items()} == {
        "dry": (1.0, 2), "recorded": (2 / 3, 3), "noise": (1.0, 2), "room": (0.5, 2)}
    assert lineages.by_condition(table, notes.drop(columns="conditions")) == {}
    frame = report.conditions_frame({"experiments": {"x": {"per_condition": dict(
        sorted(found.items()))}}})  # as the results file stores it: keys sorted
    assert list(frame["model"]) == ["dry", "recorded", "noise", "room"]


def test_the_recipe_make_reproduce_trains_leads_the_recorded_leave_one_lineage_out():
    """models.BEST_EXPERIMENT (the page's model) is, of the recipes that fine-tune at most one
    network (what make reproduce can afford), the one with the highest mean in
    figures/lineages.json, or one its seeds cannot tell from it: a lead smaller than the seeds'
    spread (the page's best seed reaches the leader's worst) does not move the page to another
    recipe. Model selection follows the measure, not a hunch."""
    recorded = json.loads((ROOT / "figures" / "lineages.json").read_text())["experiments"]
    affordable = {name: run for name, run in recorded.items()
                  if experiments.networks_trained(experiments.get_experiment(name)) <= 1}
    leader = max(affordable, key=lambda name: affordable[name]["mean_accuracy"])
    page = affordable[models.BEST_EXPERIMENT]
    assert max(page["seed_means"].values()) >= min(affordable[leader]["seed_means"].values()), (
        f"{leader} leads {models.BEST_EXPERIMENT} beyond the seeds' spread: "
        f"{ {name: run['seed_means'] for name, run in affordable.items()} }")
    behind = [name for name, run in affordable.items()
              if max(run["seed_means"].values()) < min(affordable[leader]["seed_means"].values())]
    assert behind, "the rule must be able to rule a recipe out"
    assert set(recorded) - set(affordable), "some recorded recipe trains several networks"


def test_networks_trained_counts_the_fine_tuned_networks_of_an_ensemble():
    count = {name: experiments.networks_trained(e) for name, e in experiments.EXPERIMENTS.items()}
    assert count["musicnn_vgg_msd_whole_statistics"] == 1
    assert count["musicnn_vgg_msd_whole_block_statistics"] == 0
    assert count["musicnn_vgg_msd_whole_statistics_with_blocks"] == 1
    assert count["ensemble_vgg_statistics_musicnn_msd"] == 2


def _mix_notes() -> tuple[pd.DataFrame, dict]:
    """Twelve training notes of four sources: soundfonts and Csound, dry and recorded."""
    found = {"sf": ("soundfonts", False), "sf-rec": ("soundfonts", True),
             "cs": ("csound", False), "cs-rec": ("csound", True)}
    origin = ["sf"] * 5 + ["sf-rec"] * 2 + ["cs"] * 3 + ["cs-rec"] * 2
    return pd.DataFrame({"origin": origin, "note_str": [f"n{k}" for k in range(12)]}), found


def test_each_mix_keeps_its_sources_and_all_are_drawn_to_one_size():
    notes, found = _mix_notes()
    mixes = (lineages.TrainingMix("fonts", ("soundfonts",)),
             lineages.TrainingMix("engines", ("csound",)),
             lineages.TrainingMix("all"), lineages.TrainingMix("all dry", recorded=False))
    rows = lineages.mix_rows(notes, found, mixes, seed=0)
    assert {name: len(r) for name, r in rows.items()} == dict.fromkeys(rows, 5)  # csound: 5
    origin = notes["origin"].to_numpy()
    assert set(origin[rows["fonts"]]) <= {"sf", "sf-rec"}
    assert set(origin[rows["engines"]]) == {"cs", "cs-rec"}
    assert set(origin[rows["all dry"]]) <= {"sf", "cs"}
    assert all((np.diff(r) > 0).all() for r in rows.values()), "sorted, without repeats"
    again = lineages.mix_rows(notes, found, mixes, seed=0)
    assert all(np.array_equal(rows[n], again[n]) for n in rows)
    draws = {tuple(lineages.mix_rows(notes, found, mixes, seed=s)["all"]) for s in range(6)}
    assert len(draws) > 1, "the seed draws the notes"
    with pytest.raises(InstclfError, match="no notes for pyo only"):
        lineages.mix_rows(notes, found, (lineages.TrainingMix("pyo only", ("pyo",)),), seed=0)


def test_the_default_mixes_name_kinds_of_the_default_profile():
    from instclf.profiles import get_profile

    kinds = {kind for kind, _ in lineages.origins(get_profile("default")).values()}
    for mix in lineages.TRAINING_MIXES:
        assert mix.kinds is None or set(mix.kinds) <= kinds, mix
    assert {recorded for _, recorded in lineages.origins(get_profile("default")).values()} == {
        True, False}


def test_comparing_sources_trains_each_mix_without_the_tested_lineage(tiny_profile, everything,
                                                                      monkeypatch):
    profile: Profile = replace(tiny_profile, seed=7)
    mixes = (lineages.TrainingMix("the soundfonts", ("soundfonts",)),
             lineages.TrainingMix("every lineage"))
    fits = []
    original = train.fit_stage
    monkeypatch.setattr(train, "fit_stage", lambda *a, **k: fits.append(1) or original(*a, **k))
    result = lineages.compare_sources(profile, "musicnn_vgg", mixes=mixes, tested="sf_GMbank",
                                      schedule=TINY_FOLDS)
    # here both mixes hold the same notes (TimGM6mb, no recorded copies): one model of two stages
    assert len(fits) == 2
    assert len({found["model"] for found in result["per_mix"].values()}) == 1
    tested = everything.notes["lineage"] == "sf_GMbank"
    for mix, found in result["per_mix"].items():
        table = result["predictions"][result["predictions"]["mix"] == mix]
        assert sorted(table["note_str"]) == sorted(everything.notes["note_str"][tested])
        assert found["lineages"] == ["TimGM6mb"]
        assert found["accuracy"] == pytest.approx(
            (table["predicted"].astype(str) == table["family"].astype(str)).mean())
        assert train.Path(found["model"]).parent.parent == lineages.fold_dir(profile, "sf_GMbank")
    assert len({found["fit_notes"] for found in result["per_mix"].values()}) == 1
    again = lineages.compare_sources(profile, "musicnn_vgg", mixes=mixes, tested="sf_GMbank",
                                     schedule=TINY_FOLDS)
    assert len(fits) == 2, "trained mixes are loaded, not trained again"
    assert again["per_mix"] == result["per_mix"]
    lineages.write_summary(profile, "tiny", result, lineages.sources_summary_path(profile, "tiny"))
    gathered = report.source_results(profile)["experiments"]["tiny"]
    assert gathered["tested"] == "sf_GMbank" and gathered["seeds"] == [0]
    assert gathered["lineages"] == {mix.name: ["TimGM6mb"] for mix in mixes}
    for mix, found in result["per_mix"].items():
        assert gathered["per_mix"][mix]["accuracy"] == pytest.approx(found["accuracy"])
        assert gathered["fit_notes"][mix] == found["fit_notes"]
    with pytest.raises(InstclfError, match="no lineage samples"):
        lineages.compare_sources(profile, "musicnn_vgg", mixes=mixes, schedule=TINY_FOLDS)


def test_the_sources_table_names_each_mix_its_lineages_and_its_notes():
    found = {"accuracy": 0.5, "accuracy_ci95": [0.4, 0.6], "seeds": {"0": 0.45, "1": 0.55}}
    results = {"profile": "default", "date": "2026-11-30", "environment": {"cpus": 2},
               "experiments": {models.BEST_EXPERIMENT: {
                   "tested": "samples", "seeds": [0, 1], "schedule": lineages.FOLD_SCHEDULE.__dict__,
                   "per_mix": {"the soundfonts": found}, "fit_notes": {"the soundfonts": 2141},
                   "lineages": {"the soundfonts": ["OPL3_FM", "TimGM6mb"]}}}}
    lines = report.sources_markdown(results).splitlines()
    assert "`samples`, never heard" in lines[0]
    assert lines[2] == ("| the soundfonts | OPL3_FM, TimGM6mb | 2,141 | 50.0% (40.0%–60.0%) "
                        "[seeds 45.0%–55.0%] |")
    frame = report.sources_frame(results)
    assert list(frame["model"]) == ["the soundfonts"] and frame["seeds"][0] == [0.45, 0.55]


def test_make_experiments_compares_sources_with_the_network_notebook_04_trains():
    makefile = (ROOT / "Makefile").read_text()
    network = experiments.get_experiment(models.NOTEBOOK_04_NETWORK)
    assert experiments.networks_trained(network) == 1, "a recipe that fine-tunes one network"
    assert f"SOURCES_EXPERIMENT ?= {network.name}\n" in makefile
    assert "--sources --seeds $(SEEDS)" in makefile and "results --sources" in makefile
