"""Correlated (coloured) noise: measuring its autocovariance and drawing more of it.

Reconstructed CT noise is not white: filtered back-projection shapes it,
so neighbouring voxels in a slice are correlated. Recorrupted-to-Recorrupted
training (`medresae.transforms.RecorruptedPairsd`) keeps the input's and the
target's noises independent only when the added noise has the scan's own
covariance, so it needs that covariance, measured on the scan, and a way to
draw noise that has it.
"""

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from medresae._arrays import check_finite_array
from medresae.noise.estimate import flat_voxels


def _as_3d(x, name):
    x = np.asarray(x)
    if x.ndim == 2:
        return x[..., None]
    if x.ndim != 3:
        raise ValueError(f"`{name}` must be a 2D or 3D array. Received: {name}.shape={x.shape}")
    return x


def noise_autocovariance(x: ArrayLike, mask: ArrayLike | None = None,
                         radius: Sequence[int] = (5, 5, 1)) -> np.ndarray:
    """Autocovariance of zero-mean noise `x` inside `mask`, for lags up to `radius`.

    Each lag averages `x(p) x(p + lag)` over the voxel pairs that both lie in
    the mask, so an irregular mask (e.g. the flat voxels of a body) biases
    nothing, it only leaves fewer pairs. `x` is typically a residual: a scan
    minus a denoised copy of it, on the voxels where that copy is flat.

    Args:
        x: a 2D or 3D array of noise (its mean inside the mask is removed).
        mask: optional boolean array of `x.shape`: where to measure; default
            everywhere.
        radius: the largest lag on each axis (clipped to the array's extent).

    Returns:
        A float64 array of shape `2 * radius + 1` (3D; a 2D `x` gives one
        slice), centred on lag zero: its centre is the noise variance.

    Raises:
        ValueError: NaN/inf in `x`, a bad `mask` or `radius`, or fewer than
            100 voxels in the mask.

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> white = rng.normal(0.0, 2.0, (96, 96, 8))
        >>> smooth = (white + np.roll(white, 1, axis=0)) / np.sqrt(2.0)  # correlated along x only
        >>> c = noise_autocovariance(smooth, radius=(2, 2, 1))
        >>> c.shape, round(float(c[2, 2, 1]), 1), round(float(c[3, 2, 1] / c[2, 2, 1]), 2)
        ((5, 5, 3), 4.0, 0.5)
    """
    from scipy import fft

    x = _as_3d(check_finite_array(x).astype(np.float64), "x")
    mask = np.ones(x.shape, bool) if mask is None else _as_3d(mask, "mask").astype(bool)
    if mask.shape != x.shape:
        raise ValueError(f"`mask` must have x's shape {x.shape}. Received: mask.shape={mask.shape}")
    radius = tuple(int(r) for r in radius)
    if len(radius) != 3 or min(radius) < 0:
        raise ValueError(f"`radius` must be three lags >= 0. Received: radius={radius}")
    if mask.sum() < 100:
        raise ValueError(f"Too few voxels to measure the noise's autocovariance ({int(mask.sum())} in the mask).")
    radius = tuple(min(r, n - 1) for r, n in zip(radius, x.shape))
    m = mask.astype(np.float64)
    xm = np.where(mask, x - x[mask].mean(), 0.0)
    # Zero padding by the largest lag keeps the circular correlation from wrapping around.
    shape = [fft.next_fast_len(n + r) for n, r in zip(x.shape, radius)]

    def correlation(a):
        spectrum = fft.rfftn(a, shape)
        full = fft.irfftn(spectrum * np.conj(spectrum), shape)
        index = np.ix_(*[np.arange(-r, r + 1) % s for r, s in zip(radius, shape)])
        return full[index]

    pairs = np.rint(correlation(m))
    if (pairs < 1).any():
        raise ValueError("The mask leaves no voxel pairs at some lags; pass a larger mask or a smaller `radius`.")
    return correlation(xm) / pairs


