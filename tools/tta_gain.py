#!/usr/bin/env python3
"""What test-time augmentation (`denoise(..., tta=True)`, `--tta`) buys: foreground PSNR/SSIM and time.

For each clean volume, adds seeded noise (MR: Rician 3/5/9 %; CT models: 1e5/3e4/1e4 photons; seed
100 + 10 * volume index + level index, not the seeds of `medresae bench quality`) and denoises it
twice; prints one JSON line per case: [PSNR fg, SSIM fg, PSNR, seconds] for each.

Usage:
    TF_ENABLE_ONEDNN_OPTS=1 python tools/tta_gain.py brain-mr corpus/mr/heldout/papaya_pd.nii.gz ...
"""
import json
import sys
import time

import numpy as np

from medresae.inference import denoise
from medresae.io import load_volume
from medresae.metrics import evaluate
from medresae.noise import NoiseSpec
from medresae.saving import load_denoiser

model_name, paths = sys.argv[1], sys.argv[2:]
model = load_denoiser(preset=model_name) if not model_name.endswith(".keras") else load_denoiser(path=model_name)
norm = model.metadata["normalize"]
for i, path in enumerate(paths):
    volume = load_volume(path)
    clean = volume.array[..., 0].astype(np.float32)
    specs = ["rician:0.03", "rician:0.05", "rician:0.09"] if norm != "window" else ["ct:1e5", "ct:3e4", "ct:1e4"]
    for j, spec in enumerate(specs):
        s = NoiseSpec.parse(spec)
        if s.model == "ct":
            noisy = s.apply(clean, rng=100 + 10 * i + j, level=s.low, units="hu",
                            voxel_size_mm=float(volume.voxel_sizes[0]))
        else:
            noisy = s.apply(clean, rng=100 + 10 * i + j, level=s.low)
        noisy = noisy.astype(np.float32)
        row = {"volume": path.split("/")[-1], "noise": spec}
        for tta in (False, True):
            t = time.perf_counter()
            out = denoise(model, noisy[..., None], normalize=norm, tta=tta, progress=False)[..., 0]
            sc = evaluate(clean, out)
            row["tta" if tta else "plain"] = (round(sc["psnr_mask"], 2), round(sc["ssim_mask"], 4),
                                              round(sc["psnr"], 2), round(time.perf_counter() - t, 1))
        print(json.dumps(row), flush=True)
