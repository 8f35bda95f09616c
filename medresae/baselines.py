"""Classical denoisers that medresae is measured against.

Each baseline takes a noisy volume (numpy, 2D or 3D, in the volume's own
units), the true noise sigma when the benchmark knows it, and returns the
denoised volume. Optional ones (dipy, bm4d) are listed in `available()` only
when their package is installed; neither is a dependency (bm4d's licence is
non-commercial).
"""

import importlib.util

import numpy as np
from scipy import ndimage


def gaussian_filter(noisy, sigma=None, clean=None, voxel_sizes=None):
    """A Gaussian filter; its width is picked with the clean image when given
    (the filter's best case), else 1 voxel in-plane.

    The width across thick slices is scaled by the voxel size ratio, so the
    filter blurs the same distance in millimetres on every axis.
    """
    spacing = np.asarray(voxel_sizes or (1.0,) * noisy.ndim, dtype=float)
    ratios = spacing.min() / spacing
    widths = (0.5, 0.75, 1.0, 1.5, 2.0) if clean is not None else (1.0,)
    best, best_err = None, np.inf
    for width in widths:
        out = ndimage.gaussian_filter(noisy.astype(np.float32), sigma=tuple(width * ratios))
        if clean is None:
            return out
        err = float(np.mean((out - clean) ** 2))
        if err < best_err:
            best, best_err = out, err
    return best


def nlmeans_skimage(noisy, sigma=None, clean=None, voxel_sizes=None):
    """scikit-image's non-local means; h from its own `estimate_sigma` (as a
    user without the true sigma would run it)."""
    from skimage.restoration import denoise_nl_means, estimate_sigma

    est = float(estimate_sigma(noisy))
    return denoise_nl_means(noisy.astype(np.float32), h=0.8 * est, sigma=est, patch_size=5, patch_distance=6,
                            fast_mode=True, channel_axis=None).astype(np.float32)


def nlmeans_dipy(noisy, sigma=None, clean=None, voxel_sizes=None):
    """dipy's non-local means with Rician bias correction, given the true sigma.

    `method='classic'`: dipy 1.12's default 'blockwise' darkens bright, sparse
    structures (seen on an EPI b0 here).
    """
    from dipy.denoise.nlmeans import nlmeans

    kwargs = {"method": "classic"} if "method" in nlmeans.__code__.co_varnames else {}
    return np.asarray(nlmeans(noisy.astype(np.float64), sigma=float(sigma), rician=True, **kwargs), np.float32)


def bm4d(noisy, sigma=None, clean=None, voxel_sizes=None):
    """BM4D (the `bm4d` package, Gaussian model), given the true sigma."""
    import bm4d as _bm4d

    return np.asarray(_bm4d.bm4d(noisy.astype(np.float32), sigma_psd=float(sigma)), np.float32)


BASELINES = {
    "gaussian": (gaussian_filter, None),
    "nlmeans-skimage": (nlmeans_skimage, "skimage"),
    "nlmeans-dipy": (nlmeans_dipy, "dipy"),
    "bm4d": (bm4d, "bm4d"),
}


def available():
    """Names of the baselines whose packages are installed, and a note per missing one."""
    names, notes = [], []
    for name, (_, module) in BASELINES.items():
        if module is None or importlib.util.find_spec(module) is not None:
            names.append(name)
        else:
            notes.append(f"{name}: skipped, `pip install {module}` to include it")
    return names, notes
