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
# synthetic Rician noise by MONAI dictionary transforms.
# [`PatchDataset`](../../api/data/#medresae.data.PatchDataset)
# turns the result into the channels-last `(x, y)` batches that Keras'
# `fit` consumes on every backend. We train on one shipped brain MRI crop
# and evaluate on another, disjoint crop.

# %%
import os
import warnings

import keras
import matplotlib.pyplot as plt
import numpy as np
from monai.transforms import Compose, EnsureChannelFirstd, LoadImaged, RandSpatialCropd

from medresae.data import PatchDataset
from medresae.inference import denoise
from medresae.io import load_volume
from medresae.metrics import evaluate
from medresae.noise import rician, robust_max
from medresae.presets import load_preset, preset_path
from medresae.sample_data import sample_path
from medresae.training import train_denoiser
from medresae.transforms import InvertibleScaleIntensityd, RandAddNoised

SMALL = os.environ.get("CI") == "true"
print("Keras backend:", keras.backend.backend())
# MONAI builds every image reader in LoadImaged, including a GPU DICOM decoder that warns when it is
# unavailable; harmless for NIfTI files.
warnings.filterwarnings("ignore", message="NvImgCodecPydicomReader")

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
    ax.set_title({"target": "clean patch", "image": "with Rician noise"}[key])
    ax.axis("off")
plt.show()

# %% [markdown]
# ## PatchDataset: the same chain, cached, batched, channels-last

# %%
patch = (32, 32, 8) if SMALL else (48, 48, 8)
data = PatchDataset("synthetic", [sample_path("brain_mr")], patch, batch_size=4, noise="rician:0.01-0.1")
x, y = data[0]
print("x", x.shape, "y", y.shape)

# %% [markdown]
# ## Train from scratch
#
# [`train_denoiser`](../../api/training/#medresae.training.train_denoiser)
# is [`medresae train`](../../cli/#medresae-train) in Python: it builds a
# [`ResUNet`](../../api/models/#medresae.models.ResUNet)
# (no down-sampling across thick slices: strides (2, 2, 1) for an 8-slice
# patch), trains it, and writes `model.keras` (best), `last.keras`,
# `history.csv` and `training.png` into the run folder.

# %%
scratch, scratch_history = train_denoiser(
    "synthetic", [sample_path("brain_mr")], "tutorial-output/run-scratch",
    patch_size=patch, noise="rician:0.01-0.1", filters=(8, 16) if SMALL else (16, 32), n_blocks=1,
    epochs=2 if SMALL else 20, steps_per_epoch=40 if SMALL else 60, batch_size=4,
    validation_fraction=None, schedule="cosine", learning_rate=2e-3, verbose=0 if SMALL else "auto",
)

# %% [markdown]
# ## Or start from a preset
#
# A model trained from nothing needs thousands of steps to denoise well
# (the `brain-mr` preset saw 4,400 batches of 32 patches from 12 volumes).
# `init=` (`medresae train --init` on the command line) starts from a
# trained model instead and keeps its architecture; here, the shipped
# `brain-mr` preset, fine-tuned on the same crop with a small learning rate.

# %%
finetuned, finetuned_history = train_denoiser(
    "synthetic", [sample_path("brain_mr")], "tutorial-output/run-finetune",
    patch_size=(32, 32, 16), noise="rician:0.01-0.1", init=preset_path("brain-mr"),
    epochs=2 if SMALL else 10, steps_per_epoch=20 if SMALL else 60, batch_size=4,
    validation_fraction=None, schedule="cosine", learning_rate=3e-5, verbose=0 if SMALL else "auto",
)

fig, ax = plt.subplots(figsize=(5, 3))
for name, history in (("from scratch", scratch_history), ("from brain-mr", finetuned_history)):
    ax.plot(range(1, len(history["loss"]) + 1), history["loss"], marker="o", label=name)
ax.set_xlabel("epoch")
ax.set_ylabel("training loss (MSE)")
ax.set_yscale("log")
ax.legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Evaluate on the held-out crop
#
# The other shipped crop, with 5 % Rician noise: no model saw it.

# %%
volume = load_volume(sample_path("brain_mr_heldout"))
clean = volume.array[..., 0]
noisy = rician(clean, 0.05 * robust_max(clean), rng=0)
results = {"noisy 5 %": noisy}
for name, model in (("from scratch", scratch), ("brain-mr", load_preset("brain-mr")),
                    ("brain-mr fine-tuned", finetuned)):
    results[name] = denoise(model, noisy[..., None], normalize="percentile", progress=False)[..., 0]
scores = {name: evaluate(clean, image) for name, image in results.items()}
for name, s in scores.items():
    print(f"{name:<20} PSNR {s['psnr_mask']:.2f} dB   SSIM {s['ssim_mask']:.3f}   (inside the head)")
change = scores["brain-mr fine-tuned"]["psnr_mask"] - scores["brain-mr"]["psnr_mask"]
print(f"fine-tuning changed the held-out PSNR by {change:+.2f} dB")

# %% [markdown]
# ## Look at the slices

# %%
z = clean.shape[2] // 2
fig, axes = plt.subplots(1, 5, figsize=(15, 3.5))
for ax, (title, image) in zip(axes, (("clean", clean), *results.items())):
    ax.imshow(image[:, :, z].T, cmap="gray", origin="lower")
    ax.set_title(title)
    ax.axis("off")
plt.tight_layout()
plt.show()

# %% [markdown]
# What the numbers say. The short run from scratch (80 steps in the
# documentation build) has learned little: its output is close to the noisy
# input. The preset denoises this scan well without any training. Fine-tuning
# it on one crop of one thick-slice scan did not help the other crop: in the
# documentation build it lost 0.18 dB, because a few dozen
# batches from one scan pull a model trained on 12 volumes towards that one
# scan. Before you keep a fine-tuned model, score it against the preset on a
# scan it was not trained on, as here; fine-tuning pays when your scans
# differ from the presets' training data ([Presets: Scope](../../presets/#scope)) and you
# have several of them.
