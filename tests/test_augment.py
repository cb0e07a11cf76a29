"""Augmentation transforms, augmented training data, per-clip normalisation, run keys, and the
training-time accounting of notebook 04's equal-wall-time comparison."""

from __future__ import annotations

from dataclasses import replace

import keras
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from instclf import augment, backbones, features, plots, train
from instclf.config import FAMILIES, InstclfError
from instclf.profiles import get_profile

FE = features.MUSICNN  # musicnn's log10_1p features, (frames, mel bands)
SHAPE = FE.shape  # (187 frames, 96 mel bands)
STUDY = features.STUDY  # the study's dB re max, (mel bands, frames)


def _features(n=4, seed=0, dtype="float32", front_end=FE):
    """Plausible features of the front end: its scaling of random mel power."""
    power = np.random.default_rng(seed).gamma(0.5, 0.02, (n, *front_end.shape))
    return front_end.from_power(power).astype(dtype)


# --- the scaling ----------------------------------------------------------------------------

def test_power_round_trip_and_silence():
    X = _features()
    np.testing.assert_allclose(FE.from_power(FE.to_power(X)), X, rtol=1e-5, atol=1e-5)
    assert FE.to_power(np.zeros(3)).tolist() == [0.0, 0.0, 0.0]
    assert FE.from_power(np.array([1e-4]))[0] == pytest.approx(np.log10(2.0))
    assert FE.silent == 0.0


# --- gain and equalisation ------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_gain_keeps_shape_and_dtype(dtype):
    X = _features(dtype=dtype)
    out = augment.apply_gain(X, FE, 6.0)
    assert out.shape == X.shape and out.dtype == X.dtype


def test_gain_multiplies_mel_power():
    X = _features()
    for gain_db in (-6.0, 3.0):
        ratio = FE.to_power(augment.apply_gain(X, FE, gain_db)) / np.maximum(
            FE.to_power(X), 1e-12)
        loud = FE.to_power(X) > 1e-3
        np.testing.assert_allclose(ratio[loud], 10 ** (gain_db / 10), rtol=1e-3)
    assert np.all(augment.apply_gain(X, FE, 6.0) > X)
    silent = np.zeros((1, *SHAPE), np.float32)
    assert np.all(augment.apply_gain(silent, FE, 6.0) == FE.silent)


def test_gain_per_clip():
    X = _features(2)
    out = augment.apply_gain(X, FE, np.array([0.0, -6.0]))
    np.testing.assert_allclose(out[0], X[0], atol=1e-5)
    assert np.all(out[1] <= X[1] + 1e-6) and not np.allclose(out[1], X[1])


def test_eq_curve_is_gentle_and_smooth():
    rng = np.random.default_rng(0)
    for _ in range(50):
        curve = augment.eq_curve(96, rng.uniform(-3, 3), rng.uniform(-3, 3),
                                 rng.uniform(0, 95), rng.uniform(4, 16), limit_db=3.0)
        assert curve.shape == (96,) and np.all(np.abs(curve) <= 3.0 + 1e-6)
        assert np.max(np.abs(np.diff(curve))) < 0.6  # no band jumps away from its neighbour
    tilt = augment.eq_curve(96, 2.0, 0.0, 0.0, 8.0, limit_db=3.0)
    assert tilt[0] == pytest.approx(-2.0) and tilt[-1] == pytest.approx(2.0)


def test_eq_multiplies_each_band_by_its_curve():
    X = _features()
    curve = augment.eq_curve(96, 3.0, -2.0, 40.0, 8.0, limit_db=3.0)
    out = augment.apply_eq(X, FE, curve)
    assert out.shape == X.shape and out.dtype == X.dtype
    power, after = FE.to_power(X), FE.to_power(out)
    loud = power > 1e-3
    expected = np.broadcast_to(10 ** (curve / 10), X.shape)
    np.testing.assert_allclose((after / np.maximum(power, 1e-12))[loud], expected[loud], rtol=1e-3)


