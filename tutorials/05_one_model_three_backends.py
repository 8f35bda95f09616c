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
import matplotlib.pyplot as plt
import numpy as np

import medresae
from medresae.io import load_volume
from medresae.metrics import evaluate
from medresae.noise import rician, robust_max
from medresae.sample_data import sample_path

SMALL = os.environ.get("CI") == "true"
here = keras.backend.backend()
print("this process runs on:", here)
os.makedirs("tutorial-output", exist_ok=True)

# %% [markdown]
# ## Train and save on this backend

# %%
# 16 patches of 32x32x8 from a shipped brain MRI crop, scaled to [0, 1], with 5 % Rician noise.
scan = load_volume(sample_path("brain_mr")).array
scan = scan / robust_max(scan)
clean = np.stack([scan[x:x + 32, y:y + 32, z:z + 8] for x in (16, 48, 80) for y in (16, 48, 80)
                  for z in (0, 8)][:16])
noisy = rician(clean, 0.05, rng=1)
model = medresae.ResUNet(spatial_dims=3, filters=(8, 16), n_blocks=1, strides=(2, 2, 1))
model.compile(optimizer="adam", loss="mse")
model.fit(noisy, clean, epochs=25 if SMALL else 100, batch_size=4, verbose=0)
model.save("tutorial-output/three-backends.keras")
# The volume to denoise: the other shipped crop, also with 5 % noise.
heldout = load_volume(sample_path("brain_mr_heldout")).array
heldout = heldout / robust_max(heldout)
volume = rician(heldout, 0.05, rng=2).astype("float32")
np.save("tutorial-output/three-backends-volume.npy", volume)
expected = medresae.predict_padded(model, volume[None])[0]
for name, image in (("noisy", volume), (f"denoised on {here}", expected)):
    print(f"{name:<24} PSNR {evaluate(heldout[..., 0], image[..., 0])['psnr_mask']:.2f} dB (inside the head)")

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
outputs = {}
installed = [b for b in ("tensorflow", "jax", "torch") if b != here and __import__("importlib").util.find_spec(b)]
for backend in installed:
    env = dict(os.environ, KERAS_BACKEND=backend)
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    ran_on = json.loads(result.stdout.strip().splitlines()[-1])["backend"]
    out = np.load(f"tutorial-output/out-{backend}.npy")
    print(f"{ran_on:<11} max |difference| to {here}: {np.abs(out - expected).max():.2e}")
    outputs[ran_on] = out

z = volume.shape[2] // 2
fig, axes = plt.subplots(1, 2 + 2 * len(installed), figsize=(3 * (2 + 2 * len(installed)), 3.4))
panels = [("noisy input", volume), (f"output, {here}", expected)]
for backend in installed:
    panels += [(f"output, {backend}", outputs[backend]), (f"{backend} - {here}", outputs[backend] - expected)]
for ax, (title, image) in zip(axes, panels):
    difference = " - " in title
    ax.imshow(image[:, :, z, 0].T, cmap="coolwarm" if difference else "gray", origin="lower",
              vmin=-1e-5 if difference else None, vmax=1e-5 if difference else None)
    ax.set_title(title + (" (scale ±1e-5)" if difference else ""), fontsize=9)
    ax.axis("off")
plt.tight_layout()
plt.show()

# %% [markdown]
# The small model, trained for a few seconds, gains about 1 dB over the
# noisy input (the shipped presets do much better; tutorials 2 and 3). What
# this page shows is that it gives the same output on every backend:
# differences are float32 round-off (about 1e-7, on intensities scaled to
# 0-1), because the three backends run the same computation. Pick the backend for speed, not for the model:
# on a CPU, TensorFlow is the fastest for 3D convolutions (see
# [Speed, memory and GPUs](../../performance/)); on GPUs all three use cuDNN.
