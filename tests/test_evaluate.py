"""Metrics from a predictions table, against values computed by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from instclf import evaluate
from instclf.config import FAMILIES


def _table(rows):
    """rows: (instrument, true family, predicted family, probability of the prediction)."""
    probabilities = np.full((len(rows), len(FAMILIES)), 0.0)
    notes = []
    for k, (instrument, family, predicted, p) in enumerate(rows):
        probabilities[k] = (1 - p) / (len(FAMILIES) - 1)
        probabilities[k, FAMILIES.index(predicted)] = p
        notes.append({"note_str": f"{instrument}-{60 + k:03d}-100", "instrument_str": instrument,
                      "family": family, "source": "acoustic", "pitch": 60 + k, "velocity": 100})
    notes = pd.DataFrame(notes)
    notes["family"] = pd.Categorical(notes["family"], categories=FAMILIES)
    return evaluate.predictions_table(probabilities, notes)


@pytest.fixture
def table():
    return _table([
        ("bass_a", "bass", "bass", 0.9),
        ("bass_a", "bass", "bass", 0.8),
        ("bass_b", "bass", "guitar", 0.6),
        ("guitar_a", "guitar", "guitar", 0.7),
        ("guitar_a", "guitar", "bass", 0.5),
        ("flute_a", "flute", "flute", 0.9),
    ])


def test_accuracy_and_balanced_accuracy(table):
    assert evaluate.accuracy(table) == pytest.approx(4 / 6)
    # recalls: bass 2/3, guitar 1/2, flute 1/1
    assert evaluate.balanced_accuracy(table) == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)


def test_per_family_metrics_by_hand(table):
    metrics = evaluate.per_family(table)
    bass, guitar, flute = metrics.loc["bass"], metrics.loc["guitar"], metrics.loc["flute"]
    assert (bass.precision, bass.recall, bass.support) == (pytest.approx(2 / 3), pytest.approx(2 / 3), 3)
    assert bass.f1 == pytest.approx(2 / 3)
    assert (guitar.precision, guitar.recall) == (pytest.approx(1 / 2), pytest.approx(1 / 2))
    assert (flute.precision, flute.recall, flute.f1) == (1.0, 1.0, 1.0)


def test_absent_families_are_absent_not_zero(table):
    metrics = evaluate.per_family(table)
    synth_lead = metrics.loc["synth_lead"]
    assert synth_lead.support == 0
    assert np.isnan(synth_lead.recall) and np.isnan(synth_lead.precision) and np.isnan(synth_lead.f1)
    assert evaluate.balanced_accuracy(table) == pytest.approx(metrics.recall.mean())


def test_top_2_accuracy(table):
    # make the truth the clear second choice of one mistaken note (bass_b, predicted guitar)
    probabilities = table[[f"p_{f}" for f in FAMILIES]].to_numpy().copy()
    probabilities[2, FAMILIES.index("bass")] = 0.3  # truth second for the bass_b note
    probabilities[2] /= probabilities[2].sum()
    notes = table[["note_str", "instrument_str", "family", "source", "pitch", "velocity"]]
    fixed = evaluate.predictions_table(probabilities, notes)
    assert evaluate.top_k_accuracy(fixed, 1) == pytest.approx(evaluate.accuracy(fixed))
    assert evaluate.top_k_accuracy(fixed, 2) == pytest.approx(5 / 6)


def test_bootstrap_resamples_instruments(table):
    low, high = evaluate.bootstrap_accuracy(table, n_resamples=2000, seed=1)
    assert 0 <= low <= evaluate.accuracy(table) <= high <= 1
    # a resample of bass_a and flute_a only is all right; one of bass_b only is all wrong
    assert low < 0.5 and high == pytest.approx(1.0)
    same = evaluate.bootstrap_accuracy(table, n_resamples=2000, seed=1)
    assert same == (low, high)


def test_bootstrap_is_wider_when_notes_cluster_by_instrument():
    # 4 instruments x 10 notes, each instrument all right or all wrong: notes are not
    # independent, and the instrument-level interval is wider than a note-level one
    rows = [(f"i{k}", "bass", "bass" if k % 2 else "guitar", 0.9) for k in range(4)
            for _ in range(10)]
    table = _table(rows)
    low, high = evaluate.bootstrap_accuracy(table, n_resamples=4000, seed=0)
    note_level = 1.96 * np.sqrt(0.5 * 0.5 / len(table))
    assert (high - low) / 2 > note_level


def test_predictions_table_checks_its_shape(table):
    with pytest.raises(ValueError):
        evaluate.predictions_table(np.zeros((2, 3)), table.iloc[:2])