# --- time shift and masks -------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_time_shift_delays_and_pads_with_silence(dtype):
    X = _features(3, dtype=dtype)
    out = augment.time_shift(X, FE, 5)
    assert out.shape == X.shape and out.dtype == X.dtype
    np.testing.assert_array_equal(out[:, 5:], X[:, :-5])
    assert np.all(out[:, :5] == FE.silent)
    np.testing.assert_array_equal(augment.time_shift(X, FE, 0), X)
    per_clip = augment.time_shift(X, FE, np.array([0, 1, 8]))
    np.testing.assert_array_equal(per_clip[0], X[0])
    np.testing.assert_array_equal(per_clip[2, 8:], X[2, :-8])
    np.testing.assert_array_equal(augment.time_shift(X[1], FE, 1), per_clip[1])  # one clip alone
    with pytest.raises(ValueError):
        augment.time_shift(X, FE, -1)


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_masks_silence_exactly_the_stated_bands_and_frames(dtype):
    X = _features(2, dtype=dtype) + np.asarray(0.1, dtype)  # no zeros before masking
    bands = augment.mask_bands(X, FE, 10, 8)
    assert bands.shape == X.shape and bands.dtype == X.dtype
    assert np.all(bands[..., 10:18] == 0)
    np.testing.assert_array_equal(np.delete(bands, range(10, 18), axis=-1),
                                  np.delete(X, range(10, 18), axis=-1))
    frames = augment.mask_frames(X, FE, np.array([0, 100]), np.array([16, 3]))
    assert np.all(frames[0, :16] == 0) and np.all(frames[1, 100:103] == 0)
    assert (frames == 0).sum() == (16 + 3) * SHAPE[1]
    np.testing.assert_array_equal(augment.mask_bands(X, FE, 5, 0), X)  # width 0: nothing


# --- the front end's axes and scaling: the study's (mel bands, frames) in dB re max -------

@pytest.mark.parametrize("front_end", list(features.FRONT_ENDS.values()),
                         ids=lambda front_end: front_end.name)
def test_axes_and_silence_are_those_the_front_end_computes(front_end):
    """A 220 Hz tone after one second of silence: its energy sits in low bands on the mel
    axis, and the silent first frames (on the time axis) hold the front end's silent value."""
    t = np.arange(3 * features.SOURCE_RATE) / features.SOURCE_RATE
    clip = np.where(t >= 1.0, 0.5 * np.sin(2 * np.pi * 220 * t), 0.0).astype("float32")
    X = features.batch_features(clip[None], front_end)[0]
    bands = X.mean(axis=front_end.time_axis)
    frames = X.max(axis=front_end.mel_axis)
    assert bands.shape == (front_end.n_mels,) and frames.shape == (front_end.frames,)
    assert np.argmax(bands) < front_end.n_mels // 8
    sounding = frames[round(2 * front_end.sample_rate / front_end.hop_length)]  # at 2 s
    assert np.all(frames[:20] == front_end.silent) and sounding > front_end.silent + 1


def test_study_scaling_is_librosas_db_re_max():
    import librosa

    power = np.random.default_rng(0).gamma(0.5, 0.02, (3, *STUDY.shape)).astype("float32")
    power *= np.array([1e-3, 1.0, 1e3], "float32")[:, None, None]
    X = STUDY.from_power(power)
    np.testing.assert_array_equal(X, [librosa.power_to_db(S, ref=np.max) for S in power])
    assert X.min() == STUDY.silent == -80.0 and np.all(X.max(axis=(1, 2)) == 0)
    above = X > -70
    np.testing.assert_allclose(STUDY.from_power(STUDY.to_power(X))[above], X[above], atol=1e-4)
    assert np.all(STUDY.to_power(X)[X == STUDY.silent] == 0)  # the floor is silence
    assert np.all(STUDY.from_power(np.zeros((1, *STUDY.shape))) == STUDY.silent)


def _study_clip():
    """One study clip, its 0 dB peak at band 120, frame 120 (clear of the masks below)."""
    X = _features(1, front_end=STUDY)
    X[0, 120, 120] = 0.0
    return X


def test_study_gain_changes_nothing_it_is_relative_to_the_clip():
    X = _features(3, front_end=STUDY)
    for gain_db in (-6.0, 6.0, np.array([-3.0, 0.0, 3.0])):
        out = augment.apply_gain(X, STUDY, gain_db)
        assert out.shape == X.shape and out.dtype == X.dtype
        np.testing.assert_allclose(out, X, atol=1e-4)


