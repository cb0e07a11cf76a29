"""Every backbone's declared blocks are in its built model, contiguous and in order, between
the stem it starts with and the shared head; block_start and the scratch CNN follow them."""

from __future__ import annotations

from dataclasses import replace

import keras
import numpy as np
import pytest

from instclf import activations, backbones, descriptors, features, musicnn_arch
from instclf.config import FAMILIES, InstclfError

STEMS = {  # the layers below the first block: frozen with it, never a block of their own
    "musicnn_vgg": ["expand", "input_bn"],
    "musicnn_vgg_msd": ["expand", "input_bn"],
    "musicnn_vgg_msd_whole": ["expand", "input_bn"],
    "musicnn_vgg_msd_clipnorm": ["clip_norm", "expand", "input_bn"],
    "musicnn_msd": ["expand", "input_bn"],
    "musicnn_mtt": ["expand", "input_bn"],
    "vgg19": ["study_image"],
    "scratch_cnn": ["expand", "input_bn", "input_pool"],
}


@pytest.fixture(scope="module")
def built():
    """name -> (backbone, classifier); VGG19 with random weights (no download needed)."""
    keras.utils.set_random_seed(0)
    models = {}
    for name, backbone in backbones.BACKBONES.items():
        layers = backbones.vgg19_layers(backbone.front_end, pretrained=False) \
            if name == "vgg19" else None
        models[name] = backbone, backbones.build_classifier(backbone, layers=layers)
    return models


def test_every_backbone_has_a_stem_listed_here():
    assert set(STEMS) == set(backbones.BACKBONES)


@pytest.mark.parametrize("name", list(backbones.BACKBONES))
def test_declared_blocks_are_contiguous_in_order_between_stem_and_head(built, name):
    backbone, model = built[name]
    names = [layer.name for layer in model.layers]
    declared = [layer for block in backbone.blocks for layer in block]
    assert len(set(declared)) == len(declared) and set(declared) <= set(names)
    stem = STEMS[name]
    assert names == stem + declared + list(backbones.HEAD)
    new_scale = (keras.layers.MaxPooling2D, musicnn_arch.MaxMeanPooling, keras.layers.Reshape)
    for block in backbone.blocks:  # a block of several layers ends at a new scale (pooling)
        assert len(block) == 1 or isinstance(model.get_layer(block[-1]), new_scale)


@pytest.mark.parametrize("name", list(backbones.BACKBONES))
def test_block_start_is_the_first_layer_of_the_kth_block_from_the_top(built, name):
    backbone, model = built[name]
    names = [layer.name for layer in model.layers]
    assert names[backbones.block_start(model, backbone, 0)] == backbones.HEAD[0]
    starts = [backbones.block_start(model, backbone, k)
              for k in range(1, len(backbone.blocks) + 1)]
    assert [names[i] for i in starts] == [block[0] for block in reversed(backbone.blocks)]
    assert starts == sorted(starts, reverse=True)
    for k in (-1, len(backbone.blocks) + 1):
        with pytest.raises(InstclfError):
            backbones.block_start(model, backbone, k)


def test_block_start_refuses_a_model_of_another_backbone(built):
    _, musicnn_model = built["musicnn_vgg"]
    with pytest.raises(InstclfError, match="block5_conv1"):
        backbones.block_start(musicnn_model, backbones.get_backbone("vgg19"), 1)


def test_scratch_cnn_takes_its_front_end():
    scratch = replace(backbones.get_backbone("scratch_cnn"), front_end=features.STUDY)
    model = backbones.build_classifier(scratch)
    assert model.get_layer("expand").output.shape[1:] == (*features.STUDY.shape, 1)
    out = model.predict(np.zeros((2, *features.STUDY.shape), "float32"), verbose=0)
    assert out.shape == (2, len(FAMILIES))


@pytest.mark.parametrize("name", ["musicnn_vgg_msd_whole", "musicnn_msd", "scratch_cnn"])
def test_frozen_embeddings_are_the_heads_input_then_each_top_blocks_mean_and_max_then_descriptors(
        built, name):
    backbone, model = built[name]
    blocks = min(backbones.STATISTICS_BLOCKS, len(backbone.blocks))
    extract, split = backbones.frozen_embeddings(model, backbone, blocks)
    X = np.random.default_rng(0).normal(size=(3, *backbone.front_end.shape)).astype(np.float32)
    E = extract.predict(X, verbose=0)
    names = [layer.name for layer in model.layers]
    head_input = backbones.block_start(model, backbone, 0) + 1  # through the head's pooling
    np.testing.assert_allclose(E[:, :split], _through(model, X, head_input), rtol=1e-4, atol=1e-5)
    expected = []
    for block in backbone.blocks[-blocks:]:
        out = _through(model, X, names.index(block[-1]) + 1)
        axes = tuple(range(1, out.ndim - 1))
        if all(out.shape[axis] == 1 for axis in axes):  # one value per channel: given once
            expected.append(out.reshape(len(out), -1))
        else:
            expected += [out.mean(axis=axes), out.max(axis=axes)]
    expected.append(keras.ops.convert_to_numpy(descriptors.for_front_end(backbone.front_end)(X)))
    np.testing.assert_allclose(E[:, split:], np.concatenate(expected, axis=1), rtol=1e-4,
                               atol=1e-4)
    assert E.shape[1] - split == sum(e.shape[1] for e in expected[:-1]) + len(descriptors.NAMES)


def test_musicnn_back_end_statistics_give_each_pooled_value_once(built):
    backbone, model = built["musicnn_msd"]
    extract, _ = backbones.frozen_embeddings(model, backbone, pooled=False, with_descriptors=False)
    # block3_midend keeps time (mean and max of 689), the pooled back-end and penultimate not
    assert extract.output_shape[-1] == 2 * 689 + 1506 + 200


def test_a_head_on_several_frozen_backbones_reads_each_ones_statistics_then_descriptors(built):
    frozen = [built[name][0] for name in ("musicnn_vgg_msd_whole", "musicnn_msd")]
    X = np.random.default_rng(1).normal(size=(2, *frozen[0].front_end.shape)).astype(np.float32)
    parts = []
    for backbone in frozen:
        extract, _ = backbones.frozen_embeddings(built[backbone.name][1], backbone, pooled=False,
                                                 with_descriptors=False)
        parts.append(extract.predict(X, verbose=0))
    parts.append(keras.ops.convert_to_numpy(descriptors.for_front_end(frozen[0].front_end)(X)))
    expected = np.concatenate(parts, axis=1)
    identity = keras.Sequential([keras.Input((expected.shape[1],)), keras.layers.Identity()])
    classifier = backbones.block_statistics_classifier(frozen, identity)
    np.testing.assert_allclose(classifier.predict(X, verbose=0), expected, rtol=1e-4, atol=1e-4)
    assert not any(w.trainable for w in classifier.layers[1].weights)
    with pytest.raises(InstclfError, match="front end"):
        backbones.block_statistics_classifier([frozen[0], built["musicnn_vgg"][0]], identity)


def _through(model, X, stop):
    return activations.activations(model, X, 0, stop)


def test_frozen_embeddings_refuse_more_blocks_than_the_backbone_has(built):
    backbone, model = built["scratch_cnn"]
    with pytest.raises(InstclfError, match="blocks"):
        backbones.frozen_embeddings(model, backbone, len(backbone.blocks) + 1)
