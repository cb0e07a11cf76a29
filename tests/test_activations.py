"""Frozen activations cached on disk and the batches training streams from them."""

from __future__ import annotations

import tracemalloc

import keras
import numpy as np
import pandas as pd
import pytest

from instclf import activations, backbones, features, train
from instclf.config import FAMILIES, InstclfError


def _small_model(seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((16, 12)), keras.layers.Reshape((16, 12, 1)),
        keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
        keras.layers.BatchNormalization(), keras.layers.MaxPooling2D(2),
        keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(len(FAMILIES), "softmax")])


def _features(folder, n, shape=(16, 12), seed=0):
    """Float16 features memory-mapped from a .npy file, as the feature cache holds them."""
    path = folder / "features.npy"
    X = np.lib.format.open_memmap(path, mode="w+", dtype=np.float16, shape=(n, *shape))
    X[:] = np.random.default_rng(seed).uniform(0, 3, X.shape)
    X.flush()
    return np.load(path, mmap_mode="r")


def _count_predictions(monkeypatch) -> list:
    calls, original = [], activations.predict_in_chunks

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(activations, "predict_in_chunks", counting)
    return calls


def test_cached_activations_equal_the_in_ram_ones_and_are_computed_once(tmp_path, monkeypatch):
    model, X = _small_model(), _features(tmp_path, 70)
    in_ram = activations.activations(model, X, 0, 4, batch_size=2)  # chunks of 32 rows
    calls = _count_predictions(monkeypatch)
    first = activations.cached_activations(model, X, 0, 4, "k", tmp_path / "cache", batch_size=2)
    second = activations.cached_activations(model, X, 0, 4, "k", tmp_path / "cache",
                                            batch_size=2)
    assert len(calls) == 1, "the second call reads the file"
    assert isinstance(second, np.memmap) and not second.flags.writeable
    assert second.dtype == np.float32 and second.shape == (70, 8, 6, 8)
    np.testing.assert_array_equal(first, in_ram)
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["k.npy"], "no temporary left"
    assert activations.cached_activations(model, X, 2, 2, "k", tmp_path) is X


def test_a_cached_file_of_another_shape_is_computed_again(tmp_path, monkeypatch):
    model, X = _small_model(), _features(tmp_path, 20)
    (tmp_path / "cache").mkdir()
    np.save(tmp_path / "cache" / "k.npy", np.zeros((19, 8, 6, 8), np.float32))
    calls = _count_predictions(monkeypatch)
    out = activations.cached_activations(model, X, 0, 4, "k", tmp_path / "cache")
    assert len(calls) == 1 and out.shape == (20, 8, 6, 8)
    np.testing.assert_array_equal(out, activations.activations(model, X, 0, 4))


def test_a_disk_too_small_is_refused_before_writing(tmp_path, monkeypatch):
    import shutil

    model, X = _small_model(), _features(tmp_path, 20)
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage._replace(free=1000))
    with pytest.raises(InstclfError, match="INSTCLF_DATA_DIR"):
        activations.cached_activations(model, X, 0, 4, "k", tmp_path / "cache")
    assert not list((tmp_path / "cache").iterdir())


def test_computing_the_cache_holds_one_chunk_not_the_whole_array(tmp_path):
    model, X = _small_model(), _features(tmp_path, 4000)
    whole = 4000 * 16 * 12 * 8 * 4  # 25 MB of float32 activations; a chunk is 128 rows
    tracemalloc.start()
    out = activations.cached_activations(model, X, 0, 2, "k", tmp_path, batch_size=8)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert out.shape == (4000, 16, 12, 8)
    assert peak < whole / 4, f"peak {peak / 1e6:.1f} MB of numpy and Python objects"


def test_batches_are_seeded_and_cover_every_row_once_per_epoch():
    X, y = np.arange(23, dtype=np.float16)[:, None], np.arange(23) % 3

    def epochs(seed, n=3):
        batches, seen = activations.Batches(X, y, 5, shuffle=True, seed=seed), []
        for _ in range(n):
            seen.append([batches[i][0][:, 0].astype(int) for i in range(len(batches))])
            batches.on_epoch_end()
        return seen

    first, again, other = epochs(0), epochs(0), epochs(1)
    for epoch in first:
        assert [len(rows) for rows in epoch] == [5, 5, 5, 5, 3]
        assert all((np.diff(rows) > 0).all() for rows in epoch), "rows read in index order"
        assert sorted(np.concatenate(epoch)) == list(range(23))
    flat = [np.concatenate(epoch).tolist() for epoch in first]
    assert flat == [np.concatenate(epoch).tolist() for epoch in again]
    assert flat[0] != flat[1] != flat[2], "a new permutation every epoch"
    assert flat != [np.concatenate(epoch).tolist() for epoch in other]