def test_study_eq_acts_on_the_mel_axis_and_stays_within_range():
    X = _features(2, front_end=STUDY)
    curve = augment.eq_curve(STUDY.n_mels, 3.0, -2.0, 40.0, 8.0, limit_db=3.0)
    out = augment.apply_eq(X, STUDY, curve)
    assert out.shape == X.shape and out.min() >= -80 and np.all(out.max(axis=(1, 2)) == 0)
    change = out - X - curve[:, None]  # band b moved by curve[b] less the new peak's move
    for k in range(2):
        loud = (X[k] > -60) & (out[k] > -60)
        assert np.ptp(change[k][loud]) < 1e-3
    assert not np.allclose(out, X, atol=0.5)


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_study_shift_and_masks_work_on_their_axes(dtype):
    X = _study_clip().astype(dtype)
    shifted = augment.time_shift(X, STUDY, 5)
    assert shifted.dtype == X.dtype
    np.testing.assert_array_equal(shifted[..., 5:], X[..., :-5])
    assert np.all(shifted[..., :5] == STUDY.silent)
    bands = augment.mask_bands(X, STUDY, 10, 8)
    assert np.all(bands[:, 10:18, :] == -80)
    np.testing.assert_array_equal(np.delete(bands, range(10, 18), axis=1),
                                  np.delete(X, range(10, 18), axis=1))
    frames = augment.mask_frames(X, STUDY, 20, 10)
    assert np.all(frames[:, :, 20:30] == -80)
    np.testing.assert_array_equal(np.delete(frames, range(20, 30), axis=2),
                                  np.delete(X, range(20, 30), axis=2))


def test_study_mask_over_the_peak_refers_the_clip_to_its_new_peak():
    X = np.full((1, *STUDY.shape), -40.0, "float32")
    X[0, 12, 50], X[0, 60, 60], X[0, 100, 100] = 0.0, -10.0, -80.0
    out = augment.mask_bands(X, STUDY, 10, 8)
    assert out[0, 60, 60] == 0 and out[0, 0, 0] == -30  # lifted by the 10 dB lost
    assert out[0, 12, 50] == -80 and out[0, 100, 100] == -80  # masked; the floor stays floor


def test_study_augmented_copies_stay_in_the_front_ends_range():
    X = _features(6, front_end=STUDY, dtype="float16")
    settings = augment.Augmentation(seed=1)
    out = augment.augment_clips(X, STUDY, settings)
    assert out.shape == X.shape and out.dtype == X.dtype
    assert out.min() >= -80 and np.all(out.max(axis=(1, 2)) == 0)
    assert not np.array_equal(out, X)
    np.testing.assert_array_equal(out, augment.augment_clips(X, STUDY, settings))


def test_features_of_another_front_end_are_refused():
    X = _features(2)  # musicnn's (187, 96)
    for call in (lambda: augment.apply_gain(X, STUDY, 1.0),
                 lambda: augment.mask_bands(X, STUDY, 0, 4),
                 lambda: augment.augment_clips(X, STUDY, augment.Augmentation())):
        with pytest.raises(ValueError, match="study"):
            call()


def test_spectrogram_figure_draws_either_layout_with_the_front_ends_units():
    study, musicnn = _features(1, front_end=STUDY)[0], _features(1)[0]
    for S, front_end in ((study, STUDY), (musicnn, FE)):
        fig = plots.plot_family_spectrograms({"a": S, "b": S}, front_end, ncols=2)
        mesh = fig.axes[0].collections[0]  # librosa.display.specshow's QuadMesh
        image = np.asarray(mesh.get_array()).reshape(front_end.n_mels, front_end.frames)
        np.testing.assert_array_equal(image, np.moveaxis(S, front_end.mel_axis, 0))
        assert fig.axes[0].get_xlabel() == "time (s)" and "Hz" in fig.axes[0].get_ylabel()
        assert fig.axes[-1].get_ylabel() == front_end.units
        plt.close(fig)


# --- random draws ---------------------------------------------------------------------------

def test_parameters_stay_within_the_settings():
    settings = augment.Augmentation(max_shift_frames=4, freq_mask_bands=8, time_mask_frames=16)
    p = augment.draw_parameters(500, FE, settings)
    assert list(p.columns) == list(augment.PARAMETER_COLUMNS) and len(p) == 500
    assert p.gain_db.abs().max() <= 6 and p.tilt_db.abs().max() <= 3
    assert p["shift"].between(0, 4).all() and p["shift"].nunique() == 5
    assert p.band_width.between(0, 8).all() and (p.band_start + p.band_width <= 96).all()
    assert p.frame_width.between(0, 16).all() and (p.frame_start + p.frame_width <= 187).all()


