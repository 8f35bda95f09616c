"""Fast backend settings for 3D convolutions, a warning on slow ones, and the mixed-precision policy.

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

PRECISIONS = ("auto", "bfloat16", "float16")


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


def _default_device_has_bfloat16():
    """Whether the backend's default device computes in bfloat16 at full speed: CPUs and TPUs do, and
    NVIDIA GPUs from compute capability 8.0 (Ampere) on."""
    backend = keras.backend.backend()
    if backend == "torch":
        import torch

        return not torch.cuda.is_available() or torch.cuda.is_bf16_supported()
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        if device.platform != "gpu" and device.platform != "cuda":
            return True
        return float(getattr(device, "compute_capability", "0") or 0) >= 8.0
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if not gpus:
            return True
        capability = tf.config.experimental.get_device_details(gpus[0]).get("compute_capability") or (0, 0)
        return tuple(capability) >= (8, 0)
    return False


def mixed_precision_policy(precision: str = "auto") -> str:
    """The Keras dtype policy for mixed-precision training on the active backend's default device.

    bfloat16 keeps float32's exponent range, so it needs no loss scaling;
    float16 does (medresae's `fit_run` wraps the optimizer in
    `keras.optimizers.LossScaleOptimizer` for it). 'auto' picks bfloat16
    where the device computes in it (CPUs, TPUs, NVIDIA GPUs of compute
    capability 8.0 and later) and float16 elsewhere (older GPUs).

    Args:
        precision: 'auto', 'bfloat16' or 'float16'.

    Returns:
        'mixed_bfloat16' or 'mixed_float16'.

    Raises:
        ValueError: another `precision`.

    Examples:
        >>> mixed_precision_policy("float16")
        'mixed_float16'
    """
    if precision not in PRECISIONS:
        raise ValueError(f"`precision` must be one of {PRECISIONS}. Received: precision={precision!r}")
    if precision == "auto":
        precision = "bfloat16" if _default_device_has_bfloat16() else "float16"
    return f"mixed_{precision}"


def needs_loss_scaling(model: keras.Model) -> bool:
    """True when any layer of `model` computes in float16 (its small exponent range needs loss scaling).

    Examples:
        >>> needs_loss_scaling(keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, dtype="mixed_float16")]))
        True
    """
    return any(getattr(layer.dtype_policy, "compute_dtype", None) == "float16" for layer in model._flatten_layers())


def scaled_optimizer(model: keras.Model, optimizer: keras.optimizers.Optimizer) -> keras.optimizers.Optimizer:
    """`optimizer` wrapped in `keras.optimizers.LossScaleOptimizer` when `model` computes in float16, else itself.

    Keras wraps the optimizer by itself only when the model's own policy is
    mixed_float16; medresae models carry the policy on their layers.

    Examples:
        >>> half = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, dtype="mixed_float16")])
        >>> type(scaled_optimizer(half, keras.optimizers.Adam())).__name__
        'LossScaleOptimizer'
    """
    return keras.optimizers.LossScaleOptimizer(optimizer) if needs_loss_scaling(model) else optimizer


def auto_workers() -> int:
    """Loader threads for `workers='auto'`: the CPU cores this process may use, less one for the training loop,
    at most 8 (more threads than that contend for the GIL in the numpy/MONAI patch code).

    Examples:
        >>> 1 <= auto_workers() <= 8
        True
    """
    import os

    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(8, cores - 1))
