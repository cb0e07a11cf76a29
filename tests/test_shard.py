"""Sharding (``--shard i/n``): rendering and features split across processes, same bytes."""

from __future__ import annotations

import filecmp
from dataclasses import replace

import numpy as np
import pytest

from instclf import cli, features, nsynth, render
from instclf.config import SPLITS, InstclfError, parse_shard


@pytest.mark.parametrize("text, expected", [("0/1", (0, 1)), ("1/2", (1, 2)),
                                            (" 3 / 4 ", (3, 4))])
def test_parse_shard(text, expected):
    assert parse_shard(text) == expected


@pytest.mark.parametrize("text, message", [("3/2", "0/2 to 1/2"), ("2/2", "0/2 to 1/2"),
                                           ("a/b", "i/n"), ("0/0", "at least 1"),
                                           ("-1/2", "i/n"), ("1", "i/n")])
def test_bad_shard_is_an_error_a_person_can_act_on(text, message):
    with pytest.raises(InstclfError, match=message):
        parse_shard(text)


def test_bad_shard_on_the_command_line_is_a_one_line_error(capsys):
    assert cli.main(["data", "render", "--shard", "3/2", "--force"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--shard 3/2" in err[0]


def test_shards_split_the_plan_without_overlap():
    plan = [{"name": k} for k in range(7)]
    shards = [render.shard_plan(plan, (i, 3)) for i in range(3)]
    assert sorted(k["name"] for shard in shards for k in shard) == list(range(7))
    assert [k["name"] for k in shards[1]] == [1, 4]
    assert render.shard_plan(plan, None) == plan


def _same_folders(a, b):
    for split in SPLITS:
        fa, fb = nsynth.split_folder(a, split), nsynth.split_folder(b, split)
        for name in ("examples.json", "instruments.json"):
            assert (fa / name).read_bytes() == (fb / name).read_bytes(), (split, name)
        names = sorted(p.name for p in (fa / "audio").glob("*.wav"))
        assert names == sorted(p.name for p in (fb / "audio").glob("*.wav"))
        match, mismatch, errors = filecmp.cmpfiles(fa / "audio", fb / "audio", names,
                                                   shallow=False)
        assert len(match) == len(names) and not mismatch and not errors
    assert (a / "render.json").read_bytes() == (b / "render.json").read_bytes()


def test_sharded_render_then_finish_gives_the_same_bytes(tiny_profile, tiny_dataset, tmp_path):
    root = tmp_path / "sharded"
    profile = replace(tiny_profile, data_dir=tmp_path)
    reports = [render.render_dataset(profile.sources[0], root, workers=1, progress=False,
                                     shard=(i, 2)) for i in range(2)]
    assert not render.is_rendered(profile.sources[0], root)
    assert not list(root.rglob("examples.json"))  # a shard writes no metadata
    assert sum(r.notes_planned for r in reports) == tiny_dataset[1].notes_planned
    assert all(r.shard == (i, 2) for i, r in enumerate(reports))
    written = sum(r.counts.get("written", 0) for r in reports)
    assert written == tiny_dataset[1].counts["written"]
    final = render.render_dataset(profile.sources[0], root, workers=1, progress=False)
    assert final.counts.get("written", 0) == 0 and final.counts["resumed"] == written
    assert render.is_rendered(profile.sources[0], root)
    _same_folders(root, tiny_dataset[0])


def test_a_shard_leaves_other_shards_temporaries_alone(tiny_profile, tmp_path):
    root = tmp_path / "sharded"
    in_flight = nsynth.split_folder(root, "train") / "audio" / "x.wav.tmp-other.wav"
    in_flight.parent.mkdir(parents=True)
    in_flight.write_bytes(b"RIFF another shard is writing this")
    profile = replace(tiny_profile, data_dir=tmp_path)
    render.render_dataset(profile.sources[0], root, workers=1, progress=False, shard=(1, 3))
    assert in_flight.exists()  # the final run without a shard clears what is left


def _count_computations(monkeypatch):
    calls = []
    original = features.compute_features

    def counting(paths, *args, **kwargs):
        calls.append(len(list(paths)))
        return original(paths, *args, **kwargs)

    monkeypatch.setattr(features, "compute_features", counting)
    return calls


def test_sharded_features_assemble_into_the_same_cache(tiny_dataset, tmp_path, monkeypatch):
    notes = nsynth.read_dataset(tiny_dataset[0])
    front_end = features.MUSICNN
    whole = features.cached_features(notes, front_end, tmp_path / "plain", "dataset",
                                     progress=False)
    calls = _count_computations(monkeypatch)
    cache = tmp_path / "sharded"
    shards = [features.cached_shard(notes, front_end, cache, "dataset", (i, 3), progress=False)
              for i in range(3)]
    assert calls == [len(s) for s in shards] and sum(calls) == len(notes)
    assert list(shards[1].note_str) == list(notes.note_str[1::3])
    features.cached_shard(notes, front_end, cache, "dataset", (1, 3), progress=False)
    assert len(calls) == 3  # a finished shard is not computed again
    assembled = features.cached_features(notes, front_end, cache, "dataset", progress=False)
    assert len(calls) == 3  # assembled, not computed
    assert assembled.path.name == whole.path.name
    assert assembled.path.read_bytes() == whole.path.read_bytes()
    assert (assembled.path.with_suffix(".json").read_text()
            == whole.path.with_suffix(".json").read_text())
    assert not list(assembled.path.parent.glob("*.shard-*"))  # shards removed once assembled


def test_incomplete_or_stale_shards_are_not_assembled(tiny_dataset, tmp_path, monkeypatch):
    notes = nsynth.read_dataset(tiny_dataset[0]).iloc[:10]
    front_end = features.MUSICNN
    features.cached_shard(notes, front_end, tmp_path, "t", (0, 2), progress=False)
    path = features.cache_path(notes, front_end, tmp_path, "t")
    assert features.assemble_shards(notes, front_end, path) is None  # shard 1 missing
    features.cached_shard(notes, front_end, tmp_path, "t", (1, 2), progress=False)
    assert features.assemble_shards(notes, front_end, path) is not None
    other = replace(front_end, n_mels=64)  # shards of another front end do not count
    assert features.assemble_shards(notes, other, features.cache_path(
        notes, other, tmp_path, "t")) is None
    swapped = notes.iloc[::-1]  # other rows, other fingerprints: computed, not assembled
    calls = _count_computations(monkeypatch)
    features.cached_features(swapped, front_end, tmp_path, "t", progress=False)
    assert calls == [len(notes)]


def test_cli_features_shards_then_assembles(tiny_profile, tiny_dataset, tmp_path, monkeypatch,
                                            capsys):
    profile = tiny_profile
    monkeypatch.setattr(cli.profiles, "get_profile", lambda name=None: profile)
    monkeypatch.setattr(features, "profile_cache_dir", lambda p: tmp_path)
    for i in range(2):
        assert cli.main(["features", "--backbone", "scratch_cnn", "--shard", f"{i}/2",
                         "--quiet"]) == 0
    captured = capsys.readouterr()
    assert "instclf features" in captured.err and ".shard-1-of-2.npy" in captured.out
    calls = _count_computations(monkeypatch)
    assert cli.main(["features", "--backbone", "scratch_cnn", "--quiet"]) == 0
    assert calls == []
    notes = nsynth.read_dataset(tiny_dataset[0])
    assert f"{len(notes)} notes" in capsys.readouterr().out
    # a selection the training code asks for is cut from the whole-dataset cache
    train = notes[notes.split == "train"]
    cut = features.profile_features(profile, train, features.MUSICNN, "train")
    assert calls == []
    direct = features.compute_features(list(train.path), features.MUSICNN, progress=False)
    np.testing.assert_array_equal(np.asarray(cut.X), direct.astype(np.float16))
