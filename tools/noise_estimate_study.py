#!/usr/bin/env python3
"""How close the measured noise sigma comes to the added one, with and without a model's output as a guide.

For each volume (its central 128^3 crop, RAS) and each Rician level (a
fraction of the volume's robust maximum), prints the ratio of measured to
added sigma: `estimate_noise_sigma` inside the foreground alone ('plain'),
and guided by the model's output on the noisy crop ('guided'), as `adapt`
measures it. A volume's own noise adds to the ratio at low levels, so the
volumes with little noise of their own and the high levels are the ones
that show the estimator's bias.

Usage:
    python tools/noise_estimate_study.py corpus/mr/train --model brain-mr
"""

import argparse
import glob
import os

import numpy as np


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("volumes", help="folder of NIfTI volumes")
    parser.add_argument("--model", default="brain-mr", help="preset name or .keras file (default brain-mr)")
    parser.add_argument("--levels", nargs="+", type=float, default=[0.01, 0.03, 0.05, 0.09, 0.15])
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    import nibabel as nib

    from medresae.inference import denoise
    from medresae.noise import add_noise, estimate_noise_sigma, robust_max
    from medresae.saving import load_denoiser

    model = load_denoiser(path=args.model) if args.model.endswith(".keras") else load_denoiser(preset=args.model)
    normalize = (getattr(model, "metadata", None) or {}).get("normalize", "percentile")
    print("| volume | " + " | ".join(f"{level:g} plain / guided" for level in args.levels) + " |")
    print("|---" * (len(args.levels) + 1) + "|")
    for path in sorted(glob.glob(os.path.join(args.volumes, "*.nii*"))):
        image = nib.as_closest_canonical(nib.load(path))
        x = np.asarray(image.dataobj, np.float32)
        x = x[..., 0] if x.ndim == 4 else x
        x = x[tuple(slice(max(0, (n - 128) // 2), max(0, (n - 128) // 2) + min(n, 128)) for n in x.shape)]
        cells = []
        for level in args.levels:
            sigma = level * robust_max(x)
            y = add_noise(x, "rician", level, rng=args.seed)
            mask = y > 0.1 * np.percentile(y, 99.5)
            output = denoise(model, y[..., None], normalize=normalize, progress=False)[..., 0]
            plain = estimate_noise_sigma(y, mask)
            guided = estimate_noise_sigma(y, mask, reference=np.maximum(output, 0.0))
            cells.append(f"{plain / sigma:.2f} / {guided / sigma:.2f}")
        print(f"| {os.path.basename(path).split('.')[0]} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
