#!/usr/bin/env python3
"""How a preset's output is biased, and what restoring the local mean does, on training volumes.

Prints one line per scan: the foreground's mean error (HU for CT, % of the
clean foreground's mean for MR) and foreground PSNR of the noisy scan, the
network's output and the restorations.

- CT (`--pairs NOISY CLEAN`, from `tools/build_ct_pairs.py`): the central 16
  slices of each pair; `medresae.mean_restoration.restore_local_mean` at each
  of `--sigma-mm`.
- MR (`--clean FILES`): Rician noise at 3 / 9 / 15 % of the robust maximum
  (seeded); the plain restoration at 5 mm, and a Rician-aware variant that
  compares the noisy scan with the Rician expectation of the output
  (`medresae.noise.rician_mean`), with the sigma measured by
  `estimate_noise_sigma` and with the true one.

Usage:
    python tools/mean_restoration_check.py --preset ct --pairs ct-pairs/noisy ct-pairs/clean --sigma-mm 3 5
    python tools/mean_restoration_check.py --preset brain-mr \
        --clean corpus/mr/train/{brain1,brain2,totalseg_abdomen_mr}.nii.gz
"""

import argparse
import os

import numpy as np


def _load(path):
    import nibabel as nib

    image = nib.load(path)
    return np.asarray(image.dataobj, np.float32), tuple(float(z) for z in image.header.get_zooms()[:3])


def _check_ct(model, noisy_dir, clean_dir, sigmas):
    from medresae.inference import denoise
    from medresae.mean_restoration import restore_local_mean
    from medresae.metrics import foreground_mask, psnr

    for name in sorted(os.listdir(noisy_dir)):
        noisy, zooms = _load(os.path.join(noisy_dir, name))
        clean, _ = _load(os.path.join(clean_dir, name))
        z0 = max(0, noisy.shape[2] // 2 - 8)
        noisy, clean = noisy[:, :, z0:z0 + 16], clean[:, :, z0:z0 + 16]
        out = denoise(model, noisy[..., None], normalize="window", progress=False)[..., 0]
        mask = foreground_mask(clean)

        def cell(x):
            return f"{np.mean(x[mask] - clean[mask]):+.2f} HU {psnr(clean, x, mask=mask):.2f} dB"

        cells = [f"noisy {cell(noisy)}", f"network {cell(out)}"]
        cells += [f"{mm:g} mm {cell(restore_local_mean(noisy, out, zooms, sigma_mm=mm))}" for mm in sigmas]
        print(f"{name:<34} | " + " | ".join(cells), flush=True)


def _rician_restored(noisy, out, zooms, sigma):
    """`restore_local_mean` against the Rician expectation of the output instead of the output itself."""
    from medresae.mean_restoration import restore_local_mean
    from medresae.noise import rician_mean

    expected = rician_mean(np.clip(out, 0, None), sigma).astype(np.float32)
    return restore_local_mean(noisy - expected + out, out, zooms)


def _check_mr(model, files, levels):
    from medresae.inference import denoise
    from medresae.mean_restoration import restore_local_mean
    from medresae.metrics import foreground_mask, psnr
    from medresae.noise import estimate_noise_sigma, rician, robust_max

    for i, path in enumerate(files):
        clean, zooms = _load(path)
        mask = foreground_mask(clean)
        tissue = float(np.mean(clean[mask]))
        for j, level in enumerate(levels):
            sigma = level * robust_max(clean)
            noisy = rician(clean, sigma, rng=100 + 10 * i + j).astype(np.float32)
            out = denoise(model, noisy[..., None], progress=False)[..., 0]
            measured = estimate_noise_sigma(noisy, reference=out)

            def cell(x):
                return f"{100 * (np.mean(x[mask]) - tissue) / tissue:+.2f} % {psnr(clean, x, mask=mask):.2f} dB"

            print(f"{os.path.basename(path):<28} {level:.2f} | noisy {cell(noisy)} | network {cell(out)} | "
                  f"5 mm {cell(restore_local_mean(noisy, out, zooms))} | "
                  f"Rician, measured sigma ({measured / sigma:.2f}x) "
                  f"{cell(_rician_restored(noisy, out, zooms, measured))} | "
                  f"Rician, true sigma {cell(_rician_restored(noisy, out, zooms, sigma))}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", required=True, help="a shipped preset (ct, brain-mr) or a .keras file")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--pairs", nargs=2, metavar=("NOISY", "CLEAN"), help="CT pair folders")
    source.add_argument("--clean", nargs="+", metavar="FILE", help="clean MR volumes")
    parser.add_argument("--sigma-mm", nargs="+", type=float, default=[5.0], help="CT: restoration widths")
    parser.add_argument("--levels", nargs="+", type=float, default=[0.03, 0.09, 0.15], help="MR: Rician levels")
    args = parser.parse_args()
    from medresae.saving import load_denoiser

    model = load_denoiser(path=args.preset) if args.preset.endswith(".keras") else load_denoiser(preset=args.preset)
    if args.pairs:
        _check_ct(model, *args.pairs, args.sigma_mm)
    else:
        _check_mr(model, args.clean, args.levels)


if __name__ == "__main__":
    main()
