"""Shared helpers of the noise models: the seeded generator and the robust maximum."""

import numbers

import numpy as np

from medresae._arrays import check_finite_array


def _rng(rng):
    """Returns a `numpy.random.Generator` for None, an int seed or a Generator."""
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, bool):
        # default_rng(True) would silently seed with 1.
        raise ValueError(
            f"`rng` must be None, an int seed or a numpy.random.Generator. Received: rng={rng!r}"
        )
    try:
        return np.random.default_rng(rng)
    except (TypeError, ValueError):
        raise ValueError(
            f"`rng` must be None, an int seed >= 0 or a numpy.random.Generator. "
            f"Received: rng={rng!r}"
        ) from None


def robust_max(x, percentile=99.5):
    """The `percentile`-th percentile of `x`: a maximum that ignores a few outliers.

    Relative noise levels are fractions of this value, so a handful of hot
    voxels (or a metal implant) does not inflate the noise.

    Args:
        x: array of any shape, finite values only.
        percentile: a number in [0, 100].

    Returns:
        A Python float.

    Raises:
        ValueError: if `x` is empty or holds NaN/inf, or `percentile` is out
            of range.

    Examples:
        >>> robust_max(np.arange(1001.0))
        995.0
    """
    x = check_finite_array(x)
    ok = isinstance(percentile, numbers.Real) and not isinstance(percentile, bool)
    if not ok or not 0 <= percentile <= 100:
        raise ValueError(
            f"`percentile` must be a number in [0, 100]. Received: percentile={percentile!r}"
        )
    return float(np.percentile(x, percentile))


