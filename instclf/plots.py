"""Plot helpers: each takes ``ax=None``, draws one figure with labelled axes, returns the figure.

Figures are saved only through :func:`save_figure`, under stable names ``NN_slug.png``.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from .config import FAMILIES
from .profiles import Profile

FAMILY_PALETTE = dict(zip(FAMILIES, sns.color_palette("tab20", len(FAMILIES))))


def set_style() -> None:
    """The one plot style of the notebooks (called by ``ic.setup()``)."""
    sns.set_theme(context="notebook", style="whitegrid")
    plt.rcParams.update({"figure.dpi": 100, "savefig.dpi": 120, "savefig.bbox": "tight",
                         "figure.figsize": (9, 4.5)})


def save_figure(fig: plt.Figure, name: str, profile: Profile) -> Path:
    """Save ``fig`` as ``<figures dir>/<name>.png`` (the profile decides the folder)."""
    folder = profile.figures_dir
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    fig.savefig(path)
    return path


def _axes(ax, figsize=None):
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
        return fig, ax
    return ax.figure, ax


def _panels(n: int, ncols: int, panel_size: tuple[float, float], **subplots):
    """A grid of ``n`` panels (figure, 2-D axes); the cells past ``n`` are hidden."""
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, squeeze=False,
                             figsize=(panel_size[0] * ncols, panel_size[1] * nrows), **subplots)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, axes


def plot_family_counts(counts: pd.Series, ax=None, title: str = "Notes per family",
                       cutoff: int | None = None):
    """Bar chart of notes per family (the study's class-count figure; notebook 01).

    ``cutoff`` draws the balanced-subset cap as a horizontal line.
    """
    fig, ax = _axes(ax)
    ax.bar(counts.index.astype(str), counts.values,
           color=[FAMILY_PALETTE[f] for f in counts.index.astype(str)])
    for x, n in enumerate(counts.values):
        ax.annotate(f"{n:,}", (x, n), ha="center", va="bottom", fontsize=8)
    if cutoff is not None:
        ax.axhline(cutoff, color="black", ls="--", lw=1)
        ax.annotate(f"balanced cap: {cutoff:,} notes per family", (-0.4, cutoff),
                    xytext=(0, 4), textcoords="offset points", ha="left", va="bottom",
                    fontsize=9, backgroundcolor="white")
    ax.set(xlabel="instrument family", ylabel="notes (count)", title=title)
    ax.tick_params(axis="x", rotation=45)
    return fig


def plot_pitch_by_family(notes: pd.DataFrame, ax=None):
    """Box plot of MIDI pitch per family (notebook 01)."""
    fig, ax = _axes(ax)
    sns.boxplot(data=notes, x="family", y="pitch", hue="family", palette=FAMILY_PALETTE,
                order=FAMILIES, legend=False, ax=ax)
    ax.set(xlabel="instrument family", ylabel="pitch (MIDI note number)",
           title="Pitch range per family")
    ax.tick_params(axis="x", rotation=45)
    return fig


def plot_family_breakdown(notes: pd.DataFrame, column: str, ax=None, unit: str = "notes"):
    """Stacked bars: per family, how notes split by ``column`` (velocity, source, split).

    With ``unit="instruments"`` it counts distinct instruments instead of notes (notebook 01).
    """
    fig, ax = _axes(ax)
    if unit == "instruments":
        counts = notes.groupby(["family", column], observed=False)["instrument_str"].nunique()
    else:
        counts = notes.groupby(["family", column], observed=False).size()
    counts.unstack(column).reindex(FAMILIES).plot.bar(stacked=True, ax=ax, width=0.8)
    ax.set(xlabel="instrument family", ylabel=f"{unit} (count)",
           title=f"{unit.capitalize()} per family by {column}")
    ax.legend(title=column, bbox_to_anchor=(1.01, 1), loc="upper left")
    ax.tick_params(axis="x", rotation=45)
    return fig


def plot_waveforms(waves: dict[str, tuple[np.ndarray, int]], ncols: int = 4):
    """One small waveform per family, time in seconds (notebook 01)."""
    fig, axes = _panels(len(waves), ncols, (3.2, 2.2), sharex=True, sharey=True)
    for ax, (family, (y, sr)) in zip(axes.flat, waves.items()):
        ax.plot(np.arange(len(y)) / sr, y, lw=0.4, color=FAMILY_PALETTE.get(family, "C0"))
        ax.set_title(family, fontsize=10)
    for ax in axes[-1]:
        ax.set_xlabel("time (s)")
    for ax in axes[:, 0]:
        ax.set_ylabel("amplitude\n(full scale)")
    fig.suptitle("One note per family")
    fig.tight_layout()
    return fig


# --- spectrograms (notebook 02) ---------------------------------------------------------------

def _mel_time(S: np.ndarray, front_end) -> np.ndarray:
    """One clip's features ``S`` as (mel bands, frames), whatever the front end's layout."""
    return np.moveaxis(np.asarray(S, dtype=np.float32), front_end.mel_axis, 0)


def plot_waveform(y: np.ndarray, sr: int, ax=None, title: str = "Waveform",
                  highlight: tuple[float, float] | None = None):
    """One note's waveform against time in seconds (notebook 02).

    ``highlight`` shades a time span, for example the clip a front end keeps.
    """
    fig, ax = _axes(ax, figsize=(9, 3))
    ax.plot(np.arange(len(y)) / sr, y, lw=0.4, color="C0")
    if highlight is not None:
        ax.axvspan(*highlight, color="C1", alpha=0.12, label="clip the front end keeps")
        ax.legend(loc="upper right", fontsize=9)
    ax.set(xlabel="time (s)", ylabel="amplitude (full scale)", title=title,
           xlim=(0, len(y) / sr))
    return fig


def plot_spectrogram(S: np.ndarray, front_end, ax=None, title: str | None = None,
                     colorbar_label: str | None = None, y_axis: str = "hz",
                     vmin: float | None = None, vmax: float | None = None,
                     colorbar: bool = True):
    """A mel spectrogram drawn by ``librosa.display.specshow``: time in seconds against
    frequency in Hz on the mel scale (low at the bottom) (notebooks 01, 02, 04, 06, the page).

    ``S`` is laid out as ``front_end.layout`` says ((n_mels, frames) or (frames, n_mels)); the
    front end gives the time step (hop / sample rate), the band frequencies and the
    colour-bar label (what its scaling measures).
    ``y_axis="hz"`` labels bands by frequency, ``"band"`` by their index.
    """
    import librosa.display

    fig, ax = _axes(ax, figsize=(9, 4))
    mesh = librosa.display.specshow(
        _mel_time(S, front_end), ax=ax, sr=front_end.sample_rate,
        hop_length=front_end.hop_length, n_fft=front_end.n_fft, x_axis="s",
        y_axis="mel" if y_axis == "hz" else None, fmin=front_end.fmin,
        fmax=front_end.fmax or front_end.sample_rate / 2, cmap="magma", vmin=vmin, vmax=vmax)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("frequency (Hz, mel scale)" if y_axis == "hz" else "mel band (index)")
    ax.grid(False)
    ax.set_title(title if title is not None else f"Mel spectrogram ({front_end.name} front end)")
    if colorbar:
        fig.colorbar(mesh, ax=ax, label=colorbar_label or front_end.units, pad=0.02)
    return fig


def plot_spectrogram_grid(spectrograms: dict, ncols: int = 2,
                          colorbar_labels: dict[str, str] | None = None,
                          panel_size: tuple[float, float] = (5.2, 3.0)):
    """Several spectrograms, each with its own front end and colour bar (notebook 02).

    ``spectrograms`` maps a panel title to ``(S, front_end)``; ``colorbar_labels`` overrides
    the colour-bar label of some panels (for example ``"power (linear)"``).
    """
    colorbar_labels = colorbar_labels or {}
    fig, axes = _panels(len(spectrograms), ncols, panel_size, layout="constrained")
    for ax, (title, (S, front_end)) in zip(axes.flat, spectrograms.items()):
        plot_spectrogram(S, front_end, ax=ax, title=title,
                         colorbar_label=colorbar_labels.get(title))
        ax.title.set_fontsize(10)
    return fig


def plot_family_spectrograms(spectrograms: dict[str, np.ndarray], front_end, ncols: int = 4,
                             title: str = "One note per family"):
    """One spectrogram per panel on one colour scale, with one shared colour bar labelled by the
    front end's scaling (notebooks 02 and 04)."""
    fig, axes = _panels(len(spectrograms), ncols, (3.4, 2.6), layout="constrained")
    values = np.concatenate([np.ravel(S) for S in spectrograms.values()])
    vmin, vmax = float(values.min()), float(values.max())
    for k, (ax, (family, S)) in enumerate(zip(axes.flat, spectrograms.items())):
        plot_spectrogram(S, front_end, ax=ax, title=family, vmin=vmin, vmax=vmax,
                         colorbar=False)
        ax.title.set_fontsize(10)
        if k % ncols:
            ax.set_ylabel("")
    fig.colorbar(axes.flat[0].collections[0], ax=axes, label=front_end.units, shrink=0.8)
    fig.suptitle(title)
    return fig


def plot_rgb_image(image: np.ndarray, ax=None, title: str = "The spectrogram as an 8-bit image"):
    """A uint8 colour image in pixel coordinates, as a PNG stores it (notebook 02)."""
    fig, ax = _axes(ax, figsize=(6, 5))
    ax.imshow(image, interpolation="nearest", aspect="auto")
    ax.grid(False)
    ax.set(xlabel="column (pixel; one per time frame)",
           ylabel="row (pixel; one per mel band, low at the bottom)", title=title)
    return fig


def plot_quantisation_error(errors_db: np.ndarray, step_db: float, ax=None,
                            title: str = "What the PNG route loses"):
    """Histogram of the dB error of an 8-bit round trip, ±half a level marked (notebook 02)."""
    fig, ax = _axes(ax, figsize=(8, 4))
    errors_db = np.ravel(errors_db)
    ax.hist(errors_db, bins=np.linspace(-step_db, step_db, 41), color="C0")
    for x in (-step_db / 2, step_db / 2):
        ax.axvline(x, color="black", ls="--", lw=1)
    ax.annotate(f"±half a level ({step_db / 2:.3f} dB)", (step_db / 2, 1),
                xycoords=("data", "axes fraction"), xytext=(4, -4),
                textcoords="offset points", ha="left", va="top", fontsize=9)
    ax.set(xlabel="stored minus true value (dB)", ylabel="time-frequency bins (count)",
           title=title)
    ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda value, _: f"{value:,.0f}"))
    return fig


