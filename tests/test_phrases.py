"""Phrases: the notes of a recording found at their known onsets, each classified as a
training note, one combined answer; a single note answered exactly as before.

Recordings are built here from synthetic decaying tones with gaps and a little noise; the
model is a tiny dense classifier saved as training saves one.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import asdict

import keras
import numpy as np
import pytest
import soundfile as sf

from instclf import features, nsynth, phrases, predict, train
from instclf.config import FAMILIES

SR = nsynth.SAMPLE_RATE


def note(hz: float, seconds: float = 2.0, level: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    y = sum(np.sin(2 * np.pi * hz * k * t) / k for k in range(1, 5)) * np.exp(-3 * t)
    return (level * y / np.abs(y).max()).astype(np.float32)


def phrase(notes, gaps, seed: int = 0) -> tuple[np.ndarray, list[int]]:
    """Notes after their gaps (seconds), with white noise 50 dB below; the onsets."""
    parts, onsets, at = [], [], 0
    for y, gap in zip(notes, gaps):
        parts += [np.zeros(int(gap * SR), np.float32), y]
        at += int(gap * SR)
        onsets.append(at)
        at += len(y)
    y = np.concatenate(parts)
    return y + np.random.default_rng(seed).normal(0, 0.5 * 10 ** -2.5, len(y)).astype(
        np.float32), onsets


@pytest.fixture(scope="module")
def predictor(tmp_path_factory) -> predict.Predictor:
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input(features.MUSICNN.shape), keras.layers.Flatten(),
                              keras.layers.Dense(len(FAMILIES), activation="softmax")])
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    train.save_model(model, {"backbone": "tiny_dense", "classes": list(FAMILIES),
                             "front_end": asdict(features.MUSICNN)}, path)
    return predict.load_predictor(path, exported=False)


@pytest.mark.parametrize("pitches,gaps", [
    ((220.0, 330.0, 262.0), (0.3, 0.25, 0.4)),
    ((110.0, 440.0, 196.0, 523.0, 165.0), (0.5, 0.1, 0.2, 0.15, 0.3)),
    ((880.0, 880.0), (0.0, 0.2)),  # the same note twice, the first at the very start
])
def test_notes_are_found_at_their_onsets(pitches, gaps):
    y, onsets = phrase([note(hz) for hz in pitches], gaps)
    found = phrases.find_notes(y)
    assert len(found) == len(onsets)
    # backtracking moves an onset to the quiet before it, never past the note
    assert np.all(np.abs(found[:, 0] - onsets) <= 0.1 * SR), (found[:, 0], onsets)
    assert np.all(found[1:, 0] >= found[:-1, 1]) and np.all(found[:, 1] > found[:, 0])


def test_at_most_the_loudest_notes_are_kept():
    levels = (0.1, 0.6, 0.2, 0.9, 0.3)
    y, onsets = phrase([note(300.0 + 50 * k, 1.0, level) for k, level in enumerate(levels)],
                       (0.3,) * 5)
    found = phrases.find_notes(y, max_notes=2)
    assert np.abs(found[:, 0] - [onsets[1], onsets[3]]).max() <= 0.1 * SR


def test_a_sustained_note_with_tremolo_is_one_note():
    t = np.arange(6 * SR) / SR
    y = (np.sin(2 * np.pi * 440 * t) * (0.6 + 0.3 * np.sin(2 * np.pi * 5 * t))).astype(
        np.float32) * 0.5
    assert len(phrases.find_notes(y)) == 1


def test_one_note_is_answered_as_before(predictor, tmp_path):
    for seconds in (2.0, 7.0):  # shorter than a note, and long enough to be searched
        path = tmp_path / f"one-{seconds}.wav"
        sf.write(path, np.concatenate([np.zeros(SR // 2, np.float32), note(262.0, seconds)]),
                 44_100 if seconds < 3 else SR)
        heard = phrases.hear(path, predictor)
        assert len(heard.notes) == 1
        np.testing.assert_allclose(heard.probabilities, predict.predict_audio(path, predictor),
                                   atol=1e-9)


def test_each_note_is_prepared_as_a_training_note_and_combined(predictor, tmp_path):
    notes = [note(hz, 1.5, level) for hz, level in ((220.0, 0.2), (330.0, 0.8), (494.0, 0.4))]
    y, onsets = phrase(notes, (0.2, 0.3, 0.3))
    path = _wav(tmp_path / "phrase.wav", y)
    heard = phrases.hear(path, predictor)
    assert len(heard.notes) == 3
    np.testing.assert_allclose(heard.notes.start_s, np.array(onsets) / SR, atol=0.1)
    alone = np.stack([predict.predict_audio(
        _wav(tmp_path / f"{k}.wav", y[a:b]), predictor) for k, (a, b) in enumerate(
        (heard.notes[["start_s", "stop_s"]].to_numpy() * SR).round().astype(int))])
    assert list(heard.notes.family) == [FAMILIES[i] for i in alone.argmax(axis=1)]
    expected = phrases.combine(alone, heard.notes.energy.to_numpy())
    np.testing.assert_allclose(heard.probabilities, expected, atol=1e-5)
    assert heard.notes.weight.idxmax() == 1  # the loudest note weighs most


def _wav(path, y):
    sf.write(path, y, SR, subtype="FLOAT")
    return path


def test_combine_is_the_energy_weighted_mean_log_probability():
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1]])
    np.testing.assert_allclose(phrases.combine(p, np.array([1.0, 0.0])), p[0])
    both = phrases.combine(p, np.array([1.0, 1.0]))
    expected = np.sqrt(p[0] * p[1])
    np.testing.assert_allclose(both, expected / expected.sum())


def test_the_widget_draws_the_notes_on_the_waveform(predictor, tmp_path):
    from instclf import widgets

    y, _ = phrase([note(hz, 1.5) for hz in (220.0, 330.0, 494.0)], (0.2, 0.3, 0.3))
    result = widgets.handle_upload(_wav(tmp_path / "p.wav", y).read_bytes(), "p.wav", predictor)
    assert result.ok and result.waveform is not None
    labels = [text.get_text() for text in result.waveform.axes[0].texts]
    assert len(labels) == 3 and all(label.split()[0] in FAMILIES for label in labels)


def test_onset_detection_compiles_without_tensorflow():
    """make venv compiles librosa's onset detection in a process that never loads TensorFlow."""
    code = ("import sys; from instclf import phrases; notes = phrases.compile_onset_detection(); "
            "print(notes.tolist(), 'tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split("\n")[-2]
    assert out == f"[[0, {2 * phrases.SR}], [{2 * phrases.SR}, {5 * phrases.SR}]] False"
