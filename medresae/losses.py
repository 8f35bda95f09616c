"""Backend-neutral losses (keras.ops only)."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="medresae")
def masked_mse(y_true, y_pred):
    """Mean squared error only where a mask is 1 (Noise2Void's blind spots).

    `y_true` carries the target channels followed by one mask channel, as
    `medresae.data.PatchDataset(kind='noise2void')` yields it; `y_pred` has
    the target channels only.

    Example:

    >>> y_true = np.zeros((1, 4, 4, 2), "float32"); y_true[0, 1, 1, 1] = 1.0
    >>> float(masked_mse(y_true, np.ones((1, 4, 4, 1), "float32")))
    1.0
    """
    target, mask = y_true[..., :-1], y_true[..., -1:]
    squared = ops.square(target - y_pred) * mask
    channels = ops.cast(ops.shape(target)[-1], squared.dtype)
    return ops.sum(squared) / (ops.sum(mask) * channels + keras.backend.epsilon())
