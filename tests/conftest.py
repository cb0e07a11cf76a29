"""Shared fixtures: a tiny embedded dataset rendered once per test session."""

from __future__ import annotations

import pytest

from instclf.profiles import Profile
from instclf.sources.soundfonts import SoundfontRender

TINY_SOURCE = SoundfontRender(
    name="embedded-tiny",
    soundfonts=("TimGM6mb", "sf_GMbank"),
    instruments_per_family=3,
    notes_per_instrument=4,
    velocities=(100,),
    heldout_fraction=0.34,
)


@pytest.fixture(scope="session")
def tiny_profile(tmp_path_factory) -> Profile:
    """A profile small enough to render in about a second, with its own data root."""
    return Profile(name="tiny", sources=(TINY_SOURCE,), data_dir=tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="session")
def tiny_dataset(tiny_profile):
    """The tiny profile rendered once (root, report); tests must not modify it."""
    source = tiny_profile.sources[0]
    report = source.render(tiny_profile.data_dir, progress=False)
    return source.root(tiny_profile.data_dir), report
