"""Metrics from a predictions table, against values computed by hand."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from instclf import embeddings, evaluate
from instclf.config import FAMILIES, InstclfError
from instclf.profiles import Profile

PROFILE = Profile(name="t", sources=())


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


def test_confusion_counts_and_rows(table):
    counts = evaluate.confusion(table)
    assert list(counts.index) == ["bass", "flute", "guitar"]  # absent families have no row
    assert list(counts.columns) == list(FAMILIES)
    assert counts.loc["bass", "bass"] == 2 and counts.loc["bass", "guitar"] == 1
    assert counts.loc["guitar", "bass"] == 1 and counts.to_numpy().sum() == len(table)
    shares = evaluate.confusion(table, normalize=True)
    assert shares.loc["bass", "guitar"] == pytest.approx(1 / 3)
    assert np.allclose(shares.sum(axis=1), 1)


def test_confused_pairs_and_the_notes_behind_them(table):
    pairs = evaluate.confused_pairs(table)
    assert len(pairs) == 2
    # one note each; bass->guitar is 1 of 3 bass notes, guitar->bass 1 of 2 guitar notes
    assert list(zip(pairs.true, pairs.predicted)) == [("guitar", "bass"), ("bass", "guitar")]
    assert pairs.share_of_true.tolist() == pytest.approx([1 / 2, 1 / 3])
    behind = evaluate.notes_behind(table, "bass", "guitar")
    assert behind.instrument_str.tolist() == ["bass_b"]


def test_accuracy_by_values_and_bins(table):
    by_pitch = evaluate.accuracy_by(table, "pitch", bins=[60, 63, 66])
    assert by_pitch.notes.tolist() == [3, 3]
    assert by_pitch.accuracy.tolist() == pytest.approx([2 / 3, 2 / 3])
    by_velocity = evaluate.accuracy_by(table, "velocity")
    assert by_velocity.loc[100].tolist() == pytest.approx([4 / 6, 6])


def test_instrument_accuracy_worst_first(table):
    instruments = evaluate.instrument_accuracy(table)
    assert instruments.index[0] == "bass_b" and instruments.accuracy.iloc[0] == 0
    assert instruments.loc["bass_b", "most_predicted"] == "guitar"
    assert instruments.loc["guitar_a", "accuracy"] == 0.5
    assert instruments.notes.sum() == len(table)


def test_reliability_and_calibration_error(table):
    # confidences 0.9 0.8 0.6 0.7 0.5 0.9; right: 1 1 0 1 0 1
    bins = evaluate.reliability(table, n_bins=2)
    assert bins.notes.tolist() == [1, 5]  # 0.5 falls in the lower bin (edges are inclusive above)
    assert bins.accuracy.tolist() == pytest.approx([0.0, 4 / 5])
    assert bins.confidence.tolist() == pytest.approx([0.5, (0.9 + 0.8 + 0.6 + 0.7 + 0.9) / 5])
    expected = (1 * 0.5 + 5 * abs(0.78 - 0.8)) / 6
    assert evaluate.expected_calibration_error(table, n_bins=2) == pytest.approx(expected)


def test_leave_one_lineage_out_trains_without_the_left_out_lineage(monkeypatch, tmp_path):
    # three lineages whose embeddings put the families in the same places, plus noise; the
    # head is replaced by a nearest-centroid classifier that records what it was fit on
    rng = np.random.default_rng(0)
    rows, E = [], []
    for lineage in ("A", "B", "C"):
        for k, family in enumerate(("bass", "flute", "organ")):
            for n in range(8):
                rows.append({"note_str": f"{family}_{lineage}-{60 + n:03d}-100",
                             "instrument_str": f"{family}_{lineage}", "family": family,
                             "source": "acoustic", "pitch": 60 + n, "velocity": 100,
                             "lineage": lineage, "split": "valid" if n % 4 == 0 else "train"})
                E.append(np.eye(3)[k] + rng.normal(0, 0.1, 3))
    notes = pd.DataFrame(rows)
    notes["family"] = pd.Categorical(notes["family"], categories=FAMILIES)
    fits = []

    class Centroids:
        def __init__(self, E, y, fit):
            self.classes = np.unique(y[fit])
            self.centres = np.stack([E[fit][y[fit] == c].mean(axis=0) for c in self.classes])

        def predict(self, X, verbose=0):
            nearest = self.classes[np.argmin(((X[:, None] - self.centres) ** 2).sum(-1), axis=1)]
            return np.eye(len(FAMILIES))[nearest]

    def fake_head(E, y, fit, valid, profile, seed=0):
        fits.append((set(notes.lineage[fit]), set(notes.lineage[valid]),
                     set(notes.split[fit]), set(notes.split[valid])))
        return Centroids(E, y, fit)

    monkeypatch.setattr(embeddings, "head_on_embeddings", fake_head)
    profile = replace(PROFILE, data_dir=tmp_path)
    E = np.array(E, np.float32)
    per_lineage, tables = embeddings.cached_leave_one_lineage_out(E, notes, profile)
    again = embeddings.cached_leave_one_lineage_out(E, notes, profile)
    assert len(fits) == 3, "the second call trains no head"
    pd.testing.assert_frame_equal(again[0], per_lineage, check_dtype=False)
    assert (again[1].predicted == tables.predicted).all()
    assert per_lineage.lineage.tolist() == ["A", "B", "C"]
    assert fits == [({"B", "C"}, {"B", "C"}, {"train"}, {"valid"}),
                    ({"A", "C"}, {"A", "C"}, {"train"}, {"valid"}),
                    ({"A", "B"}, {"A", "B"}, {"train"}, {"valid"})]
    assert per_lineage.notes.tolist() == [24, 24, 24] and len(tables) == 72
    assert set(tables.lineage) == {"A", "B", "C"}
    assert (per_lineage.accuracy == 1).all()


def test_the_frozen_head_standardises_each_column_from_its_fitted_rows_only(tmp_path):
    # two columns a thousandfold apart in scale; the rows left out of fit are far off, so
    # statistics that saw them would differ
    rng = np.random.default_rng(0)
    E = rng.normal(0, 1, (60, 2)).astype(np.float32) * np.float32([1, 1000])
    y = np.arange(60) % 2
    fit, valid = np.arange(60) < 40, (np.arange(60) >= 40) & (np.arange(60) < 50)
    E[50:] += 1e5
    profile = replace(PROFILE, data_dir=tmp_path, head_epochs=1, patience=1)
    head = embeddings.head_on_embeddings(E, y, fit, valid, profile)
    standardise = head.layers[0]
    np.testing.assert_allclose(np.ravel(standardise.mean), E[fit].mean(axis=0), rtol=1e-4)
    np.testing.assert_allclose(np.ravel(standardise.variance), E[fit].var(axis=0), rtol=1e-3)
    assert head.predict(E[:5], verbose=0).shape == (5, len(FAMILIES))


def _instruments_table(right_per_instrument, notes=4):
    """Four notes of each instrument, the first ``right`` of them predicted right."""
    return _table([(f"inst{i}", "bass", "bass" if k < right else "guitar", 0.8)
                   for i, right in enumerate(right_per_instrument) for k in range(notes)])


def test_paired_bootstrap_of_a_table_against_itself_is_zero():
    table = _instruments_table([1, 2, 3, 4, 0, 2])
    assert evaluate.paired_bootstrap(table, table) == (0.0, (0.0, 0.0))


def test_paired_bootstrap_better_on_every_instrument_lies_above_zero():
    plain = _instruments_table([1, 2, 3, 0, 1, 2, 0, 3])
    better = _instruments_table([2, 3, 4, 1, 2, 3, 1, 4])  # one more note right everywhere
    difference, (low, high) = evaluate.paired_bootstrap(plain, better)
    assert difference == pytest.approx(0.25) and low == pytest.approx(0.25) == high
    # unpaired, the two accuracies' own intervals overlap: pairing is what separates them
    assert evaluate.bootstrap_accuracy(better)[0] < evaluate.bootstrap_accuracy(plain)[1]


def test_paired_bootstrap_interval_straddles_zero_when_gains_and_losses_mix():
    plain = _instruments_table([2, 2, 2, 2, 2, 2, 2, 2])
    mixed = _instruments_table([4, 0, 3, 1, 4, 0, 3, 1])  # as many notes gained as lost
    difference, (low, high) = evaluate.paired_bootstrap(plain, mixed, seed=1)
    assert difference == 0 and low < 0 < high
    assert evaluate.paired_bootstrap(mixed, plain, seed=1)[1] == pytest.approx((-high, -low))


def test_paired_bootstrap_refuses_tables_of_different_notes():
    with pytest.raises(ValueError, match="same notes"):
        evaluate.paired_bootstrap(_instruments_table([1, 2]), _instruments_table([1, 2, 3]))


# --- against scikit-learn, on a random predictions table ------------------------------------

def _random_table(seed: int, notes: int = 300, absent: tuple[str, ...] = ("vocal",)):
    """Random true families (some absent) and random probabilities: every metric's edge."""
    rng = np.random.default_rng(seed)
    present = [f for f in FAMILIES if f not in absent]
    families = rng.choice(present, size=notes)
    notes_table = pd.DataFrame({
        "note_str": [f"n{k:04d}" for k in range(notes)], "instrument_str": [f"i{k % 40}" for k in range(notes)],
        "family": pd.Categorical(families, categories=FAMILIES), "source": "acoustic",
        "pitch": 60, "velocity": 100})
    probabilities = rng.dirichlet(np.ones(len(FAMILIES)) * 0.5, size=notes)
    return evaluate.predictions_table(probabilities, notes_table)


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_agree_with_sklearn(seed):
    metrics = pytest.importorskip("sklearn.metrics")
    table = _random_table(seed)
    truth, predicted = table["family"].astype(str), table["predicted"].astype(str)
    assert evaluate.accuracy(table) == pytest.approx(metrics.accuracy_score(truth, predicted))
    # sklearn's balanced accuracy is the mean recall over the true classes present, as ours
    assert evaluate.balanced_accuracy(table) == pytest.approx(
        metrics.balanced_accuracy_score(truth, predicted))
    present = sorted(set(truth))
    precision, recall, f1, support = metrics.precision_recall_fscore_support(
        truth, predicted, labels=present, zero_division=np.nan)
    ours = evaluate.per_family(table).loc[present]
    np.testing.assert_allclose(ours["precision"], precision, equal_nan=True)
    np.testing.assert_allclose(ours["recall"], recall)
    np.testing.assert_allclose(ours["f1"], np.nan_to_num(f1, nan=0.0))
    np.testing.assert_array_equal(ours["support"], support)
    counts = evaluate.confusion(table)
    expected = metrics.confusion_matrix(truth, predicted, labels=list(FAMILIES))
    rows = [FAMILIES.index(f) for f in counts.index]
    np.testing.assert_array_equal(counts.to_numpy(), expected[rows])
    assert list(counts.index) == [f for f in FAMILIES if f in present]
    np.testing.assert_allclose(evaluate.confusion(table, normalize=True).to_numpy(),
                               metrics.confusion_matrix(truth, predicted, labels=list(FAMILIES),
                                                        normalize="true")[rows])
    scores = table[[f"p_{f}" for f in FAMILIES]].to_numpy()
    assert evaluate.top_k_accuracy(table, 2) == pytest.approx(metrics.top_k_accuracy_score(
        truth, scores, k=2, labels=list(FAMILIES)))


