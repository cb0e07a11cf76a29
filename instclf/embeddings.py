"""Frozen embeddings, and heads trained on them (notebooks 04 and 05, the page's model).

One frozen pass of a pretrained backbone gives every note two embeddings: the head's pooled
input and the mean and maximum of each of its top blocks
(:func:`instclf.backbones.frozen_embeddings`), cached on disk. A head on them trains in
seconds: notebook 05 measures sound it never heard with it (leave one lineage out, head
only), and :func:`block_statistics_model` saves one as a model from features to
probabilities, the member of the page's model that trains no network.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pandas as pd

from . import backbones, descriptors, evaluate, storage, subsets, train
from .activations import predict_in_chunks, sample_weights
from .config import FAMILIES, InstclfError
from .profiles import Profile


def backbone_embeddings(profile, backbone_name: str, data: dict, progress=None,
                        statistics: bool = False) -> tuple[np.ndarray, pd.DataFrame]:
    """The pretrained backbone's pooled output for every note of ``data``, cached on disk;
    with ``statistics``, the mean and maximum of each of its top blocks' outputs
    (:data:`instclf.backbones.STATISTICS_BLOCKS`) and the note's descriptors
    (:mod:`instclf.descriptors`) instead.

    What the head sees when the whole backbone is frozen; rows follow the notes of the
    selections in ``data``'s order (returned as one table). Both come from one frozen pass
    and one cache file (:func:`instclf.backbones.frozen_embeddings`). ``progress`` (e.g.
    ``print``) says when they come from the cache, and a bar shows the frozen pass otherwise.
    """
    notes = pd.concat([d.notes for d in data.values()], ignore_index=True)
    backbone = backbones.get_backbone(backbone_name)
    part = "statistics" if statistics else "pooled"
    key = storage.content_key("embeddings", backbone.name, backbone.weights,
                              backbones.STATISTICS_BLOCKS, backbones.STATISTICS_VERSION,
                              descriptors.DESCRIPTORS_VERSION, [d.key for d in data.values()])
    path = profile.cache_dir / "embeddings" / profile.name / f"{backbone.name}-{key}.npz"
    found = storage.readable(lambda p: dict(np.load(p)), path) if path.is_file() else None
    if found is not None and len(found[part]) == len(notes):
        if progress:
            progress(f"embeddings of {len(notes):,} notes loaded from cache ({path.name})")
        return found[part], notes
    extract, split = backbones.frozen_embeddings(backbones.build_classifier(backbone), backbone)
    both = np.concatenate([predict_in_chunks(extract, d.X, progress=progress is not None)
                           for d in data.values()])
    found = {"pooled": both[:, :split], "statistics": both[:, split:]}
    path.parent.mkdir(parents=True, exist_ok=True)
    with storage.atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, **found)
    return found[part], notes


def statistics_embeddings(profile, backbone_names: tuple[str, ...], data: dict,
                          progress=None) -> tuple[np.ndarray, pd.DataFrame]:
    """What a head on several frozen backbones reads (notebook 05, :func:`block_statistics_model`):
    each backbone's top blocks' statistics (:func:`backbone_embeddings`, one cache each), in
    the order of ``backbone_names``, then the note's descriptors once; the layout of
    :func:`instclf.backbones.block_statistics_classifier`."""
    parts = [backbone_embeddings(profile, name, data, progress, statistics=True)
             for name in backbone_names]
    described = len(descriptors.NAMES)
    S = np.concatenate([E[:, :-described] for E, _ in parts] + [parts[0][0][:, -described:]], axis=1)
    return S, parts[0][1]


HEAD_ON_EMBEDDINGS_VERSION = 2  # bump when head_on_embeddings changes what it learns


def head_on_embeddings(E: np.ndarray, y: np.ndarray, fit: np.ndarray, valid: np.ndarray,
                       profile, seed: int = 0):
    """A fresh softmax head (standardisation, dropout, dense), the network's own head, trained
    on the rows ``fit`` and stopped on ``valid`` (notebook 05).

    The standardisation learns each column's mean and deviation from the ``fit`` rows alone:
    pooled statistics of several blocks differ in scale by orders of magnitude, and on the
    default profile's statistics of the top three blocks it was worth 3 points leave one
    lineage out (48.4% against 45.6%, 2026-12-01).
    """
    import keras

    keras.utils.set_random_seed(seed)
    standardise = keras.layers.Normalization()
    standardise.adapt(np.asarray(E[fit], dtype=np.float32))
    head = keras.Sequential([keras.Input(E.shape[1:]), standardise,
                             keras.layers.Dropout(backbones.HEAD_DROPOUT),
                             keras.layers.Dense(len(FAMILIES), activation="softmax")])
    schedule = train.schedule_for(profile)
    train.fit_stage(head, (E[fit], y[fit]), (E[valid], y[valid]), schedule.head_learning_rate,
                    profile.head_epochs, profile.patience, profile.batch_size, seed)
    return head


STATISTICS_HEAD_VERSION = 2  # bump when statistics_head changes what it learns (2: tolerance)
# The logistic regression's inverse regularisation: chosen leave one lineage out on the
# default profile with the descriptors' first version (53.1% with 0.01, 53.2% with 0.03; with
# librosa's descriptors of the audio instead, 52.7%, 53.1% and 51.7% with 0.01, 0.03 and
# 0.003; scratch runs, 2026-12-01)
STATISTICS_HEAD_C = 0.01
# Its stopping tolerance: on two backbones' statistics (3,947 columns) the default 1e-4 took
# 327 iterations (40 s) for one fold where 1e-3 took 102 (13 s), with the same accuracy on the
# lineage left out (faust, a scratch run, 2026-12-01).
STATISTICS_HEAD_TOL = 1e-3


def statistics_head(S: np.ndarray, y: np.ndarray, fit: np.ndarray, valid: np.ndarray):
    """A multinomial logistic regression (scikit-learn, L2, every family weighing the same)
    on the standardised statistics ``S`` of the rows ``fit``, as a Keras head
    (standardisation, softmax), and a one-row history with its loss on ``fit`` and ``valid``
    (notebook 05, :func:`block_statistics_model`, :func:`instclf.lineages.block_statistics_out`).

    Fitted to its optimum, so it needs no seed and no early stopping: on the default
    profile's top blocks' statistics and descriptors it did better leave one lineage out
    than the dropout and softmax head :func:`head_on_embeddings` trains (53.1% against 51.4%,
    the descriptors' first version, a scratch run, 2026-12-01). Families absent from ``fit`` get probability 0.
    """
    import keras
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss

    began = time.perf_counter()
    mean = S[fit].mean(axis=0, dtype=np.float64)
    std = S[fit].std(axis=0, dtype=np.float64)
    std[std == 0] = 1.0
    Z = (np.asarray(S, dtype=np.float64) - mean) / std
    regression = LogisticRegression(C=STATISTICS_HEAD_C, tol=STATISTICS_HEAD_TOL, max_iter=2000)
    regression.fit(Z[fit], y[fit], sample_weight=sample_weights(y[fit], subsets.class_weights(y[fit])))
    kernel = np.zeros((S.shape[1], len(FAMILIES)), dtype=np.float32)
    bias = np.full(len(FAMILIES), -50.0, dtype=np.float32)  # exp(-50): absent families
    kernel[:, regression.classes_] = regression.coef_.T
    bias[regression.classes_] = regression.intercept_
    head = keras.Sequential([keras.Input(S.shape[1:]),
                             keras.layers.Normalization(mean=mean, variance=std ** 2),
                             keras.layers.Dense(len(FAMILIES), activation="softmax")])
    head.layers[-1].set_weights([kernel, bias])
    labels = list(range(len(FAMILIES)))

    def loss_and_accuracy(rows):
        if not rows.any():
            return np.nan, np.nan
        P = head.predict(np.asarray(S[rows], dtype=np.float32), verbose=0, batch_size=1024)
        return log_loss(y[rows], P, labels=labels), float((P.argmax(1) == y[rows]).mean())

    (loss, accuracy), (val_loss, val_accuracy) = map(loss_and_accuracy, (fit, valid))
    history = pd.DataFrame([{"loss": loss, "accuracy": accuracy, "val_loss": val_loss,
                             "val_accuracy": val_accuracy, "learning_rate": np.nan,
                             "seconds": time.perf_counter() - began}])
    return head, history


def cached_leave_one_lineage_out(E: np.ndarray, notes: pd.DataFrame, profile,
                                 progress=None, statistics: bool = False
                                 ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`leave_one_lineage_out`, its two tables cached on disk (notebook 05).

    The key holds the embeddings, the notes and the head's training settings, so a second
    run of notebook 05 trains no head. ``progress`` (e.g. ``print``) gets a line per
    lineage, or one saying the tables came from the cache.
    """
    key = storage.content_key(
        "unseen-lineages", hashlib.sha1(np.ascontiguousarray(E).tobytes()).hexdigest(),
        hashlib.sha1("\n".join(notes["note_str"] + notes["lineage"].astype(str)).encode()).hexdigest(),
        [profile.head_epochs, profile.patience, profile.batch_size, profile.seed],
        ["statistics head", STATISTICS_HEAD_VERSION, STATISTICS_HEAD_C] if statistics
        else HEAD_ON_EMBEDDINGS_VERSION)[:12]
    folder = profile.cache_dir / "unseen-sources" / profile.name
    per_lineage_path, tables_path = folder / f"{key}-per-lineage.csv", folder / f"{key}-notes.csv"
    if per_lineage_path.is_file() and tables_path.is_file():
        per_lineage = storage.readable(lambda p: pd.read_csv(p, keep_default_na=False), per_lineage_path)
        tables = storage.readable(evaluate.read_predictions, tables_path)
        if per_lineage is not None and tables is not None:
            if progress:
                progress(f"leave one lineage out: loaded from cache ({per_lineage_path.name})")
            return per_lineage, tables
    per_lineage, tables = leave_one_lineage_out(E, notes, profile, progress, statistics)
    for frame, path in ((tables, tables_path), (per_lineage, per_lineage_path)):
        with storage.atomic_path(path) as tmp:
            frame.to_csv(tmp, index=False)
    return per_lineage, tables


def leave_one_lineage_out(E: np.ndarray, notes: pd.DataFrame, profile, progress=None,
                          statistics: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per lineage (a soundfont with the banks built on its samples, a synthesis engine): a
    head on the frozen embeddings ``E`` trained without it, tested on all its notes; with
    ``statistics``, the logistic head of the statistics (:func:`statistics_head`) instead of
    :func:`head_on_embeddings`.

    The head trains on the other lineages' training-split notes and stops on their
    validation-split notes: the cheap, in-profile version of :mod:`instclf.lineages`' staged
    folds. Returns the per-lineage table and the predictions table of every left-out note.
    """
    y = train.labels(notes)
    lineage = notes["lineage"].astype(str).to_numpy()
    if len(set(lineage)) < 2:
        raise InstclfError(f"the {profile.name} profile has one lineage ({lineage[0]}): leaving "
                           "it out leaves nothing to train on")
    split = notes["split"].astype(str).to_numpy()
    rows, tables = [], []
    for held_out in sorted(set(lineage)):
        others = lineage != held_out
        fit, valid = others & (split == "train"), others & (split == "valid")
        head = (statistics_head(E, y, fit, valid)[0] if statistics
                else head_on_embeddings(E, y, fit, valid, profile, seed=profile.seed))
        test = ~others
        table = evaluate.predictions_table(head.predict(E[test], verbose=0), notes[test])
        rows.append({"lineage": held_out, "notes": int(test.sum()),
                     "instruments": int(table["instrument_str"].nunique()),
                     "accuracy": evaluate.accuracy(table), "balanced_accuracy": evaluate.balanced_accuracy(table)})
        tables.append(table)
        if progress:
            progress(f"without {held_out}: {rows[-1]['accuracy']:.1%} on its {rows[-1]['notes']} notes")
    return pd.DataFrame(rows), pd.concat(tables, ignore_index=True)


def block_statistics_model(profile: Profile, backbone_names: tuple[str, ...],
                           data: dict[str, train.Data], schedule: train.Schedule, progress=None,
                           models_dir: Path | None = None,
                           experiment: str | None = None) -> train.TrainedModel:
    """The head alone on the frozen backbones' top blocks' mean and maximum and the note's
    descriptors (:func:`instclf.backbones.block_statistics_classifier`): a logistic
    regression fitted on ``data``'s ``fit`` (:func:`statistics_head`; ``valid`` gives its
    validation loss), saved as one model from features to probabilities; from disk if
    already trained (notebook 04: the page's model).

    The head learns from :func:`statistics_embeddings` of every part of ``data``: the caches
    notebook 05 reads, so each frozen pass is paid once.
    """
    frozen = [backbones.get_backbone(name) for name in backbone_names]
    backbone, others = frozen[0], [b.name for b in frozen[1:]]
    head_key = "+".join([f"{train.BLOCK_STATISTICS}-{STATISTICS_HEAD_VERSION}", *others])
    path = ((models_dir or profile.models_dir)
            / train.run_key(backbone, replace(schedule, max_unfrozen_blocks=0), data,
                            head=head_key)
            / "stages0.keras")
    if path.is_file():
        if progress:
            progress(f"loaded from cache: {path}")
        return train.load_trained(path)
    began = time.perf_counter()
    S, _ = statistics_embeddings(profile, tuple(backbone_names), data, progress)
    embedding_seconds = time.perf_counter() - began
    part = np.concatenate([np.full(len(d), name) for name, d in data.items()])
    y = np.concatenate([d.y for d in data.values()])
    head, history = statistics_head(S, y, part == "fit", part == "valid")
    head_seconds = time.perf_counter() - began - embedding_seconds
    history = history.assign(stage=0, unfrozen_blocks=0, epoch=np.arange(1, len(history) + 1))
    history = history.assign(stage_epoch=history["epoch"])[list(train.HISTORY_COLUMNS)]
    model = backbones.block_statistics_classifier(frozen, head)
    meta = {
        "backbone": backbone.name, "head": train.BLOCK_STATISTICS, "weights": backbone.weights,
        "frozen_backbones": [b.name for b in frozen],
        "blocks": backbones.STATISTICS_BLOCKS, "descriptors": descriptors.DESCRIPTORS_VERSION,
        "classes": list(FAMILIES),
        "front_end": asdict(backbone.front_end), "profile": profile.name,
        "data": {name: data[name].key for name in ("fit", "valid")},
        "schedule": asdict(replace(schedule, max_unfrozen_blocks=0)),
        "stages_completed": 1, "best_stage": 0, "stopped": None, "epochs": int(len(history)),
        "best_val_loss": float(history["val_loss"].min()),
        "training_seconds": round(embedding_seconds + head_seconds, 1),
        "activation_seconds": round(embedding_seconds, 1),
        "activation_passes": [[0, round(embedding_seconds, 2)]],
        "stage_seconds": [round(head_seconds, 2)],
    }
    if experiment is not None:
        meta["experiment"] = experiment
    path.parent.mkdir(parents=True, exist_ok=True)
    with storage.atomic_path(path.parent / "history.csv") as tmp:
        history.to_csv(tmp, index=False)
    train.save_model(model, meta, path)
    if progress:
        progress(f"head on the top {backbones.STATISTICS_BLOCKS} blocks' statistics and the "
                 f"descriptors: val_loss {meta['best_val_loss']:.3f} in {head_seconds:.0f} s")
    return train.TrainedModel(model, history, meta, path)
