"""Restores a denoised CT scan's local mean to that of its noisy input.

A denoiser's error has a slowly varying part: the `ct` preset lowered the
body's mean by 2-18 HU at 1.2e4 photons and below on its own training
scans. Low-dose CT noise in HU has (nearly) zero mean, so the noisy scan's
local mean is an unbiased estimate of the clean one's, and the denoised
scan's local mean should match it. `restore_local_mean` adds back the
Gaussian-weighted local mean of the residual (noisy - denoised), taken over
the foreground only so that the air outside does not pull it towards zero.
The low-pass filter keeps only a small fraction of the noise's power, most
at low frequencies, where CT noise (filtered back-projection) has little.

Magnitude MRI is not zero-mean noise (Rician bias in dark tissue), so the
noisy scan's local mean is not the clean one's there; this module is for CT.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from numpy.typing import ArrayLike
from scipy import ndimage

from medresae._validation import check_positive_number
from medresae.metrics import foreground_mask

DEFAULT_CT_SIGMA_MM = 5.0
"""Gaussian sigma (mm) of `restore_local_mean` for CT models: chosen on the `ct` training pairs."""


def default_sigma_mm(model) -> float:
    """The local-mean restoration `medresae denoise` applies for `model`: 5 mm for CT models, 0 (off) otherwise.

    A CT model is one whose `metadata['normalize']` is 'window' (HU).

    Examples:
        >>> class Model:
        ...     metadata = {"normalize": "window"}
        >>> default_sigma_mm(Model()), default_sigma_mm(object())
        (5.0, 0.0)
    """
    metadata = getattr(model, "metadata", None) or {}
    return DEFAULT_CT_SIGMA_MM if metadata.get("normalize") == "window" else 0.0


def restore_local_mean(noisy: ArrayLike, denoised: ArrayLike, voxel_sizes: Sequence[float],
                       sigma_mm: float = DEFAULT_CT_SIGMA_MM, mask: ArrayLike | None = None) -> np.ndarray:
    """The denoised scan with the noisy scan's local mean inside the foreground.

    Inside the foreground, adds ``G(m * (noisy - denoised)) / G(m)``, where
    `G` is a Gaussian of `sigma_mm` on each axis (in voxels: `sigma_mm /
    voxel_size`) and `m` the foreground; outside it the denoised scan is
    returned unchanged.

    Args:
        noisy: the scan given to the denoiser, (X, Y, Z) or (X, Y, Z, C),
            in its own units (HU).
        denoised: the denoiser's output, same shape.
        voxel_sizes: the spatial voxel sizes in mm, one per spatial axis.
        sigma_mm: Gaussian sigma in mm (> 0).
        mask: the foreground (spatial shape); None takes
            `medresae.metrics.foreground_mask` of the denoised scan (for CT:
            voxels above the air/soft-tissue threshold, holes filled, so the
            lungs count as foreground).

    Returns:
        A float32 array of `denoised`'s shape.

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> clean = np.full((32, 32, 8), -1000.0, np.float32); clean[4:28, 4:28, :] = 40.0
        >>> noisy = clean + rng.normal(0, 20, clean.shape).astype(np.float32)
        >>> biased = clean.copy(); biased[4:28, 4:28, :] -= 6.0  # a denoiser 6 HU too dark
        >>> restored = restore_local_mean(noisy, biased, (1.0, 1.0, 2.0))
        >>> round(float(restored[16, 16, 4] - biased[16, 16, 4]), 0), float(restored[0, 0, 0])
        (6.0, -1000.0)
    """
    noisy = np.asarray(noisy, np.float32)
    denoised = np.asarray(denoised, np.float32)
    if noisy.shape != denoised.shape:
        raise ValueError(f"`noisy` and `denoised` must have the same shape. Received: {noisy.shape} and "
                         f"{denoised.shape}")
    sigma_mm = check_positive_number(sigma_mm, "sigma_mm")
    voxel_sizes = tuple(float(v) for v in voxel_sizes)
    spatial = len(voxel_sizes)
    if spatial not in (noisy.ndim, noisy.ndim - 1) or min(voxel_sizes, default=0.0) <= 0:
        raise ValueError(f"`voxel_sizes` must hold one positive size per spatial axis of the {noisy.ndim}-D "
                         f"arrays. Received: voxel_sizes={voxel_sizes}")
    channels = noisy.ndim > spatial
    if not channels:
        noisy, denoised = noisy[..., None], denoised[..., None]
    if mask is None:
        mask = foreground_mask(denoised[..., 0])
    mask = np.asarray(mask, bool)
    if mask.shape != denoised.shape[:spatial]:
        raise ValueError(f"`mask` must have the spatial shape {denoised.shape[:spatial]}. Received: {mask.shape}")
    weight = mask.astype(np.float32)
    sigma = [sigma_mm / v for v in voxel_sizes]
    support = ndimage.gaussian_filter(weight, sigma, mode="nearest")
    out = denoised.copy()
    for c in range(denoised.shape[-1]):
        local = ndimage.gaussian_filter(weight * (noisy[..., c] - denoised[..., c]), sigma, mode="nearest")
        out[..., c] += weight * local / np.maximum(support, 1e-3)
    return out if channels else out[..., 0]