def plot_learning_curves(history: pd.DataFrame, title: str = "Learning curves"):
    """Accuracy and loss per epoch, fitted notes against validation notes (notebooks 03, 04).

    Stage boundaries of a staged run are drawn as dotted lines, labelled with the blocks
    unfrozen in each stage.
    """
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    for ax, metric, label in zip(axes, ("accuracy", "loss"), ("accuracy (share of notes)",
                                                             "loss (cross-entropy)")):
        ax.plot(history["epoch"], history[metric], marker="o", ms=3, label="fitted notes")
        ax.plot(history["epoch"], history[f"val_{metric}"], marker="o", ms=3,
                label="validation (unseen instruments)")
        for _, first in history.groupby("stage").head(1).iloc[1:].iterrows():
            ax.axvline(first["epoch"] - 0.5, color="grey", ls=":", lw=1)
        if history["stage"].nunique() > 1:
            for stage, part in history.groupby("stage"):
                blocks = int(part["unfrozen_blocks"].iloc[0])
                ax.annotate(f"{blocks} block{'s' * (blocks != 1)}",
                            (part["epoch"].mean(), 1.0), xycoords=("data", "axes fraction"),
                            ha="center", va="bottom", fontsize=8)
        ax.set(xlabel="epoch", ylabel=label)
        ax.legend(loc="best", fontsize=8)
    fig.suptitle(title, y=1.04)
    fig.tight_layout()
    return fig


