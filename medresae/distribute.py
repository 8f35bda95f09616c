"""Data-parallel training on every local device, through the backend's own engine.

`medresae train --distribute` (or `train_denoiser(..., distribute=True)`)
replicates the model on all local accelerators (all CPU devices when there
is none) and splits each global batch between them:

- JAX: `keras.distribution.DataParallel` (variables replicated, the batch
  sharded along its first axis by XLA).
- TensorFlow: `tf.distribute.MirroredStrategy` (the model is built and
  compiled inside its scope; Keras scales the loss by the replica count).
- PyTorch: Keras 3 has no multi-device engine for `model.fit` on torch
  (`keras.distribution` supports JAX only), so `distribute=True` raises a
  one-line error that says to use the JAX or TensorFlow backend.

The batch size is the global batch, so the same `batch_size` and
`learning_rate` describe the same optimisation on one device or on eight;
nothing is rescaled behind the user's back. Multi-host training is
`keras.distribution.initialize()` (JAX) on every host before this runs.
"""

import contextlib
import warnings
from collections.abc import Iterator

import keras

DISTRIBUTED_BACKENDS = ("jax", "tensorflow")


def _jax_devices():
    return list(keras.distribution.list_devices())


def _tf_devices():
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    return [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]


def local_devices():
    """The devices `distribute=True` would use on this backend, as names.

    Examples:
        >>> local_devices()  # doctest: +SKIP
        ['cpu:0', 'cpu:1']
    """
    backend = keras.backend.backend()
    if backend == "jax":
        return _jax_devices()
    if backend == "tensorflow":
        return _tf_devices()
    return []


def check_distributable(batch_size, devices):
    """Raises a one-line ValueError unless `batch_size` splits evenly over `devices`."""
    n = len(devices)
    if batch_size % n:
        fit = max(n, batch_size - batch_size % n)
        raise ValueError(
            f"`batch_size` is the global batch and must be a multiple of the {n} devices "
            f"({', '.join(devices)}). Received: batch_size={batch_size}; use e.g. batch_size={fit} "
            f"(--batch-size {fit})."
        )


@contextlib.contextmanager
def data_parallel(enabled: bool = True, batch_size: int | None = None) -> Iterator[list[str]]:
    """A context in which models are built, loaded and trained data-parallel.

    Everything that creates the model's variables (building, compiling,
    loading a checkpoint to resume) and `fit` must run inside it.

    Args:
        enabled: False gives a plain, single-device context (so callers
            need no second code path).
        batch_size: the global batch, checked to split evenly over the devices.

    Yields:
        The list of device names used (one entry when not distributed).

    Raises:
        ValueError: on the torch backend, or when `batch_size` does not
            split evenly.

    Examples:
        >>> with data_parallel(batch_size=8) as devices:  # doctest: +SKIP
        ...     model = build_denoiser()
        ...     model.compile(optimizer="adam", loss="mse")
        ...     model.fit(data, epochs=2)
    """
    backend = keras.backend.backend()
    if not enabled:
        yield ["default"]
        return
    if backend not in DISTRIBUTED_BACKENDS:
        raise ValueError(
            f"`distribute=True` is not supported on the {backend} backend: Keras 3 offers multi-device "
            "model.fit on JAX (keras.distribution) and TensorFlow (tf.distribute) only; use --backend jax or "
            "--backend tensorflow, or train on one device."
        )
    devices = local_devices()
    if batch_size is not None:
        check_distributable(int(batch_size), devices)
    if len(devices) == 1:
        warnings.warn(f"--distribute: only one device ({devices[0]}) is visible; training on it alone.",
                      stacklevel=3)
    if backend == "jax":
        distribution = keras.distribution.DataParallel(devices=devices)
        previous = keras.distribution.distribution()
        keras.distribution.set_distribution(distribution)
        try:
            yield devices
        finally:
            keras.distribution.set_distribution(previous)
        return
    import tensorflow as tf

    with tf.distribute.MirroredStrategy(devices).scope():
        yield devices
