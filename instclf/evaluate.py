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
    probabilities = np.concatenate([
        model.predict(np.asarray(X[k:k + batch_size], dtype=np.float32), verbose=0)
        for k in range(0, len(X), batch_size)]) if len(X) else np.zeros((0, len(FAMILIES)))
    return predictions_table(probabilities, notes)


def accuracy(table: pd.DataFrame) -> float:
    """Share of notes whose predicted family is the true one."""
    return float((table["predicted"].astype(str) == table["family"].astype(str)).mean())


def balanced_accuracy(table: pd.DataFrame) -> float:
    """Mean recall over the families present in the table (absent families are left out)."""
    correct = table["predicted"].astype(str) == table["family"].astype(str)
    return float(correct.groupby(table["family"].astype(str)).mean().mean())