def plot_stage_results(summaries: dict[str, pd.DataFrame], ax=None):
    """Validation accuracy after each stage against blocks unfrozen, one line per backbone."""
    fig, ax = _axes(ax)
    for name, summary in summaries.items():
        ax.plot(summary["unfrozen_blocks"], summary["val_accuracy"], marker="o", label=name)
    ax.set(xlabel="blocks unfrozen (from the top)",
           ylabel="validation accuracy (unseen instruments)",
           title="Accuracy after each unfreezing stage")
    ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    ax.legend()
    return fig


def plot_backbone_comparison(results: pd.DataFrame, ax=None):
    """Grouped bars of accuracy per backbone on seen and unseen instruments, with train time."""
    fig, ax = _axes(ax)
    melted = results.melt(id_vars=["backbone"], value_vars=["seen instruments",
                                                            "unseen instruments"],
                          var_name="split", value_name="accuracy")
    sns.barplot(data=melted, x="backbone", y="accuracy", hue="split", ax=ax)
    for container in ax.containers:
        ax.bar_label(container, fmt="%.2f", fontsize=8)
    labels = [f"{b}\n({s:.0f} s training)" for b, s in zip(results["backbone"],
                                                         results["training seconds"])]
    ax.set_xticks(range(len(labels)), labels)
    ax.set(xlabel="backbone", ylabel="accuracy (share of notes)", ylim=(0, 1),
           title="Transfer against training from scratch")
    ax.legend(title="test notes from", loc="lower right")
    return fig


