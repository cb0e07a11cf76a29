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
    power = _power(0, decay=0.04)
    x = np.log10(1 + power)[None]  # musicnn's scaling of a power of 1/10000 the size
    out = _describe(x)[0]
    db = librosa.power_to_db(power.T, ref=np.max, top_db=-descriptors.FLOOR_DB)
    mfcc = librosa.feature.mfcc(S=db, n_mfcc=descriptors.N_MFCC)  # (n_mfcc, frames)
    energy = power.sum(axis=1)
    audible = energy > descriptors.AUDIBLE * energy.max()
    assert 10 < audible.sum() < FRAMES  # the decay leaves some frames out
    np.testing.assert_allclose(out[:20], mfcc[:, audible].mean(axis=1), rtol=1e-3, atol=1e-2)
    np.testing.assert_allclose(out[20:40], mfcc[:, audible].std(axis=1), rtol=1e-3, atol=1e-2)
    assert out[NAMES.index("audible_frames")] == audible.sum()
    assert out[NAMES.index("peak_frame")] == np.argmax(energy)


def test_a_struck_note_falls_where_a_held_one_stays():
    held, struck = (_describe(np.log10(1 + _power(1, decay))[None])[0] for decay in (0.0, 0.05))
    late = NAMES.index("level_db_frame125")
    assert held[late] > -3.0
    assert struck[late] < -20.0
    assert struck[NAMES.index("audible_frames")] < held[NAMES.index("audible_frames")]


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**16), gain_db=st.floats(-30, 30))
def test_the_level_of_a_note_does_not_change_its_descriptors(seed, gain_db):
    db = 10 * np.log10(_power(seed, decay=0.01))
    np.testing.assert_allclose(_describe((db + gain_db)[None], "db_max"),
                               _describe(db[None], "db_max"), rtol=1e-3, atol=2e-3)


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
    expected = LogisticRegression(C=embeddings.STATISTICS_HEAD_C, max_iter=2000).fit(
        Z[fit], y[fit], sample_weight=weights[y[fit]]).predict_proba(Z)
    np.testing.assert_allclose(P[:, :-1], expected, atol=1e-4)
    picked = P[~fit][np.arange((~fit).sum()), y[~fit]]
    assert history["val_loss"].iloc[0] == pytest.approx(-np.log(picked).mean(), rel=1e-4)
