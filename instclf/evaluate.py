"""Predictions tables and the metrics computed from them (notebooks 03 to 06).

One table per model and selection of notes: the note's fields, the predicted family and the
probability of every family. Every metric and figure is computed from such a table.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from .config import FAMILIES, InstclfError

NOTE_FIELDS = ("note_str", "family", "instrument_str", "source", "pitch", "velocity")
TABLE_FIELDS = (*NOTE_FIELDS, "soundfont", "lineage")  # those of a note table that has them


def dry_instruments(notes: pd.DataFrame) -> pd.Series:
    """The instrument each note was played on before any recording chain: a recorded copy
    and its dry note are one instrument for the bootstrap (they are not independent)."""
    if "dry_note" not in notes:
        return notes["instrument_str"].astype(str)
    dry = notes["dry_note"].where(notes["dry_note"].notna(), notes["note_str"])
    return dry.astype(str).str.rsplit("-", n=2).str[0]


def sampling_units(table: pd.DataFrame) -> pd.Series:
    """What the bootstrap resamples: each note's dry instrument where the table has one
    (:func:`predictions_table` always writes it), else its instrument."""
    return table["dry_instrument" if "dry_instrument" in table else "instrument_str"]


def predictions_table(probabilities: np.ndarray, notes: pd.DataFrame) -> pd.DataFrame:
    """One row per note: its fields, its ``dry_instrument`` (:func:`dry_instruments`),
    ``predicted`` and ``p_<family>`` for every family."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.shape != (len(notes), len(FAMILIES)):
        raise ValueError(f"expected probabilities of shape {(len(notes), len(FAMILIES))}, "
                         f"got {probabilities.shape}")
    fields = [c for c in TABLE_FIELDS if c in notes.columns]
    table = notes[fields].reset_index(drop=True).copy()
    table["dry_instrument"] = dry_instruments(notes).to_numpy()
    table["predicted"] = pd.Categorical(np.asarray(FAMILIES)[probabilities.argmax(axis=1)],
                                        categories=FAMILIES)
    for k, family in enumerate(FAMILIES):
        table[f"p_{family}"] = probabilities[:, k]
    return table


def predict(model, X: np.ndarray, notes: pd.DataFrame, batch_size: int = 128) -> pd.DataFrame:
    """The model's predictions table for features ``X`` of ``notes`` (rows in the same order)."""
    from .activations import predict_in_chunks

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

    Notes of one instrument are not independent, so the instrument is the unit of sampling
    (a recorded copy goes with its dry note: :func:`sampling_units`).
    """
    correct = (table["predicted"].astype(str) == table["family"].astype(str)).to_numpy()
    codes, instruments = pd.factorize(sampling_units(table))
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
    return {"notes": len(table), "instruments": int(sampling_units(table).nunique()),
            "accuracy": accuracy(table), "accuracy_ci95": [low, high],
            "balanced_accuracy": balanced_accuracy(table), "top2_accuracy": top_k_accuracy(table)}


def evaluate_folder(model_path, folder, progress: bool = False) -> tuple[pd.DataFrame, dict]:
    """Predictions table and metrics of a saved model on any NSynth-format folder
    (``instclf evaluate``).

    The folder is validated first (:func:`instclf.nsynth.check_split`). Every note is heard
    as ``instclf predict`` hears it (:func:`instclf.predict.read_clip`: onset, level), so each
    file gets the answer predict gives it; notes predict refuses are left out of the table
    and listed in the metrics' ``refused`` (note name: reason).
    """
    from . import nsynth
    from . import predict as predicting

    predictor = predicting.load_predictor(model_path)
    nsynth.check_split(folder)
    notes = nsynth.read_split(folder)
    p, refused = _heard_probabilities(notes, predictor, progress)
    kept = notes[~notes["note_str"].isin(list(refused))].reset_index(drop=True)
    if kept.empty:
        raise InstclfError(f"{folder}: instclf predict refuses every note of it, e.g. "
                           f"{next(iter(refused.values()))}")
    table = predictions_table(p, kept)
    return table, {**summary(table), "refused": refused}


def _heard_probabilities(notes: pd.DataFrame, predictor, progress: bool,
                         batch_size: int = 32) -> tuple[np.ndarray, dict]:
    """Probabilities of the notes predict hears (in order), and the refused ones' reasons."""
    from tqdm.auto import tqdm

    from . import features
    from . import predict as predicting

    clips, refused, found = [], {}, []

    def flush():
        X = features.batch_features(np.stack(clips), predictor.front_end, fft_workers=1,
                                    mel_basis=predictor.mel_basis)
        p = np.asarray(predictor.model.predict_on_batch(X), dtype=np.float64)
        found.append(p / p.sum(axis=1, keepdims=True))
        clips.clear()

    for name, path in tqdm(zip(notes["note_str"], notes["path"]), total=len(notes),
                           unit="note", disable=not progress, desc="evaluate"):
        try:
            clips.append(predicting.read_clip(path, predictor.front_end))
        except InstclfError as error:
            refused[name] = str(error)
        if len(clips) == batch_size:
            flush()
    if clips:
        flush()
    return (np.concatenate(found) if found else np.empty((0, len(FAMILIES)))), refused