# --- validation and the confusion deep dive (notebooks 05 and 06) ---------------------------

def plot_accuracy_intervals(summaries: pd.DataFrame, ax=None,
                            title: str = "Seen and unseen instruments", xlabel: str = "model",
                            legend_title: str = "test notes from",
                            legend_loc: str = "lower right"):
    """Accuracy with its 95% interval per model and split (notebooks 04 and 05; per lineage
    left out and recipe for :func:`instclf.report.lineages_frame`).

    ``summaries`` has columns ``model``, ``split``, ``accuracy``, ``low``, ``high``, and
    optionally ``seeds`` (each seed's accuracy, drawn as dots on the bar: the spread).
    """
    fig, ax = _axes(ax, figsize=(11, 5))
    models = list(dict.fromkeys(summaries["model"]))
    splits = list(dict.fromkeys(summaries["split"]))
    width = 0.8 / len(splits)
    for k, split in enumerate(splits):
        part = summaries[summaries["split"] == split].set_index("model").reindex(models)
        x = np.arange(len(models)) + (k - (len(splits) - 1) / 2) * width
        bars = ax.bar(x, part["accuracy"], width, label=split,
                      yerr=[part["accuracy"] - part["low"], part["high"] - part["accuracy"]],
                      capsize=3)
        ax.bar_label(bars, fmt="%.2f", fontsize=8, padding=2)
        if "seeds" in part and part["seeds"].map(len).max() > 1:
            for position, by_seed in zip(x, part["seeds"]):
                ax.plot([position] * len(by_seed), by_seed, "o", ms=3, color="black",
                        label="each seed" if k == 0 and position == x[0] else None)
    ax.set_xticks(range(len(models)), models, rotation=25, ha="right", fontsize=9)
    ax.set(xlabel=xlabel, ylabel="accuracy (share of notes)", ylim=(0, 1.05), title=title)
    ax.legend(title=legend_title, loc=legend_loc)
    return fig


