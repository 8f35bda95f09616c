# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 7. Scaling out: several devices with the existing distribution engines
#
# medresae models are plain Keras models, so they train data-parallel with
# the engines that already exist:
#
# - **JAX**: `keras.distribution.DataParallel` (the Keras distribution API,
#   which also covers model parallelism through a `DeviceMesh` and
#   multi-host training after `jax.distributed.initialize()`);
# - **TensorFlow**: `tf.distribute.MirroredStrategy` (one host, several
#   devices) - build and compile the model inside `strategy.scope()`;
# - **PyTorch**: the Keras distribution API does not support the torch
#   backend; use JAX or TensorFlow for multi-device training.
#
# [`medresae train --distribute`](../../cli/#medresae-train) (or
# [`train_denoiser(..., distribute=True)`](../../api/training/#medresae.training.train_denoiser))
# picks the right one for the backend and uses every local GPU (every CPU
# device when there is no GPU). The rules, the same on every engine:
#
# - `--batch-size` is the **global** batch, split evenly over the devices
#   (it must be a multiple of the device count; the error says so);
# - the learning rate is used **as given**: the same batch size and
#   learning rate describe the same optimisation on 1 or 8 devices. If you
#   raise the batch to keep each device busy, scale `--lr` yourself
#   (linearly is the usual starting point);
# - checkpoints (`model.keras`, `last.keras`) are ordinary single-file
#   models: they load on one device, on any backend, and `--resume` (with or
#   without `--distribute`) continues from them;
# - on TensorFlow each replica normalises its share of the batch with its
#   own batch-norm statistics (on JAX the statistics are global), so
#   TensorFlow results differ slightly from a one-device run.
#
# Without several GPUs we can still try it on a CPU split into two
# simulated devices. The device count is fixed when the framework starts,
# so each example runs in a fresh process.

# %%
import csv
import os
import subprocess
import sys

import matplotlib.pyplot as plt

from medresae.sample_data import sample_path

SMALL = os.environ.get("CI") == "true"

TRAIN = """
import numpy as np, medresae
model = medresae.ResUNet(spatial_dims=3, filters=(4, 8), n_blocks=1, strides=(2, 2, 1))
model.compile(optimizer="adam", loss="mse")
x = np.random.default_rng(0).random((8, 16, 16, 8, 1), dtype=np.float32)
# The batch size is the GLOBAL batch: 8 volumes, 4 on each of the 2 devices.
history = model.fit(x, 0.9 * x, batch_size=8, epochs=2, verbose=0)
print("loss per epoch:", [round(v, 5) for v in history.history["loss"]])
"""


def run(code, env):
    result = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, **env), capture_output=True,
                            text=True)
    print(result.stdout.strip() or result.stderr.strip().splitlines()[-1])


# %% [markdown]
# ## One option: medresae train --distribute
#
# Here on JAX with two simulated CPU devices; on a machine with GPUs, drop
# `XLA_FLAGS` and the GPUs are used.

# %%
def train(out, distribute):
    """`medresae train` on JAX, on two simulated CPU devices or on one; returns the loss per epoch."""
    command = [sys.executable, "-m", "medresae", "train", "--backend", "jax", "--clean", sample_path("brain_mr"),
               "--out", out, "--overwrite", "--patch", "16,16,4", "--filters", "4,8", "--blocks", "1",
               "--batch-size", "4", "--validation", "0", "--seed", "0", "--epochs", "3",
               "--steps-per-epoch", "2" if SMALL else "20"] + (["--distribute"] if distribute else [])
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2") if distribute else None
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(result.stderr.strip().splitlines()[-1])
    print(result.stdout.strip().splitlines()[-1])
    with open(os.path.join(out, "history.csv")) as f:
        return [float(row["loss"]) for row in csv.DictReader(f)]


two = train("tutorial-output/distributed-run", distribute=True)
one = train("tutorial-output/one-device-run", distribute=False)
print("loss per epoch, 2 devices:", [round(v, 5) for v in two])
print("loss per epoch, 1 device: ", [round(v, 5) for v in one])

fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(range(1, len(one) + 1), one, marker="o", label="1 device")
ax.plot(range(1, len(two) + 1), two, marker="x", linestyle="--", label="2 devices (--distribute)")
ax.set_xlabel("epoch")
ax.set_ylabel("training loss (MSE)")
ax.legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# Same seed, same global batch, same learning rate: on JAX the two runs
# follow the same curve, up to floating-point round-off, because each
# device gets half of the same batch and the gradients (and the batch-norm
# statistics) are averaged over both.
#
# The same option on the torch backend stops at once with a one-line
# message: Keras 3 has no multi-device `model.fit` for torch.
#
# ## Under the hood, in plain Keras
#
# What `--distribute` does is a few lines of each engine's own API; use
# them directly for your own models and training loops.
#
# ### JAX: DataParallel on 2 simulated CPU devices
#
# `XLA_FLAGS=--xla_force_host_platform_device_count=2` makes XLA expose two
# CPU devices. `DataParallel` replicates the weights and splits each batch
# across the devices; gradients are averaged, so the learning rate stays
# the one you would use for the same global batch on one device.

# %%
jax_code = """
import keras
devices = keras.distribution.list_devices()
print("devices:", devices)
keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
""" + TRAIN
run(jax_code, {"KERAS_BACKEND": "jax", "XLA_FLAGS": "--xla_force_host_platform_device_count=2"})

# %% [markdown]
# ### TensorFlow: MirroredStrategy on 2 logical CPU devices

# %%
tf_code = """
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
strategy = tf.distribute.MirroredStrategy([d.name for d in tf.config.list_logical_devices("CPU")])
print("replicas:", strategy.num_replicas_in_sync)
with strategy.scope():
""" + "\n".join("    " + line for line in TRAIN.strip().splitlines())
run(tf_code, {"KERAS_BACKEND": "tensorflow"})

# %% [markdown]
# ## On real hardware
#
# - One host, several GPUs: the same code without the simulation flags;
#   `keras.distribution.list_devices()` (JAX) or `MirroredStrategy()` (TF)
#   finds the GPUs.
# - Several hosts (JAX): call `jax.distributed.initialize()` on every host
#   first, then build a `keras.distribution.DeviceMesh` over all devices
#   and use `DataParallel(device_mesh=mesh)`; each host feeds its share of
#   the global batch.
# - Several hosts (TensorFlow): `tf.distribute.MultiWorkerMirroredStrategy`
#   with a `TF_CONFIG` on every worker, used exactly like `MirroredStrategy`.
# - Scale the global batch with the device count and, if you do, the
#   learning rate with it (linear scaling is the usual starting point).
