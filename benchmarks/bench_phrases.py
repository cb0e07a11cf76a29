"""Phrases: the combined answer of several notes against the first note alone.

Phrases are built from the default profile's held-out test notes ("unseen instruments"):
``k`` notes of one instrument (k = 1, 2, 3, 5), drawn at random, each after a gap of
0.1-0.6 s, then through a room and background noise of the recording chain
(:mod:`instclf.recording`), seeded. Each phrase is classified
- as today: ``predict.prepare_clip`` of the whole recording, i.e. its first note alone;
- by ``instclf.phrases``: its notes found, each classified, then combined by several rules
  (the energy-weighted mean log-probability, which ``instclf predict`` uses; the plain mean
  log-probability; the mean probability; the loudest note alone).
With the profile's best trained model (``models.best_model_path``). Writes
benchmarks/results/phrases.json.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

from instclf import features, models, nsynth, phrases, predict, profiles, recording, subsets
from instclf.config import FAMILIES

RESULTS = Path(__file__).resolve().parent / "results"
NOTE_COUNTS = (1, 2, 3, 5)
PHRASES_PER_INSTRUMENT = 2
SR = nsynth.SAMPLE_RATE


def build_phrase(paths, rng: np.random.Generator) -> np.ndarray:
    """The notes after their gaps, through a room, with noise, peak 0.8."""
    parts = []
    for path in paths:
        parts += [np.zeros(int(rng.uniform(0.1, 0.6) * SR), np.float32),
                  nsynth.load_note(path)[0]]
    y = np.concatenate(parts)
    for name in ("room", "noise"):
        condition = recording.CONDITIONS[name]
        y = condition.apply(y, condition.draw(rng))
    return (0.8 * y / np.abs(y).max()).astype(np.float32)


def rules(p: np.ndarray, energy: np.ndarray) -> dict[str, np.ndarray]:
    """The combined distribution of a phrase's notes by each rule."""
    log_p = np.log(np.clip(p, 1e-12, 1))
    return {"energy_weighted_log": phrases.combine(p, energy),
            "mean_log": np.exp(log_p.mean(axis=0)), "mean_probability": p.mean(axis=0),
            "loudest_note": p[int(np.argmax(energy))]}


def main() -> dict:
    began = time.perf_counter()
    profile = profiles.get_profile("default")
    model_path = models.best_model_path(profile)
    predictor = predict.load_predictor(model_path)
    notes = profile.notes(progress=False)
    test = notes[notes["split"] == "test"]
    front_end = predictor.front_end
    built = []  # (k, family, first-note clip, note clips, energies, notes found)
    for instrument, group in test.groupby("instrument_str"):
        for k in NOTE_COUNTS:
            for copy in range(PHRASES_PER_INSTRUMENT):
                rng = subsets.stable_rng(0, "phrases", instrument, k, copy)
                chosen = group["path"].to_numpy()[rng.choice(len(group), k, replace=False)]
                y = build_phrase(chosen, rng)
                clips, spans, mono = phrases.note_clips(y, SR, front_end)
                built.append((k, group["family"].iloc[0], predict.prepare_clip(y, SR, front_end),
                              clips, phrases.note_energy(mono, spans), len(spans)))
    prepared = time.perf_counter()
    clips = np.concatenate([np.stack([b[2] for b in built])] + [b[3] for b in built])
    p = np.concatenate([phrases._probabilities(features.batch_features(
        clips[i:i + 64], front_end, mel_basis=predictor.mel_basis), predictor)
        for i in range(0, len(clips), 64)])
    first, rest = p[:len(built)], p[len(built):]
    hits: dict = {}
    start = 0
    for (k, family, _, note_clips, energy, found), p_first in zip(built, first):
        p_notes = rest[start:start + len(note_clips)]
        start += len(note_clips)
        row = hits.setdefault(k, {"phrases": 0, "notes_found_exactly": 0, "first_note": 0,
                                  **{rule: 0 for rule in rules(p_notes, energy)}})
        row["phrases"] += 1
        row["notes_found_exactly"] += found == k
        row["first_note"] += FAMILIES[int(np.argmax(p_first))] == family
        for rule, combined in rules(p_notes, energy).items():
            row[rule] += FAMILIES[int(np.argmax(combined))] == family
    by_notes = {str(k): {name: (round(v / row["phrases"], 4) if name != "phrases" else v)
                         for name, v in row.items()} for k, row in sorted(hits.items())}
    result = {"benchmark": "phrases", "cpu_count": os.cpu_count(),
              "model": f"{model_path.parent.name}/{model_path.name}",
              "instruments": int(test["instrument_str"].nunique()),
              "phrases_per_instrument": PHRASES_PER_INSTRUMENT, "clips": len(clips),
              "by_notes": by_notes, "seconds_preparing": round(prepared - began, 1),
              "seconds": round(time.perf_counter() - began, 1)}
    for k, row in by_notes.items():
        print(f"{k} note(s), {row['phrases']} phrases: first note alone {row['first_note']:.1%}, "
              f"combined (energy-weighted log) {row['energy_weighted_log']:.1%}, mean log "
              f"{row['mean_log']:.1%}, mean probability {row['mean_probability']:.1%}, loudest "
              f"{row['loudest_note']:.1%}; notes found exactly {row['notes_found_exactly']:.0%}")
    print(f"{result['seconds']:.0f} s ({result['clips']} clips)")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "phrases.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
