"""Staged training: the head on a frozen backbone, then the top blocks one by one.

Stage 0 trains the head; stage k unfreezes the top k blocks with a lower learning rate. Each
stage stops early on validation loss and keeps its best weights; the schedule stops when a
stage no longer improves, and then keeps the best stage's weights. On a CPU the frozen bottom
of the chain is computed once per note into a file on disk and the trainable top learns from
those cached activations a batch at a time (:mod:`instclf.activations`: same predictions, a
fraction of the time, RAM bounded by a batch; ``tests/test_train.py`` and
``tests/test_activations.py`` check both).
Batch-norm layers of a pretrained backbone stay frozen, so they run in inference mode.
Used by notebooks 03 and 04.
"""

from __future__ import annotations

import hashlib
import json
import time
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from . import augment, backbones, features, storage, subsets
from .activations import (Batches, Rows, activations,  # noqa: F401 (re-exported)
                          cached_activations, chain, output_shape, predict_in_chunks,
                          profile_cache_dir)
from .config import FAMILIES, InstclfError
from .models import DESCRIPTION_MEMBER, model_description, recorded_models
from .profiles import Profile
from .subsets import class_weights  # noqa: F401 (re-exported: notebooks 01 and 03)

HISTORY_COLUMNS = ("stage", "unfrozen_blocks", "epoch", "stage_epoch", "loss", "accuracy",
                   "val_loss", "val_accuracy", "learning_rate", "seconds")


@dataclass(frozen=True)
class Schedule:
    """How long and how fast each stage trains (from the profile: :func:`schedule_for`)."""

    max_unfrozen_blocks: int = 2
    head_epochs: int = 40
    stage_epochs: int = 15
    head_learning_rate: float = 1e-3
    stage_learning_rate: float = 3e-4
    patience: int = 4
    batch_size: int = 64
    min_improvement: float = 1e-3  # a stage must lower the best validation loss by this
    seed: int = 0


def schedule_for(profile: Profile, max_unfrozen_blocks: int | None = None) -> Schedule:
    """The profile's schedule, optionally with another number of blocks to unfreeze."""
    blocks = profile.max_unfrozen_blocks if max_unfrozen_blocks is None else max_unfrozen_blocks
    return Schedule(max_unfrozen_blocks=blocks, head_epochs=profile.head_epochs,
                    stage_epochs=profile.stage_epochs, patience=profile.patience,
                    batch_size=profile.batch_size, seed=profile.seed)


@dataclass
class Data:
    """Features and labels of one selection of notes.

    ``key`` is the selection's content key (the features' digest, the labels and the note
    names): models, activations and predictions tables computed from it are keyed on it.
    """

    X: np.ndarray
    y: np.ndarray
    notes: pd.DataFrame
    key: str = ""

    def __len__(self) -> int:
        return len(self.y)


def labels(notes: pd.DataFrame) -> np.ndarray:
    """Family indices (0-10, NSynth's order) of a note table."""
    return notes["family"].cat.codes.to_numpy().astype("int32")


def data_key(features_digest: str, y: np.ndarray, notes: pd.DataFrame) -> str:
    """The content key of a selection: its features' digest, its labels, its note names."""
    names = hashlib.sha1("\n".join(notes["note_str"]).encode()).hexdigest()
    return storage.content_key("data", features_digest,
                               hashlib.sha1(np.ascontiguousarray(y).tobytes()).hexdigest(), names)


