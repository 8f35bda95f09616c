"""The dtype policy of the layers a model or a composite layer creates."""

import contextlib

import keras


@contextlib.contextmanager
def dtype_policy_scope(dtype):
    """Layers created inside take `dtype` (a policy, its name or its config) as
    their dtype policy; None keeps the caller's. The caller's policy comes back
    afterwards. Keras keeps the policy per thread, so other threads never see it.

    Examples:
        >>> with dtype_policy_scope("mixed_float16"):
        ...     layer = keras.layers.Dense(2)
        >>> layer.dtype_policy.name, keras.config.dtype_policy().name
        ('mixed_float16', 'float32')
    """
    if dtype is None:
        yield
        return
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(keras.dtype_policies.get(dtype))
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)
