"""The note descriptors (instclf.descriptors) against librosa, and what they must not see."""

from __future__ import annotations

import keras
import librosa
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from instclf import descriptors, embeddings
from instclf.config import FAMILIES, InstclfError

FRAMES, MELS = 251, 96
NAMES = list(descriptors.NAMES)


def _power(seed: int, decay: float = 0.0) -> np.ndarray:
    """A (frames, mels) mel power spectrogram: random bands under an exponential decay."""
    rng = np.random.default_rng(seed)
    envelope = np.exp(-decay * np.arange(FRAMES))[:, None]
    return rng.gamma(2.0, 1.0, size=(FRAMES, MELS)) * np.linspace(2, 0.1, MELS) * envelope


def _describe(x: np.ndarray, scaling: str = "log10_1p", layout: str = "time_mel") -> np.ndarray:
    layer = descriptors.NoteDescriptors(scaling, layout)
    return keras.ops.convert_to_numpy(layer(x.astype(np.float32)))


def test_the_cepstral_part_is_librosas_mfcc_of_the_audible_frames():
    x = np.log10(1 + _power(0, decay=0.04))[None]  # musicnn's scaling, 1/10000 the power
    out = _describe(x)[0]
    power = 10.0 ** x[0].astype(np.float16).astype(np.float64) - 1  # read at float16 precision
    db = librosa.power_to_db(power.T, ref=np.max, top_db=-descriptors.FLOOR_DB)
    mfcc = librosa.feature.mfcc(S=db, n_mfcc=descriptors.N_MFCC)  # (n_mfcc, frames)
    level = 10 * np.log10(power.sum(axis=1) / power.sum(axis=1).max())
    weight = np.clip((level - descriptors.AUDIBLE_DB) / descriptors.RAMP_DB + 0.5, 0, 1)
    assert 10 < (weight == 1).sum() and (weight == 0).sum() > 10  # the decay leaves frames out
    mean = (mfcc * weight).sum(axis=1) / weight.sum()
    std = np.sqrt((np.square(mfcc - mean[:, None]) * weight).sum(axis=1) / weight.sum())
    np.testing.assert_allclose(out[:20], mean, rtol=1e-3, atol=1e-2)
    np.testing.assert_allclose(out[20:40], std, rtol=1e-3, atol=1e-2)
    assert out[NAMES.index("audible_frames")] == pytest.approx(weight.sum(), rel=1e-4)
    energy = power.sum(axis=1)
    assert out[NAMES.index("temporal_centroid")] == pytest.approx(
        (energy * np.arange(FRAMES)).sum() / energy.sum(), rel=1e-4)


def test_a_struck_note_falls_where_a_held_one_stays():
    held, struck = (_describe(np.log10(1 + _power(1, decay))[None])[0] for decay in (0.0, 0.05))
    late = NAMES.index("level_db_frame125")
    assert held[late] > -3.0
    assert struck[late] < -20.0
    assert struck[NAMES.index("audible_frames")] < held[NAMES.index("audible_frames")]


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**16), gain_db=st.floats(-30, 30, allow_subnormal=False))
def test_the_level_of_a_note_does_not_change_its_descriptors(seed, gain_db):
    db = 10 * np.log10(_power(seed, decay=0.01))
    # equal but for the float16 rounding of the features (0.03 dB at -60 dB)
    np.testing.assert_allclose(_describe((db + gain_db)[None], "db_max"),
                               _describe(db[None], "db_max"), rtol=1e-2, atol=0.1)


def test_both_layouts_and_a_channel_axis_give_the_same_descriptors():
    x = np.log10(1 + _power(2, decay=0.01))[None]
    expected = _describe(x)
    np.testing.assert_allclose(_describe(np.swapaxes(x, 1, 2), layout="mel_time"), expected,
                               rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(_describe(x[..., None]), expected, rtol=1e-5, atol=1e-4)


def test_unknown_features_are_refused():
    with pytest.raises(InstclfError, match="descriptors"):
        descriptors.NoteDescriptors("linear", "time_mel")


def test_the_statistics_head_is_the_logistic_regression_and_never_picks_an_absent_family():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    y = rng.integers(0, len(FAMILIES) - 1, size=300)  # the last family never occurs
    S = rng.normal(size=(300, 8)) * np.logspace(-3, 3, 8) + y[:, None]
    fit = np.arange(300) < 200
    head, history = embeddings.statistics_head(S, y, fit, ~fit)
    P = head.predict(S.astype(np.float32), verbose=0)
    assert P[:, -1].max() < 1e-12
    Z = (S - S[fit].mean(axis=0)) / S[fit].std(axis=0)
    weights = len(y[fit]) / (np.bincount(y[fit]).astype(bool).sum() * np.bincount(y[fit]))
    expected = LogisticRegression(C=embeddings.STATISTICS_HEAD_C, tol=embeddings.STATISTICS_HEAD_TOL,
                                  max_iter=2000).fit(
        Z[fit], y[fit], sample_weight=weights[y[fit]]).predict_proba(Z)
    np.testing.assert_allclose(P[:, :-1], expected, atol=1e-4)
    picked = P[~fit][np.arange((~fit).sum()), y[~fit]]
    assert history["val_loss"].iloc[0] == pytest.approx(-np.log(picked).mean(), rel=1e-4)


def test_features_from_a_float16_cache_and_fresh_ones_are_described_alike():
    x = np.log10(1 + _power(3, decay=0.02))[None].astype(np.float32)
    np.testing.assert_array_equal(_describe(x.astype(np.float16).astype(np.float32)), _describe(x))
