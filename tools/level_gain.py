#!/usr/bin/env python3
"""Noise removed per noise level on training-style patches: how a model splits its effort over levels.

For each noise level, draws seeded patches from clean volumes the way
`medresae train --clean ... --augment resolution` does (a seed training never
used), denoises them and prints, per model, the median over patches of
10 log10(input noise power / error power) in dB: 0 dB removes nothing, 10 dB
removes 90 % of the noise power.

Usage:
    python tools/level_gain.py corpus/mr/train --models brain-mr runs/mr-e/model.keras
"""

import argparse
import glob
import os

import numpy as np


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("volumes", help="folder of clean NIfTI volumes")
    parser.add_argument("--models", nargs="+", required=True, help="preset names or .keras files")
    parser.add_argument("--noise", default="rician", help="noise model (default rician)")
    parser.add_argument("--levels", nargs="+", type=float, default=[0.01, 0.03, 0.05, 0.09, 0.15])
    parser.add_argument("--patch", type=int, default=32, help="cubic patch size (default 32)")
    parser.add_argument("--patches", type=int, default=48, help="patches per level (default 48)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    from medresae.data import PatchDataset
    from medresae.saving import load_denoiser

    volumes = sorted(glob.glob(os.path.join(args.volumes, "*.nii*")))
    models = {name: load_denoiser(path=name) if name.endswith(".keras") else load_denoiser(preset=name)
              for name in args.models}
    print("| model | " + " | ".join(f"{level:g}" for level in args.levels) + " |")
    print("|---" * (len(args.levels) + 1) + "|")
    gains = {name: [] for name in models}
    for level in args.levels:
        data = PatchDataset("synthetic", volumes, (args.patch,) * 3, batch_size=args.patches,
                            noise=f"{args.noise}:{level}", augment="resolution", weighting="noise", seed=args.seed)
        x, y, weights = data[0]
        for name, model in models.items():
            predicted = np.asarray(model.predict(x, batch_size=16, verbose=0))
            ratio = np.mean((predicted - y) ** 2, axis=(1, 2, 3, 4)) * weights.ravel()
            gains[name].append(10 * np.log10(1 / np.median(ratio)))
    for name, values in gains.items():
        print(f"| {name} | " + " | ".join(f"{v:.2f} dB" for v in values) + " |")


if __name__ == "__main__":
    main()
