"""musicnn's own architecture in Keras 3 (instclf.musicnn_arch): the checkpoints' values all
land, the port computes what the stored TF1 graphs compute, and its backbones train, freeze,
save and reload like the others. Skipped only where the musicnn package is not installed."""

from __future__ import annotations

import importlib.util
from dataclasses import replace

import numpy as np
import pytest

if importlib.util.find_spec("musicnn") is None:
    pytest.skip("musicnn not installed: pip install --no-deps musicnn==0.1.0",
                allow_module_level=True)

import keras  # noqa: E402
import pandas as pd  # noqa: E402
import tensorflow as tf  # noqa: E402
from musicnn.configuration import MSD_LABELS, MTT_LABELS  # noqa: E402
from test_musicnn_port import TOL, run_original  # noqa: E402

from instclf import backbones, features, musicnn, musicnn_arch, profiles, train  # noqa: E402
from instclf.config import FAMILIES, InstclfError  # noqa: E402

CHECKPOINTS = ("MTT_musicnn", "MSD_musicnn")
BLOCK_NODES = {  # what each block adds to the chain, in the stored graph: (batch, T, C[, 1])
    "block1_frontend": "model/concat",
    "block2_midend": "model/transpose",
    "block3_midend": "model/Add",
    "block4_midend": "model/Add_1",
}
TOP_NODES = {
    "backend_pool": "model/Flatten/flatten/Reshape",
    "penultimate_bn": "model/batch_normalization_10/batchnorm/add_1",
    "logits": "model/dense_1/BiasAdd",
    "tags": "model/Sigmoid",
}
WHOLE = features.MUSICNN_WHOLE


def _tones(seconds: float = 4.0) -> dict[str, np.ndarray]:
    t = np.arange(int(seconds * 16000)) / 16000
    return {"sine": 0.5 * np.sin(2 * np.pi * 440 * t),
            "harmonic": 0.3 * np.exp(-1.5 * t) * sum(np.sin(2 * np.pi * 220 * k * t) / k
                                                      for k in range(1, 12)),
            "noise": np.random.default_rng(0).normal(0.0, 0.3, t.size)}


@pytest.fixture(scope="module")
def notes() -> np.ndarray:
    """Whole-note features (251 frames): two random patches and a harmonic tone."""
    random = np.random.default_rng(0).uniform(0.0, 5.0, (2, *WHOLE.shape)).astype("float32")
    tone = features.batch_features(_tones()["harmonic"][None].astype("float32"), WHOLE)
    return np.concatenate([random, tone])


@pytest.fixture(scope="module", params=CHECKPOINTS)
def outputs(request, notes):
    """(which, original outputs, port outputs) of one checkpoint on ``notes``."""
    which = request.param
    model = musicnn_arch.pretrained_musicnn(which, n_frames=WHOLE.frames)
    original = run_original(which, notes, {**BLOCK_NODES, **TOP_NODES})
    taps = keras.Model(model.input, {k: model.get_layer(k).output
                                     for k in (*BLOCK_NODES, *TOP_NODES)})
    port = {k: np.asarray(v) for k, v in taps(notes, training=False).items()}
    return which, original, port


def _flat(x: np.ndarray) -> np.ndarray:
    return x.reshape(*x.shape[:2], -1) if x.ndim > 2 else x


@pytest.mark.parametrize("tap", [*BLOCK_NODES, *TOP_NODES])
def test_port_matches_original_graph(outputs, tap):
    which, original, port = outputs
    if tap in BLOCK_NODES:  # each block appends its channels: musicnn's dense connection
        upto = list(BLOCK_NODES)[:list(BLOCK_NODES).index(tap) + 1]
        expected = np.concatenate([_flat(original[b]) for b in upto], axis=-1)
    else:
        expected = original[tap]
    assert _flat(port[tap]).shape == expected.shape
    # float32 sums of thousands of products: within 1e-4, or 1e-5 of the tap's largest value
    atol = max(TOL["atol"], 1e-5 * float(np.abs(expected).max()))
    np.testing.assert_allclose(_flat(port[tap]), expected, rtol=TOL["rtol"], atol=atol,
                               err_msg=f"{which} {tap}")
    assert np.abs(expected[0] - expected[1]).max() > 1e-3  # inputs tell apart


