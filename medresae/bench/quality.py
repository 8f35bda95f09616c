"""`medresae bench quality`: medresae models against classical denoisers.

For every volume, noise model and level, the benchmark adds seeded noise to
the clean volume, runs every method, and scores PSNR and SSIM on the whole
volume and inside the foreground, wall time, and two fidelity checks: the
mean intensity inside tissue before and after (a denoiser must not shift
it), and the correlation between the removed residual (noisy - denoised)
and the clean image (a denoiser must remove noise, not structure).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from numpy.typing import ArrayLike

from medresae import baselines
from medresae._atomic import atomic_write_text, write_atomically
from medresae._defaults import CT_BODY_HU
from medresae._json import dumps
from medresae._validation import check_choice, check_positive_number
from medresae.guard import check_denoised
from medresae.metrics import SSIM_WINDOWS, evaluate, foreground_mask
from medresae.noise import NoiseSpec, robust_max

if TYPE_CHECKING:
    import keras

# Default levels: Rician 3/5/9 % of the robust max for MRI,
# low-dose CT at three incident photon counts per ray.
DEFAULT_MR_NOISE = ("rician:0.03", "rician:0.05", "rician:0.09")
DEFAULT_CT_NOISE = ("ct:1e5", "ct:3e4", "ct:1e4")


def _looks_like_ct(volume):
    return float(np.min(volume)) < CT_BODY_HU


def _fidelity(clean, noisy, denoised, mask):
    tissue = float(np.mean(clean[mask]))
    shift = (float(np.mean(denoised[mask])) - tissue) / (abs(tissue) or 1.0)
    residual = (noisy - denoised)[mask].ravel()
    reference = clean[mask].ravel()
    if residual.std() == 0 or reference.std() == 0:
        correlation = 0.0
    else:
        correlation = float(np.corrcoef(residual, reference)[0, 1])
    return {"tissue_mean_shift": shift, "residual_clean_correlation": correlation}


def _noisy(clean, spec, voxel_sizes, seed):
    level = spec.low
    if spec.model == "ct":
        noisy = spec.apply(clean, rng=seed, level=level, units="hu", voxel_size_mm=float(voxel_sizes[0]))
        return noisy, None
    sigma = level * robust_max(clean) if spec.relative else level
    return spec.apply(clean, rng=seed, level=level), sigma


class _AdaptedRun:
    """Adapts `model` to the noisy input, denoises, and restores its weights; `info` is the last
    adaptation's (the sigma it used and whether it kept the adapted weights)."""

    def __init__(self, model, normalize, steps, seed, noise_sigma=None):
        self.model, self.normalize, self.steps, self.seed, self.noise_sigma = model, normalize, steps, seed, noise_sigma
        self.info = {}

    def __call__(self, x):
        from medresae.adaptation import adapt, keep_original_outside_foreground
        from medresae.inference import denoise

        def run():
            return denoise(self.model, x[..., None], normalize=self.normalize, progress=False)[..., 0]

        original = self.model.get_weights()
        try:
            before = run()
            _, info = adapt(self.model, x, steps=self.steps, seed=self.seed, noise_sigma=self.noise_sigma, verbose=0)
            self.info = {"noise_sigma": info["noise_sigma"], "kept": info["kept"]}
            # As `medresae denoise --adapt`: the adapted output inside the foreground only.
            return keep_original_outside_foreground(run(), before) if info["kept"] == "adapted" else before
        finally:
            self.model.set_weights(original)


