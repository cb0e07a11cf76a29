"""Plot helpers: each takes ``ax=None``, draws one figure with labelled axes, returns the figure.

Figures are saved only through :func:`save_figure`, under stable names ``NN_slug.png``.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from .config import FAMILIES, Profile

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

_HZ_TICKS = (50, 100, 250, 500, 1000, 2000, 4000, 8000, 16000)
_SCALING_LABELS = {"db_max": "power (dB re max)", "log10_1p": "log10(1 + 10000·mel power)"}


def _mel_time(S: np.ndarray, front_end) -> np.ndarray:
    """``S`` as (mel bands, frames), whatever the front end's layout."""
    S = np.asarray(S, dtype=np.float32)
    return S.T if front_end.layout == "time_mel" else S


def _set_mel_axis(ax, front_end, n_mels: int, y_axis: str = "hz") -> None:
    """Label the y axis of a (mel band, time) image: band index, or band centres in Hz."""
    if y_axis == "band":
        ax.set_ylabel("mel band (index)")
        return
    import librosa

    fmax = front_end.fmax or front_end.sample_rate / 2
    edges = librosa.mel_frequencies(n_mels + 2, fmin=front_end.fmin, fmax=fmax)
    centres_mel = librosa.hz_to_mel(edges[1:-1])
    ticks, positions = [], []
    for f in sorted(_HZ_TICKS, reverse=True):  # from the top down, at least 7% of the axis apart
        if not edges[1] <= f <= edges[-2]:
            continue
        position = float(np.interp(librosa.hz_to_mel(f), centres_mel, np.arange(n_mels) + 0.5))
        if not positions or positions[-1] - position >= 0.07 * n_mels:
            ticks.append(f)
            positions.append(position)
    ax.set_yticks(positions, [f"{f:,}" for f in ticks])
    ax.set_ylabel("frequency (Hz, mel bands)")


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
    """A mel spectrogram: mel bands (low at the bottom) against time in seconds (notebook 02).

    ``S`` is laid out as ``front_end.layout`` says ((n_mels, frames) or (frames, n_mels)); the
    front end also gives the time step (hop / sample rate) and the band frequencies.
    ``y_axis="hz"`` labels bands by their centre frequency, ``"band"`` by their index.
    """
    fig, ax = _axes(ax, figsize=(9, 4))
    S = _mel_time(S, front_end)
    n_mels, n_frames = S.shape
    seconds = n_frames * front_end.hop_length / front_end.sample_rate
    image = ax.imshow(S, origin="lower", aspect="auto", cmap="magma", interpolation="nearest",
                      extent=(0, seconds, 0, n_mels), vmin=vmin, vmax=vmax)
    _set_mel_axis(ax, front_end, n_mels, y_axis)
    ax.set_xlabel("time (s)")
    ax.grid(False)
    ax.set_title(title if title is not None else f"Mel spectrogram ({front_end.name} front end)")
    if colorbar:
        label = colorbar_label or _SCALING_LABELS.get(front_end.scaling, front_end.scaling)
        fig.colorbar(image, ax=ax, label=label, pad=0.02)
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
    """One spectrogram per family on one colour scale, with one shared colour bar (notebook 02)."""
    fig, axes = _panels(len(spectrograms), ncols, (3.4, 2.6), layout="constrained")
    values = np.concatenate([np.ravel(S) for S in spectrograms.values()])
    vmin, vmax = float(values.min()), float(values.max())
    for k, (ax, (family, S)) in enumerate(zip(axes.flat, spectrograms.items())):
        plot_spectrogram(S, front_end, ax=ax, title=family, vmin=vmin, vmax=vmax,
                         colorbar=False)
        ax.title.set_fontsize(10)
        if k % ncols:
            ax.set_ylabel("")
    label = _SCALING_LABELS.get(front_end.scaling, front_end.scaling)
    fig.colorbar(axes.flat[0].images[0], ax=axes, label=label, shrink=0.8)
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
