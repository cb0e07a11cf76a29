"""Selections of notes: balanced subsets, instrument-disjoint splits and the seen-instrument
hold-back, the same for every source (notebook 01 and the training notebooks)."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .config import FAMILIES, InstclfError


def family_counts(notes: pd.DataFrame) -> pd.Series:
    """Notes per family, every family listed (0 where a family has none)."""
    return notes["family"].value_counts(sort=False).sort_index()


def balanced_subset(notes: pd.DataFrame, per_family: int | None = None,
                    seed: int = 0) -> pd.DataFrame:
    """The same number of notes from each family present, as in the study.

    ``per_family=None`` takes the cap from the least-represented family present. Families
    with no notes stay absent. Deterministic for a seed; rows keep the table's order.
    """
    counts = family_counts(notes)
    present = counts[counts > 0]
    cap = int(present.min()) if per_family is None else int(per_family)
    if cap > present.min():
        short = ", ".join(f"{f} ({n})" for f, n in present.items() if n < cap)
        raise InstclfError(
            f"cannot take {cap} notes per family: {short} have fewer; "
            "lower per_family or use a larger profile"
        )
    picked = (notes.groupby("family", observed=True, group_keys=False)
                   .sample(n=cap, random_state=seed))
    return notes.loc[sorted(picked.index)]


def class_weights(y: np.ndarray, n_classes: int = len(FAMILIES)) -> dict[int, float]:
    """Weights that make every family count as much as the others ("balanced"): family k
    weighs ``len(y) / (families present * notes of k)``, so each family's weights sum to the
    same total; the alternative to discarding notes for a balanced subset (notebooks 01, 03)."""
    counts = np.bincount(y, minlength=n_classes)
    present = counts > 0
    return {k: float(len(y) / (present.sum() * counts[k])) for k in range(n_classes) if present[k]}


def one_note_per_family(notes: pd.DataFrame, pitch: int = 60, velocity: int = 100) -> pd.DataFrame:
    """For each family present, the note closest to ``pitch`` and ``velocity`` (notebooks 01, 02).

    Ties go to the first note in name order, so the choice is stable.
    """
    distance = (notes["pitch"] - pitch).abs() * 1000 + (notes["velocity"] - velocity).abs()
    ranked = notes.assign(_distance=distance).sort_values(["_distance", "note_str"])
    picked = ranked.groupby("family", observed=True, sort=True).head(1)
    return picked.drop(columns="_distance").sort_values("family").reset_index(drop=True)


def seen_split(train: pd.DataFrame, fraction: float, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Training notes -> (notes to fit, notes held back), a random note-level split per family.

    The held-back notes come from instruments the model trains on: accuracy on them is
    accuracy on "seen instruments", the study's 92% (notebooks 03 to 05).
    """
    held = (train.groupby("family", observed=True, group_keys=False)
                 .sample(frac=fraction, random_state=seed))
    fit = train.drop(index=held.index)
    # a held-back note of an instrument left with no fitted note (a recorded copy of one or
    # two notes) is not a seen instrument's: it is left out of both
    held = held[held["instrument_str"].isin(set(fit["instrument_str"]))]
    return fit, train.loc[sorted(held.index)]


# --- instrument-disjoint splits, for every source ---------------------------------------------

def stable_rng(seed: int, *keys) -> np.random.Generator:
    """A generator that depends only on the seed and the keys (not on call order)."""
    return np.random.default_rng([seed, zlib.crc32(repr(keys).encode())])


def heldout_flags(n_instruments: int, fraction: float, seed: int, family: str) -> list[bool]:
    """Which of a family's instruments are held out (their notes form valid and test).

    At least one instrument is held out and at least one kept. Used by the embedded render
    and by :func:`instrument_splits` for any other source.
    """
    if n_instruments < 2:
        raise InstclfError(
            f"family {family} has {n_instruments} instrument(s) in these sources; a split "
            "needs at least 2 (add sources to the profile)"
        )
    n_heldout = min(n_instruments - 1, max(1, round(fraction * n_instruments)))
    order = stable_rng(seed, "heldout", family).permutation(n_instruments)
    flags = [False] * n_instruments
    for rank, k in enumerate(order):
        flags[k] = bool(rank < n_heldout)
    return flags


def heldout_note_splits(n_notes: int, seed: int, instrument_str: str) -> list[str]:
    """valid/test alternating over a held-out instrument's notes in a seeded order, so each
    held-out instrument with two or more notes reaches both (as in NSynth)."""
    order = stable_rng(seed, "heldout-notes", instrument_str).permutation(n_notes)
    split_of = {k: ("valid", "test")[rank % 2] for rank, k in enumerate(order)}
    return [split_of[k] for k in range(n_notes)]


def instrument_splits(notes: pd.DataFrame, fraction: float, seed: int = 0) -> pd.Series:
    """The split of every note when a share of each family's instruments is held out here
    (for a source whose own splits are not instrument-disjoint, or that has only one)."""
    split = pd.Series("train", index=notes.index, dtype=object)
    for family, members in notes.groupby("family", observed=True, sort=True):
        instruments = sorted(members["instrument_str"].unique())
        flags = heldout_flags(len(instruments), fraction, seed, str(family))
        for instrument, heldout in zip(instruments, flags):
            if heldout:
                rows = members.index[members["instrument_str"] == instrument]
                split[rows] = heldout_note_splits(len(rows), seed, instrument)
    return split


@dataclass(frozen=True)
class Selection:
    """How a profile's notes become the four selections of training and evaluation.

    ``splits``: ``"source"`` keeps the sources' own instrument-disjoint splits (the embedded
    render and the official NSynth have them); ``"instruments"`` holds out
    ``heldout_fraction`` of each family's instruments here, whatever the source says.
    ``per_family``: a balanced subset of at most this many training notes per family (the
    study's 5,000), before ``seen_fraction`` of them is held back as "seen instruments".
    """

    splits: str = "source"
    heldout_fraction: float = 0.2
    per_family: int | None = None
    seen_fraction: float = 0.1
    seed: int = 0


SELECTIONS = ("fit", "seen", "valid", "test")


def select(notes: pd.DataFrame, selection: Selection) -> dict[str, pd.DataFrame]:
    """``fit``, ``seen``, ``valid`` and ``test`` notes of a note table (notebooks 03 to 06).

    ``seen`` holds back a random share of the training instruments' notes ("seen
    instruments"); ``valid`` and ``test`` are the held-out instruments ("unseen instruments").
    """
    if selection.splits == "instruments":
        notes = notes.assign(split=instrument_splits(notes, selection.heldout_fraction,
                                                     selection.seed))
    elif selection.splits != "source":
        raise InstclfError(f"unknown splits {selection.splits!r}: use 'source' or 'instruments'")
    train = notes[notes["split"] == "train"]
    if selection.per_family is not None:
        smallest = int(family_counts(train).pipe(lambda c: c[c > 0]).min())
        train = balanced_subset(train, min(selection.per_family, smallest), seed=selection.seed)
    fit, seen = seen_split(train, selection.seen_fraction, seed=selection.seed)
    chosen = {"fit": fit, "seen": seen, "valid": notes[notes["split"] == "valid"],
              "test": notes[notes["split"] == "test"]}
    return {name: part.reset_index(drop=True) for name, part in chosen.items()}
