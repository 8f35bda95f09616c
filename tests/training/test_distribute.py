"""Data-parallel training: JAX DataParallel and TensorFlow MirroredStrategy on 2 simulated CPU devices.

The device count is fixed when the backend starts, so each check runs in a
fresh interpreter that asks for two CPU devices first.
"""

import json

import numpy as np
import pytest
from conftest import BACKEND
from helpers import run_python

from medresae.sample_data import sample_path

SMALL = ("patch_size=(16, 16, 4), filters=(4, 8), n_blocks=1, steps_per_epoch=3, validation_fraction=None, "
         "verbose=0, seed=3")

TWO_CPUS = {
    # XLA splits the host into two devices when asked before jax starts.
    "jax": "",
    # TensorFlow: two logical CPU devices, configured before anything runs.
    "tensorflow": """
import tensorflow as tf
tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0], [tf.config.LogicalDeviceConfiguration()] * 2)
""",
}

SCRIPT = """
{setup}
import json, os, sys
import numpy as np
import keras
import medresae_cli
from medresae.distribute import local_devices
from medresae.training import train_denoiser

out = {{"devices": local_devices()}}
single, _ = train_denoiser("synthetic", [{volume!r}], {root!r} + "/single", epochs=2, batch_size=4, {small})
multi, history = train_denoiser("synthetic", [{volume!r}], {root!r} + "/multi", epochs=2, batch_size=4,
                                distribute=True, {small})
out["max_weight_difference"] = max(float(np.max(np.abs(a - b)))
                                   for a, b in zip(single.get_weights(), multi.get_weights()))
out["loss"] = [float(v) for v in history["loss"]]
out["devices_recorded"] = multi.metadata["devices"]
# The checkpoint written under distribution loads anywhere and predicts like the trained model.
x = np.random.default_rng(0).standard_normal((1, 16, 16, 4, 1)).astype("float32")
loaded = keras.saving.load_model({root!r} + "/multi/last.keras")
out["reload_difference"] = float(np.max(np.abs(loaded.predict(x, verbose=0) - multi.predict(x, verbose=0))))
# Resume a distributed run through the command line, to a third epoch.
code = medresae_cli.main(["train", "--clean", {volume!r}, "--out", {root!r} + "/multi", "--resume", "--distribute",
                          "--epochs", "3", "--steps-per-epoch", "3", "--patch", "16,16,4", "--filters", "4,8",
                          "--blocks", "1", "--batch-size", "4", "--validation", "0", "--seed", "3"])
out["resume_code"] = code
out["resumed_epochs"] = json.load(open({root!r} + "/multi/state.json"))["epoch"]
# A global batch that does not split over the devices is refused before anything is written.
out["odd_batch_code"] = medresae_cli.main(["train", "--clean", {volume!r}, "--out", {root!r} + "/odd",
                                           "--distribute", "--batch-size", "3", "--epochs", "1"])
out["odd_written"] = os.path.exists({root!r} + "/odd/model.keras")
print("RESULT " + json.dumps(out))
"""


def _run(tmp_path):
    code = SCRIPT.format(setup=TWO_CPUS[BACKEND], volume=sample_path("brain_mr"), root=str(tmp_path), small=SMALL)
    env = {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"} if BACKEND == "jax" else {}
    result = run_python(code, BACKEND, extra_env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    line = [x for x in result.stdout.splitlines() if x.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):]), result.stderr


@pytest.mark.skipif(BACKEND not in ("jax", "tensorflow"), reason="data-parallel fit exists on JAX and TensorFlow")
def test_two_device_training_checkpoints_and_resumes(tmp_path):
    out, err = _run(tmp_path)
    assert len(out["devices"]) == 2 and out["devices_recorded"] == 2, out
    assert np.all(np.isfinite(out["loss"])), out
    assert out["reload_difference"] < 1e-5, out
    assert out["resume_code"] == 0 and out["resumed_epochs"] == 3, out
    assert out["odd_batch_code"] == 2 and not out["odd_written"], out
    assert "must be a multiple of the 2 devices" in err
    if BACKEND == "jax":
        # Same global batch, same learning rate: sharding the batch changes nothing but the
        # order of float sums (batch-norm statistics are global under XLA's sharding).
        assert out["max_weight_difference"] < 1e-4, out
    else:
        # MirroredStrategy normalises each replica's half-batch with its own batch-norm
        # statistics (as documented), so the weights differ slightly from one device.
        assert out["max_weight_difference"] < 0.05, out


@pytest.mark.skipif(BACKEND != "torch", reason="the torch backend has no multi-device model.fit in Keras")
def test_torch_refuses_distribute_with_a_one_line_message(tmp_path, capsys):
    import medresae_cli

    run = tmp_path / "run"
    code = medresae_cli.main(["train", "--clean", sample_path("brain_mr"), "--out", str(run), "--distribute",
                              "--epochs", "1", "--steps-per-epoch", "1", "--patch", "16,16,4"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err, err
    assert "torch backend" in err and "--backend jax" in err
    assert not (run / "model.keras").exists()