# --- one table per model and split, written once ------------------------------------------

def cached_predictions(trained, data, split: str) -> pd.DataFrame:
    """The predictions table of a saved model on one selection of notes (notebooks 03 to 06).

    Written beside the model as ``predictions-<model>-<split>.csv``, keyed on the content of
    both: the model file's digest and the selection's content key (``data.key``).
    """
    from . import storage

    key = storage.content_key("predictions", storage.file_digest(trained.path), data.key,
                              TABLE_FIELDS, "dry_instrument")
    path = trained.path.parent / f"predictions-{trained.path.stem}-{split}.csv"
    stamp = path.with_suffix(".json")
    if path.is_file() and stamp.is_file() and _stamp_key(stamp) == key:
        found = storage.readable(read_predictions, path)
        if found is not None and len(found) == len(data.notes):
            return found
    table = predict(trained.model, data.X, data.notes)
    with storage.atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)
    storage.write_json(stamp, {"key": key, "model": str(trained.path), "split": split,
                               "notes": len(table)})
    return table


def _stamp_key(stamp: Path) -> str | None:
    """The key a cache stamp records; None when the stamp is unreadable (then rebuilt)."""
    try:
        found = json.loads(stamp.read_text())
    except (OSError, ValueError):
        return None
    return found.get("key") if isinstance(found, dict) else None


def read_predictions(path) -> pd.DataFrame:
    """A predictions table written by :func:`cached_predictions` or ``instclf evaluate``."""
    table = pd.read_csv(path)
    for column in ("family", "predicted"):
        table[column] = pd.Categorical(table[column], categories=FAMILIES)
    return table


# --- where the errors are (notebook 06) ------------------------------------------------------

def confusion(table: pd.DataFrame, normalize: bool = False) -> pd.DataFrame:
    """Confusion matrix: rows true family (only those present), columns predicted family.

    ``normalize=True`` divides each row by its notes (row-normalised: recall on the diagonal).
    """
    truth = pd.Categorical(table["family"].astype(str), categories=FAMILIES)
    predicted = pd.Categorical(table["predicted"].astype(str), categories=FAMILIES)
    counts = pd.crosstab(truth, predicted, dropna=False).reindex(
        index=FAMILIES, columns=FAMILIES, fill_value=0)
    counts = counts[counts.sum(axis=1) > 0]
    counts.index.name, counts.columns.name = "true family", "predicted family"
    return counts.div(counts.sum(axis=1), axis=0) if normalize else counts


def confused_pairs(table: pd.DataFrame, top: int = 5) -> pd.DataFrame:
    """The most frequent (true, predicted) mistakes with their share of the true family's notes."""
    counts = confusion(table)
    support = counts.sum(axis=1)
    pairs = [{"true": true, "predicted": predicted, "notes": int(counts.loc[true, predicted]),
              "share_of_true": counts.loc[true, predicted] / support[true]}
             for true in counts.index for predicted in counts.columns
             if true != predicted and counts.loc[true, predicted] > 0]
    columns = ["true", "predicted", "notes", "share_of_true"]
    return (pd.DataFrame(pairs, columns=columns)
            .sort_values(["notes", "share_of_true"], ascending=False, kind="stable")
            .head(top).reset_index(drop=True))


def notes_behind(table: pd.DataFrame, true: str, predicted: str) -> pd.DataFrame:
    """The notes of family ``true`` predicted as ``predicted``, most confident mistake first."""
    mistaken = table[(table["family"].astype(str) == true)
                     & (table["predicted"].astype(str) == predicted)]
    return mistaken.sort_values(f"p_{predicted}", ascending=False, kind="stable")


