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
# # 5. One model, three backends
#
# Keras 3 runs the same model code on TensorFlow, JAX or PyTorch. The
# backend is chosen once per Python process, by the `KERAS_BACKEND`
# environment variable, before `keras` is first imported:
#
# ```bash
# KERAS_BACKEND=jax python train.py
# medresae --backend torch denoise ...   # the command line sets it for you
# ```
#
# Here we train a small denoiser on the backend this notebook runs on, save
# it as `.keras`, and load it and denoise the same volume in fresh processes
# on the other two backends.

# %%
import json
import os
import subprocess
import sys

import keras
import numpy as np

import medresae
from medresae.noise import rician

SMALL = os.environ.get("CI") == "true"
here = keras.backend.backend()
print("this process runs on:", here)
os.makedirs("tutorial-output", exist_ok=True)

# %% [markdown]
# ## Train and save on this backend

# %%
rng = np.random.default_rng(0)
clean = rng.random((8, 16, 16, 8, 1), dtype=np.float32)
noisy = rician(clean, 0.05, rng=1)
model = medresae.ResUNet(spatial_dims=3, filters=(8, 16), n_blocks=1, strides=(2, 2, 1))
model.compile(optimizer="adam", loss="mse")
model.fit(noisy, clean, epochs=2 if SMALL else 20, batch_size=4, verbose=0)
model.save("tutorial-output/three-backends.keras")
volume = rician(rng.random((24, 20, 8, 1), dtype=np.float32), 0.05, rng=2)
np.save("tutorial-output/three-backends-volume.npy", volume)
expected = medresae.predict_padded(model, volume[None])[0]

# %% [markdown]
# ## Load and denoise on the other backends
#
# Each backend needs a fresh process. The `.keras` file holds the
# architecture (medresae's registered layers) and the weights, nothing
# backend-specific. `compile=False` loads it for inference only: a model
# compiled on JAX records `jit_compile=True`, which the torch backend would
# honour with `torch.compile` (half a minute per model on a CPU).

# %%
code = """
import json, sys, numpy as np, keras, medresae
model = keras.saving.load_model("tutorial-output/three-backends.keras", compile=False)
volume = np.load("tutorial-output/three-backends-volume.npy")
out = medresae.predict_padded(model, volume[None])[0]
np.save(f"tutorial-output/out-{keras.backend.backend()}.npy", out)
print(json.dumps({"backend": keras.backend.backend()}))
"""
installed = [b for b in ("tensorflow", "jax", "torch") if b != here and __import__("importlib").util.find_spec(b)]
for backend in installed:
    env = dict(os.environ, KERAS_BACKEND=backend)
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    ran_on = json.loads(result.stdout.strip().splitlines()[-1])["backend"]
    out = np.load(f"tutorial-output/out-{backend}.npy")
    print(f"{ran_on:<11} max |difference| to {here}: {np.abs(out - expected).max():.2e}")

# %% [markdown]
# Differences are float32 round-off (around 1e-6): the three backends run
# the same computation. Pick the backend for speed, not for the model:
# on a CPU, TensorFlow is the fastest for 3D convolutions (see the
# performance page); on GPUs all three use cuDNN.
