"""The registry of source kinds: the one line a new source module adds (:data:`KINDS`), and a
source made from its kind (``make_source("folder", ...)``: the tests, the benchmarks).

The kinds name their modules as strings, loaded on first use, so this module imports none of
them and none of them imports it.
"""

from __future__ import annotations

import importlib

from ..config import InstclfError
from .base import Source

# kind -> "module:class"; the one registry line a new source adds
KINDS = {
    "soundfonts": "instclf.sources.soundfonts:SoundfontRender",
    "nsynth": "instclf.sources.official:OfficialNSynth",
    "folder": "instclf.sources.folder:Folder",
    "recorded": "instclf.sources.recorded:Recorded",
    "csound": "instclf.sources.csound:CsoundRender",
    "faust": "instclf.sources.faust:FaustRender",
    "pyo": "instclf.sources.pyo_synth:PyoRender",
    "samples": "instclf.sources.samples:SampleLibrary",
}


def source_class(kind: str) -> type[Source]:
    """The class registered for ``kind`` in :data:`KINDS`."""
    if kind not in KINDS:
        raise InstclfError(f"unknown source kind {kind!r}; use one of {', '.join(KINDS)}")
    module, name = KINDS[kind].split(":")
    return getattr(importlib.import_module(module), name)


def make_source(kind: str, **settings) -> Source:
    """A source of a registered kind, e.g. ``make_source("folder", name="mine", path="...")``."""
    return source_class(kind)(**settings)