def accuracy_by(table: pd.DataFrame, column: str, bins=None) -> pd.DataFrame:
    """Accuracy and notes per value of ``column`` (or per bin of it, ``bins`` edges)."""
    correct = table["predicted"].astype(str) == table["family"].astype(str)
    key = pd.cut(table[column], bins=bins, right=False) if bins is not None else table[column]
    grouped = correct.groupby(key, observed=True)
    result = pd.DataFrame({"accuracy": grouped.mean(), "notes": grouped.size()})
    result.index.name = column
    return result


def instrument_accuracy(table: pd.DataFrame) -> pd.DataFrame:
    """One row per instrument: family, notes, accuracy and the family it is most taken for."""
    correct = table["predicted"].astype(str) == table["family"].astype(str)
    grouped = table.assign(correct=correct).groupby("instrument_str", observed=True)
    result = pd.DataFrame({
        "family": grouped["family"].first().astype(str),
        "notes": grouped.size(),
        "accuracy": grouped["correct"].mean(),
        "most_predicted": grouped["predicted"].agg(lambda p: p.astype(str).value_counts().index[0]),
    })
    if "soundfont" in table.columns:
        result["soundfont"] = grouped["soundfont"].first()
    return result.sort_values(["accuracy", "notes"], ascending=[True, False], kind="stable")


# --- confidence (notebook 05) ----------------------------------------------------------------

def confidence(table: pd.DataFrame) -> np.ndarray:
    """The probability the model gave its predicted family, per note."""
    return table[[f"p_{family}" for family in FAMILIES]].to_numpy().max(axis=1)


def reliability(table: pd.DataFrame, n_bins: int = 10) -> pd.DataFrame:
    """Calibration per confidence bin: mean confidence, accuracy and notes (empty bins left out)."""
    conf = confidence(table)
    correct = (table["predicted"].astype(str) == table["family"].astype(str)).to_numpy()
    edges = np.linspace(0, 1, n_bins + 1)
    index = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, n_bins - 1)
    rows = [{"low": edges[b], "high": edges[b + 1], "confidence": conf[index == b].mean(),
             "accuracy": correct[index == b].mean(), "notes": int((index == b).sum())}
            for b in range(n_bins) if (index == b).any()]
    return pd.DataFrame(rows)


def not_sure_threshold(table: pd.DataFrame, accuracy_floor: float = 0.5) -> float:
    """The top probability below which a predictions table's answers are right less often
    than ``accuracy_floor``: the largest confidence c whose notes below it are (0.0: none).

    ``instclf.predict.NOT_SURE_BELOW`` is this on the best model's unseen-instrument table;
    under it ``instclf predict``, the widget and the page answer "not sure".
    """
    conf = confidence(table)
    correct = (table["predicted"].astype(str) == table["family"].astype(str)).to_numpy()
    order = np.argsort(conf, kind="stable")
    below = np.cumsum(correct[order])[:-1] / np.arange(1, len(order))  # the k least sure notes
    under = np.flatnonzero(below < accuracy_floor)
    return float(conf[order][under.max() + 1]) if under.size else 0.0


def expected_calibration_error(table: pd.DataFrame, n_bins: int = 10) -> float:
    """Notes-weighted mean gap between confidence and accuracy over the reliability bins."""
    bins = reliability(table, n_bins)
    return float((bins["notes"] * (bins["confidence"] - bins["accuracy"]).abs()).sum()
                 / bins["notes"].sum())


def paired_bootstrap(table_a: pd.DataFrame, table_b: pd.DataFrame, n_resamples: int = 1000,
                     level: float = 0.95, seed: int = 0) -> tuple[float, tuple[float, float]]:
    """``table_b``'s accuracy minus ``table_a``'s, and its interval from resampling instruments
    with the same draws for both models (a paired comparison; notebook 04).

    The two tables are two models' predictions of the same notes, in the same order.
    """
    if not np.array_equal(table_a["note_str"].to_numpy(), table_b["note_str"].to_numpy()):
        raise ValueError("paired_bootstrap takes two models' predictions of the same notes")
    hits = [(t["predicted"].astype(str) == t["family"].astype(str)).to_numpy(float)
            for t in (table_a, table_b)]
    codes, instruments = pd.factorize(sampling_units(table_a))
    gained = np.bincount(codes, weights=hits[1] - hits[0], minlength=len(instruments))
    counts = np.bincount(codes, minlength=len(instruments))
    draws = np.random.default_rng(seed).integers(0, len(instruments),
                                                 size=(n_resamples, len(instruments)))
    differences = gained[draws].sum(axis=1) / counts[draws].sum(axis=1)
    tail = (1 - level) / 2
    return (accuracy(table_b) - accuracy(table_a),
            (float(np.quantile(differences, tail)), float(np.quantile(differences, 1 - tail))))
