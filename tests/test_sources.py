"""Sources and selections: every source yields a note table; the split logic is the same for
all of them (instclf.sources, instclf.subsets)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from instclf.sources import base, registry
from instclf import profiles, subsets
from instclf.config import FAMILIES, InstclfError
from instclf.sources.folder import Folder
from nsynth_archives import example, wav_bytes


def write_folder(folder, names) -> None:
    """An NSynth-format split folder: examples.json + audio/<name>.wav."""
    (folder / "audio").mkdir(parents=True)
    (folder / "examples.json").write_text(json.dumps(
        {name: example(name, i) for i, name in enumerate(names)}))
    for name in names:
        (folder / "audio" / f"{name}.wav").write_bytes(wav_bytes(60))


NAMES = [f"{family}_acoustic_{i:03d}-{pitch:03d}-100" for family in FAMILIES[:3]
         for i in range(5) for pitch in (50, 60, 70, 80)]


def test_every_registered_kind_is_a_source():
    for kind in registry.KINDS:
        assert issubclass(registry.source_class(kind), base.Source)
        assert registry.source_class(kind).kind == kind
    with pytest.raises(InstclfError, match="unknown source kind 'nope'"):
        registry.make_source("nope")


def test_a_single_split_folder_is_split_by_instruments(tmp_path):
    write_folder(tmp_path / "mine", NAMES)
    source = registry.make_source("folder", name="mine", path="mine")
    notes = base.read_notes([source], tmp_path)
    assert len(notes) == len(NAMES) and set(notes["split"]) == {"train"}
    assert set(notes["origin"]) == {"mine"} and set(notes["lineage"]) == {"mine"}
    chosen = subsets.select(notes, subsets.Selection(splits="instruments", heldout_fraction=0.2,
                                                     seen_fraction=0.25))
    held_out = set(chosen["valid"].instrument_str)
    assert held_out == set(chosen["test"].instrument_str)
    assert not held_out & (set(chosen["fit"].instrument_str) | set(chosen["seen"].instrument_str))
    per_family = chosen["valid"].groupby("family", observed=True).instrument_str.nunique()
    assert (per_family == 1).all() and len(per_family) == 3  # a fifth of 5 instruments
    # every held-out instrument reaches both valid and test
    assert len(chosen["valid"]) == len(chosen["test"]) == 3 * 2
    again = subsets.select(notes, subsets.Selection(splits="instruments", heldout_fraction=0.2))
    assert set(again["valid"].instrument_str) == held_out  # deterministic


def test_a_dataset_root_keeps_its_own_splits(tmp_path):
    write_folder(tmp_path / "root" / "nsynth-train", NAMES[:8])
    write_folder(tmp_path / "root" / "nsynth-test", NAMES[-4:])
    source = Folder(name="two", path=str(tmp_path / "root"))
    assert source.splits(tmp_path) == ("train", "test")
    notes = base.read_notes([source], tmp_path)
    assert notes.groupby("split").size().to_dict() == {"train": 8, "test": 4}


def test_note_names_must_be_unique_across_sources(tmp_path):
    write_folder(tmp_path / "a", NAMES[:4])
    write_folder(tmp_path / "b", NAMES[:4])
    with pytest.raises(InstclfError, match="more than one source"):
        base.read_notes([Folder(name="a", path="a"), Folder(name="b", path="b")], tmp_path)


def test_a_missing_folder_or_download_says_how_to_get_it(tmp_path):
    with pytest.raises(InstclfError, match="no NSynth-format notes"):
        base.read_notes([Folder(name="x", path="nowhere")], tmp_path)
    with pytest.raises(InstclfError, match="instclf data download --splits train valid test"):
        profiles.PROFILES["nsynth"].sources[0].ensure(tmp_path)


def test_soundfont_lineages_group_shared_material(tiny_profile, tiny_dataset):
    notes = tiny_profile.notes(progress=False)
    assert (notes["lineage"] == notes["soundfont"]).all()  # TimGM6mb, sf_GMbank: their own
    from instclf.instruments import SOUNDFONTS

    assert SOUNDFONTS["MuseScore_General"].lineage == SOUNDFONTS["FluidR3_GM"].lineage


def test_source_splits_are_kept_and_the_cap_balances(tiny_profile, tiny_dataset):
    notes = tiny_profile.notes(progress=False)
    chosen = subsets.select(notes, subsets.Selection(per_family=2, seen_fraction=0.5))
    assert pd.concat([chosen["valid"], chosen["test"]]).split.isin(["valid", "test"]).all()
    train = pd.concat([chosen["fit"], chosen["seen"]])
    assert (train.family.value_counts() <= 2).all()  # a note held back from an instrument
    assert (chosen["fit"].family.value_counts() == 1).all()  # with no fitted note is in neither
    assert set(chosen["seen"].instrument_str) <= set(chosen["fit"].instrument_str)


def test_a_new_source_is_one_class_and_one_registry_line(tmp_path, monkeypatch):
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Generated(base.Source):
        """What a new source module holds: notes it makes into its own folder."""

        count: int = 2
        kind = "generated"

        def ensure(self, data_dir, progress=True):
            root = self.root(data_dir)
            for split, first, pitch in (("train", 0, 40), ("valid", 10, 40), ("test", 10, 50)):
                folder = root / f"nsynth-{split}"
                if not folder.is_dir():
                    write_folder(folder, [f"bass_synthetic_{first:03d}-{pitch + k:03d}-100"
                                          for k in range(self.count)])
            return root

    monkeypatch.setitem(registry.KINDS, "generated", f"{__name__}:Generated")
    monkeypatch.setitem(globals(), "Generated", Generated)
    made = registry.make_source("generated", name="gen", count=3)
    profile = profiles.Profile(name="p", sources=(made,), data_dir=tmp_path)
    notes = profile.notes(progress=False)
    assert notes.groupby("split").size().to_dict() == {"test": 3, "train": 3, "valid": 3}
    assert set(notes["lineage"]) == {"gen"} and made.settings()["kind"] == "generated"


@settings(max_examples=60, deadline=None)
@given(notes_per_instrument=st.lists(st.integers(1, 6), min_size=2, max_size=12),
       fraction=st.floats(0.05, 0.9), seed=st.integers(0, 2**16))
def test_seen_notes_come_from_fitted_instruments_only(notes_per_instrument, fraction, seed):
    """Instruments of one or two notes (recorded copies, short drawn ones) may lose every note
    to the held-back share: those notes are then neither fitted nor "seen"."""
    train = pd.DataFrame([{"family": FAMILIES[i % 2], "instrument_str": f"i{i}", "note_str": f"i{i}-{k}"}
                          for i, n in enumerate(notes_per_instrument) for k in range(n)])
    fit, seen = subsets.seen_split(train, fraction, seed=seed)
    assert set(seen["instrument_str"]) <= set(fit["instrument_str"])
    assert not set(fit["note_str"]) & set(seen["note_str"])
    assert set(fit["note_str"]) | set(seen["note_str"]) <= set(train["note_str"])
    held = train.groupby("family").sample(frac=fraction, random_state=seed)
    assert set(fit["note_str"]) == set(train["note_str"]) - set(held["note_str"])  # fit as before


@pytest.mark.parametrize("name", ["smoke", "default"])
def test_the_smoke_and_default_profiles_hold_every_source_the_project_renders(name):
    """make test (smoke) and make reproduce (default) render and train on every rendered
    kind, each with its recorded copy, so a new source cannot be left out of either."""
    found = profiles.PROFILES[name].sources
    rendered = {kind for kind in registry.KINDS
                if getattr(registry.source_class(kind), "renders", False) and kind != "recorded"}
    dry = {s.kind for s in found if s.kind != "recorded"}
    assert dry == rendered
    recorded = {s.of.name for s in found if s.kind == "recorded"}
    assert recorded == {s.name for s in found if s.kind != "recorded"}