def test_same_seed_same_output_other_seed_or_copy_differs():
    X = _features(6, dtype="float16")
    settings = augment.Augmentation(seed=3)
    first = augment.augment_clips(X, FE, settings)
    assert first.shape == X.shape and first.dtype == X.dtype
    np.testing.assert_array_equal(first, augment.augment_clips(X, FE, settings))
    assert not np.array_equal(first, augment.augment_clips(X, FE, replace(settings, seed=4)))
    assert not np.array_equal(first, augment.augment_clips(X, FE, settings, copy=2))
    assert not np.array_equal(first, X)


def test_chunking_does_not_change_the_result(monkeypatch):
    X = _features(7)
    settings = augment.Augmentation()
    whole = augment.augment_clips(X, FE, settings)
    monkeypatch.setattr(augment, "_CHUNK", 3)
    np.testing.assert_array_equal(augment.augment_clips(X, FE, settings), whole)


def test_transform_applies_each_step():
    X = _features(1) + np.float32(0.1)
    p = pd.DataFrame([{"gain_db": 0.0, "tilt_db": 0.0, "bump_db": 0.0, "bump_centre": 0.0,
                       "bump_width": 8.0, "shift": 2, "band_start": 90, "band_width": 6,
                       "frame_start": 50, "frame_width": 4}])
    out = augment.transform(X, FE, p, eq_limit_db=3.0)
    expected = augment.mask_frames(
        augment.mask_bands(augment.time_shift(X, FE, 2), FE, 90, 6), FE, 50, 4)
    np.testing.assert_allclose(out, expected, atol=1e-5)
    with pytest.raises(ValueError):
        augment.transform(X, FE, pd.concat([p, p]), 3.0)


def test_augmented_data_appends_copies():
    n = 5
    X = _features(n, dtype="float16")
    notes = pd.DataFrame({"note_str": [f"n{k}" for k in range(n)],
                          "family": pd.Categorical(["bass", "flute", "bass", "organ", "vocal"],
                                                   categories=FAMILIES)})
    y = train.labels(notes)
    before = X.copy()
    out_X, out_y, out_notes = augment.augmented(X, y, notes, FE, augment.Augmentation(copies=2))
    assert out_X.shape == (3 * n, *SHAPE) and out_X.dtype == X.dtype and len(out_y) == 3 * n
    np.testing.assert_array_equal(out_X[:n], X)
    np.testing.assert_array_equal(out_y, np.tile(y, 3))
    assert out_notes["copy"].tolist() == [0] * n + [1] * n + [2] * n
    assert out_notes["note_str"].tolist() == list(notes.note_str) * 3
    assert not np.array_equal(out_X[n:2 * n], out_X[2 * n:])
    np.testing.assert_array_equal(X, before)  # the input is left alone
    assert "copy" not in notes.columns


# --- run keys -------------------------------------------------------------------------------

def _key_data():
    notes = pd.DataFrame({"note_str": ["a", "b"]})
    one = train.Data(np.zeros((2, *SHAPE), "float32"), np.zeros(2, "int32"), notes)
    return {"fit": one, "valid": one}


def test_augmentation_gets_its_own_run_key():
    backbone, schedule = backbones.get_backbone("musicnn_vgg_msd"), train.Schedule()
    data = _key_data()
    plain = train.run_key(backbone, schedule, data)
    assert plain == train.run_key(backbone, schedule, data, None)
    one = train.run_key(backbone, schedule, data, augment.Augmentation().settings())
    two = train.run_key(backbone, schedule, data, augment.Augmentation(copies=2).settings())
    assert len({plain, one, two}) == 3
    assert one == train.run_key(backbone, schedule, data, augment.Augmentation().settings())


def test_trained_model_refuses_data_already_augmented():
    data = _key_data()
    data["fit"] = train.Data(data["fit"].X, data["fit"].y, data["fit"].notes.assign(copy=0))
    with pytest.raises(InstclfError, match="augmentation="):
        train.trained_model(get_profile("smoke"), "musicnn_vgg_msd", data=data)


# --- per-clip normalisation -----------------------------------------------------------------

