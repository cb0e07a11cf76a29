"""Sources of NSynth-format notes: what a profile trains and evaluates on.

A source is anything that yields an NSynth-format dataset root (``nsynth-<split>/`` folders,
each with ``examples.json`` and ``audio/<note_str>.wav``): the embedded soundfont render, the
official NSynth archives, any NSynth-format folder. Each source is one module of this
package; adding one is that module plus one line in :data:`KINDS`. A profile
(:mod:`instclf.profiles`) names its sources; :func:`read_notes` gives their notes as one
table with two columns more: ``origin`` (the source's name) and ``lineage`` (sources or
soundfonts that share sound material share a lineage). Splits and selections are then the
same for every source (:mod:`instclf.subsets`).
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pandas as pd

from ..config import InstclfError
from .base import Source  # noqa: F401 (the interface, offered here too)

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


def read_source(source: Source, data_dir: Path, progress: bool = True,
                ensure: bool = True) -> pd.DataFrame:
    """The notes of one source (made available first), with ``split``, ``origin``, ``lineage``."""
    notes = source.read(data_dir, progress, ensure)
    return notes.assign(origin=source.name, lineage=source.lineage(notes).to_numpy())


def read_notes(sources, data_dir: Path, progress: bool = True,
               ensure: bool = True) -> pd.DataFrame:
    """The notes of every source, one table (notebooks 01 to 07 through the profile).

    Note names must be unique across the sources: every cache is keyed on them.
    """
    notes = pd.concat([read_source(s, data_dir, progress, ensure) for s in sources],
                      ignore_index=True)
    twice = notes["note_str"][notes["note_str"].duplicated()]
    if len(twice):
        raise InstclfError(
            f"{len(twice)} note names occur in more than one source (first: {twice.iloc[0]}); "
            "give the sources distinct instrument names")
    return notes
