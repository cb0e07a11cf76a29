"""The one setup call of every notebook (``ic.setup()``): profile, fixed seeds, plot style."""

from __future__ import annotations

from . import config, plots
from .profiles import Profile, get_profile


def setup(profile: str | None = None) -> Profile:
    """The one setup call of every notebook: profile, fixed seeds, plot style."""
    chosen = get_profile(profile)
    config.set_seeds(chosen.seed)
    plots.set_style()
    return chosen
