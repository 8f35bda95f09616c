"""A `medresae train` process killed with SIGKILL mid-epoch resumes and finishes its epochs."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import keras
import pytest
from conftest import BACKEND
from helpers import REPO

import medresae_cli
from medresae.sample_data import sample_path

EPOCHS = 4
ARGS = ["--patch", "16,16,4", "--filters", "4,8", "--blocks", "1", "--batch-size", "2", "--validation", "0",
        "--steps-per-epoch", "40", "--seed", "1", "--epochs", str(EPOCHS)]


def _state(run):
    try:
        return json.loads((run / "state.json").read_text())
    except (OSError, ValueError):
        return None


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")
def test_sigkill_mid_epoch_then_resume_finishes_the_planned_epochs(tmp_path):
    run = tmp_path / "run"
    argv = ["train", "--clean", sample_path("brain_mr"), "--out", str(run), *ARGS]
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys, medresae_cli; sys.exit(medresae_cli.main(sys.argv[1:]))", *argv],
        env=dict(os.environ, KERAS_BACKEND=BACKEND), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.time() + 600
        while (_state(run) or {}).get("epoch", 0) < 1:
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.time() < deadline, "the first epoch did not finish in 10 minutes"
            time.sleep(0.05)
        # A moment into the second epoch (40 steps take a second or more on any backend):
        # a real kill, no chance to clean up.
        time.sleep(0.3)
        assert proc.poll() is None, "training finished before it could be killed; make it longer"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL

    # Everything the killed run left behind is whole: the checkpoints load, the state parses.
    killed_at = _state(run)["epoch"]
    assert 1 <= killed_at < EPOCHS
    for name in ("last.keras", "model.keras"):
        keras.saving.load_model(str(run / name))

    assert medresae_cli.main([*argv, "--resume"]) == 0
    assert _state(run)["epoch"] == EPOCHS
    with open(run / "history.csv", encoding="utf-8") as f:
        epochs = [int(row["epoch"]) for row in csv.DictReader(f)]
    assert epochs == list(range(EPOCHS))
    model = keras.saving.load_model(str(run / "last.keras"))
    # Adam's step count shows the resumed run trained exactly the missing epochs.
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == EPOCHS * 40
    assert not [f for f in os.listdir(run) if f.startswith(".")]  # no temporary files left