@pytest.mark.parametrize("which", CHECKPOINTS)
@pytest.mark.parametrize("include_top", [True, False])
def test_every_variable_of_the_layers_kept_is_assigned(which, include_top):
    model = musicnn_arch.pretrained_musicnn(which, include_top=include_top)
    assigned = {name: weight for layer in model.layers
                for name, weight in musicnn_arch.checkpoint_variables(layer)}
    shapes = musicnn.checkpoint_shapes(which)
    top = {n for n in shapes  # musicnn's back-end: its two dense layers and their batch norms
           if n.startswith(("dense", "batch_normalization_9/", "batch_normalization_10/"))}
    assert set(assigned) == set(shapes) - (set() if include_top else top)
    assert sorted(map(id, assigned.values())) == sorted(map(id, model.weights))
    reader = tf.compat.v1.train.NewCheckpointReader(str(musicnn.checkpoint_dir(which)) + "/")
    for name, weight in assigned.items():
        np.testing.assert_array_equal(np.asarray(weight), reader.get_tensor(name), err_msg=name)


def test_checkpoints_differ_and_sizes_come_from_the_checkpoint():
    models = {which: musicnn_arch.pretrained_musicnn(which) for which in CHECKPOINTS}
    for which, model in models.items():
        shapes = musicnn.checkpoint_shapes(which)
        assert model.get_layer("penultimate").units == shapes["dense/bias"][0]
        assert model.get_layer("block2_midend").filters == shapes["conv2d_5/bias"][0]
    mtt, msd = (np.asarray(m.get_layer("block1_frontend").weights[0]) for m in models.values())
    assert not np.array_equal(mtt, msd)


def test_loading_rejects_another_shape():
    with pytest.raises(InstclfError, match="conv2d/kernel"):  # timbral kernels need 96 bands
        musicnn.load_checkpoint(musicnn_arch.build_musicnn(n_mels=128), "MTT_musicnn",
                                musicnn_arch.checkpoint_variables)
    with pytest.raises(InstclfError, match="conv2d_5/kernel"):
        musicnn.load_checkpoint(musicnn_arch.build_musicnn(midend_filters=32), "MTT_musicnn",
                                musicnn_arch.checkpoint_variables)


def test_the_taggers_tag_plausibly():
    tones = _tones(3.0)
    X = features.batch_features(np.stack(list(tones.values())).astype("float32"),
                                features.MUSICNN)
    def top(which, labels, n):
        tags = musicnn_arch.pretrained_musicnn(which).predict(X, verbose=0)
        return {name: [labels[i] for i in np.argsort(row)[::-1][:n]]
                for name, row in zip(tones, tags)}

    mtt = top("MTT_musicnn", MTT_LABELS, 3)
    assert mtt["sine"][0] == "flute" and "flute" not in mtt["noise"]
    assert {"fast", "loud"} & set(mtt["noise"][:2])
    assert {"strings", "cello", "violin", "guitar", "solo", "slow"} & set(mtt["harmonic"])
    assert top("MSD_musicnn", MSD_LABELS, 1)["noise"] == ["electronic"]


@pytest.mark.parametrize("name", ["musicnn_msd", "musicnn_mtt"])
def test_backbone_output_suits_the_heads(name):
    backbone = backbones.get_backbone(name)
    assert backbone.front_end == WHOLE and backbone.pretrained
    layers = backbone.make_layers(WHOLE)
    model = backbones.build_classifier(backbone, layers=layers)
    shapes = {block[-1]: model.get_layer(block[-1]).output.shape for block in backbone.blocks}
    assert shapes == {"block1_frontend": (None, 251, 1, 561), "block2_midend": (None, 251, 1, 625),
                      "block3_midend": (None, 251, 1, 689), "backend_pool": (None, 2 * 753),
                      "backend_expand": (None, 1, 1, 200)}
    assert model.get_layer("head_pool").output.shape == (None, 200)
    top_block = backbones.block_start(model, backbone, 1)
    assert train.output_shape(model, top_block) == (2 * 753,)  # what the folds cache per note


