#!/usr/bin/env python3
"""Noise2Void against N2V2 on one noisy scan, same recipe and seed: PSNR, SSIM and checkerboard power.

The scan is tutorial 3's: the shipped held-out brain MRI crop with Rician
noise of 6 % of its robust maximum (seed 1). Each model trains from scratch
on the noisy scan alone (20 x 80 steps of 4 patches of 48x48x8, 16-32
filters), as tutorial 3 does at full size. The checkerboard figure is the
share of the in-plane error power at the highest spatial frequencies
(above 0.4 cycles per voxel on both in-plane axes).

Usage:
    python tools/compare_n2v.py OUT_FOLDER
"""
import json
import os
import sys
import time

import numpy as np

from medresae.inference import denoise
from medresae.io import load_volume, save_volume
from medresae.metrics import evaluate
from medresae.noise import rician, robust_max
from medresae.sample_data import sample_path
from medresae.training import train_denoiser

out = sys.argv[1] if len(sys.argv) > 1 else "compare-n2v"
os.makedirs(out, exist_ok=True)
reference = load_volume(sample_path("brain_mr_heldout"))
clean = reference.array[..., 0]
noisy = rician(clean, 0.06 * robust_max(clean), rng=1)
noisy_path = save_volume(os.path.join(out, "noisy_scan.nii.gz"), noisy, like=reference, overwrite=True)


def checkerboard(residual):
    """Share of the in-plane residual power at the highest frequencies (|f| > 0.4 cycles/voxel on both axes)."""
    power = np.abs(np.fft.fft2(residual, axes=(0, 1))) ** 2
    fx = np.abs(np.fft.fftfreq(residual.shape[0]))[:, None, None]
    fy = np.abs(np.fft.fftfreq(residual.shape[1]))[None, :, None]
    return float(power[np.broadcast_to((fx > 0.4) & (fy > 0.4), power.shape)].sum() / power.sum())


rows = {"noisy": dict(evaluate(clean, noisy), checkerboard=checkerboard(noisy - clean))}
for variant in ("n2v", "n2v2"):
    start = time.time()
    model, history = train_denoiser(
        "noise2void", [noisy_path], os.path.join(out, f"run-{variant}"), patch_size=(48, 48, 8),
        filters=(16, 32), n_blocks=1, epochs=20, steps_per_epoch=80, batch_size=4, validation_fraction=None,
        schedule="cosine", learning_rate=2e-3, verbose=0, seed=0, n2v_variant=variant)
    seconds = time.time() - start
    denoised = denoise(model, noisy[..., None], normalize="percentile", progress=False)[..., 0]
    rows[variant] = dict(evaluate(clean, denoised), checkerboard=checkerboard(denoised - clean), seconds=seconds,
                         final_loss=history["loss"][-1])
    print(variant, rows[variant], flush=True)
with open(os.path.join(out, "n2v2.json"), "w") as f:
    json.dump(rows, f, indent=1)
for name, r in rows.items():
    print(f"| {name} | {r['psnr_mask']:.2f} | {r['ssim_mask']:.3f} | {r['psnr']:.2f} | "
          f"{100 * r['checkerboard']:.2f} % |")