def colouring_kernel(autocovariance: ArrayLike) -> np.ndarray:
    """A filter that turns white noise into noise of the given correlation.

    The power spectrum of the autocovariance is clipped at zero and
    its square root taken back to space: white noise of unit variance
    convolved with the kernel has the autocovariance's shape, and unit
    variance (the kernel has unit L2 norm).

    Args:
        autocovariance: an odd-shaped array centred on lag zero, as
            `noise_autocovariance` returns.

    Returns:
        A float64 kernel of the same shape, of unit L2 norm.

    Raises:
        ValueError: an even-shaped array or a non-positive centre.

    Examples:
        >>> c = np.zeros((5, 5, 1)); c[2, 2, 0] = 1.0; c[1, 2, 0] = c[3, 2, 0] = 0.4
        >>> k = colouring_kernel(c)
        >>> round(float(np.sum(k * k)), 6), k.shape
        (1.0, (5, 5, 1))
    """
    c = np.asarray(autocovariance, np.float64)
    if any(n % 2 == 0 for n in c.shape):
        raise ValueError(f"`autocovariance` must have odd sides (centred on lag zero). Received: shape={c.shape}")
    centre = tuple(n // 2 for n in c.shape)
    if not c[centre] > 0:
        raise ValueError(f"`autocovariance` must be positive at lag zero. Received: {c[centre]!r}")
    # Clipping the spectrum at zero keeps the truncated estimate valid; a taper
    # would do it too, but it shrinks the short lags that matter (by 15 % at lag 1 for 6 lags).
    padded = [2 * n for n in c.shape]
    grid = np.zeros(padded)
    index = np.ix_(*[np.arange(-(n // 2), n // 2 + 1) % p for n, p in zip(c.shape, padded)])
    grid[index] = c
    power = np.maximum(np.real(np.fft.fftn(grid)), 0.0)
    kernel = np.real(np.fft.ifftn(np.sqrt(power)))[index]
    return kernel / np.sqrt(np.sum(kernel * kernel))


def coloured_noise(shape: Sequence[int], kernel: ArrayLike, rng: np.random.Generator) -> np.ndarray:
    """Unit-variance noise of `shape` whose correlation is `kernel`'s (see `colouring_kernel`).

    Args:
        shape: the output shape (same number of axes as `kernel`).
        kernel: a colouring kernel of unit L2 norm.
        rng: a `numpy.random.Generator`.

    Returns:
        A float32 array of `shape`.

    Examples:
        >>> k = np.zeros((3, 3, 1)); k[1, 1, 0] = k[2, 1, 0] = np.sqrt(0.5)
        >>> z = coloured_noise((64, 64, 4), k, np.random.default_rng(0))
        >>> z.shape, round(float(z.std()), 1)
        ((64, 64, 4), 1.0)
    """
    from scipy import fft

    kernel = np.asarray(kernel, np.float64)
    shape = tuple(int(n) for n in shape)
    if len(shape) != kernel.ndim:
        raise ValueError(f"`shape` needs {kernel.ndim} axes, as the kernel has. Received: shape={shape}")
    # A circular convolution on a grid at least the kernel's size is stationary noise of
    # the kernel's correlation; any crop of it is too. Fast FFT sizes keep a patch at ~1 ms.
    grid = [fft.next_fast_len(max(n, k), real=True) for n, k in zip(shape, kernel.shape)]
    white = rng.standard_normal(grid)
    noise = fft.irfftn(fft.rfftn(white) * fft.rfftn(kernel, grid), grid)
    return noise[tuple(slice(0, n) for n in shape)].astype(np.float32)


def estimate_noise_autocovariance(x: ArrayLike, reference: ArrayLike, mask: ArrayLike | None = None,
                                  radius: Sequence[int] = (5, 5, 1)) -> np.ndarray:
    """The autocovariance of `x`'s noise, measured on `x - reference` where `reference` is flat.

    `reference` is a denoised copy of `x` (e.g. a model's output). Their
    difference is the noise where the copy is flat; at edges it also holds
    the structure the copy smoothed away, so only the quarter of the voxels
    in `mask` with the smallest smoothed gradient of the reference count
    (`flat_voxels`). The noise the copy kept is missing from the
    difference, so the variance comes out somewhat low when the copy is a
    weak denoiser.

    Args:
        x: the noisy 2D or 3D image (slices along the last axis).
        reference: a denoised copy of it, same shape.
        mask: optional boolean array: where to measure (e.g. the body);
            default everywhere.
        radius: the largest lag on each axis.

    Returns:
        The autocovariance as `noise_autocovariance` returns it.

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> white = rng.normal(0.0, 1.0, (96, 96, 8))
        >>> clean = np.ones((96, 96, 8)) * np.linspace(0.0, 50.0, 96)[:, None, None]
        >>> noisy = clean + (white + np.roll(white, 1, axis=1)) / np.sqrt(2.0)
        >>> c = estimate_noise_autocovariance(noisy, clean, radius=(1, 1, 0))
        >>> round(float(c[1, 1, 0]), 1), round(float(c[1, 2, 0] / c[1, 1, 0]), 1)
        (1.0, 0.5)
    """
    x = _as_3d(check_finite_array(x).astype(np.float64), "x")
    reference = _as_3d(check_finite_array(reference, "reference").astype(np.float64), "reference")
    if reference.shape != x.shape:
        raise ValueError(f"`reference` must have x's shape {x.shape}. Received: reference.shape={reference.shape}")
    mask = np.ones(x.shape, bool) if mask is None else _as_3d(mask, "mask").astype(bool)
    if mask.shape != x.shape or not mask.any():
        raise ValueError(f"`mask` must have x's shape {x.shape} and mark some voxels.")
    return noise_autocovariance(x - reference, flat_voxels(reference, mask), radius)
