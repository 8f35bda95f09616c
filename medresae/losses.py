"""Backend-neutral losses (keras.ops only)."""

import keras
from keras import ops


def _split_mask(y_true, y_pred):
    """(target, mask broadcast to the target): `y_true` holds the target channels, then one mask channel or
    one per target channel (per-channel blind spots)."""
    channels = y_pred.shape[-1]
    target, mask = y_true[..., :channels], y_true[..., channels:]
    return target, ops.broadcast_to(mask, ops.shape(target))


@keras.saving.register_keras_serializable(package="medresae")
def masked_mse(y_true, y_pred):
    """Mean squared error only where a mask is 1 (Noise2Void's blind spots).

    `y_true` carries the target channels followed by the mask: one channel
    (the same voxels masked in every channel) or one per target channel,
    as `medresae.data.PatchDataset(kind='noise2void')` yields it; `y_pred`
    has the target channels only.

    Examples:
        >>> y_true = np.zeros((1, 4, 4, 2), "float32"); y_true[0, 1, 1, 1] = 1.0
        >>> round(float(masked_mse(y_true, np.ones((1, 4, 4, 1), "float32"))), 5)
        1.0
    """
    target, mask = _split_mask(y_true, y_pred)
    squared = ops.square(target - y_pred) * mask
    return ops.sum(squared) / (ops.sum(mask) + keras.backend.epsilon())


@keras.saving.register_keras_serializable(package="medresae")
def masked_l1(y_true, y_pred):
    """Mean absolute error only where the mask (after the target channels of `y_true`) is 1."""
    target, mask = _split_mask(y_true, y_pred)
    absolute = ops.abs(target - y_pred) * mask
    return ops.sum(absolute) / (ops.sum(mask) + keras.backend.epsilon())


def _local_mean(x, spatial_dims):
    size = tuple(min(7, int(s)) if s is not None else 7 for s in x.shape[1 : 1 + spatial_dims])
    return ops.average_pool(x, pool_size=size, strides=1, padding="valid")


@keras.saving.register_keras_serializable(package="medresae")
def ssim_loss(y_true, y_pred):
    """``1 - SSIM`` with a 7-voxel box window (smaller on thin axes), data range 1.

    Works in 2D and 3D (channels last). Pair it with MSE or L1 (`mse_ssim`)
    for denoising: SSIM alone does not pin the mean intensity.

    Examples:
        >>> x = np.random.rand(1, 16, 16, 1).astype("float32")
        >>> round(float(ssim_loss(x, x)), 4)
        0.0
    """
    y_true = ops.cast(y_true, y_pred.dtype)
    spatial_dims = len(y_pred.shape) - 2
    c1, c2 = 0.01**2, 0.03**2
    mu_x, mu_y = _local_mean(y_true, spatial_dims), _local_mean(y_pred, spatial_dims)
    var_x = _local_mean(y_true * y_true, spatial_dims) - mu_x * mu_x
    var_y = _local_mean(y_pred * y_pred, spatial_dims) - mu_y * mu_y
    cov = _local_mean(y_true * y_pred, spatial_dims) - mu_x * mu_y
    ssim = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return 1.0 - ops.mean(ssim)


@keras.saving.register_keras_serializable(package="medresae")
def mse_ssim(y_true, y_pred):
    """MSE plus 0.1 x (1 - SSIM): MSE keeps intensities, SSIM keeps structure."""
    return ops.mean(ops.square(ops.cast(y_true, y_pred.dtype) - y_pred)) + 0.1 * ssim_loss(y_true, y_pred)


LOSSES = ("mse", "l1", "ssim", "mse_ssim")


def get_loss(name, masked=False):
    """A loss by name; `masked=True` gives the blind-spot version (Noise2Void).

    Examples:
        >>> get_loss("l1", masked=True).__name__
        'masked_l1'
    """
    if name not in LOSSES:
        raise ValueError(f"Unknown `loss`: {name!r}. Expected one of {', '.join(map(repr, LOSSES))}.")
    if masked:
        if name not in ("mse", "l1"):
            raise ValueError(
                f"Noise2Void needs a voxel-wise loss ('mse' or 'l1'). Received: loss={name!r}"
            )
        return masked_mse if name == "mse" else masked_l1
    return {"mse": "mse", "l1": "mae", "ssim": ssim_loss, "mse_ssim": mse_ssim}[name]
