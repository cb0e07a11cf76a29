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
    nrows = int(np.ceil(len(waves) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 2.2 * nrows),
                             sharex=True, sharey=True, squeeze=False)
    for ax, (family, (y, sr)) in zip(axes.flat, waves.items()):
        ax.plot(np.arange(len(y)) / sr, y, lw=0.4, color=FAMILY_PALETTE.get(family, "C0"))
        ax.set_title(family, fontsize=10)
    for ax in axes.flat[len(waves):]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("time (s)")
    for ax in axes[:, 0]:
        ax.set_ylabel("amplitude\n(full scale)")
    fig.suptitle("One note per family")
    fig.tight_layout()
    return fig
