"""Repeatable Keras randomness that leaves the caller's random state alone."""

import contextlib
import random


@contextlib.contextmanager
def python_random_seeded(seed):
    """Models built and trained inside draw the same seeds for the same `seed`.

    Keras draws the seed of every unseeded initializer and random layer
    from Python's `random` module (when a layer is created, and once more
    in `fit`). This seeds `random` for the length of the block and restores
    the caller's state afterwards, instead of `keras.utils.set_random_seed`,
    which reseeds Python, NumPy, TensorFlow and torch for the whole process.

    Examples:
        >>> import keras
        >>> def weights():
        ...     with python_random_seeded(3):
        ...         layer = keras.layers.Dense(2)
        ...         layer.build((None, 2))
        ...     return keras.ops.convert_to_numpy(layer.kernel)
        >>> state = random.getstate()
        >>> bool((weights() == weights()).all()), random.getstate() == state
        (True, True)
    """
    state = random.getstate()
    random.seed(seed)
    try:
        yield
    finally:
        random.setstate(state)
