"""Shared fixtures: a tiny embedded dataset rendered once per test session."""

from __future__ import annotations

import pytest

from instclf.config import Profile

TINY = dict(
    name="tiny",
    soundfonts=("TimGM6mb", "sf_GMbank"),
    instruments_per_family=3,
    notes_per_instrument=4,
    velocities=(100,),
    heldout_fraction=0.34,
)


@pytest.fixture(scope="session")
def tiny_profile(tmp_path_factory) -> Profile:
    """A profile small enough to render in about a second, with its own data root."""
    return Profile(**TINY, data_dir=tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="session")
def tiny_dataset(tiny_profile):
    """The tiny profile rendered once (root, report); tests must not modify it."""
    from instclf import render

    report = render.render_dataset(tiny_profile, progress=False)
    return tiny_profile.dataset_dir, report
