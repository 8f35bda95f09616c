#!/usr/bin/env python3
"""CT adaptation on training volumes: the measured noise correlation against the truth, and `adapt`
with recorruption noise of the scan's correlation against white noise of the same sigma.

For each volume (16 central slices, values below -1024 HU raised to it) and photon count, low-dose
CT noise is simulated (seeded), the `ct` preset denoises it, and foreground PSNR is printed for:
the noisy input, the preset, the preset adapted with coloured noise (as `denoise --adapt` does)
and, with `--white`, adapted with white noise of the same measured sigma. One JSON line per case.

Usage:
    python tools/ct_adapt_study.py corpus/ct/train/cerr_chest_1.nii.gz --doses 1e5 1e4 --steps 100 --white
"""

import argparse
import functools
import json
import time

import nibabel as nib
import numpy as np

import medresae.adaptation as adaptation
from medresae.inference import denoise
from medresae.metrics import evaluate, foreground_mask
from medresae.noise import NoiseSpec
from medresae.noise.colour import estimate_noise_autocovariance, noise_autocovariance
from medresae.noise.estimate import flat_voxels
from medresae.presets import load_preset

SEEDS = {"1e5": 100, "3e4": 101, "1e4": 102}


def _white_kernel(covariance):
    kernel = np.zeros(covariance.shape)
    kernel[tuple(n // 2 for n in covariance.shape)] = 1.0
    return kernel


def _adapted(model, original, path, noisy, steps, white, uniform):
    model.set_weights(original)
    coloured, dataset = adaptation.colouring_kernel, adaptation.PatchDataset
    if white:
        adaptation.colouring_kernel = _white_kernel
    if uniform:
        adaptation.PatchDataset = functools.partial(dataset, foreground=False)
    try:
        start = time.perf_counter()
        _, info = adaptation.adapt(model, path, steps=steps, seed=0, verbose=0)
    finally:
        adaptation.colouring_kernel, adaptation.PatchDataset = coloured, dataset
    out = denoise(model, noisy[..., None], normalize="window", progress=False)[..., 0]
    return out, info, time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("volumes", nargs="+", help="clean CT volumes in HU (NIfTI)")
    parser.add_argument("--doses", nargs="+", default=["1e5", "3e4", "1e4"], choices=sorted(SEEDS))
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--white", action="store_true", help="also adapt with white recorruption noise")
    parser.add_argument("--uniform", action="store_true",
                        help="draw adaptation patches uniformly over the volume, not mostly in the body")
    parser.add_argument("--work", default=".", help="folder for the noisy volumes")
    args = parser.parse_args()
    model = load_preset("ct")
    original = model.get_weights()
    radius = adaptation.CT_NOISE_RADIUS
    centre = tuple(radius)
    for volume in args.volumes:
        image = nib.load(volume)
        first = image.shape[2] // 2 - 8
        clean = np.maximum(np.asarray(image.dataobj, np.float32)[..., first:first + 16], -1024.0)
        mask = foreground_mask(clean)
        name = volume.rsplit("/", 1)[-1].split(".")[0]
        for dose in args.doses:
            spec = NoiseSpec.parse(f"ct:{dose}")
            noisy = spec.apply(clean, rng=SEEDS[dose], level=spec.low, units="hu",
                               voxel_size_mm=float(image.header.get_zooms()[0]))
            path = f"{args.work}/{name}_{dose}.nii"
            nib.save(nib.Nifti1Image(noisy, image.affine), path)
            model.set_weights(original)
            preset = denoise(model, noisy[..., None], normalize="window", progress=False)[..., 0]
            truth = noise_autocovariance(noisy - clean, flat_voxels(preset, mask), radius)
            measured = estimate_noise_autocovariance(noisy, preset, mask, radius)
            row = {"volume": name, "photons": dose,
                   "sigma_measured_over_true": float(np.sqrt(measured[centre] / truth[centre])),
                   "x_neighbour_correlation": [float(c[centre[0] + 1, centre[1], centre[2]] / c[centre])
                                               for c in (truth, measured)],
                   "psnr_fg": {"noisy": evaluate(clean, noisy, mask=mask)["psnr_mask"],
                               "preset": evaluate(clean, preset, mask=mask)["psnr_mask"]},
                   "psnr": {"noisy": evaluate(clean, noisy)["psnr"], "preset": evaluate(clean, preset)["psnr"]}}
            for label, white in (("adapt", False), ("adapt, white noise", True))[: 2 if args.white else 1]:
                out, info, seconds = _adapted(model, original, path, noisy, args.steps, white, args.uniform)
                row["psnr_fg"][label] = evaluate(clean, out, mask=mask)["psnr_mask"]
                row["psnr"][label] = evaluate(clean, out)["psnr"]
                row[f"{label}: kept, seconds"] = [info["kept"], round(seconds, 1)]
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
