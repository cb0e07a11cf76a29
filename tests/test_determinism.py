"""Same seed, same weights (README, "Reproducibility"): two trainings in two fresh processes.

Each process runs the staged schedule (``train.staged_training``: the frozen pass, the head,
then one unfrozen block, seeded and shuffled as every training is) of musicnn_vgg on the same
tiny random notes, and prints a digest of the trained weights. The digests must be equal, bit
for bit. ``benchmarks/bench_determinism.py`` measures what changes them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

TRAINING = """
import hashlib, json, sys
from pathlib import Path
import keras, numpy as np, pandas as pd
from instclf import backbones, train

folder = Path(sys.argv[1])
backbone = backbones.get_backbone("musicnn_vgg")
rng = np.random.default_rng(0)
X = rng.uniform(0, 3, (33, *backbone.front_end.shape)).astype("float32")
y = (np.arange(33) % 11).astype("int32")
notes = pd.DataFrame({"note_str": [f"n{k}" for k in range(33)]})
data = {"fit": train.Data(X[:22], y[:22], notes[:22]),
        "valid": train.Data(X[22:], y[22:], notes[22:])}
schedule = train.Schedule(max_unfrozen_blocks=1, head_epochs=2, stage_epochs=2, batch_size=8)
keras.utils.set_random_seed(schedule.seed)
model = backbones.build_classifier(backbone)
state, history = train.staged_training(model, backbone, data, schedule, folder / "run",
                                       cache_dir=folder / "activations")
sha = hashlib.sha1()
for weights in model.get_weights():
    sha.update(np.ascontiguousarray(weights).tobytes())
print(json.dumps({"weights": sha.hexdigest(), "stages": state.completed_stages,
                  "val_loss": history["val_loss"].round(6).tolist()}))
"""


def _train_in_a_fresh_process(folder) -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    out = subprocess.run([sys.executable, "-c", TRAINING, str(folder)], env=env, check=True,
                         capture_output=True, text=True, timeout=120)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_two_trainings_in_fresh_processes_give_identical_weights(tmp_path):
    first = _train_in_a_fresh_process(tmp_path / "first")
    second = _train_in_a_fresh_process(tmp_path / "second")
    assert first["stages"] == 2 and len(first["val_loss"]) == 4  # head, then one block
    assert first == second
