"""Sources of NSynth-format notes: what a profile trains and evaluates on.

A source is anything that yields an NSynth-format dataset root (``nsynth-<split>/`` folders,
each with ``examples.json`` and ``audio/<note_str>.wav``): the embedded soundfont render, the
official NSynth archives, any NSynth-format folder. Each source is one module of this
package; adding one is that module plus one line in :data:`instclf.sources.registry.KINDS`.
Every source implements :class:`instclf.sources.base.Source`. A profile
(:mod:`instclf.profiles`) names its sources; :func:`instclf.sources.base.read_notes` gives their notes as one
table with two columns more: ``origin`` (the source's name) and ``lineage`` (sources or
soundfonts that share sound material share a lineage). Splits and selections are then the
same for every source (:mod:`instclf.subsets`).

This package module imports none of its modules, so a source module, whose import runs this
file first, never needs the modules that need it.
"""
