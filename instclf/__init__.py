"""instclf: instrument-family classification of single notes by transfer learning.

Notebooks use it as ``import instclf as ic`` and start with ``profile = ic.setup()``.
Submodules load on first use (``ic.render``, ``ic.plots``...), so a rendering worker does not
pay for plotting libraries it never calls; so do ``setup``, ``Profile`` and ``get_profile``,
so that importing a submodule (a source, which the profiles import) never imports the
profiles back through the package.
"""

import importlib
import importlib.util

from .config import FAMILIES, SOURCES, SPLITS, InstclfError

__version__ = "0.1.0"

# names the package offers from the module that defines them, loaded on first use
_FROM_MODULE = {"setup": "session", "Profile": "profiles", "get_profile": "profiles"}


def __getattr__(name: str):
    if name in _FROM_MODULE:
        return getattr(importlib.import_module(f".{_FROM_MODULE[name]}", __name__), name)
    if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}"):
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'instclf' has no attribute {name!r}")