def plot_instrument_accuracy(per_instrument: dict[str, pd.DataFrame], ax=None):
    """Histogram of per-instrument accuracy, one outline per split (notebook 05)."""
    fig, ax = _axes(ax)
    edges = np.linspace(0, 1, 11)
    for name, table in per_instrument.items():
        ax.hist(table["accuracy"], bins=edges, histtype="step", linewidth=2,
                weights=np.full(len(table), 1 / len(table)), label=f"{name} ({len(table)})")
    ax.set(xlabel="accuracy of the instrument's notes (share)",
           ylabel="share of instruments", title="Accuracy per instrument")
    ax.legend(title="instruments")
    return fig


def plot_reliability(bins: pd.DataFrame, ax=None, title: str = "Reliability (calibration)"):
    """Accuracy against mean confidence per bin, with the diagonal of perfect calibration."""
    fig, ax = _axes(ax, figsize=(5.5, 5))
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", label="perfectly calibrated")
    ax.plot(bins["confidence"], bins["accuracy"], marker="o", label="model")
    for row in bins.itertuples():
        ax.annotate(f"{row.notes}", (row.confidence, row.accuracy), fontsize=7,
                    textcoords="offset points", xytext=(4, -10))
    ax.set(xlabel="confidence: probability of the predicted family",
           ylabel="accuracy in the bin (share of notes)", xlim=(0, 1), ylim=(0, 1.02),
           title=title)
    ax.legend(loc="upper left")
    return fig


def plot_source_results(per_lineage: pd.DataFrame, mean: float, ax=None,
                        title: str = "Unseen sound sources"):
    """Accuracy on each left-out lineage (notebook 05), with the mean as a line."""
    fig, ax = _axes(ax)
    bars = ax.bar(per_lineage["lineage"], per_lineage["accuracy"], color="tab:purple")
    ax.bar_label(bars, fmt="%.2f", fontsize=8)
    ax.axhline(mean, color="black", linestyle="--",
               label=f"mean of the {len(per_lineage)}: {mean:.2f}")
    ax.set(xlabel="lineage left out of training (and tested on)",
           ylabel="accuracy (share of its notes)", ylim=(0, 1), title=title)
    ax.tick_params(axis="x", labelsize=8, rotation=15)
    ax.legend()
    return fig


def plot_confusion(counts: pd.DataFrame, normalized: pd.DataFrame, title: str = ""):
    """The confusion matrix twice: note counts and row-normalised shares (notebook 06)."""
    fig, axes = plt.subplots(1, 2, figsize=(17, 6.5), layout="constrained")
    sns.heatmap(counts, annot=True, fmt="d", cmap="Blues", ax=axes[0], square=True,
                cbar_kws={"label": "notes", "shrink": 0.8})
    sns.heatmap(normalized, annot=True, fmt=".2f", cmap="Blues", vmin=0, vmax=1, ax=axes[1],
                square=True, annot_kws={"fontsize": 7},
                cbar_kws={"label": "share of the true family's notes", "shrink": 0.8})
    for ax, kind in zip(axes, ("notes", "row-normalised")):
        ax.set(xlabel="predicted family", ylabel="true family", title=kind)
        ax.tick_params(axis="x", rotation=45)
        ax.tick_params(axis="y", rotation=0)
    fig.suptitle(title)
    return fig


def plot_accuracy_by(tables: dict[str, pd.DataFrame], ncols: int = 2):
    """Accuracy per value of several note fields, one panel each, notes on the bars."""
    fig, axes = _panels(len(tables), ncols, (6.5, 3.6), layout="constrained")
    for ax, (name, table) in zip(axes.flat, tables.items()):
        labels = [str(v) for v in table.index]
        bars = ax.bar(labels, table["accuracy"], color="tab:green")
        ax.bar_label(bars, labels=[str(n) for n in table["notes"]], fontsize=7)
        ax.set(xlabel=name, ylabel="accuracy (share of notes)", ylim=(0, 1.1),
               title=f"by {name} (numbers: notes)")
        ax.tick_params(axis="x", rotation=30, labelsize=8)
    return fig


# --- predicting your own audio (notebook 07) ------------------------------------------------

