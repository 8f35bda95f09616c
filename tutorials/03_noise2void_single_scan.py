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
# # 3. No clean data: denoise a single noisy scan
#
# Often there is only the noisy scan. Two ways to denoise it without any
# clean image:
#
# 1. **Noise2Void** (Krull et al. 2019): train a model from scratch on the
#    scan itself. A small fraction of voxels is replaced by a neighbour and
#    the loss is computed only there, so the model must predict each voxel
#    from its surroundings and cannot learn the identity.
# 2. **Adapt a pretrained preset** to the scan
#    ([`medresae denoise --adapt`](../../cli/#medresae-denoise),
#    [`adapt`](../../api/adaptation/#medresae.adaptation.adapt) in Python):
#    Recorrupted-to-Recorrupted fine-tuning (Pang et al. 2021) with the
#    scan's own, measured noise level.
#
# Both assume noise that is independent from voxel to voxel, as MRI
# magnitude noise is.

# %%
import os

import keras
import matplotlib.pyplot as plt

from medresae.adaptation import adapt, keep_original_outside_foreground
from medresae.inference import denoise
from medresae.io import load_volume, save_volume
from medresae.metrics import evaluate
from medresae.noise import estimate_noise_sigma, rician, robust_max
from medresae.presets import load_preset
from medresae.sample_data import sample_path
from medresae.training import train_denoiser

SMALL = os.environ.get("CI") == "true"
print("Keras backend:", keras.backend.backend())
os.makedirs("tutorial-output", exist_ok=True)

# %% [markdown]
# ## The noisy scan
#
# We make one from a shipped crop (so we can score the result), and forget
# the clean image for training.

# %%
reference = load_volume(sample_path("brain_mr_heldout"))
clean = reference.array[..., 0]
sigma = 0.06 * robust_max(clean)
noisy = rician(clean, sigma, rng=1)
noisy_path = save_volume("tutorial-output/noisy_scan.nii.gz", noisy, like=reference, overwrite=True)
estimated = estimate_noise_sigma(noisy, clean > 0.1 * clean.max())
print(f"true sigma {sigma:.1f}; estimated from the scan alone: {estimated:.1f}")

# %% [markdown]
# ## 1. Noise2Void from scratch

# %%
n2v_model, n2v_history = train_denoiser(
    "noise2void", [noisy_path], "tutorial-output/run-n2v", patch_size=(32, 32, 8) if SMALL else (48, 48, 8),
    filters=(8, 16) if SMALL else (16, 32), n_blocks=1, epochs=4 if SMALL else 20,
    steps_per_epoch=20 if SMALL else 80, batch_size=4, validation_fraction=None, schedule="cosine",
    learning_rate=2e-3, verbose=0 if SMALL else "auto",
)
n2v = denoise(n2v_model, noisy[..., None], normalize="percentile", progress=False)[..., 0]

fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(range(1, len(n2v_history["loss"]) + 1), n2v_history["loss"], marker="o")
ax.set_xlabel("epoch")
ax.set_ylabel("blind-spot loss")
ax.set_title("Noise2Void on one scan")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 2. The brain-mr preset, then adapted to this scan

# %%
preset = load_preset("brain-mr")
before = denoise(preset, noisy[..., None], normalize="percentile", progress=False)[..., 0]
preset, info = adapt(preset, noisy_path, steps=4 if SMALL else 300, checks=2 if SMALL else 5,
                     validation_batches=2 if SMALL else 8, verbose=0 if SMALL else "auto")
# Adaptation trains and checks on the head only; outside it, keep the preset's output (as `denoise --adapt` does).
after = keep_original_outside_foreground(
    denoise(preset, noisy[..., None], normalize="percentile", progress=False)[..., 0], before)
print(f"adaptation: measured sigma {info['noise_sigma']:.1f}, check loss {info['check_loss_start']:.4g} -> "
      f"{info['check_loss_best']:.4g}, kept the {info['kept']} model")

# %%
results = {"noisy": noisy, "Noise2Void": n2v, "brain-mr": before, "brain-mr adapted": after}
for name, image in results.items():
    s = evaluate(clean, image)
    print(f"{name:<17} PSNR {s['psnr_mask']:.2f} dB  SSIM {s['ssim_mask']:.3f}")

z = clean.shape[2] // 2
fig, axes = plt.subplots(1, 5, figsize=(15, 3.5))
for ax, (title, image) in zip(axes, (("clean (not used)", clean), *results.items())):
    ax.imshow(image[:, :, z].T, cmap="gray", origin="lower")
    ax.set_title(title)
    ax.axis("off")
plt.tight_layout()
plt.show()

# %% [markdown]
# What to expect, and why.
#
# **Noise2Void** starts from nothing and sees one small scan. Its loss (the
# curve above) falls as the network learns to predict each masked voxel
# from its neighbours, but in the 80 steps of the documentation build its
# output is no better than the noisy input: the loss only sees the masked
# voxels (0.2 %, about 16 per patch), so a model trained from scratch this
# way needs many more steps, and one scan gives it little to learn from.
# At full size (1,600 steps, about 7 minutes on a 2-core CPU) it reaches
# 30.91 dB from the noisy 27.27 dB, still behind the preset trained on
# clean data. N2V2 (`n2v_variant="n2v2"`) did worse on this scan with this
# small model (27.03 dB; see [Benchmarks: Noise2Void against
# N2V2](../../benchmarks/#without-clean-data-noise2void-against-n2v2)).
#
# **Adaptation** starts from the preset. With the full 300 steps on this
# scan (TensorFlow, a few minutes on a 2-core CPU; measured with the
# previous, fourth `brain-mr`) foreground PSNR goes from 33.43 to 34.00 dB
# and whole-volume PSNR from 34.52 to 35.00 dB. The 4 steps of the
# documentation build change little, and here they cost about 0.2 dB although
# the check loss fell and the adapted model was kept.
# The reason: the check loss scores the model on the scan with extra noise
# added (the recorrupted input, noise 1.12 times the scan's), so it ranks
# models at a slightly higher noise level than the one they will denoise;
# a change that helps there can cost a little at the scan's own level. A
# round is kept only when its check loss beats the original's by more than
# twice its standard error over the check batches; that stops changes that
# are noise, but not this bias. Its targets follow the Rician statistics of
# magnitude images ([Presets: Adapting a preset to your
# scan](../../presets/#adapting-a-preset-to-your-scan)); built on the raw
# scan, as in earlier versions, 4 steps lifted the dark background by about
# one sigma and cost 1.7 dB inside the head.
#
# On the command line, the second route is one command:
#
# ```bash
# medresae denoise noisy_scan.nii.gz -o denoised.nii.gz --preset brain-mr --adapt
# ```
