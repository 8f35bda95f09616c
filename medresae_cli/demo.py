"""`medresae demo`: the whole story on a shipped brain MRI in a few minutes on a CPU."""

import os
import time

from medresae_cli.common import non_negative_int, positive_float

DEMO_NOISE = 0.05  # Rician sigma as a fraction of the robust maximum
OUTPUTS = ("clean.nii.gz", "noisy.nii.gz", "denoised.nii.gz", "nlmeans.nii.gz", "slices.png", "metrics.json")


def add_parser(sub, parent):
    p = sub.add_parser(
        "demo", parents=[parent], help="Add noise to a shipped brain MRI, train, denoise, compare.",
        description="Trains a small 3D ResUNet for a few minutes on one shipped brain MRI crop (with synthetic "
        "Rician noise), adds 5 % Rician noise to another, disjoint crop, denoises it, and compares with "
        "scikit-image's non-local means. Writes clean/noisy/denoised/nlmeans NIfTI files, slices.png and "
        "metrics.json to --out.",
    )
    p.add_argument("--out", default="medresae-demo", help="output folder (default ./medresae-demo)")
    p.add_argument("--minutes", type=positive_float, default=3.0, help="training time budget (default 3)")
    p.add_argument("--overwrite", action="store_true", help="replace the outputs of an earlier demo")
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.set_defaults(func=run)


def _figure(clean, noisy, denoised, voxel_sizes, path):
    """Axial, coronal and sagittal slices of clean, noisy, denoised and the difference."""
    import numpy as np
    from matplotlib.figure import Figure

    from medresae._atomic import write_atomically

    vmin, vmax = np.percentile(clean, [0.5, 99.5])
    diff = denoised - clean
    dlim = float(np.percentile(np.abs(diff), 99.5)) or 1.0
    cx, cy, cz = (s // 2 for s in clean.shape)
    sx, sy, sz = voxel_sizes
    views = [
        ("axial", lambda v: v[:, :, cz].T, sy / sx),
        ("coronal", lambda v: v[:, cy, :].T, sz / sx),
        ("sagittal", lambda v: v[cx, :, :].T, sz / sy),
    ]
    columns = [("clean", clean), ("noisy", noisy), ("denoised", denoised), ("denoised - clean", diff)]
    fig = Figure(figsize=(12, 8.5), layout="tight")
    axes = fig.subplots(3, 4)
    for row, (view, cut, aspect) in enumerate(views):
        for col, (title, volume) in enumerate(columns):
            ax = axes[row, col]
            if col == 3:  # the difference image
                shown = dict(cmap="coolwarm", vmin=-dlim, vmax=dlim)
            else:
                shown = dict(cmap="gray", vmin=vmin, vmax=vmax)
            ax.imshow(cut(volume), origin="lower", aspect=aspect, interpolation="nearest", **shown)
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(title)
            if col == 0:
                ax.set_ylabel(view)
    fig.suptitle("medresae demo: brain MRI, Rician noise 5% of the robust maximum")
    write_atomically(path, lambda temp: fig.savefig(temp, format="png", dpi=90), overwrite=True, suffix=".png")


def run(args):
    import keras

    from medresae.baselines import nlmeans_skimage
    from medresae.callbacks import TimeBudget
    from medresae.errors import InputFileError
    from medresae.inference import denoise
    from medresae.io import load_volume, save_volume
    from medresae.metrics import evaluate, foreground_mask
    from medresae.noise import rician, robust_max
    from medresae.sample_data import sample_path
    from medresae.training import train_denoiser

    if os.path.lexists(args.out) and not os.path.isdir(args.out):
        raise InputFileError(f"--out {args.out}: is a file; give a folder for the demo's outputs")
    os.makedirs(args.out, exist_ok=True)
    existing = [name for name in OUTPUTS if os.path.exists(os.path.join(args.out, name))]
    if existing and not args.overwrite:
        raise InputFileError(f"{args.out}: holds an earlier demo ({existing[0]} ...); "
                             "pass --overwrite or another --out.")
    out = lambda name: os.path.join(args.out, name)  # noqa: E731
    start = time.perf_counter()
    print(f"medresae demo on the {keras.backend.backend()} backend; outputs in {os.path.abspath(args.out)}")

    volume = load_volume(sample_path("brain_mr_heldout"))
    clean = volume.array[..., 0]
    noisy = rician(clean, DEMO_NOISE * robust_max(clean), rng=args.seed)
    print(f"1/4 noisy input: Rician noise, sigma = {DEMO_NOISE:.0%} of the robust maximum")

    print(f"2/4 training a small 3D ResUNet for up to {args.minutes:g} min on another crop (synthetic noise)")
    model, _ = train_denoiser(
        "synthetic", [sample_path("brain_mr")], os.path.join(args.out, "run"), patch_size=(48, 48, 8),
        noise="rician:0.02-0.08", filters=(16, 32), n_blocks=1, epochs=1000, steps_per_epoch=25, batch_size=4,
        validation_fraction=None, early_stopping=None, schedule="constant", learning_rate=2e-3, seed=args.seed,
        verbose=2, extra_callbacks=[TimeBudget(60 * args.minutes)],
    )

    print("3/4 denoising (tiled, Gaussian blending) and non-local means for reference")
    t0 = time.perf_counter()
    denoised = denoise(model, noisy[..., None], normalize="percentile", progress=False)[..., 0]
    model_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    nlm = nlmeans_skimage(noisy)
    nlm_seconds = time.perf_counter() - t0

    mask = foreground_mask(clean)
    scores = {
        "noisy": evaluate(clean, noisy, mask=mask),
        "medresae": dict(evaluate(clean, denoised, mask=mask), seconds=model_seconds),
        "nlmeans (scikit-image)": dict(evaluate(clean, nlm, mask=mask), seconds=nlm_seconds),
    }
    for name, array in (("clean", clean), ("noisy", noisy), ("denoised", denoised), ("nlmeans", nlm)):
        save_volume(out(f"{name}.nii.gz"), array, like=volume, overwrite=True)
    _figure(clean, noisy, denoised, volume.voxel_sizes, out("slices.png"))
    report = {
        "backend": keras.backend.backend(),
        "noise": f"rician:{DEMO_NOISE}",
        "volume": "brain_mr_heldout (shipped crop, never trained on)",
        "scores": scores,
        "seconds_total": time.perf_counter() - start,
    }
    from medresae._atomic import atomic_write_text
    from medresae._json import dumps

    atomic_write_text(out("metrics.json"), dumps(report))
    print("4/4 results (PSNR in dB, SSIM; 'head' = inside the automatic foreground mask)")
    print(f"{'':<24}{'PSNR':>8}{'SSIM':>8}{'PSNR head':>11}{'SSIM head':>11}")
    for name, s in scores.items():
        print(f"{name:<24}{s['psnr']:>8.2f}{s['ssim']:>8.3f}{s['psnr_mask']:>11.2f}{s['ssim_mask']:>11.3f}")
    print(f"wrote {', '.join(OUTPUTS)} in {time.perf_counter() - start:.0f} s")
    return 0
