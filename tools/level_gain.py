#!/usr/bin/env python3
"""Noise removed per noise level on training-style patches: how a model splits its effort over levels.

For each noise level, draws seeded patches the way `medresae train` does (a
seed training never used), denoises them and prints, per model, the median
over patches of 10 log10(input noise power / error power) in dB: 0 dB
removes nothing, 10 dB removes 90 % of the noise power.

Two sources of patches:
- clean volumes (MR): `medresae train --clean ... --augment resolution`
  patches with synthetic noise at each of `--levels`;
- (noisy, clean) pairs (CT, from `tools/build_ct_pairs.py`): `--pairs
  NOISY CLEAN`, patches as `medresae train --pairs ... --modality ct
  --augment resolution` cuts them, grouped by the dose level at the end of
  each file name (`NAME_PHOTONS.nii.gz`).

Usage:
    python tools/level_gain.py corpus/mr/train --models brain-mr runs/mr-e/model.keras
    python tools/level_gain.py --pairs ct-pairs/noisy ct-pairs/clean --models ct runs/ct-w/model.keras
"""

import argparse
import glob
import os
import re
from collections import defaultdict

import numpy as np


def _dose_groups(noisy_dir, clean_dir):
    """{photons: [(noisy, clean), ...]} from the file names' `_PHOTONS` suffix, lowest noise first."""
    groups = defaultdict(list)
    for noisy in sorted(glob.glob(os.path.join(noisy_dir, "*.nii*"))):
        name = os.path.basename(noisy)
        match = re.search(r"_([0-9.]+e[0-9]+)\.nii", name)
        clean = os.path.join(clean_dir, name)
        if match is None or not os.path.isfile(clean):
            raise SystemExit(f"{noisy}: expected NAME_PHOTONS.nii.gz with the same name in {clean_dir}")
        groups[float(match.group(1))].append((noisy, clean))
    return dict(sorted(groups.items(), reverse=True))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("volumes", nargs="?", help="folder of clean NIfTI volumes (MR)")
    parser.add_argument("--pairs", nargs=2, metavar=("NOISY", "CLEAN"), help="folders of CT (noisy, clean) pairs")
    parser.add_argument("--models", nargs="+", required=True, help="preset names or .keras files")
    parser.add_argument("--noise", default="rician", help="noise model for clean volumes (default rician)")
    parser.add_argument("--levels", nargs="+", type=float, default=[0.01, 0.03, 0.05, 0.09, 0.15])
    parser.add_argument("--patch", type=int, nargs="+", default=None,
                        help="patch size: one int for a cube, or three (default 32, or 64 64 8 with --pairs)")
    parser.add_argument("--patches", type=int, default=48, help="patches per level (default 48)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    if (args.volumes is None) == (args.pairs is None):
        parser.error("give either a folder of clean volumes or --pairs NOISY CLEAN")

    from medresae.data import PatchDataset
    from medresae.saving import load_denoiser

    patch = args.patch or ([64, 64, 8] if args.pairs else [32])
    patch = tuple(patch * 3 if len(patch) == 1 else patch)
    if args.pairs:
        cases = {f"{photons:g}": dict(kind="pairs", volumes=pairs, modality="ct", noise=None)
                 for photons, pairs in _dose_groups(*args.pairs).items()}
    else:
        volumes = sorted(glob.glob(os.path.join(args.volumes, "*.nii*")))
        cases = {f"{level:g}": dict(kind="synthetic", volumes=volumes, noise=f"{args.noise}:{level}")
                 for level in args.levels}
    models = {name: load_denoiser(path=name) if name.endswith(".keras") else load_denoiser(preset=name)
              for name in args.models}
    print("| model | " + " | ".join(cases) + " |")
    print("|---" * (len(cases) + 1) + "|")
    gains = {name: [] for name in models}
    for case in cases.values():
        data = PatchDataset(case.pop("kind"), case.pop("volumes"), patch, batch_size=args.patches,
                            augment="resolution", weighting="noise", seed=args.seed, **case)
        x, y, weights = data[0]
        for name, model in models.items():
            predicted = np.asarray(model.predict(x, batch_size=16, verbose=0))
            ratio = np.mean((predicted - y) ** 2, axis=(1, 2, 3, 4)) * weights.ravel()
            gains[name].append(10 * np.log10(1 / np.median(ratio)))
    for name, values in gains.items():
        print(f"| {name} | " + " | ".join(f"{v:.2f} dB" for v in values) + " |")


if __name__ == "__main__":
    main()