def test_clip_standardization_gives_every_clip_the_target_statistics():
    layer = backbones.ClipStandardization(2.0, 1.5)
    X = np.random.default_rng(0).uniform(0, 3, (3, *SHAPE)).astype("float32")
    X *= np.array([1.0, 0.5, 2.0], "float32")[:, None, None]  # clip std 0.4 to 1.7, as real
    out = keras.ops.convert_to_numpy(layer(X))
    np.testing.assert_allclose(out.mean(axis=(1, 2)), 2.0, atol=1e-4)
    var = X.var(axis=(1, 2))
    np.testing.assert_allclose(out.std(axis=(1, 2)), 1.5 * np.sqrt(var / (var + 1e-4)), rtol=1e-4)
    shifted = keras.ops.convert_to_numpy(layer(1.7 * X + 0.4))  # level and contrast removed
    np.testing.assert_allclose(shifted, out, atol=1e-3)
    silent = keras.ops.convert_to_numpy(layer(np.zeros((1, *SHAPE), "float32")))
    assert np.all(silent == 2.0)


def _tiny_normalised_model():
    keras.utils.set_random_seed(0)
    return keras.Sequential([
        keras.Input(SHAPE), backbones.ClipStandardization(2.2, 1.3, name="clip_norm"),
        keras.layers.Reshape((*SHAPE, 1)), keras.layers.Conv2D(4, 3, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(len(FAMILIES), activation="softmax")])


def test_normalisation_layer_round_trips_in_safe_mode(tmp_path):
    model = _tiny_normalised_model()
    path = tmp_path / "normalised.keras"
    train.save_model(model, {"classes": list(FAMILIES)}, path)
    loaded, _ = train.load_model(path)
    layer = loaded.get_layer("clip_norm")
    assert isinstance(layer, backbones.ClipStandardization)
    assert (layer.target_mean, layer.target_std) == pytest.approx((2.2, 1.3))
    X = _features(3)
    np.testing.assert_array_equal(loaded.predict(X, verbose=0), model.predict(X, verbose=0))


def test_clipnorm_backbone_aims_at_the_input_batch_norm():
    backbone = backbones.get_backbone("musicnn_vgg_msd_clipnorm")
    assert backbone.front_end == backbones.get_backbone("musicnn_vgg_msd").front_end
    model = backbones.build_classifier(backbone)
    assert model.layers[0].name == "clip_norm"
    bn = model.get_layer("input_bn")
    layer = model.layers[0]
    assert layer.target_mean == pytest.approx(float(bn.moving_mean.numpy()[0]))
    assert layer.target_std == pytest.approx(float(np.sqrt(bn.moving_variance.numpy()[0])))
    names = [layer.name for layer in model.layers]
    assert names[backbones.block_start(model, backbone, 2)] == "block4_conv"


# --- training time, for the equal-wall-time comparison --------------------------------------

def _history():
    return pd.DataFrame({"stage": [0, 0, 1, 1], "epoch": [1, 2, 3, 4],
                         "seconds": [1.0, 1.0, 2.0, 2.0],
                         "val_loss": [1.0, 0.8, 0.9, 0.5],
                         "val_accuracy": [0.5, 0.6, 0.55, 0.7]})


def test_elapsed_history_counts_activations_and_stage_overheads():
    meta = {"activation_seconds": 10.0, "stage_seconds": [3.0, 5.0], "training_seconds": 18.0}
    elapsed = train.elapsed_history(_history(), meta)["elapsed_seconds"].tolist()
    assert elapsed == pytest.approx([12.0, 13.0, 16.0, 18.0])
    bare = train.elapsed_history(_history(), {})["elapsed_seconds"].tolist()
    assert bare == pytest.approx([1.0, 2.0, 4.0, 6.0])


def test_elapsed_history_puts_each_frozen_pass_before_its_stage():
    # a head-only run (pass of 6 s before stage 0) extended later (pass of 4 s before stage 1)
    meta = {"activation_seconds": 10.0, "activation_passes": [[0, 6.0], [1, 4.0]],
            "stage_seconds": [3.0, 5.0]}
    elapsed = train.elapsed_history(_history(), meta)["elapsed_seconds"].tolist()
    assert elapsed == pytest.approx([8.0, 9.0, 16.0, 18.0])


def test_accuracy_at_takes_the_kept_epoch():
    history = train.elapsed_history(_history(), {"activation_seconds": 10.0,
                                                 "stage_seconds": [3.0, 5.0]})
    assert np.isnan(train.accuracy_at(history, 11.9))
    assert train.accuracy_at(history, 12.0) == 0.5
    assert train.accuracy_at(history, 16.5) == 0.6  # epoch 3 is worse on val_loss: keep epoch 2
    assert train.accuracy_at(history, 100.0) == 0.7
