"""Balanced subsets and splits of a note table (notebook 01 and the training notebooks)."""

from __future__ import annotations

import pandas as pd

from .config import InstclfError


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
    return train.drop(index=held.index), train.loc[sorted(held.index)]