@pytest.fixture(scope="module")
def classifier():
    keras.utils.set_random_seed(0)
    backbone = backbones.get_backbone("musicnn_msd")
    return backbone, backbones.build_classifier(backbone)


def _random_notes(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 3, (n, *WHOLE.shape)).astype("float32")


def test_backbone_gives_musicnns_penultimate_features(classifier, notes):
    _, model = classifier
    tagger = musicnn_arch.pretrained_musicnn("MSD_musicnn", n_frames=WHOLE.frames)
    head_pool = [layer.name for layer in model.layers].index("head_pool")
    ours = train.activations(model, notes, 0, head_pool + 1)
    penultimate = keras.Model(tagger.input, tagger.get_layer("penultimate_bn").output)
    np.testing.assert_allclose(ours, np.asarray(penultimate(notes, training=False)), **TOL)


@pytest.mark.parametrize("unfrozen", [0, 1, 2, 5])
def test_cached_activations_give_the_plain_model_predictions(classifier, unfrozen):
    backbone, model = classifier
    X = _random_notes(3)
    plain = np.asarray(model(X, training=False))
    start = backbones.block_start(model, backbone, unfrozen)
    bottom = train.activations(model, X, 0, start)
    top = train.chain(model.layers[start:], train.output_shape(model, start))
    np.testing.assert_allclose(np.asarray(top(bottom, training=False)), plain,
                               rtol=1e-5, atol=1e-6)


def test_saved_classifier_loads_in_safe_mode(classifier, tmp_path):
    _, model = classifier
    path = tmp_path / "model.keras"
    train.save_model(model, {"classes": list(FAMILIES), "backbone": "musicnn_msd"}, path)
    loaded, _ = train.load_model(path)
    X = _random_notes(2, seed=5)
    np.testing.assert_allclose(loaded.predict(X, verbose=0), model.predict(X, verbose=0),
                               rtol=1e-5, atol=1e-6)
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]


def test_staged_training_moves_only_what_it_unfreezes(tmp_path):
    keras.utils.set_random_seed(0)
    backbone = backbones.get_backbone("musicnn_mtt")
    model = backbones.build_classifier(backbone)
    y = np.arange(33) % len(FAMILIES)
    X = _random_notes(33) + y[:, None, None].astype("float32") * 0.2
    data = {name: train.Data(X[rows], y[rows].astype("int32"),
                             pd.DataFrame({"note_str": [f"n{k}" for k in rows]}))
            for name, rows in (("fit", np.arange(22)), ("valid", np.arange(22, 33)))}
    schedule = replace(train.schedule_for(profiles.get_profile("smoke")), max_unfrozen_blocks=2,
                       batch_size=11, min_improvement=-1.0)  # every stage kept
    before = [[np.array(w) for w in layer.weights] for layer in model.layers]
    state, history = train.staged_training(model, backbone, data, schedule, tmp_path)
    assert state.completed_stages == 3 and list(history.stage) == [0, 1, 2]
    start = backbones.block_start(model, backbone, 2)
    assert model.layers[start].name == "block4_midend"
    for index, layer in enumerate(model.layers):
        for old, weight in zip(before[index], layer.weights):
            moved = not np.array_equal(old, np.asarray(weight))
            if index < start or not weight.trainable:  # frozen blocks, every batch norm
                assert not moved, f"{layer.name}/{weight.name} changed although frozen"
            else:
                assert moved, f"{layer.name}/{weight.name} did not train"
