"""The registry of experiments and ``instclf train``."""

from __future__ import annotations

from dataclasses import replace

import pytest

from instclf import backbones, cli, experiments, profiles
from instclf.augment import Augmentation
from instclf.config import InstclfError

EXPERIMENTS = list(experiments.EXPERIMENTS.values())


def test_names_and_labels_are_unique_and_every_backbone_exists():
    assert [e.name for e in EXPERIMENTS] == list(experiments.EXPERIMENTS)
    assert len({e.label for e in EXPERIMENTS}) == len(EXPERIMENTS)
    for e in EXPERIMENTS:
        assert e.backbone in backbones.BACKBONES, e.name
        assert e.varies in experiments.ASPECTS, e.name
        assert e.description and "\n" not in e.description, e.name
        assert e.augmentation is None or isinstance(e.augmentation, Augmentation), e.name
        if e.also_frozen:  # more frozen backbones: only a head on their statistics reads them
            assert e.head == "block_statistics" and e.backbone not in e.also_frozen, e.name
            assert {backbones.get_backbone(name).front_end for name in e.frozen_backbones} == {
                backbones.get_backbone(e.backbone).front_end}, e.name


def test_every_comparison_names_an_earlier_experiment_and_says_what_changes():
    order = list(experiments.EXPERIMENTS)
    for e in EXPERIMENTS:
        if e.compared_with:
            assert order.index(e.compared_with) < order.index(e.name), e.name
            assert e.change, e.name
    assert experiments.BASELINE in experiments.EXPERIMENTS


def test_two_experiments_never_share_a_run():
    recipes = [(e.backbone, e.max_unfrozen_blocks, e.augmentation, e.sources, e.head, e.members,
                e.also_frozen) for e in EXPERIMENTS]
    assert len(set(recipes)) == len(recipes)


def test_unknown_experiment_lists_the_names():
    with pytest.raises(InstclfError, match="unknown experiment 'nope'; use one of musicnn_vgg_head"):
        experiments.get_experiment("nope")
    assert experiments.label("not registered") == "not registered"


def test_unavailable_experiment_says_why(monkeypatch, tmp_path):
    monkeypatch.setenv("INSTCLF_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("INSTCLF_VGG19_WEIGHTS", raising=False)
    vgg19 = experiments.get_experiment("vgg19")
    assert not experiments.available(vgg19)
    assert "VGG19 weights not found" in experiments.unavailable_reason(vgg19)
    weights = tmp_path / "weights.h5"
    weights.write_bytes(b"")
    monkeypatch.setenv("INSTCLF_VGG19_WEIGHTS", str(weights))
    assert experiments.available(vgg19)
    assert all(experiments.available(e) for e in EXPERIMENTS if e.requires is None)


def test_train_list_shows_name_label_and_description(capsys):
    assert cli.main(["train", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(EXPERIMENTS)
    for line, e in zip(lines, EXPERIMENTS):
        assert line.startswith(e.name + " ") and e.label in line and line.endswith(e.description)


@pytest.mark.parametrize("argv, message", [
    (["train", "nope"], "unknown experiment 'nope'"),
    (["train"], "instclf train --list"),
    (["train", "vgg19"], "experiment vgg19 cannot run: ImageNet VGG19 weights not found"),
])
def test_train_errors_are_one_line(argv, message, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("INSTCLF_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("INSTCLF_VGG19_WEIGHTS", raising=False)
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("instclf: error: ") and message in err[0]


def test_train_trains_then_loads_and_reports_both_selections(tiny_profile, tiny_dataset,
                                                             monkeypatch, capsys):
    profile = replace(tiny_profile, head_epochs=2, patience=1, seed=11)
    monkeypatch.setattr(profiles, "get_profile", lambda name=None: profile)
    assert cli.main(["train", "scratch_cnn"]) == 0
    first = capsys.readouterr().out
    assert "scratch_cnn: stage 0: best val_loss" in first
    model = next(line for line in first.splitlines() if line.startswith("model: "))
    assert "unseen instruments: accuracy" in first and "seen instruments: accuracy" in first
    assert cli.main(["train", "scratch_cnn", "--quiet"]) == 0
    second = capsys.readouterr().out
    assert "stage 0" not in second and model in second  # loaded, not trained again
