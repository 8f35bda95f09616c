"""Measuring the noise level of an image (no clean reference needed)."""

import numpy as np
from numpy.typing import ArrayLike

from medresae._arrays import check_finite_array


def estimate_noise_sigma(x: ArrayLike, mask: ArrayLike | None = None, reference: ArrayLike | None = None) -> float:
    """Estimates the standard deviation of white noise in a 2D or 3D image.

    Immerkaer's Laplacian-difference operator (Immerkaer 1996) is applied to
    each 2D slice along the last axis; it cancels smooth image content, and
    the median absolute response over the voxels inside `mask` (away from
    its edges) gives sigma robustly. Restricting to a mask matters for MRI:
    Rician noise in the dark background has a smaller spread than in tissue,
    and scikit-image's `estimate_sigma` has no mask.

    Edges and fine texture leak into the operator's response, so at low noise
    the plain estimate is too high (by 8-20 % at 1 % Rician noise on brain
    T1 volumes averaged from many scans, which carry little noise of their
    own). A denoised copy of the image (`reference`, e.g. a model's output)
    shows where the image is flat: the estimate is then taken again on the
    quarter of the voxels with the smallest smoothed gradient of the
    reference, among those whose reference exceeds three times the first
    estimate (MRI magnitude noise is narrower where the signal is low).
    Selecting voxels by the reference's own fine detail instead would pick
    the voxels where its leftover noise is small, and bias sigma low.

    Args:
        x: a 2D or 3D array (slices along the last axis).
        mask: optional boolean array of `x.shape`: where to measure; default
            everywhere.
        reference: optional denoised copy of `x` (same shape) that marks
            flat regions, as above; when fewer than 100 voxels qualify,
            the plain estimate is returned.

    Returns:
        sigma as a float, in the units of `x`.

    Raises:
        ValueError: NaN/inf in `x`, a bad `mask`, or fewer than 100 usable
            voxels.

    Examples:
        >>> x = np.random.default_rng(0).normal(100.0, 5.0, (64, 64, 4))
        >>> abs(estimate_noise_sigma(x) - 5.0) < 0.2
        True
        >>> i = np.arange(64)  # a checkerboard of 6-voxel squares: edges everywhere
        >>> board = 100.0 + 20.0 * ((i[:, None, None] // 6 + i[None, :, None] // 6) % 2) * np.ones((64, 64, 4))
        >>> noisy = board + np.random.default_rng(0).normal(0.0, 1.0, board.shape)
        >>> round(estimate_noise_sigma(noisy), 2), round(estimate_noise_sigma(noisy, reference=board), 2)
        (1.16, 1.03)
    """
    from scipy import ndimage

    x = check_finite_array(x).astype(np.float64)
    if x.ndim not in (2, 3):
        raise ValueError(f"`x` must be a 2D or 3D image. Received: x.shape={x.shape}")
    if mask is None:
        mask = np.ones(x.shape, bool)
    mask = np.asarray(mask)
    if mask.shape != x.shape:
        raise ValueError(f"`mask` must have x's shape {x.shape}. Received: mask.shape={mask.shape}")
    if reference is not None:
        reference = check_finite_array(reference, "reference").astype(np.float64)
        if reference.shape != x.shape:
            raise ValueError(f"`reference` must have x's shape {x.shape}. Received: reference.shape={reference.shape}")
        if reference.ndim == 2:
            reference = reference[..., None]
    kernel = np.array([[1.0, -2.0, 1.0], [-2.0, 4.0, -2.0], [1.0, -2.0, 1.0]])
    if x.ndim == 2:
        x, mask = x[..., None], mask[..., None]
    response = np.stack([ndimage.convolve(x[..., k], kernel, mode="reflect") for k in range(x.shape[-1])], -1)
    # Away from the mask's edge and the slice border, where the operator sees structure.
    inner = np.stack([ndimage.binary_erosion(mask[..., k] != 0, iterations=2, border_value=0)
                      for k in range(x.shape[-1])], -1)
    values = np.abs(response[inner])
    if values.size < 100:
        raise ValueError(
            f"Too few voxels to estimate the noise ({values.size} inside the mask, away from its edges); "
            "pass a larger mask or the noise sigma itself."
        )
    # sqrt(36) = 6 is the operator's gain on white noise; 1.4826 turns a MAD into sigma.
    sigma = float(1.4826 * np.median(values) / 6.0)
    if reference is None:
        return sigma
    bright = inner & (reference > 3.0 * sigma)
    if bright.sum() < 400:
        return sigma
    flat = flat_voxels(reference, bright)
    return float(1.4826 * np.median(np.abs(response[flat])) / 6.0)


def flat_voxels(reference: np.ndarray, candidates: np.ndarray, fraction: float = 0.25) -> np.ndarray:
    """The `fraction` of `candidates` where the denoised `reference` is flattest.

    Flatness is the gradient magnitude after Gaussian smoothing (sigma 1
    voxel), so neither edges nor the reference's own leftover noise decide.

    Args:
        reference: a denoised 2D or 3D image.
        candidates: boolean array of its shape: the voxels to choose from.
        fraction: the share of candidates kept, in (0, 1].

    Returns:
        A boolean array of `reference`'s shape.

    Examples:
        >>> ramp = np.ones((32, 32)) * np.arange(32.0)[:, None] ** 2  # steeper and steeper along x
        >>> flat = flat_voxels(ramp, np.ones(ramp.shape, bool), 0.25)
        >>> int(flat.sum()), bool(flat[:8].all())
        (256, True)
    """
    from scipy import ndimage

    if not 0 < fraction <= 1:
        raise ValueError(f"`fraction` must be in (0, 1]. Received: fraction={fraction!r}")
    candidates = np.asarray(candidates, bool)
    gradient = ndimage.gaussian_gradient_magnitude(np.asarray(reference, np.float64), 1.0)
    return candidates & (gradient <= np.quantile(gradient[candidates], fraction))