def test_validation_batches_come_in_order_without_weights():
    X, y = np.arange(7, dtype=np.float16)[:, None], np.arange(7)
    batches = activations.Batches(X, y, 3)
    assert len(batches[0]) == 2 and batches[0][0].dtype == np.float32
    assert np.concatenate([batches[i][1] for i in range(len(batches))]).tolist() == list(range(7))


def test_sample_weights_are_the_class_weights():
    y = np.array([0, 0, 0, 1, 4, 4, 0, 1])
    weights = train.class_weights(y)
    batches = activations.Batches(np.zeros((8, 2)), y, 3, class_weight=weights, shuffle=True)
    for i in range(len(batches)):
        _, labels, sample_weight = batches[i]
        assert sample_weight.tolist() == pytest.approx([weights[k] for k in labels])
    assert weights[4] == pytest.approx(8 / (3 * 2))


def _dense_model(seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(len(FAMILIES), activation="softmax")])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    return model


@pytest.mark.parametrize("for_fit", [False, True], ids=["py_dataset", "for_fit"])
def test_sample_weights_train_as_keras_class_weight_does(for_fit):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 6)).astype("float32"), rng.integers(0, 4, 40)
    y[:20] = 0  # unbalanced, so the weights matter
    weights = train.class_weights(y)
    keras_way = _dense_model()
    keras_way.fit(X, y, batch_size=8, epochs=2, class_weight=weights, shuffle=False, verbose=0)
    ours = _dense_model()
    batches = activations.Batches(X, y, 8, class_weight=weights)
    ours.fit(batches.for_fit() if for_fit else batches, epochs=2, shuffle=False, verbose=0)
    unweighted = _dense_model()
    unweighted.fit(X, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    for a, b, c in zip(keras_way.get_weights(), ours.get_weights(), unweighted.get_weights()):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
    assert not all(np.allclose(a, c) for a, c in zip(ours.get_weights(),
                                                     unweighted.get_weights()))


class _Recording(activations.Batches):
    """Batches that note the epoch, index and rows of every batch read (in ``fetched``)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fetched = []

    def __getitem__(self, index):
        self.fetched.append((self.epoch, index, self.rows(index)))
        return super().__getitem__(index)


def test_fit_sees_every_row_once_per_epoch_in_a_new_order():
    X, y = np.random.default_rng(0).normal(size=(20, 6)), np.arange(20) % 11
    batches = _Recording(X, y, 8, shuffle=True, seed=3)
    _dense_model().fit(batches, epochs=3, shuffle=False, verbose=0)
    by_epoch = {}
    for epoch, index, rows in batches.fetched:
        by_epoch.setdefault(epoch, {})[index] = rows
    full = [np.concatenate([rows[i] for i in range(3)]) for rows in by_epoch.values()
            if len(rows) == 3]  # Keras reads two batches first to learn their shapes
    assert len(full) == 3
    assert all(sorted(rows) == list(range(20)) for rows in full)
    assert len({tuple(rows) for rows in full}) == 3


def test_for_fit_gives_fit_the_batches_of_each_epoch_in_turn():
    X, y = np.random.default_rng(0).normal(size=(20, 6)), np.arange(20) % 11
    batches = _Recording(X, y, 8, shuffle=True, seed=3)
    _dense_model().fit(batches.for_fit(), epochs=3, shuffle=False, verbose=0)
    fetched = batches.fetched
    assert [(epoch, index) for epoch, index, _ in fetched] == [
        (epoch, index) for epoch in range(3) for index in range(3)]
    reference = activations.Batches(X, y, 8, shuffle=True, seed=3)
    for epoch in range(3):
        rows = [rows for e, _, rows in fetched if e == epoch]
        assert sorted(np.concatenate(rows)) == list(range(20))
        assert all(np.array_equal(r, reference.rows(k)) for k, r in enumerate(rows))
        reference.on_epoch_end()
    assert len({tuple(np.concatenate([r for e, _, r in fetched if e == epoch]))
                for epoch in range(3)}) == 3


# --- staged training streams from the cache -------------------------------------------------

def _data(n, seed):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % len(FAMILIES)
    X = rng.uniform(0, 3, (n, *features.MUSICNN.shape)) + y[:, None, None] * 0.4
    notes = pd.DataFrame({"note_str": [f"n{k}" for k in range(n)]})
    return train.Data(X.astype("float16"), y.astype("int32"), notes)


def _in_ram_head(backbone, data, schedule):
    """Stage 0 as training did before streaming: activations in RAM, ``fit(class_weight)``."""
    keras.utils.set_random_seed(schedule.seed)
    model = backbones.build_classifier(backbone)
    start = backbones.block_start(model, backbone, 0)
    train.set_trainable(model, start, keep_batchnorm_frozen=True)
    top = train.chain(model.layers[start:], train.output_shape(model, start))
    keras.utils.set_random_seed(schedule.seed)
    top.compile(optimizer=keras.optimizers.Adam(schedule.head_learning_rate),
                loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    fitted = top.fit(train.activations(model, data["fit"].X, 0, start), data["fit"].y,
                     validation_data=(train.activations(model, data["valid"].X, 0, start),
                                      data["valid"].y),
                     epochs=schedule.head_epochs, batch_size=schedule.batch_size,
                     class_weight=train.class_weights(data["fit"].y), shuffle=True, verbose=0)
    return pd.DataFrame(fitted.history)


def test_streamed_staged_training_learns_as_the_in_ram_path_did(tmp_path, monkeypatch):
    backbone = backbones.get_backbone("musicnn_vgg")
    data = {"fit": _data(44, 0), "valid": _data(22, 1)}
    schedule = train.Schedule(max_unfrozen_blocks=1, head_epochs=8, stage_epochs=1,
                              patience=8, batch_size=11, head_learning_rate=1e-2,
                              min_improvement=-1.0)
    keras.utils.set_random_seed(schedule.seed)
    model = backbones.build_classifier(backbone)
    state, history = train.staged_training(model, backbone, data, schedule, tmp_path / "run",
                                           cache_dir=tmp_path / "cache")
    assert state.completed_stages == 2
    lowest = backbones.block_start(model, backbone, 1)
    head = backbones.block_start(model, backbone, 0)
    expected = {train.activations_key(data[name], backbone, stop) + ".npy"
                for name in data for stop in (lowest, head)}
    assert {p.name for p in (tmp_path / "cache").iterdir()} == expected
    streamed = history[history.stage == 0].reset_index(drop=True)
    before = _in_ram_head(backbone, data, schedule)
    assert streamed.val_loss.iloc[-1] < streamed.val_loss.iloc[0] - 0.1, "the head learns"
    assert streamed.val_loss.min() == pytest.approx(before.val_loss.min(), abs=0.1)

    calls = _count_predictions(monkeypatch)
    keras.utils.set_random_seed(schedule.seed)
    again = backbones.build_classifier(backbone)
    _, history_again = train.staged_training(again, backbone, data, schedule, tmp_path / "rerun",
                                             cache_dir=tmp_path / "cache")
    assert not calls, "a new run of the same data reads the cached activations"
    pd.testing.assert_frame_equal(history_again.drop(columns="seconds"),
                                  history.drop(columns="seconds"))


def test_keyless_selections_get_distinct_keys():
    backbone = backbones.get_backbone("musicnn_vgg")
    a, b = _data(11, 0), _data(11, 1)
    assert train.activations_key(a, backbone, 14) != train.activations_key(b, backbone, 14)
    assert train.activations_key(a, backbone, 14) == train.activations_key(_data(11, 0),
                                                                          backbone, 14)
    keyed = train.Data(a.X, a.y, a.notes, key="selection-key")
    assert train.activations_key(keyed, backbone, 14) != train.activations_key(a, backbone, 14)
    assert train.activations_key(keyed, backbone, 14) != train.activations_key(keyed, backbone,
                                                                              11)
