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
# # 2. Train a 3D denoiser on NIfTI volumes
#
# The data edge is MONAI: NIfTI files are read with `LoadImaged`, oriented
# to RAS, normalised, cropped into foreground-weighted patches and given
# synthetic Rician noise by MONAI dictionary transforms. `PatchDataset`
# turns the result into the channels-last `(x, y)` batches that Keras'
# `fit` consumes on every backend. We train on one shipped brain MRI crop
# and evaluate on another, disjoint crop.

# %%
import os

import keras
import matplotlib.pyplot as plt
import numpy as np
from monai.transforms import Compose, EnsureChannelFirstd, LoadImaged, RandSpatialCropd

from medresae.data import PatchDataset
from medresae.inference import denoise
from medresae.io import load_volume
from medresae.metrics import evaluate
from medresae.noise import rician, robust_max
from medresae.sample_data import sample_path
from medresae.training import train_denoiser
from medresae.transforms import InvertibleScaleIntensityd, RandAddNoised

SMALL = os.environ.get("CI") == "true"
print("Keras backend:", keras.backend.backend())

# %% [markdown]
# ## The transforms, one by one
#
# `RandAddNoised` and `InvertibleScaleIntensityd` are medresae's MONAI
# transforms; the rest are MONAI's own. A noise spec such as
# `rician:0.02-0.08` draws one level per patch (as a fraction of the
# volume's robust maximum), so the model learns every level.

# %%
pipeline = Compose([
    LoadImaged("target", image_only=True),
    EnsureChannelFirstd("target", channel_dim="no_channel"),
    InvertibleScaleIntensityd("target", method="percentile"),
    RandSpatialCropd("target", roi_size=(64, 64, 8)),
    RandAddNoised("target", "rician:0.02-0.08", output_keys="image"),
])
pipeline.set_random_state(0)
sample = pipeline({"target": sample_path("brain_mr")})
print("clean patch", tuple(sample["target"].shape), " noisy patch", tuple(sample["image"].shape))

fig, axes = plt.subplots(1, 2, figsize=(6, 3))
for ax, key in zip(axes, ("target", "image")):
    ax.imshow(np.asarray(sample[key])[0, :, :, 4].T, cmap="gray", origin="lower")
    ax.set_title({"target": "clean patch", "image": "with Rician noise"})
    ax.axis("off")
plt.show()

# %% [markdown]
# ## `PatchDataset`: the same chain, cached, batched, channels-last

# %%
patch = (32, 32, 8) if SMALL else (48, 48, 8)
data = PatchDataset("synthetic", [sample_path("brain_mr")], patch, batch_size=4, noise="rician:0.01-0.1")
x, y = data[0]
print("x", x.shape, "y", y.shape)

# %% [markdown]
# ## Train
#
# `train_denoiser` is `medresae train` in Python: it builds a `ResUNet`
# (no down-sampling across thick slices: strides (2, 2, 1) for an 8-slice
# patch), trains it, and writes `model.keras` (best), `last.keras`,
# `history.csv` and `training.png` into the run folder.

# %%
model, history = train_denoiser(
    "synthetic", [sample_path("brain_mr")], "tutorial-output/run-brain",
    patch_size=patch, noise="rician:0.01-0.1", filters=(8, 16) if SMALL else (16, 32), n_blocks=1,
    epochs=1 if SMALL else 20, steps_per_epoch=3 if SMALL else 60, batch_size=4,
    validation_fraction=None, schedule="cosine", learning_rate=2e-3, verbose=0 if SMALL else "auto",
)
print("final training loss:", history["loss"][-1])

# %% [markdown]
# ## Evaluate on the held-out crop

# %%
volume = load_volume(sample_path("brain_mr_heldout"))
clean = volume.array[..., 0]
noisy = rician(clean, 0.05 * robust_max(clean), rng=0)
denoised = denoise(model, noisy[..., None], normalize="percentile", progress=False)[..., 0]
for name, image in (("noisy", noisy), ("denoised", denoised)):
    scores = evaluate(clean, image)
    print(f"{name:<9} PSNR {scores['psnr_mask']:.2f} dB   SSIM {scores['ssim_mask']:.3f}   (inside the head)")

# %% [markdown]
# ## Look at the slices

# %%
z = clean.shape[2] // 2
fig, axes = plt.subplots(1, 4, figsize=(12, 3.5))
for ax, (title, image) in zip(axes, (("clean", clean), ("noisy 5 %", noisy), ("denoised", denoised),
                                     ("noisy - denoised", noisy - denoised))):
    ax.imshow(image[:, :, z].T, cmap="gray", origin="lower")
    ax.set_title(title)
    ax.axis("off")
plt.tight_layout()
plt.show()
