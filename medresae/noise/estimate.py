"""Measuring the noise level of an image (no clean reference needed)."""

import numpy as np
from numpy.typing import ArrayLike

from medresae._arrays import check_finite_array


def estimate_noise_sigma(x: ArrayLike, mask: ArrayLike | None = None) -> float:
    """Estimates the standard deviation of white noise in a 2D or 3D image.

    Immerkaer's Laplacian-difference operator (Immerkaer 1996) is applied to
    each 2D slice along the last axis; it cancels smooth image content, and
    the median absolute response over the voxels inside `mask` (away from
    its edges) gives sigma robustly. Restricting to a mask matters for MRI:
    Rician noise in the dark background has a smaller spread than in tissue,
    and scikit-image's `estimate_sigma` has no mask.

    Args:
        x: a 2D or 3D array (slices along the last axis).
        mask: optional boolean array of `x.shape`: where to measure; default
            everywhere.

    Returns:
        sigma as a float, in the units of `x`.

    Raises:
        ValueError: NaN/inf in `x`, a bad `mask`, or fewer than 100 usable
            voxels.

    Examples:
        >>> x = np.random.default_rng(0).normal(100.0, 5.0, (64, 64, 4))
        >>> abs(estimate_noise_sigma(x) - 5.0) < 0.2
        True
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
    return float(1.4826 * np.median(values) / 6.0)


