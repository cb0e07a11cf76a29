"""The head on the frozen top blocks' statistics as a model, and ensembles served as one model
(instclf.embeddings.block_statistics_model, instclf.train.ensemble_model, the page's model)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from instclf import backbones, descriptors, embeddings, evaluate, export, lineages, models, train
from instclf.activations import predict_in_chunks
from instclf.profiles import Profile

BACKBONE = "musicnn_vgg"
SCHEDULE = train.Schedule(max_unfrozen_blocks=1, head_epochs=2, stage_epochs=1, patience=1,
                          batch_size=16, min_improvement=-1.0, seed=5)


@pytest.fixture(scope="module")
def profile(tiny_profile, tiny_dataset, tmp_path_factory) -> Profile:
    return replace(tiny_profile, head_epochs=3, patience=1, batch_size=16,
                   data_dir=tmp_path_factory.mktemp("ensembles"))


@pytest.fixture(scope="module")
def data(profile):
    # the tiny dataset's features, under this module's own data root for the models
    return train.training_data(profile, backbones.get_backbone(BACKBONE).front_end,
                               progress=False)


@pytest.fixture(scope="module")
def frozen_head(profile, data):
    return embeddings.block_statistics_model(profile, (BACKBONE,), data, SCHEDULE,
                                             experiment="frozen_head")


def test_the_frozen_head_model_is_its_head_on_the_top_blocks_statistics(profile, data,
                                                                        frozen_head):
    S, notes = embeddings.backbone_embeddings(profile, BACKBONE, data, statistics=True)
    part = np.concatenate([np.full(len(d), name) for name, d in data.items()])
    y = np.concatenate([d.y for d in data.values()])
    head, history = embeddings.statistics_head(S, y, part == "fit", part == "valid")
    test = part == "test"
    np.testing.assert_allclose(frozen_head.model.predict(data["test"].X[:], verbose=0),
                               head.predict(S[test], verbose=0), rtol=1e-4, atol=1e-5)
    assert frozen_head.meta["head"] == train.BLOCK_STATISTICS
    assert frozen_head.meta["best_val_loss"] == pytest.approx(frozen_head.history["val_loss"].min())
    assert frozen_head.meta["best_val_loss"] == pytest.approx(history["val_loss"].min(), rel=1e-5)
    assert list(frozen_head.history.columns) == list(train.HISTORY_COLUMNS)
    assert frozen_head.path in [path for path, _ in models.recorded_models(profile)]


def test_the_frozen_head_model_loads_in_safe_mode_and_is_not_trained_twice(profile, data,
                                                                           frozen_head,
                                                                           monkeypatch):
    monkeypatch.setattr(embeddings, "statistics_head",
                        lambda *a, **k: pytest.fail("a saved head is loaded, not trained"))
    again = embeddings.block_statistics_model(profile, (BACKBONE,), data, SCHEDULE)
    assert again.path == frozen_head.path
    X = data["valid"].X[:]
    np.testing.assert_allclose(again.model.predict(X, verbose=0),
                               frozen_head.model.predict(X, verbose=0), rtol=1e-5, atol=1e-6)
    # a head saved before the descriptors joined the statistics is not loaded
    assert train.run_key(backbones.get_backbone(BACKBONE), replace(SCHEDULE, max_unfrozen_blocks=0),
                         data, head=train.BLOCK_STATISTICS) != frozen_head.path.parent.name


def test_a_frozen_head_on_two_backbones_reads_both_statistics_and_the_descriptors_once(
        profile, data, frozen_head):
    both = (BACKBONE, "musicnn_vgg_msd")  # one front end
    trained = embeddings.block_statistics_model(profile, both, data, SCHEDULE, experiment="two")
    first, notes = embeddings.backbone_embeddings(profile, BACKBONE, data, statistics=True)
    second, _ = embeddings.backbone_embeddings(profile, both[1], data, statistics=True)
    S, same_notes = embeddings.statistics_embeddings(profile, both, data)
    described = len(descriptors.NAMES)
    assert same_notes.equals(notes)
    np.testing.assert_array_equal(S, np.concatenate(
        [first[:, :-described], second[:, :-described], first[:, -described:]], axis=1))
    np.testing.assert_array_equal(first[:, -described:], second[:, -described:])
    part = np.concatenate([np.full(len(d), name) for name, d in data.items()])
    y = np.concatenate([d.y for d in data.values()])
    head, _ = embeddings.statistics_head(S, y, part == "fit", part == "valid")
    np.testing.assert_allclose(trained.model.predict(data["test"].X[:], verbose=0),
                               head.predict(S[part == "test"], verbose=0), rtol=1e-4, atol=1e-5)
    assert trained.meta["frozen_backbones"] == list(both)
    assert trained.path != frozen_head.path
    reloaded = train.load_trained(trained.path)
    np.testing.assert_allclose(reloaded.model.predict(data["valid"].X[:], verbose=0),
                               trained.model.predict(data["valid"].X[:], verbose=0), rtol=1e-5,
                               atol=1e-6)


def test_an_ensemble_model_is_the_mean_of_its_members_and_its_own_validation_loss(
        profile, data, frozen_head):
    staged = train.trained_model(profile, BACKBONE, data=data, schedule=SCHEDULE,
                                 experiment="staged")
    ensemble = train.ensemble_model(profile, "both", [staged, frozen_head], data["valid"])
    X = data["test"].X[:]
    expected = (staged.model.predict(X, verbose=0) + frozen_head.model.predict(X, verbose=0)) / 2
    np.testing.assert_allclose(ensemble.model.predict(X, verbose=0), expected, rtol=1e-5,
                               atol=1e-6)
    valid = predict_in_chunks(ensemble.model, data["valid"].X, progress=False)
    picked = valid[np.arange(len(valid)), data["valid"].y]
    assert ensemble.meta["best_val_loss"] == pytest.approx(float(-np.log(picked).mean()),
                                                           rel=1e-4)
    assert ensemble.meta["experiment"] == "both"
    assert [m["experiment"] for m in ensemble.meta["members"]] == ["staged", "frozen_head"]
    assert ensemble.meta["front_end"] == staged.meta["front_end"]
    loaded = train.load_trained(ensemble.path)
    np.testing.assert_allclose(loaded.model.predict(X, verbose=0), expected, rtol=1e-5,
                               atol=1e-6)
    assert len(loaded.history) == len(staged.history)
    # the page chooses it when its leave-one-lineage-out mean leads
    folder = models.lineage_results_dir(profile)
    folder.mkdir(parents=True, exist_ok=True)
    for name, mean in (("staged", 0.5), ("frozen_head", 0.45), ("both", 0.55)):
        (folder / f"{name}-seed0.json").write_text(json.dumps(
            {"experiment": name, "mean_accuracy": mean}))
    assert models.best_model_path(profile) == ensemble.path
    (folder / "both-seed0.json").write_text(json.dumps({"experiment": "both",
                                                        "mean_accuracy": 0.4}))
    assert models.best_model_path(profile) == staged.path


def test_an_ensemble_model_exports_to_litert_with_the_same_probabilities(profile, data,
                                                                         frozen_head):
    pytest.importorskip("ai_edge_litert")
    staged = train.trained_model(profile, BACKBONE, data=data, schedule=SCHEDULE,
                                 experiment="staged")
    ensemble = train.ensemble_model(profile, "both", [staged, frozen_head], data["valid"])
    export.export_model(ensemble.path)
    exported, meta, _ = export.load_exported(ensemble.path)
    assert meta["experiment"] == "both"
    X = data["test"].X[:4]
    np.testing.assert_allclose(exported.predict_on_batch(X),
                               ensemble.model.predict(X, verbose=0), atol=1e-4)


def test_the_frozen_heads_folds_train_without_their_lineage_and_test_on_all_of_it(profile,
                                                                                monkeypatch):
    everything = lineages.pool(profile, backbones.get_backbone(BACKBONE).front_end,
                               progress=False)
    trained_on = []
    original = embeddings.statistics_head

    def spy(S, y, fit, valid):
        trained_on.append(set(everything.notes["lineage"].astype(str)[fit | valid]))
        return original(S, y, fit, valid)

    monkeypatch.setattr(embeddings, "statistics_head", spy)
    result = lineages.block_statistics_out(profile, (BACKBONE,), seed=1)
    assert set(result["per_lineage"]) == {"TimGM6mb", "sf_GMbank"}
    assert trained_on == [{"sf_GMbank"}, {"TimGM6mb"}]
    table = result["predictions"]
    for lineage, fold in result["per_lineage"].items():
        held = everything.notes[everything.notes["lineage"].astype(str) == lineage]
        assert sorted(table[table["lineage"] == lineage]["note_str"]) == sorted(held["note_str"])
        assert fold["accuracy"] == pytest.approx(evaluate.accuracy(table[table["lineage"] == lineage]))
    assert result["head"] == train.BLOCK_STATISTICS and result["seed"] == 1
    assert result["mean_accuracy"] == pytest.approx(
        np.mean([f["accuracy"] for f in result["per_lineage"].values()]))
