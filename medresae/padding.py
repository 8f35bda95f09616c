"""Pad arrays to a model's `spatial_divisor` and crop the prediction back."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np
from numpy.typing import ArrayLike

from medresae._validation import check_choice, standardize_tuple

if TYPE_CHECKING:
    import keras

PAD_MODES = ("reflect", "symmetric", "edge", "constant")


def pad_to_multiple(
    x: ArrayLike, divisor: int | Sequence[int], mode: Literal["reflect", "symmetric", "edge", "constant"] = "reflect"
) -> tuple[np.ndarray, tuple[int, ...]]:
    """Pads the spatial axes of a batch so each is a multiple of `divisor`.

    Padding is split evenly before and after, so the content stays centred.

    Args:
        x: array of shape `(batch, *spatial, channels)`.
        divisor: int or per-axis tuple, e.g. `model.spatial_divisor`; its
            length sets the number of spatial axes when it is a tuple.
        mode: `numpy.pad` mode: 'reflect' (default), 'symmetric', 'edge'
            or 'constant' (zeros). Axes of size 1 fall back to 'edge'.

    Returns:
        `(padded, original_shape)`: the padded array and `x.shape`, to hand
        to `crop_to_shape`.

    Raises:
        ValueError: if `x` does not have `len(divisor) + 2` axes or `mode`
            is unknown.

    Examples:
        >>> padded, shape = pad_to_multiple(np.zeros((1, 37, 50, 23, 1)), (4, 4, 2))
        >>> padded.shape
        (1, 40, 52, 24, 1)
    """
    x = np.asarray(x)
    check_choice(mode, "mode", PAD_MODES)
    spatial_dims = len(divisor) if isinstance(divisor, (tuple, list)) else x.ndim - 2
    if x.ndim != spatial_dims + 2 or spatial_dims not in (2, 3):
        raise ValueError(
            "`x` must have shape (batch, *spatial, channels) with 2 or 3 spatial "
            f"axes matching `divisor`. Received: x.shape={x.shape}, divisor={divisor!r}"
        )
    divisor = standardize_tuple(divisor, spatial_dims, "divisor")
    widths = [(0, 0)]
    for size, d in zip(x.shape[1:-1], divisor):
        total = -size % d
        widths.append((total // 2, total - total // 2))
    widths.append((0, 0))
    if all(w == (0, 0) for w in widths):
        return x, x.shape
    if mode in ("reflect", "symmetric") and min(x.shape[1:-1]) == 1:
        mode = "edge"
    return np.pad(x, widths, mode=mode), x.shape


def crop_to_shape(y: ArrayLike, shape: Sequence[int]) -> np.ndarray:
    """Crops a prediction on a padded array back to `shape` (the centred crop
    that undoes `pad_to_multiple`). The channel axis is kept as predicted.

    Examples:
        >>> crop_to_shape(np.zeros((1, 40, 52, 24, 1)), (1, 37, 50, 23, 1)).shape
        (1, 37, 50, 23, 1)
    """
    y = np.asarray(y)
    slices = [slice(None)]
    for padded, size in zip(y.shape[1:-1], shape[1:-1]):
        start = (padded - size) // 2
        slices.append(slice(start, start + size))
    slices.append(slice(None))
    return y[tuple(slices)]


def predict_padded(model: keras.Model, x: ArrayLike, batch_size: int = 1,
                   mode: Literal["reflect", "symmetric", "edge", "constant"] = "reflect") -> np.ndarray:
    """`model.predict` on an input of any spatial size.

    Pads `x` to `model.spatial_divisor` (1 on every axis if the model has
    none), predicts, and crops the output back to the input's size.

    Args:
        model: a Keras model (any model with a `predict` method).
        x: array of shape `(batch, *spatial, channels)`.
        batch_size: batch size of `model.predict`.
        mode: padding mode (see `pad_to_multiple`).

    Returns:
        The prediction, with the spatial size of `x`.

    Examples:
        >>> from medresae.models import ResUNet
        >>> model = ResUNet(spatial_dims=3, filters=(4, 8), n_blocks=1)
        >>> predict_padded(model, np.zeros((1, 37, 50, 23, 1), "float32")).shape
        (1, 37, 50, 23, 1)
    """
    x = np.asarray(x)
    divisor = getattr(model, "spatial_divisor", None) or (1,) * (x.ndim - 2)
    padded, shape = pad_to_multiple(x, tuple(divisor), mode=mode)
    y = model.predict(padded, batch_size=batch_size, verbose=0)
    return crop_to_shape(y, shape)
