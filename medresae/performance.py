"""Which backend settings are fast for 3D convolutions, and a warning when a run is on a slow one.

Measured on a 2-core x86 CPU (docs/benchmarks.md, `medresae bench speed`):
TensorFlow runs 3D convolutions through oneDNN and is the fastest backend on
CPU; Keras already turns XLA off for TensorFlow on CPU-only machines
(`jit_compile="auto"`), which matters because XLA's CPU 3D convolution is
the slow path. JAX always compiles with XLA, whose CPU backend sends every
3D convolution (forward and both gradients) to a generic Eigen kernel:
no XLA flag of jaxlib 0.10 changes that (openxla/xla#34273, jax-ml/jax#31662),
so Keras-on-JAX trains 3D models many times slower than TensorFlow on CPU.
On GPUs every backend uses cuDNN.
"""

import warnings

import keras


class SlowBackendWarning(UserWarning):
    """The active backend runs this model on a path much slower than another backend would."""


def _jax_has_accelerator():
    import jax

    return any(d.platform != "cpu" for d in jax.devices())


def slow_path_message(spatial_dims):
    """A one-line explanation when the active backend is a slow choice here, else None.

    Examples:
        >>> slow_path_message(2) is None
        True
    """
    backend = keras.backend.backend()
    if spatial_dims != 3 or backend != "jax" or _jax_has_accelerator():
        return None
    return ("Keras on JAX runs 3D convolutions on the CPU through XLA's generic kernel, about 6x slower than "
            "plain PyTorch and 11x slower than TensorFlow (medresae bench speed); for CPU work use the TensorFlow "
            "backend (--backend tensorflow or KERAS_BACKEND=tensorflow).")


def warn_if_slow(spatial_dims):
    """Emits `SlowBackendWarning` (once per call site) when `slow_path_message` has one; returns it."""
    message = slow_path_message(spatial_dims)
    if message:
        warnings.warn(message, SlowBackendWarning, stacklevel=3)
    return message
