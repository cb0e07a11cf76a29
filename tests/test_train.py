"""Backbones and staged training: cached activations, freezing, resume, saving, VGG19 weights."""

from __future__ import annotations

from dataclasses import replace

import keras
import numpy as np
import pandas as pd
import pytest

from instclf import backbones, features, train
from instclf.config import FAMILIES, InstclfError


@pytest.fixture(scope="module")
def musicnn_model():
    keras.utils.set_random_seed(0)
    backbone = backbones.get_backbone("musicnn_vgg")
    return backbone, backbones.build_classifier(backbone)


def _random_features(n, front_end=features.MUSICNN, seed=0):
    return np.random.default_rng(seed).uniform(0, 3, (n, *front_end.shape)).astype("float32")


def _tiny_data(n=24, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % len(FAMILIES)
    X = _random_features(n, seed=seed) + y[:, None, None].astype("float32") * 0.2
    notes = pd.DataFrame({"note_str": [f"n{k}" for k in range(n)]})
    return train.Data(X, y.astype("int32"), notes), rng


@pytest.mark.parametrize("unfrozen", [0, 1, 2])
def test_cached_activations_give_the_plain_model_predictions(musicnn_model, unfrozen):
    backbone, model = musicnn_model
    X = _random_features(6)
    plain = keras.ops.convert_to_numpy(model(X, training=False))
    start = backbones.block_start(model, backbone, unfrozen)
    bottom = train.activations(model, X, 0, start)
    top = train.chain(model.layers[start:], train.output_shape(model, start))
    cached = keras.ops.convert_to_numpy(top(bottom, training=False))
    np.testing.assert_allclose(cached, plain, rtol=1e-5, atol=1e-6)
    assert plain.shape == (6, len(FAMILIES))


def test_block_start_counts_blocks_from_the_top(musicnn_model):
    backbone, model = musicnn_model
    names = [layer.name for layer in model.layers]
    assert names[backbones.block_start(model, backbone, 0)] == "head_pool"
    assert names[backbones.block_start(model, backbone, 1)] == "block5_conv"
    assert names[backbones.block_start(model, backbone, 5)] == "block1_conv"
    with pytest.raises(InstclfError):
        backbones.block_start(model, backbone, 6)


def test_freezing_really_freezes():
    keras.utils.set_random_seed(1)
    backbone = backbones.get_backbone("musicnn_vgg")
    model = backbones.build_classifier(backbone)
    start = backbones.block_start(model, backbone, 1)
    train.set_trainable(model, start, keep_batchnorm_frozen=True)
    before = [[w.copy() for w in layer.get_weights()] for layer in model.layers]
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    data, _ = _tiny_data(8)
    model.fit(data.X, data.y, epochs=1, batch_size=8, verbose=0)
    after = [layer.get_weights() for layer in model.layers]
    for index, layer in enumerate(model.layers):
        same = all(np.array_equal(a, b) for a, b in zip(before[index], after[index]))
        if index < start or isinstance(layer, keras.layers.BatchNormalization):
            assert same, f"{layer.name} changed although frozen"
        elif layer.weights:
            assert not same, f"{layer.name} did not train"


def test_class_weights_balance_the_families():
    weights = train.class_weights(np.array([0, 0, 0, 1]), n_classes=3)
    assert weights == {0: pytest.approx(4 / 6), 1: pytest.approx(2.0)}


def _count_stages(monkeypatch) -> list:
    calls, original = [], train.fit_stage

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(train, "fit_stage", counting)
    return calls


def _run(tmp_path, blocks):
    keras.utils.set_random_seed(0)
    backbone = backbones.get_backbone("musicnn_vgg")
    model = backbones.build_classifier(backbone)
    fit, _ = _tiny_data(22, seed=0)
    valid, _ = _tiny_data(11, seed=1)
    schedule = train.Schedule(max_unfrozen_blocks=blocks, head_epochs=2, stage_epochs=1,
                              patience=1, batch_size=11, min_improvement=-1.0)
    state, history = train.staged_training(model, backbone, {"fit": fit, "valid": valid},
                                           schedule, tmp_path)
    return model, state, history


def test_resume_continues_from_the_checkpoint(tmp_path, monkeypatch):
    calls = _count_stages(monkeypatch)
    _, state0, history0 = _run(tmp_path, 0)
    assert state0.completed_stages == 1 and len(calls) == 1
    assert (tmp_path / "best.weights.h5").is_file() and (tmp_path / "state.json").is_file()
    model, state1, history1 = _run(tmp_path, 1)
    assert len(calls) == 2, "stage 0 must not be trained again"
    assert state1.completed_stages == 2
    assert list(history1.stage) == [0] * len(history0) + [1]
    pd.testing.assert_frame_equal(history1.iloc[:len(history0)].reset_index(drop=True),
                                  history0.reset_index(drop=True), check_dtype=False)
    assert list(history1.epoch) == list(range(1, len(history1) + 1))
    assert [stage for stage, _ in state1.activation_passes] == [0, 1], "one pass per resume"


def test_saved_model_loads_in_safe_mode(musicnn_model, tmp_path):
    _, model = musicnn_model
    path = tmp_path / "model.keras"
    train.save_model(model, {"classes": list(FAMILIES), "backbone": "musicnn_vgg"}, path)
    loaded, meta = train.load_model(path)
    X = _random_features(3)
    np.testing.assert_allclose(loaded.predict(X, verbose=0), model.predict(X, verbose=0),
                               rtol=1e-5, atol=1e-6)
    assert meta["classes"] == list(FAMILIES)
    assert not list(tmp_path.glob("*.tmp-*"))


@pytest.fixture(scope="module")
def local_vgg19_weights(tmp_path_factory):
    """VGG19 weights made here (random values): the test never downloads anything."""
    keras.utils.set_random_seed(2)
    vgg = keras.applications.VGG19(include_top=False, weights=None, input_shape=(224, 224, 3))
    path = tmp_path_factory.mktemp("weights") / "vgg19_local.weights.h5"
    vgg.save_weights(str(path))
    return path, vgg


def test_vgg19_works_with_local_weights(local_vgg19_weights, monkeypatch, tmp_path):
    path, vgg = local_vgg19_weights
    monkeypatch.setenv("INSTCLF_VGG19_WEIGHTS", str(path))
    backbone = backbones.get_backbone("vgg19")
    model = backbones.build_classifier(backbone)
    conv = model.get_layer("block1_conv1").get_weights()[0]
    np.testing.assert_array_equal(conv, vgg.get_layer("block1_conv1").get_weights()[0])
    S_db = np.random.default_rng(0).uniform(-80, 0, (2, *features.STUDY.shape)).astype("float32")
    probs = model.predict(S_db, verbose=0)
    assert probs.shape == (2, len(FAMILIES))
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-5)
    saved = tmp_path / "vgg.keras"
    train.save_model(model, {}, saved)
    loaded, _ = train.load_model(saved)  # the custom StudyImage layer loads in safe mode
    np.testing.assert_allclose(loaded.predict(S_db, verbose=0), probs, rtol=1e-4, atol=1e-5)


