"""MRI magnitude noise: Gaussian, Rician and noncentral chi (elementwise, any shape)."""

import math

import numpy as np
from numpy.typing import ArrayLike

from medresae._arrays import check_finite_array
from medresae._validation import check_positive_int, check_positive_number
from medresae.noise._common import _rng


def gaussian(x, sigma, rng=None):
    """Additive white Gaussian noise: `x + N(0, sigma^2)`.

    Args:
        x: array of any shape.
        sigma: noise standard deviation in the units of `x` (>= 0).
        rng: None, an int seed or a `numpy.random.Generator`.

    Returns:
        float32 array of `x.shape`.

    Raises:
        ValueError: if `x` holds NaN/inf, `sigma` is negative or not finite,
            or `rng` is not a seed or Generator.

    Examples:
        >>> gaussian(np.zeros((4, 4)), sigma=0.1, rng=0).shape
        (4, 4)
    """
    x = check_finite_array(x).astype(np.float32)
    sigma = check_positive_number(sigma, "sigma", allow_zero=True)
    rng = _rng(rng)
    return x + np.float32(sigma) * rng.standard_normal(x.shape, dtype=np.float32)


MAX_COILS = 128


def noncentral_chi(x: ArrayLike, sigma: float, coils: int = 4,
                   rng: int | np.random.Generator | None = None) -> np.ndarray:
    """Root-sum-of-squares magnitude of `coils` noisy complex channels.

    This is the noise of a multi-coil MRI magnitude image combined with
    root-sum-of-squares. The noise-free signal is split evenly as
    `x / sqrt(coils)` into the real part of every channel, so the combined
    noise-free magnitude is still `x`; each real and imaginary part gets
    independent `N(0, sigma^2)` noise. With `coils=1` this is exactly
    `rician` (same draws for the same seed).

    Args:
        x: array of any shape (the noise-free magnitude, >= 0 in practice).
        sigma: per-channel noise standard deviation (>= 0).
        coils: number of channels L (1 to 128).
        rng: None, an int seed or a `numpy.random.Generator`.

    Returns:
        float32 array of `x.shape`, >= 0.

    Raises:
        ValueError: if `x` holds NaN/inf, `sigma` < 0, `coils` < 1 or `rng`
            is not a seed or Generator.

    Examples:
        >>> m = noncentral_chi(np.zeros((64, 64)), sigma=1.0, coils=8, rng=0)
        >>> bool(m.min() >= 0)
        True
    """
    x = check_finite_array(x).astype(np.float32)
    sigma = np.float32(check_positive_number(sigma, "sigma", allow_zero=True))
    coils = check_positive_int(coils, "coils")
    if coils > MAX_COILS:
        raise ValueError(
            f"`coils` must be at most {MAX_COILS} (the largest receive arrays in use); the noise costs "
            f"one pass over the volume per coil. Received: coils={coils!r}"
        )
    rng = _rng(rng)
    signal = x / np.float32(math.sqrt(coils))
    # Accumulating coil by coil keeps memory at a few copies of `x` whatever
    # `coils` is (a (2, L, *shape) draw would not fit for large volumes).
    total = np.zeros(x.shape, dtype=np.float32)
    for _ in range(coils):
        real = signal + sigma * rng.standard_normal(x.shape, dtype=np.float32)
        imag = sigma * rng.standard_normal(x.shape, dtype=np.float32)
        total += real * real + imag * imag
    return np.sqrt(total)


def rician(x: ArrayLike, sigma: float, rng: int | np.random.Generator | None = None) -> np.ndarray:
    """Rician noise of an MRI magnitude image: `|x + n1 + i n2|`, n ~ N(0, sigma^2).

    Args:
        x: array of any shape (the noise-free magnitude).
        sigma: standard deviation of the real and of the imaginary noise (>= 0).
        rng: None, an int seed or a `numpy.random.Generator`.

    Returns:
        float32 array of `x.shape`, >= 0.

    Raises:
        ValueError: if `x` holds NaN/inf, `sigma` < 0, or `rng` is not a seed
            or Generator.

    Examples:
        >>> rician(np.ones((8, 8, 8)), sigma=0.05, rng=0).dtype
        dtype('float32')
    """
    return noncentral_chi(x, sigma, coils=1, rng=rng)




def rician_mean(nu: ArrayLike, sigma: float) -> np.ndarray:
    """The mean of Rician magnitudes `|nu + n1 + i n2|`, n ~ N(0, sigma^2).

    A magnitude image is biased upwards by its noise: by `sigma * sqrt(pi / 2)`
    (about 1.25 sigma) where the signal `nu` is zero, and by about
    `sigma^2 / (2 nu)` where it is large. This is the exact mean, through the
    Laguerre polynomial L_1/2 written with exponentially scaled Bessel
    functions (stable at any signal-to-noise ratio).

    Args:
        nu: array of noise-free magnitudes (>= 0; negative values count as 0).
        sigma: standard deviation of the real and of the imaginary noise (> 0).

    Returns:
        float64 array of `nu`'s shape.

    Raises:
        ValueError: if `nu` holds NaN/inf or `sigma` is not > 0.

    Examples:
        >>> round(float(rician_mean(np.float64(0.0), sigma=1.0)), 3)  # sqrt(pi / 2)
        1.253
        >>> round(float(rician_mean(np.float64(10.0), sigma=1.0)), 3)  # 10 + 1 / 20
        10.05
    """
    from scipy.special import i0e, i1e

    nu = np.maximum(check_finite_array(np.asarray(nu, np.float64), "nu"), 0.0)
    sigma = check_positive_number(sigma, "sigma")
    t = np.square(nu / sigma) / 4.0
    return sigma * math.sqrt(math.pi / 2.0) * ((1.0 + 2.0 * t) * i0e(t) + 2.0 * t * i1e(t))
