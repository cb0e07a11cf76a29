"""Predictions tables and the metrics computed from them (notebooks 03 to 06).

One table per model and selection of notes: the note's fields, the predicted family and the
probability of every family. Every metric and figure is computed from such a table.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .config import FAMILIES

NOTE_FIELDS = ("note_str", "family", "instrument_str", "source", "pitch", "velocity")


def predictions_table(probabilities: np.ndarray, notes: pd.DataFrame) -> pd.DataFrame:
    """One row per note: its fields, ``predicted`` and ``p_<family>`` for every family."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.shape != (len(notes), len(FAMILIES)):
        raise ValueError(f"expected probabilities of shape {(len(notes), len(FAMILIES))}, "
                         f"got {probabilities.shape}")
    fields = [c for c in (*NOTE_FIELDS, "soundfont") if c in notes.columns]
    table = notes[fields].reset_index(drop=True).copy()
    table["predicted"] = pd.Categorical(np.asarray(FAMILIES)[probabilities.argmax(axis=1)],
                                        categories=FAMILIES)
    for k, family in enumerate(FAMILIES):
        table[f"p_{family}"] = probabilities[:, k]
    return table


def predict(model, X: np.ndarray, notes: pd.DataFrame, batch_size: int = 128) -> pd.DataFrame:
    """The model's predictions table for features ``X`` of ``notes`` (rows in the same order)."""
    from .train import predict_in_chunks

    return predictions_table(predict_in_chunks(model, X, batch_size), notes)


def accuracy(table: pd.DataFrame) -> float:
    """Share of notes whose predicted family is the true one."""
    return float((table["predicted"].astype(str) == table["family"].astype(str)).mean())


def balanced_accuracy(table: pd.DataFrame) -> float:
    """Mean recall over the families present in the table (absent families are left out)."""
    correct = table["predicted"].astype(str) == table["family"].astype(str)
    return float(correct.groupby(table["family"].astype(str)).mean().mean())


def top_k_accuracy(table: pd.DataFrame, k: int = 2) -> float:
    """Share of notes whose true family is among the ``k`` most probable ones."""
    probabilities = table[[f"p_{family}" for family in FAMILIES]].to_numpy()
    top = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
    truth = table["family"].astype(str).map(FAMILIES.index).to_numpy()
    return float((top == truth[:, None]).any(axis=1).mean())


def per_family(table: pd.DataFrame) -> pd.DataFrame:
    """Precision, recall, F1 and support of every family; NaN (absent) where it has no notes.

    A family absent from the split (NSynth's held-out splits have no synth_lead) is
    reported as absent, never as zero. Precision is NaN where nothing was predicted as it.
    """
    truth = table["family"].astype(str)
    predicted = table["predicted"].astype(str)
    rows = {}
    for family in FAMILIES:
        support = int((truth == family).sum())
        hits = int(((truth == family) & (predicted == family)).sum())
        called = int((predicted == family).sum())
        recall = hits / support if support else np.nan
        precision = hits / called if called else np.nan
        f1 = (2 * precision * recall / (precision + recall)
              if support and called and precision + recall > 0 else (0.0 if support else np.nan))
        rows[family] = {"precision": precision, "recall": recall, "f1": f1, "support": support}
    return pd.DataFrame.from_dict(rows, orient="index")


def bootstrap_accuracy(table: pd.DataFrame, n_resamples: int = 1000, level: float = 0.95,
                       seed: int = 0) -> tuple[float, float]:
    """Confidence interval for accuracy, resampling instruments (not notes) with replacement.

    Notes of one instrument are not independent, so the instrument is the unit of sampling.
    """
    correct = (table["predicted"].astype(str) == table["family"].astype(str)).to_numpy()
    codes, instruments = pd.factorize(table["instrument_str"])
    hits = np.bincount(codes, weights=correct, minlength=len(instruments))
    counts = np.bincount(codes, minlength=len(instruments))
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(instruments), size=(n_resamples, len(instruments)))
    accuracies = hits[draws].sum(axis=1) / counts[draws].sum(axis=1)
    tail = (1 - level) / 2
    return float(np.quantile(accuracies, tail)), float(np.quantile(accuracies, 1 - tail))


def summary(table: pd.DataFrame, n_resamples: int = 1000, seed: int = 0) -> dict:
    """The headline metrics of one predictions table (``instclf evaluate``, notebooks 05, 06)."""
    low, high = bootstrap_accuracy(table, n_resamples=n_resamples, seed=seed)
    return {"notes": len(table), "instruments": int(table["instrument_str"].nunique()),
            "accuracy": accuracy(table), "accuracy_ci95": [low, high],
            "balanced_accuracy": balanced_accuracy(table), "top2_accuracy": top_k_accuracy(table)}


def evaluate_folder(model_path, folder, progress: bool = False) -> tuple[pd.DataFrame, dict]:
    """Predictions table and metrics of a saved model on any NSynth-format folder."""
    from . import features, nsynth, train

    model, meta = train.load_model(model_path)
    front_end = features.FrontEnd.from_dict(meta["front_end"])
    notes = nsynth.read_split(folder)
    X = features.compute_features(list(notes["path"]), front_end, progress=progress)
    table = predict(model, X, notes)
    return table, summary(table)
