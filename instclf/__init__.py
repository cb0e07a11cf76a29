"""instclf: instrument-family classification of single notes by transfer learning.

Notebooks use it as ``import instclf as ic`` and start with ``profile = ic.setup()``.
Submodules load on first use (``ic.render``, ``ic.plots``...), so a rendering worker does not
pay for plotting libraries it never calls.
"""

import importlib
import importlib.util

from .config import FAMILIES, SOURCES, SPLITS, InstclfError
from .profiles import Profile, get_profile

__version__ = "0.1.0"


def __getattr__(name: str):
    if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}"):
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'instclf' has no attribute {name!r}")


def setup(profile: str | None = None) -> Profile:
    """The one setup call of every notebook: profile, fixed seeds, plot style."""
    from . import config, plots

    chosen = get_profile(profile)
    config.set_seeds(chosen.seed)
    plots.set_style()
    return chosen
