"""The ``instclf`` command line: output on success, one-line errors on bad input."""

from __future__ import annotations

import subprocess
import sys

from instclf import cli


def test_data_info_prints_the_summary(tiny_dataset, capsys):
    assert cli.main(["data", "info", "--root", str(tiny_dataset[0])]) == 0
    out = capsys.readouterr().out
    assert "synth_lead" in out and "instruments" in out
    assert f"{tiny_dataset[1].counts['written']} notes" in out


def test_data_validate_passes_on_a_rendered_dataset(tiny_dataset, capsys):
    assert cli.main(["data", "validate", "--root", str(tiny_dataset[0])]) == 0
    assert capsys.readouterr().out.count(": ok") == 3


def test_data_root_that_is_a_file_is_a_one_line_error(tmp_path):
    not_a_folder = tmp_path / "data"
    not_a_folder.write_text("")
    result = subprocess.run(
        [sys.executable, "-m", "instclf.cli", "data", "info"], capture_output=True, text=True,
        env={"INSTCLF_DATA_DIR": str(not_a_folder), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(not_a_folder) in lines[0] and "INSTCLF_DATA_DIR" in lines[0]


def test_unfinished_dataset_names_the_command(tmp_path, capsys):
    (tmp_path / "nsynth-train" / "audio").mkdir(parents=True)
    assert cli.main(["data", "info", "--root", str(tmp_path), "--splits", "train"]) == 2
    assert "instclf data render" in capsys.readouterr().err


def test_evaluate_a_saved_model_on_a_rendered_folder(tiny_dataset, tmp_path, capsys):
    from dataclasses import asdict

    import keras
    import pandas as pd

    from instclf import backbones, features, nsynth, train

    keras.utils.set_random_seed(0)
    backbone = backbones.get_backbone("scratch_cnn")
    model = backbones.build_classifier(backbone)
    path = tmp_path / "model.keras"
    train.save_model(model, {"front_end": asdict(features.MUSICNN),
                             "classes": list(backbones.FAMILIES)}, path)
    folder = nsynth.split_folder(tiny_dataset[0], "valid")
    out = tmp_path / "predictions.csv"
    assert cli.main(["evaluate", "--model", str(path), "--data", str(folder), "--out", str(out),
                     "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "accuracy" in printed and "top-2" in printed and "synth_lead" in printed
    table = pd.read_csv(out)
    notes = nsynth.read_split(folder)
    assert list(table.note_str) == list(notes.note_str)
    probabilities = table[[f"p_{f}" for f in backbones.FAMILIES]].to_numpy()
    assert abs(probabilities.sum(axis=1) - 1).max() < 1e-4


def test_evaluate_with_a_missing_model_is_a_one_line_error(tiny_dataset, tmp_path, capsys):
    folder = tiny_dataset[0] / "nsynth-valid"
    assert cli.main(["evaluate", "--model", str(tmp_path / "none.keras"), "--data",
                     str(folder)]) == 2
    assert "not found" in capsys.readouterr().err