def run_quality_benchmark(volumes: Sequence[tuple[str, ArrayLike, Sequence[float]]],
                          noise_specs: Sequence[str] | None = None, models: dict[str, keras.Model] | None = None,
                          methods: Sequence[str] | None = None, seed: int = 0,
                          progress: Callable[[str], None] | None = print, adapt_steps: int = 0,
                          adapt_sigma: Literal["measured", "given", "both"] = "measured",
                          ssim_window: Literal["uniform", "gaussian"] = "uniform",
                          restore_mean: float | None = None) -> dict[str, Any]:
    """Scores every method on every (volume, noise spec) case.

    Args:
        volumes: list of `(name, clean_array, voxel_sizes)`; arrays are 3D
            (or 2D) in their own units (HU for CT).
        noise_specs: noise spec strings; default: Rician 3/5/9 % for MR,
            low-dose CT at 1e5/3e4/1e4 photons for volumes that look like CT.
        models: dict name -> Keras model (medresae denoisers).
        methods: classical baselines to run (default: every installed one).
        seed: seed of the noise (the same table on every run).
        progress: a print-like function for progress lines (or None).
        adapt_steps: if > 0, each model also runs as 'NAME+adapt': adapted
            to each noisy volume for this many steps first, timed with the
            adaptation.
        adapt_sigma: 'measured' (as `denoise --adapt`: 'NAME+adapt'),
            'given' (the added noise's true sigma, as the baselines get it:
            'NAME+adapt(given sigma)'), or 'both'.
        ssim_window: 'uniform' or 'gaussian' (see `medresae.metrics.ssim`).
        restore_mean: Gaussian sigma (mm) of
            `medresae.mean_restoration.restore_local_mean` applied to every
            model's output (timed with it); None applies what `medresae
            denoise` does for each model (5 mm for CT models, off for MRI);
            0 turns it off.

    Returns:
        A dict with 'cases' (one per volume and noise: the scores of each
        method), 'notes' (skipped baselines), 'seed' and 'ssim_window'.
    """
    from medresae.inference import denoise
    from medresae.mean_restoration import default_sigma_mm, restore_local_mean

    if restore_mean is not None:
        restore_mean = check_positive_number(restore_mean, "restore_mean", allow_zero=True)
    adapt_sigma = check_choice(adapt_sigma, "adapt_sigma", ("measured", "given", "both"))
    ssim_window = check_choice(ssim_window, "ssim_window", SSIM_WINDOWS)
    names, notes = baselines.available()
    methods = [m for m in (methods or names) if m in names]
    models = models or {}
    cases = []
    for v_index, (name, clean, voxel_sizes) in enumerate(volumes):
        clean = np.asarray(clean, np.float32)
        mask = foreground_mask(clean)
        specs = noise_specs or (DEFAULT_CT_NOISE if _looks_like_ct(clean) else DEFAULT_MR_NOISE)
        for s_index, text in enumerate(specs):
            spec = NoiseSpec.parse(text)
            noisy, sigma = _noisy(clean, spec, voxel_sizes, seed + 1000 * v_index + s_index)
            # CT noise has no single sigma; the baselines that need one get the true
            # standard deviation of the added noise inside the body (their best case).
            noise_std = float(np.std((noisy - clean)[mask]))
            case = {"volume": name, "noise": text, "sigma": sigma, "noise_std": noise_std, "results": {}}
            case["results"]["noisy"] = dict(evaluate(clean, noisy, mask=mask, ssim_window=ssim_window), seconds=0.0)
            given = sigma if sigma is not None else noise_std
            runs = [(m, lambda x, m=m: baselines.BASELINES[m][0](x, sigma=given, clean=clean,
                                                               voxel_sizes=voxel_sizes)) for m in methods]
            guarded = set()
            restore_mm = {}  # run name -> sigma (mm) of the local-mean restoration
            for model_name, model in models.items():
                mm = default_sigma_mm(model) if restore_mean is None else restore_mean
                normalize = (getattr(model, "metadata", None) or {}).get("normalize", "percentile")
                runs.append((model_name, lambda x, model=model, normalize=normalize: denoise(
                    model, x[..., None], normalize=normalize, progress=False)[..., 0]))
                guarded.add(model_name)
                restore_mm[model_name] = mm
                variants = []  # (row suffix, sigma given to adapt; None: measured)
                if adapt_steps and adapt_sigma != "given":
                    variants.append(("+adapt", None))
                if adapt_steps and adapt_sigma != "measured":
                    variants.append(("+adapt(given sigma)", given))
                for suffix, sigma_for_adapt in variants:
                    runs.append((model_name + suffix, _AdaptedRun(model, normalize, adapt_steps, seed,
                                                                  sigma_for_adapt)))
                    guarded.add(model_name + suffix)
                    restore_mm[model_name + suffix] = mm
            for method, run in runs:
                if method == "nlmeans-dipy" and sigma is None:
                    continue  # dipy's Rician correction needs an MR noise sigma
                start = time.perf_counter()
                out = np.asarray(run(noisy), np.float32)
                if restore_mm.get(method):
                    out = restore_local_mean(noisy, out, voxel_sizes, sigma_mm=restore_mm[method])
                seconds = time.perf_counter() - start
                scores = dict(evaluate(clean, out, mask=mask, ssim_window=ssim_window), seconds=seconds)
                scores.update(_fidelity(clean, noisy, out, mask))
                if restore_mm.get(method):
                    scores["restore_mean_mm"] = restore_mm[method]
                if isinstance(run, _AdaptedRun):
                    scores["adapt"] = dict(run.info)
                    # CT: against the added noise's standard deviation inside the body.
                    scores["adapt"]["noise_sigma_ratio"] = run.info["noise_sigma"] / given
                if method in guarded:
                    # What `medresae denoise` would decide for this output (docs/presets.md#do-no-harm).
                    report = check_denoised(noisy, out, modality="ct" if _looks_like_ct(clean) else "mr")
                    scores["guard"] = {"ratios": report.ratios, "harmed": list(report.harmed)}
                case["results"][method] = scores
                if progress:
                    progress(f"{name:<18} {text:<14} {method:<18} PSNR {scores['psnr_mask']:6.2f} dB "
                             f"SSIM {scores['ssim_mask']:.3f}  {seconds:6.1f} s")
            cases.append(case)
    return {"cases": cases, "notes": notes, "seed": seed, "ssim_window": ssim_window}