def test_vgg19_without_weights_fails_fast_saying_what_to_download(monkeypatch, tmp_path):
    monkeypatch.delenv("INSTCLF_VGG19_WEIGHTS", raising=False)
    monkeypatch.setenv("INSTCLF_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(InstclfError) as error:
        backbones.build_classifier(backbones.get_backbone("vgg19"))
    message = str(error.value)
    assert backbones.VGG19_WEIGHTS_URL in message and "INSTCLF_VGG19_WEIGHTS" in message
    assert str(tmp_path / "data" / "weights") in message


def test_study_image_uses_the_png_colours():
    from instclf import images

    S_db = np.linspace(-80, 0, 128 * 130, dtype="float32").reshape(1, 128, 130)
    layer = backbones.StudyImage(size=(128, 130))
    image = keras.ops.convert_to_numpy(layer(S_db))[0]
    expected = keras.applications.vgg19.preprocess_input(
        images.db_to_rgb(S_db[0]).astype("float32"))
    np.testing.assert_allclose(image, expected, atol=1e-3)


def test_unknown_backbone_is_refused():
    with pytest.raises(InstclfError, match="musicnn_vgg"):
        backbones.get_backbone("resnet")


def test_schedule_follows_the_profile():
    from instclf.profiles import PROFILES

    schedule = train.schedule_for(PROFILES["smoke"])
    assert (schedule.head_epochs, schedule.max_unfrozen_blocks) == (1, 1)
    assert train.schedule_for(replace(PROFILES["default"]), 0).max_unfrozen_blocks == 0


def test_a_shorter_schedule_reuses_the_prefix_of_a_longer_run(tmp_path, monkeypatch):
    calls = _count_stages(monkeypatch)
    longer, _, history = _run(tmp_path, 1)
    assert len(calls) == 2
    shorter, state, prefix = _run(tmp_path, 0)
    assert len(calls) == 2, "nothing is trained again"
    assert state.completed_stages == 1 and set(prefix.stage) == {0}
    reference = backbones.build_classifier(backbones.get_backbone("musicnn_vgg"))
    reference.load_weights(str(tmp_path / "stage0.weights.h5"))
    X = _random_features(2)
    np.testing.assert_allclose(shorter.predict(X, verbose=0), reference.predict(X, verbose=0))


def test_several_gpus_get_a_mirrored_strategy(monkeypatch):
    import tensorflow as tf

    class Device:
        def __init__(self, name):
            self.name = name

    made = []
    monkeypatch.setattr(tf.distribute, "MirroredStrategy", lambda devices: made.append(devices) or "mirrored")
    monkeypatch.setattr(tf.config, "list_logical_devices", lambda kind: [Device("/gpu:0")])
    assert train.distribution_strategy() is tf.distribute.get_strategy() and not made
    monkeypatch.setattr(tf.config, "list_logical_devices",
                        lambda kind: [Device("/gpu:0"), Device("/gpu:1")])
    assert train.distribution_strategy() == "mirrored" and made == [["/gpu:0", "/gpu:1"]]


def test_trained_model_builds_and_trains_under_the_strategy_given(tiny_profile, tiny_dataset,
                                                                  monkeypatch):
    import tensorflow as tf

    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    in_scope, build = [], backbones.build_classifier

    def recording(*args, **kwargs):
        model = build(*args, **kwargs)
        in_scope.append(strategy.extended.variable_created_in_scope(model.weights[0].value))
        return model

    monkeypatch.setattr(backbones, "build_classifier", recording)
    profile = replace(tiny_profile, head_epochs=2, patience=1, seed=7)
    trained = train.trained_model(profile, "scratch_cnn", strategy=strategy)
    assert in_scope == [True], "the model's variables belong to the strategy"
    assert trained.meta["epochs"] >= 1 and trained.path.is_file()
    assert trained.model.predict(np.zeros((1, *trained.model.input_shape[1:]), np.float32),
                                 verbose=0).shape == (1, 11)


def test_augmented_fit_appends_copies_and_keys_them():
    from instclf import augment

    front_end = features.MUSICNN
    rng = np.random.default_rng(0)
    n = 6
    notes = pd.DataFrame({"note_str": [f"n{i}" for i in range(n)]})
    fit = train.Data(rng.uniform(0, 3, (n, *front_end.shape)).astype("float16"),
                     np.arange(n, dtype="int32") % 3, notes, key="plain")
    settings = augment.Augmentation(copies=2, seed=0)
    once = train.augmented_fit(fit, front_end, settings)
    assert len(once) == 3 * n and (once.y == np.tile(fit.y, 3)).all()
    np.testing.assert_array_equal(once.X[:n], fit.X)  # the plain notes come first
    assert once.key != fit.key and once.key == train.augmented_fit(fit, front_end, settings).key
    assert once.key != train.augmented_fit(fit, front_end, augment.Augmentation(copies=2, seed=1)).key