def test_a_recorded_copy_is_resampled_with_its_dry_note():
    notes = pd.DataFrame({
        "note_str": ["flute_synthetic_003-060-100", "flute_synthetic_003-062-100",
                     "flute_synthetic_10003-060-100", "bass_synthetic_001-040-100"],
        "family": ["flute", "flute", "flute", "bass"], "source": "synthetic", "pitch": 60,
        "velocity": 100,
        "instrument_str": ["flute_synthetic_003"] * 2 + ["flute_synthetic_10003", "bass_synthetic_001"],
        "dry_note": [None, None, "flute_synthetic_003-060-100", None]})
    probabilities = np.eye(len(FAMILIES))[[FAMILIES.index(f) for f in ("flute", "bass", "flute", "bass")]]
    table = evaluate.predictions_table(probabilities, notes)
    assert table["dry_instrument"].tolist() == ["flute_synthetic_003"] * 3 + ["bass_synthetic_001"]
    assert evaluate.summary(table)["instruments"] == 2
    as_dry = table.drop(columns="dry_instrument").assign(instrument_str=table["dry_instrument"])
    assert evaluate.bootstrap_accuracy(table, seed=3) == evaluate.bootstrap_accuracy(as_dry, seed=3)
    apart = table.drop(columns="dry_instrument")  # a table without it: each instrument its own
    assert evaluate.sampling_units(apart).nunique() == 3 and evaluate.summary(apart)["instruments"] == 3


def test_leaving_out_the_only_lineage_is_refused_clearly(tmp_path):
    notes = pd.DataFrame({"note_str": ["a-060-100", "b-060-100"],
                          "family": pd.Categorical(["bass", "flute"], categories=FAMILIES),
                          "lineage": "nsynth", "split": "train", "instrument_str": ["a", "b"]})
    with pytest.raises(InstclfError, match="one lineage"):
        embeddings.leave_one_lineage_out(np.zeros((2, 3), np.float32), notes,
                                       replace(PROFILE, data_dir=tmp_path))