def profile_notes(profile: Profile, progress: bool = True,
                  sources: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Every note of the profile's sources (made available first), optionally only those
    whose source name or lineage is in ``sources`` (notebooks 01 to 07)."""
    notes = profile.notes(progress=progress)
    if sources is not None:
        notes = notes[notes["origin"].isin(sources) | notes["lineage"].isin(sources)]
        if notes.empty:
            raise InstclfError(f"no notes of the profile {profile.name} come from "
                               f"{', '.join(sources)}; name its sources or their lineages")
    return notes


def training_data(profile: Profile, front_end: features.FrontEnd, progress: bool = True,
                  sources: tuple[str, ...] | None = None) -> dict[str, Data]:
    """``fit``, ``seen``, ``valid`` and ``test`` selections of the profile's notes
    (:func:`instclf.subsets.select`), with their features, labels and content keys.

    ``seen`` holds back a random share of the training instruments' notes ("seen
    instruments"); ``valid`` and ``test`` are the held-out instruments ("unseen instruments").
    ``sources`` keeps only the notes of those sources or lineages.
    """
    selections = subsets.select(profile_notes(profile, progress, sources), profile.selection)
    data = {}
    for name, selection in selections.items():
        cached = features.profile_features(profile, selection, front_end, name, progress)
        y = labels(selection)
        data[name] = Data(cached.X, y, selection, data_key(cached.digest, y, selection))
    return data


def balanced_data(data: Data, per_family: int, seed: int = 0) -> Data:
    """A balanced subset of a selection, at most ``per_family`` notes of each family
    (:func:`instclf.subsets.balanced_subset`), its features in RAM as float32: the small set
    of the plain Keras recipe (notebooks 03 and 04)."""
    notes = data.notes.reset_index(drop=True)
    present = subsets.family_counts(notes)
    picked = subsets.balanced_subset(notes, min(per_family, int(present[present > 0].min())), seed)
    rows = picked.index.to_numpy()
    return Data(np.asarray(data.X[rows], dtype=np.float32), data.y[rows],
                picked.reset_index(drop=True))


# --- the chain, split in two (chain, output_shape, activations: instclf.activations) ---------

def set_trainable(model: keras.Sequential, start: int, keep_batchnorm_frozen: bool) -> None:
    """Freeze ``layers[:start]``; train ``layers[start:]`` (batch norm stays frozen if asked)."""
    for index, layer in enumerate(model.layers):
        trainable = index >= start
        if keep_batchnorm_frozen and isinstance(layer, keras.layers.BatchNormalization):
            trainable = False
        layer.trainable = trainable


# --- one stage ------------------------------------------------------------------------------

class _EpochTimer(keras.callbacks.Callback):
    """Seconds per epoch; with ``progress`` (a callable such as ``print``) also one line per
    epoch, so a long stage shows signs of life (notebooks 03 and 04)."""

    def __init__(self, progress=None, epochs: int | None = None):
        super().__init__()
        self.progress, self.epochs = progress, epochs

    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)
        if self.progress:
            logs = logs or {}
            self.progress(f"  epoch {epoch + 1}/{self.epochs}: loss {logs.get('loss', np.nan):.3f}, "
                          f"val_loss {logs.get('val_loss', np.nan):.3f}, val_accuracy "
                          f"{logs.get('val_accuracy', np.nan):.1%} ({self.seconds[-1]:.1f} s)")


def fit_stage(top: keras.Sequential, train: tuple, valid: tuple, learning_rate: float,
              epochs: int, patience: int, batch_size: int, seed: int,
              progress=None) -> pd.DataFrame:
    """Train ``top`` with early stopping on validation loss; keep its best weights.

    ``train`` and ``valid`` are ``(X, y)`` pairs of arrays or memory maps, read a batch at a
    time (:class:`instclf.activations.Batches`, shuffled from ``seed``, class-weighted).
    ``progress`` (e.g. ``print``) gets one line per epoch.
    """
    keras.utils.set_random_seed(seed)
    top.compile(optimizer=keras.optimizers.Adam(learning_rate),
                loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    timer = _EpochTimer(progress, epochs)
    stopper = keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience,
                                            restore_best_weights=True)
    batches = Batches(*train, batch_size, class_weight=class_weights(train[1]), shuffle=True,
                      seed=seed)
    fitted = top.fit(batches.for_fit(), validation_data=Batches(*valid, batch_size).for_fit(),
                     epochs=epochs, callbacks=[stopper, timer], shuffle=False, verbose=0)
    history = pd.DataFrame(fitted.history)
    history["seconds"] = timer.seconds
    history["learning_rate"] = learning_rate
    return history


# --- the schedule ---------------------------------------------------------------------------

@dataclass
class TrainingState:
    """What a run has done so far (``state.json`` beside its checkpoints)."""

    completed_stages: int = 0
    best_val_loss: float | None = None
    best_stage: int | None = None
    stopped: str | None = None  # "no improvement" once the schedule has ended on its own
    seconds: float = 0.0  # stages plus the frozen bottom's activations
    activation_seconds: float = 0.0
    stage_seconds: list = field(default_factory=list)
    # [stage, seconds] of each pass through the frozen bottom: a run extended later pays again
    activation_passes: list = field(default_factory=list)


def _load_state(run_dir: Path) -> tuple[TrainingState, pd.DataFrame]:
    state_path, history_path = run_dir / "state.json", run_dir / "history.csv"
    if not state_path.is_file():
        return TrainingState(), pd.DataFrame(columns=HISTORY_COLUMNS)
    state = TrainingState(**json.loads(state_path.read_text()))
    history = pd.read_csv(history_path) if history_path.is_file() else pd.DataFrame(
        columns=HISTORY_COLUMNS)
    return state, history


def _save_state(run_dir: Path, model: keras.Model, state: TrainingState,
                history: pd.DataFrame) -> None:
    with storage.atomic_path(run_dir / "best.weights.h5") as tmp:
        model.save_weights(str(tmp))
    with storage.atomic_path(run_dir / "history.csv") as tmp:
        history.to_csv(tmp, index=False)
    storage.write_json(run_dir / "state.json", asdict(state))


def staged_training(model: keras.Sequential, backbone: backbones.Backbone,
                    data: dict[str, Data], schedule: Schedule, run_dir: Path,
                    progress=None, cache_dir: Path | None = None,
                    ) -> tuple[TrainingState, pd.DataFrame]:
    """Run (or resume) the staged schedule on ``model``; checkpoint after every stage.

    A fresh backbone (``scratch_cnn``) trains whole in one stage, with no cached bottom.
    ``progress`` is called with a line of text after each stage. The frozen activations of
    ``fit`` and ``valid`` are cached in ``cache_dir`` (default ``run_dir / "activations"``;
    a profile's is :func:`instclf.activations.profile_cache_dir`), keyed by
    :func:`activations_key`, and read from there a batch at a time.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    cache_dir = run_dir / "activations" if cache_dir is None else Path(cache_dir)

    def frozen(name: str, X: np.ndarray, start: int, stop: int) -> np.ndarray:
        if start == stop:
            return X
        if isinstance(X, Rows):
            return rows_activations(model, X, backbone, start, stop, cache_dir,
                                    progress=progress is not None)
        key = activations_key(data[name], backbone, stop)
        return cached_activations(model, X, start, stop, key, cache_dir,
                                  progress=progress is not None)

    state, history = _load_state(run_dir)
    last_stage = schedule.max_unfrozen_blocks if backbone.pretrained else 0
    if state.completed_stages > last_stage + 1:  # the run went further: take its prefix
        return _earlier_stages(model, run_dir, state, history, last_stage)
    if state.completed_stages:
        model.load_weights(str(run_dir / "best.weights.h5"))
    stages = range(state.completed_stages, last_stage + 1)
    if state.stopped or not len(stages):
        return state, history
    lowest = 0 if not backbone.pretrained else backbones.block_start(model, backbone, last_stage)
    began = time.perf_counter()
    cached = {name: frozen(name, data[name].X, 0, lowest) for name in ("fit", "valid")}
    elapsed = time.perf_counter() - began
    state.activation_seconds += elapsed
    state.activation_passes.append([state.completed_stages, round(elapsed, 2)])
    state.seconds += elapsed  # part of the training time, paid once per run
    for stage in stages:
        start = lowest if not backbone.pretrained else backbones.block_start(model, backbone, stage)
        set_trainable(model, start, keep_batchnorm_frozen=backbone.pretrained)
        began = time.perf_counter()
        inputs = {name: frozen(name, X, lowest, start) for name, X in cached.items()}
        top = chain(model.layers[start:], output_shape(model, start))
        stage_history = fit_stage(
            top, (inputs["fit"], data["fit"].y), (inputs["valid"], data["valid"].y),
            schedule.head_learning_rate if stage == 0 else schedule.stage_learning_rate,
            schedule.head_epochs if stage == 0 else schedule.stage_epochs,
            schedule.patience, schedule.batch_size, schedule.seed + stage, progress)
        seconds = time.perf_counter() - began
        stage_history.insert(0, "stage", stage)
        stage_history.insert(1, "unfrozen_blocks", stage if backbone.pretrained else
                             len(backbone.blocks))
        stage_history.insert(2, "stage_epoch", np.arange(1, len(stage_history) + 1))
        stage_history.insert(2, "epoch", len(history) + stage_history["stage_epoch"])
        history = pd.concat([history, stage_history[list(HISTORY_COLUMNS)]], ignore_index=True)
        best = float(stage_history["val_loss"].min())
        with storage.atomic_path(run_dir / f"stage{stage}.weights.h5") as tmp:
            model.save_weights(str(tmp))
        state.completed_stages, state.seconds = stage + 1, state.seconds + seconds
        state.stage_seconds.append(round(seconds, 2))
        improved = state.best_val_loss is None or best < state.best_val_loss - schedule.min_improvement
        if improved:
            state.best_val_loss, state.best_stage = best, stage
        else:  # keep the previous stage's weights and end the schedule
            model.load_weights(str(run_dir / "best.weights.h5"))
            state.stopped = "no improvement"
        _save_state(run_dir, model, state, history)
        if progress:
            progress(f"stage {stage}: best val_loss {best:.3f} in {seconds:.0f} s"
                     + ("" if improved else " (no improvement: schedule ends)"))
        if not improved:
            break
    return state, history


def rows_activations(model: keras.Sequential, X: Rows, backbone: backbones.Backbone,
                     start: int, stop: int, cache_dir: Path, progress: bool = False) -> Rows:
    """``model.layers[start:stop]`` of some rows: computed (and cached) once for every row of
    their base, keyed by the base, so the leave-one-lineage-out folds of
    :mod:`instclf.lineages` share one file; then these rows of it."""
    key = activations_key(Data(X.base, np.empty(0), pd.DataFrame(), X.key), backbone, stop)
    return Rows(cached_activations(model, X.base, start, stop, key, cache_dir,
                                   progress=progress), X.rows, key)


def activations_key(data: Data, backbone: backbones.Backbone, stop: int) -> str:
    """The content key of the pretrained ``layers[:stop]`` on a selection's features.

    The frozen layers still hold the pretrained values (stages unfreeze from the top down), so
    the selection and the backbone decide the file; computed in two steps (``lowest``, then a
    stage's input) or one, it holds the same numbers. A selection without a content key
    (augmented copies, tests) is keyed by a digest of its features and labels.
    """
    selection = data.key or storage.content_key("arrays", _array_digest(data.X),
                                                _array_digest(data.y))
    return storage.content_key("activations", selection, backbone.name, backbone.weights,
                               0, stop)


def _array_digest(X: np.ndarray, rows: int = 1024) -> str:
    digest = hashlib.sha1(f"{X.dtype}{X.shape}".encode())
    for begin in range(0, len(X), rows):
        digest.update(np.ascontiguousarray(X[begin:begin + rows]).tobytes())
    return digest.hexdigest()


def _earlier_stages(model, run_dir: Path, state: TrainingState, history: pd.DataFrame,
                    last_stage: int) -> tuple[TrainingState, pd.DataFrame]:
    """The state and best weights of a run cut after ``last_stage``."""
    history = history[history["stage"] <= last_stage].reset_index(drop=True)
    best_stage = int(history.loc[history["val_loss"].idxmin(), "stage"])
    model.load_weights(str(run_dir / f"stage{best_stage}.weights.h5"))
    stage_seconds = state.stage_seconds[:last_stage + 1]
    passes = [p for p in state.activation_passes if p[0] <= last_stage]
    activation = sum(p[1] for p in passes) if state.activation_passes else state.activation_seconds
    return TrainingState(
        completed_stages=last_stage + 1, best_val_loss=float(history["val_loss"].min()),
        best_stage=best_stage, seconds=float(sum(stage_seconds)) + activation,
        activation_seconds=activation, stage_seconds=stage_seconds,
        activation_passes=passes), history


# --- models on disk -------------------------------------------------------------------------

def run_key(backbone: backbones.Backbone, schedule: Schedule, data: dict[str, Data],
            augmentation: dict | None = None, head: str = "average") -> str:
    """Names a training run by the content it depends on (not by how many stages it has done).

    The fitted and validation selections enter by their content keys (:func:`data_key`), so
    notes re-rendered under the same names never reuse a stale model. ``augmentation`` (the
    settings of :class:`instclf.augment.Augmentation`) enters only when given, the head only
    when it is not the original average pooling.
    """
    settings = {**asdict(schedule), "max_unfrozen_blocks": None, "backbone": backbone.name,
                "weights": backbone.weights, "front_end": backbone.front_end.key,
                "fit": data["fit"].key, "valid": data["valid"].key}
    if augmentation is not None:
        settings["augmentation"] = dict(augmentation)
    if head != "average":  # the original head keeps the keys it had
        settings["head"] = head
    return f"{backbone.name}-{storage.content_key('model', settings)[:10]}"


@dataclass
class TrainedModel:
    """A classifier with its history and description (what notebooks 03 to 07 use)."""

    model: keras.Model
    history: pd.DataFrame
    meta: dict
    path: Path




def save_model(model: keras.Model, meta: dict, path: Path) -> None:
    """One native ``.keras`` file that carries its description (front end, classes, backbone,
    training data keys) as an extra archive member, plus a readable copy ``<name>.json``.

    Keras ignores members it does not know, so the file loads anywhere; the copy beside it
    is what :func:`recorded_models` scans.
    """
    with storage.atomic_path(path) as tmp:
        model.save(str(tmp))
        with zipfile.ZipFile(tmp, "a") as archive:
            archive.writestr(DESCRIPTION_MEMBER, json.dumps(meta, indent=2, sort_keys=True))
    storage.write_json(path.with_suffix(".json"), meta)


def load_model(path: Path) -> tuple[keras.Model, dict]:
    """A saved classifier, in Keras safe mode, and its description. Reads nothing else: no
    dataset, no profile (``instclf predict``, ``instclf evaluate``, notebook 07, the page)."""
    path = Path(path)
    if not path.is_file():
        raise InstclfError(f"model {path} not found; train it with notebook 03 or make reproduce")
    meta = model_description(path)
    model = keras.models.load_model(str(path), safe_mode=True, compile=False)
    return model, meta


def distribution_strategy():
    """``MirroredStrategy`` over every visible GPU when there are several, else TensorFlow's
    default strategy (one device). What :func:`trained_model` trains under by default.

    Several machines: pass a ``tf.distribute.MultiWorkerMirroredStrategy`` to
    :func:`trained_model` instead (README, "On a GPU, and at NSynth's scale").
    """
    import tensorflow as tf

    gpus = [device.name for device in tf.config.list_logical_devices("GPU")]
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy(gpus)
    return tf.distribute.get_strategy()


def augmented_fit(fit: Data, front_end: features.FrontEnd, augmentation) -> Data:
    """The fitted selection plus its augmented copies, keyed on the plain selection's key
    and the augmentation's settings (notebook 04's augmented run)."""
    X, y, notes = augment.augmented(fit.X, fit.y, fit.notes, front_end, augmentation)
    return Data(X, y, notes, storage.content_key("augmented", fit.key, augmentation.settings()))


def trained_model(profile: Profile, backbone_name: str, max_unfrozen_blocks: int | None = None,
                  data: dict[str, Data] | None = None, progress=None,
                  augmentation=None, strategy=None, schedule: Schedule | None = None,
                  models_dir: Path | None = None, experiment: str | None = None,
                  head: str = "average") -> TrainedModel:
    """The backbone's classifier trained on the profile, from disk if already trained.

    Runs, resumes or extends the staged schedule as needed (notebooks 03 to 05).
    ``augmentation`` (an :class:`instclf.augment.Augmentation`) trains on the fitted notes
    plus that many augmented copies (notebook 04); pass the plain ``data``: the copies are
    made only when the run has to train. ``strategy``: a ``tf.distribute`` strategy to build
    and train under (default: :func:`distribution_strategy`). ``schedule`` and ``models_dir``
    replace the profile's (the leave-one-lineage-out folds of :mod:`instclf.lineages`).
    ``experiment``: the registry's name of the recipe, recorded in the model's description;
    ``head``: the pooling of :data:`instclf.backbones.HEADS`.
    """
    backbone = backbones.get_backbone(backbone_name)
    schedule = schedule or schedule_for(profile, max_unfrozen_blocks)
    data = data or training_data(profile, backbone.front_end, progress=progress is not None)
    if "copy" in data["fit"].notes.columns:
        raise InstclfError("trained_model takes the plain training data; ask for augmented "
                           "copies with augmentation=instclf.augment.Augmentation(...)")
    settings = augmentation.settings() if augmentation is not None else None
    model_path = saved_model_path(profile, backbone_name, schedule, data, augmentation, head,
                                  models_dir)
    run_dir = model_path.parent
    if model_path.is_file():
        model, meta = load_model(model_path)
        if progress:
            progress(f"loaded from cache: {model_path}")
        history = pd.read_csv(run_dir / "history.csv")
        return TrainedModel(model, history[history["stage"] < meta["stages_completed"]],
                            meta, model_path)
    if augmentation is not None:
        data = {**data, "fit": augmented_fit(data["fit"], backbone.front_end, augmentation)}
    keras.utils.set_random_seed(schedule.seed)
    with (strategy or distribution_strategy()).scope():
        model = backbones.build_classifier(backbone, head=head)
        state, history = staged_training(model, backbone, data, schedule, run_dir, progress,
                                         cache_dir=profile_cache_dir(profile))
    set_trainable(model, 0, keep_batchnorm_frozen=False)
    meta = {
        "backbone": backbone.name, "head": head, "weights": backbone.weights,
        "classes": list(FAMILIES),
        "front_end": asdict(backbone.front_end), "profile": profile.name,
        "data": {name: data[name].key for name in ("fit", "valid")},
        "schedule": asdict(schedule),
        "stages_completed": state.completed_stages, "best_stage": state.best_stage,
        "stopped": state.stopped, "epochs": int(len(history)),
        "best_val_loss": state.best_val_loss, "training_seconds": round(state.seconds, 1),
        "activation_seconds": round(state.activation_seconds, 1),
        "activation_passes": state.activation_passes,
        "stage_seconds": state.stage_seconds,
    }
    if settings is not None:
        meta.update(augmentation=settings, fit_notes=len(data["fit"]))
    if experiment is not None:
        meta["experiment"] = experiment
    save_model(model, meta, model_path)
    return TrainedModel(model, history, meta, model_path)


BLOCK_STATISTICS = "block_statistics"  # the head that reads the frozen top blocks' statistics


def ensemble_model(profile: Profile, name: str, members: list[TrainedModel], valid: Data,
                   progress=None, models_dir: Path | None = None) -> TrainedModel:
    """One model averaging ``members``' probabilities (:func:`instclf.backbones.averaged`),
    saved as ``ensemble.keras`` under a folder keyed by the members' files; from disk if
    already made. Its description is its first member's, with the ensemble's name, its
    members and its own validation loss on ``valid``; its history is its first member's
    (notebook 04, ``instclf train``, the page's model)."""
    key = storage.content_key("ensemble", name, [storage.file_digest(m.path) for m in members])
    path = (models_dir or profile.models_dir) / f"{name}-{key[:10]}" / "ensemble.keras"
    if path.is_file():
        if progress:
            progress(f"loaded from cache: {path}")
        return load_trained(path)
    model = backbones.averaged([m.model for m in members], name=name)
    probabilities = predict_in_chunks(model, valid.X, progress=progress is not None)
    val_loss = float(keras.losses.sparse_categorical_crossentropy(
        valid.y, probabilities).numpy().mean())
    first = members[0].meta
    meta = {**first, "experiment": name, "head": " + ".join(m.meta["head"] for m in members),
            "members": [{"experiment": m.meta.get("experiment"), "backbone": m.meta["backbone"],
                         "head": m.meta["head"], "best_val_loss": m.meta["best_val_loss"],
                         "model": str(m.path)} for m in members],
            "best_val_loss": val_loss,
            "training_seconds": round(sum(m.meta["training_seconds"] for m in members), 1)}
    path.parent.mkdir(parents=True, exist_ok=True)
    with storage.atomic_path(path.parent / "history.csv") as tmp:
        members[0].history.to_csv(tmp, index=False)
    save_model(model, meta, path)
    if progress:
        progress(f"{name}: the mean of {len(members)} models, val_loss {val_loss:.3f}")
    return TrainedModel(model, members[0].history, meta, path)


def saved_model_path(profile: Profile, backbone_name: str, schedule: Schedule,
                     data: dict[str, Data], augmentation=None, head: str = "average",
                     models_dir: Path | None = None) -> Path:
    """Where :func:`trained_model` saves (or finds) the model of these arguments: its run's
    folder (:func:`run_key`) and the number of blocks the schedule unfreezes."""
    settings = augmentation.settings() if augmentation is not None else None
    key = run_key(backbones.get_backbone(backbone_name), schedule, data, settings, head)
    return (models_dir or profile.models_dir) / key / f"stages{schedule.max_unfrozen_blocks}.keras"


def load_trained(path: Path) -> TrainedModel:
    """A saved model with its metadata and the history of the stages it completed."""
    model, meta = load_model(path)
    history_path = path.parent / "history.csv"
    history = pd.read_csv(history_path) if history_path.is_file() else pd.DataFrame(
        columns=HISTORY_COLUMNS)
    return TrainedModel(model, history[history["stage"] < meta["stages_completed"]], meta, path)


def stage_summary(history: pd.DataFrame) -> pd.DataFrame:
    """One row per stage: blocks unfrozen, epochs, best validation loss and its accuracy, time.

    The validation notes are the held-out instruments (notebook 04's unfreezing table).
    """
    rows = []
    for stage, part in history.groupby("stage", sort=True):
        best = part.loc[part["val_loss"].idxmin()]
        rows.append({"stage": int(stage), "unfrozen_blocks": int(best["unfrozen_blocks"]),
                     "epochs": len(part), "best_epoch": int(best["epoch"]),
                     "val_loss": float(best["val_loss"]),
                     "val_accuracy": float(best["val_accuracy"]),
                     "seconds": float(part["seconds"].sum())})
    return pd.DataFrame(rows)


def elapsed_history(history: pd.DataFrame, meta: dict) -> pd.DataFrame:
    """``history`` with ``elapsed_seconds``: training time from the start of the run to the end
    of each epoch, everything counted (notebook 04's accuracy-against-time figure).

    Each pass through the frozen bottom (``activation_passes``: the stage it preceded and
    its seconds; older models record only the total ``activation_seconds``, counted before
    stage 0) comes before its stage; each stage then pays what its epochs do not show (its
    own activations, compiling) before its first epoch, so the last epoch ends at the run's
    ``training_seconds``.
    """
    out = history.reset_index(drop=True).copy()
    stage_seconds = list(meta.get("stage_seconds") or [])
    passes = meta.get("activation_passes") or [[0, float(meta.get("activation_seconds", 0.0))]]
    clock, elapsed = 0.0, np.zeros(len(out))
    for stage, part in out.groupby("stage", sort=True):
        clock += sum(seconds for first, seconds in passes if int(first) == int(stage))
        epochs = part["seconds"].to_numpy(dtype=float)
        total = stage_seconds[int(stage)] if int(stage) < len(stage_seconds) else epochs.sum()
        elapsed[part.index] = clock + max(total - epochs.sum(), 0.0) + np.cumsum(epochs)
        clock += max(total, epochs.sum())
    out["elapsed_seconds"] = elapsed
    return out


def accuracy_at(history: pd.DataFrame, seconds: float) -> float:
    """Validation accuracy of the model a run would keep if stopped after ``seconds``: the
    epoch with the lowest validation loss among those finished by then (NaN if none is).

    ``history`` comes from :func:`elapsed_history` (notebook 04).
    """
    done = history[history["elapsed_seconds"] <= seconds]
    if done.empty:
        return float("nan")
    return float(done.loc[done["val_loss"].idxmin(), "val_accuracy"])
