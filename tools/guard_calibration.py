#!/usr/bin/env python3
"""Removed-noise ratios of a model on clean volumes: the calibration of medresae.guard.

For each clean volume and noise level, adds seeded noise, denoises and
prints `check_denoised`'s ratio per intensity band (removed RMS over the
measured noise sigma) next to the RMS error against the clean volume per
band, for the noisy input and for the model's output. On a model's own
training volumes the ratios give the guard's limit (well above the largest
seen); on other volumes the errors show whether the guard's verdict was
right.

Usage:
    python tools/guard_calibration.py MODEL.keras|--preset NAME VOLUME.nii.gz ... [--noise SPEC ...]
"""

import argparse
import json

import numpy as np


def _bands(clean, modality):
    from medresae.guard import intensity_bands
    from medresae.metrics import foreground_mask

    return intensity_bands(clean, modality, None if modality == "ct" else foreground_mask(clean))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a .keras model, or preset:NAME")
    parser.add_argument("volumes", nargs="+")
    parser.add_argument("--noise", nargs="+", default=["rician:0.01", "rician:0.03", "rician:0.09", "rician:0.15"])
    parser.add_argument("--crop", type=int, default=96, help="MR: centre crop edge (voxels, default 96); "
                        "CT: 8 central whole slices")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import keras

    import medresae  # noqa: F401
    from medresae.bench.quality import _noisy
    from medresae.guard import check_denoised
    from medresae.inference import denoise
    from medresae.io import load_volume
    from medresae.noise import NoiseSpec
    from medresae.presets import load_preset

    model = (load_preset(args.model.split(":", 1)[1]) if args.model.startswith("preset:")
             else keras.saving.load_model(args.model, compile=False))
    modality = model.metadata.get("modality", "mr")
    rows = []
    for path in args.volumes:
        volume = load_volume(path)
        x = np.asarray(volume.array, np.float32)[..., 0]
        # CT noise lives on whole slices' sinograms: crop CT across slices only.
        crops = (10**6, 10**6, 8) if modality == "ct" else (args.crop,) * 3
        x = x[tuple(slice(max(0, (s - c) // 2), max(0, (s - c) // 2) + c) for s, c in zip(x.shape, crops))]
        for i, text in enumerate(args.noise):
            noisy, _ = _noisy(x, NoiseSpec.parse(text), volume.voxel_sizes, args.seed + i)
            noisy = np.asarray(noisy, np.float32)[..., None]
            out = denoise(model, noisy, normalize=model.metadata["normalize"], progress=False)
            report = check_denoised(noisy, out, modality=modality)
            # The truth the guard cannot see: RMS error against the clean volume, per band,
            # noisy input -> model output.
            errors = {name: [round(float(np.sqrt(np.mean((a - x)[band] ** 2))), 4)
                             for a in (noisy[..., 0], out[..., 0])]
                      for name, band in _bands(x, modality).items() if band.sum()}
            rows.append(dict(volume=path, noise=text, ratios=report.ratios, ok=report.ok, rms_noisy_output=errors))
            print(json.dumps(rows[-1]), flush=True)
    worst = max(max(r["ratios"].values()) for r in rows if r["ratios"])
    print(f"largest ratio: {worst:.2f}")


if __name__ == "__main__":
    main()