def _guard_cell(scores):
    guard = scores.get("guard")
    if not guard:
        return "-"
    if guard["harmed"]:
        return "input kept: " + ", ".join(f"{b} {guard['ratios'][b]:.1f}x" if b in guard["ratios"] else b
                                          for b in guard["harmed"])
    return f"ok ({max(guard['ratios'].values(), default=0.0):.1f}x)"


def markdown_table(report):
    """The report as a markdown table (PSNR/SSIM inside the foreground, whole, time, fidelity)."""
    lines = [
        "| volume | noise | method | PSNR fg (dB) | SSIM fg | PSNR (dB) | SSIM | time (s) | tissue mean shift | "
        "residual-clean corr. | guard |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for case in report["cases"]:
        for method, s in case["results"].items():
            shift = f"{100 * s['tissue_mean_shift']:+.2f} %" if "tissue_mean_shift" in s else "-"
            corr = f"{s['residual_clean_correlation']:+.3f}" if "residual_clean_correlation" in s else "-"
            lines.append(
                f"| {case['volume']} | {case['noise']} | {method} | {s['psnr_mask']:.2f} | {s['ssim_mask']:.3f} | "
                f"{s['psnr']:.2f} | {s['ssim']:.3f} | {s['seconds']:.1f} | {shift} | {corr} | {_guard_cell(s)} |"
            )
    for case in report["cases"]:
        for method, s in case["results"].items():
            if "adapt" in s:
                ratio = s["adapt"].get("noise_sigma_ratio")
                lines.append(f"\n- {case['volume']}, {case['noise']}, {method}: sigma {s['adapt']['noise_sigma']:.4g}"
                             + (f" ({ratio:.2f} times the added noise's)" if ratio else "")
                             + f", {s['adapt']['kept']} weights kept")
    window = report.get("ssim_window", "uniform")
    lines.append("\n- SSIM: " + ("a uniform window of up to 7 voxels (scikit-image's default)" if window == "uniform"
                                 else "a Gaussian window, sigma 1.5, 11 voxels (Wang et al. 2004)"))
    for note in report.get("notes", []):
        lines.append(f"\n- {note}")
    return "\n".join(lines) + "\n"


def plot_report(report, path):
    """PSNR inside the foreground vs noise level, one panel per volume."""
    from matplotlib.figure import Figure

    volumes = list(dict.fromkeys(c["volume"] for c in report["cases"]))
    fig = Figure(figsize=(5 * len(volumes), 4), layout="tight")
    axes = fig.subplots(1, len(volumes), squeeze=False)
    for ax, volume in zip(axes[0], volumes):
        cases = [c for c in report["cases"] if c["volume"] == volume]
        labels = [c["noise"] for c in cases]
        methods = list(dict.fromkeys(m for c in cases for m in c["results"]))
        for method in methods:
            ys = [c["results"].get(method, {}).get("psnr_mask", np.nan) for c in cases]
            ax.plot(range(len(cases)), ys, marker="o", label=method)
        ax.set_xticks(range(len(cases)), labels, rotation=20)
        ax.set_ylabel("PSNR inside the foreground (dB)")
        ax.set_title(volume)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    write_atomically(path, lambda temp: fig.savefig(temp, format="png", dpi=100), overwrite=True, suffix=".png")


def write_report(report, out_dir):
    """Writes quality.md, quality.json and quality.png to `out_dir`; returns their paths."""
    os.makedirs(out_dir, exist_ok=True)
    paths = {ext: os.path.join(out_dir, f"quality.{ext}") for ext in ("md", "json", "png")}
    atomic_write_text(paths["md"], markdown_table(report))
    atomic_write_text(paths["json"], dumps(report))
    plot_report(report, paths["png"])
    return paths
