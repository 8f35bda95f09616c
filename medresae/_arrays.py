"""Numpy argument checks shared by noise, metrics and inference."""

import numpy as np


def check_finite_array(x, name="x"):
    """Returns `x` as a non-empty numpy array of real, finite numbers.

    Booleans become float32 (numpy cannot subtract them); integers pass
    unchanged (they are always finite).

    Raises:
        ValueError: one line naming `name`, for non-real, empty or NaN/inf input.
    """
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise ValueError(
            f"`{name}` must be an array of real numbers. Received: {name} with dtype {x.dtype}"
        )
    if x.size == 0:
        raise ValueError(f"`{name}` must not be empty. Received: {name}.shape={x.shape}")
    if x.dtype.kind == "b":
        x = x.astype(np.float32)
    if x.dtype.kind == "f":
        bad = int(np.count_nonzero(~np.isfinite(x)))
        if bad:
            raise ValueError(
                f"`{name}` must contain only finite values. Received: {name} with "
                f"shape {x.shape} and {bad} NaN/inf value(s)"
            )
    return x