def plot_family_probabilities(probabilities: pd.Series, ax=None,
                              title: str = "What the model hears",
                              true_family: str | None = None):
    """Horizontal bars: the probability of each of the eleven families (notebook 07).

    The chart of the upload widget, the dataset explorer and the web page (``make app``).
    The most probable family is coloured, the others grey; ``true_family`` outlines the bar
    of the family a note really belongs to.
    """
    fig, ax = _axes(ax, figsize=(7, 4.2))
    values = probabilities[list(FAMILIES)].to_numpy(dtype=float)
    top = int(np.argmax(values))
    positions = np.arange(len(FAMILIES))
    bars = ax.barh(positions, values, color="#c8c8c8", edgecolor="none")
    bars[top].set(color="C0", label=f"most probable ({FAMILIES[top]})")
    for y, p in zip(positions, values):
        ax.annotate(f"{p:.0%}", (p, y), xytext=(3, 0), textcoords="offset points",
                    ha="left", va="center", fontsize=8)
    if true_family is not None:
        index = FAMILIES.index(true_family)
        bars[index].set(edgecolor="black", linewidth=1.5)
        if index != top:
            bars[index].set_label(f"true family ({true_family})")
        else:
            bars[index].set_label(f"most probable and true family ({true_family})")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_yticks(positions, list(FAMILIES))
    ax.invert_yaxis()
    ax.set(xlim=(0, 1.08), xlabel="probability (0 to 1)", ylabel="instrument family",
           title=title)
    ax.grid(axis="y", visible=False)
    return fig


def plot_clip_preparation(y: np.ndarray, sr: int, clip: np.ndarray, clip_sr: int,
                          silence_seconds: float | None = None):
    """A recording as received above the clip the model hears, on one time axis (notebook 07).

    ``silence_seconds`` shades the silence at the start of the recording.
    """
    fig, axes = plt.subplots(2, 1, figsize=(9, 4.8), sharex=True)
    plot_waveform(y, sr, ax=axes[0], title=f"Recording as received ({sr:,} Hz)")
    if silence_seconds:
        axes[0].axvspan(0, silence_seconds, color="grey", alpha=0.15, label="silence")
        axes[0].legend(loc="upper right", fontsize=9)
    plot_waveform(clip, clip_sr, ax=axes[1], title=f"Clip the model hears ({clip_sr:,} Hz, "
                  "onset at the start, level normalised)")
    axes[0].set_xlabel("")
    axes[0].set_xlim(0, max(len(y) / sr, len(clip) / clip_sr))
    fig.tight_layout()
    return fig


def plot_accuracy_vs_time(curves: dict, mark_seconds=None, mark_label: str = "", ax=None):
    """Validation accuracy (held-out instruments) after each epoch against the training time
    spent so far, one colour per model (notebook 04's equal-wall-time comparison).

    ``curves`` maps a model to its history with ``elapsed_seconds``
    (``instclf.train.elapsed_history``), or to a list of them (one per seed, one colour);
    each line starts where the model's first epoch ends, so a pretrained model's activation
    caching shows as the gap before it. ``mark_seconds`` draws a vertical line, or one per value
    of a list (for example each seed's from-scratch total time).
    """
    fig, ax = _axes(ax)
    for k, (name, found) in enumerate(curves.items()):
        for index, history in enumerate(found if isinstance(found, list) else [found]):
            ax.plot(history["elapsed_seconds"], history["val_accuracy"], marker="o", ms=3,
                    lw=1.2, color=f"C{k}", label=None if index else name)
    marks = np.atleast_1d([] if mark_seconds is None else mark_seconds)
    for index, seconds in enumerate(marks):
        ax.axvline(seconds, color="grey", ls="--", lw=1, label=None if index else (mark_label or None))
    ax.set(xlabel="training time so far (s), activation caching included",
           ylabel="validation accuracy (unseen instruments)", xlim=(0, None),
           title="Accuracy against training time")
    ax.legend(loc="lower right", fontsize=9)
    return fig
