"""Front ends: the batched computation against plain librosa, and the feature cache."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from instclf import features, images, nsynth


@pytest.fixture(scope="module")
def notes(tiny_dataset):
    return nsynth.read_split(nsynth.split_folder(tiny_dataset[0], "train"))


@pytest.fixture(scope="module")
def rendered_clips(notes):
    """Real rendered notes at full level, quiet, near silence, and cut short."""
    y = np.stack([nsynth.load_note(p)[0] for p in notes.path[:6]])
    return {"full": y, "quiet": y * 1e-2, "near_silence": y * 1e-5,
            "short_1.5s": y[:, :24_000], "long_4s": y}


def _agreement(batch, reference, front_end):
    if front_end.scaling == "db_max":
        np.testing.assert_allclose(batch, reference, rtol=0, atol=0.01)  # 0.01 dB
    else:  # log-compressed: 1e-4 relative to each clip's range
        scale = np.abs(reference).max(axis=(1, 2), keepdims=True)
        assert (np.abs(batch - reference) <= 1e-4 * scale).all()


@pytest.mark.parametrize("front_end", [features.STUDY, features.MUSICNN], ids=lambda f: f.name)
@pytest.mark.parametrize("case", ["full", "quiet", "near_silence", "short_1.5s"])
def test_batched_front_end_agrees_with_librosa(front_end, case, rendered_clips):
    clips = rendered_clips[case]
    batch = features.batch_features(clips, front_end)
    reference = np.stack([features.reference_features(c, front_end) for c in clips])
    assert batch.shape == reference.shape == (len(clips), *front_end.shape)
    _agreement(batch, reference, front_end)


def test_whole_note_front_end_agrees_too(rendered_clips):
    whole = replace(features.MUSICNN, name="musicnn_4s", clip_seconds=4.0, n_frames=None)
    clips = rendered_clips["long_4s"]
    batch = features.batch_features(clips, whole)
    reference = np.stack([features.reference_features(c, whole) for c in clips])
    assert batch.shape[1] == 251
    _agreement(batch, reference, whole)


def test_front_end_shapes_and_scaling():
    assert features.STUDY.shape == (128, 130)
    assert features.MUSICNN.shape == (187, 96)
    noise = np.random.default_rng(0).normal(size=(1, 64_000)).astype(np.float32)
    S_db = features.batch_features(noise, features.STUDY)
    assert S_db.max() == pytest.approx(0.0, abs=1e-6) and S_db.min() >= -80.0


def test_front_end_key_is_stable_and_sensitive():
    assert features.MUSICNN.key == replace(features.MUSICNN).key
    assert features.MUSICNN.key != replace(features.MUSICNN, hop_length=128).key


def _count_computations(monkeypatch):
    calls = []
    original = features.compute_features

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(features, "compute_features", counting)
    return calls


def test_cache_is_reused_and_rebuilt_when_the_front_end_changes(notes, tmp_path, monkeypatch):
    calls = _count_computations(monkeypatch)
    first = features.cached_features(notes, features.MUSICNN, tmp_path, "train", progress=False)
    again = features.cached_features(notes, features.MUSICNN, tmp_path, "train", progress=False)
    assert len(calls) == 1
    assert isinstance(again.X, np.memmap) and again.X.dtype == np.float16
    assert list(again.note_str) == list(notes.note_str)
    np.testing.assert_array_equal(first.X, again.X)
    other = replace(features.MUSICNN, n_mels=64)
    changed = features.cached_features(notes, other, tmp_path, "train", progress=False)
    assert len(calls) == 2 and changed.X.shape[-1] == 64


def test_cache_rows_match_the_computation(notes, tmp_path):
    cached = features.cached_features(notes, features.MUSICNN, tmp_path, "t", progress=False)
    direct = features.compute_features(list(notes.path), features.MUSICNN, progress=False)
    np.testing.assert_allclose(cached.X, direct, rtol=2e-3, atol=2e-3)  # float16 storage


def test_cache_is_rebuilt_when_a_subset_changes(notes, tmp_path, monkeypatch):
    calls = _count_computations(monkeypatch)
    features.cached_features(notes, features.MUSICNN, tmp_path, "t", progress=False)
    smaller = features.cached_features(notes.iloc[:5], features.MUSICNN, tmp_path, "t",
                                       progress=False)
    assert len(calls) == 2 and len(smaller) == 5


@pytest.mark.parametrize("damage", ["truncated", "flipped_bytes", "missing_metadata"])
def test_damaged_cache_is_detected_and_rebuilt(notes, tmp_path, monkeypatch, damage):
    good = features.cached_features(notes, features.MUSICNN, tmp_path, "t", progress=False)
    expected = np.array(good.X)
    path = good.path
    del good
    data = path.read_bytes()
    if damage == "truncated":  # as if a copy or a write stopped half way
        path.write_bytes(data[: len(data) // 2])
    elif damage == "flipped_bytes":
        middle = len(data) // 2
        path.write_bytes(data[:middle] + bytes(b ^ 0xFF for b in data[middle:middle + 64])
                         + data[middle + 64:])
    else:
        path.with_suffix(".json").unlink()
    features._VERIFIED.clear()
    calls = _count_computations(monkeypatch)
    rebuilt = features.cached_features(notes, features.MUSICNN, tmp_path, "t", progress=False)
    assert len(calls) == 1
    np.testing.assert_array_equal(np.array(rebuilt.X), expected)


def test_png_route_quantises_to_256_levels(rendered_clips):
    S_db = features.batch_features(rendered_clips["full"][:1], features.STUDY)[0]
    error = images.quantisation_error(S_db)
    assert 0 < error["max_abs_db"] <= error["step_db"] / 2 + 1e-9
    assert error["rms_db"] < error["max_abs_db"]


def test_png_export_writes_one_folder_per_family(notes, tmp_path):
    written = images.export_pngs(notes.iloc[:4], tmp_path, progress=False)
    assert len(written) == 4
    for row, png in zip(notes.iloc[:4].itertuples(), written.png):
        assert png.endswith(f"{row.family}/{row.note_str}.png")
    from PIL import Image

    image = np.array(Image.open(written.png[0]))
    assert image.shape == (*features.STUDY.shape, 3) and image.dtype == np.uint8
