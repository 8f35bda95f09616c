"""The Keras backend to use when the user named none, chosen before Keras is imported.

Keras reads ``KERAS_BACKEND`` (or the ``backend`` of ``keras.json``) once, on
import, and falls back to TensorFlow. On a machine with only JAX or PyTorch
(a GPU machine set up for one of them) ``import keras`` then fails. When
neither names an installed backend and TensorFlow is missing, medresae sets
``KERAS_BACKEND`` to the first installed of JAX and PyTorch, before it imports
Keras, and says so in ``medresae info``. It never overrides a choice the user
made, and it changes nothing when TensorFlow is installed.

This module imports no backend and no Keras: the command line loads it by
path too, before it decides anything.
"""

import importlib.util
import json
import os

# Keras' own default first, so that a machine with TensorFlow behaves as Keras does.
PREFERENCE = ("tensorflow", "jax", "torch")

# What the last `choose_backend(apply=True)` did in this process: (backend, reason), or None.
applied = None


def _installed(module):
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def keras_config_path(environ=os.environ):
    """Where Keras reads its configuration (``$KERAS_HOME/keras.json``, default ``~/.keras``)."""
    home = environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return os.path.join(home, "keras.json")


def _configured_backend(environ):
    try:
        with open(keras_config_path(environ)) as f:
            backend = json.load(f).get("backend")
    except (OSError, ValueError, AttributeError):
        return None
    return backend if isinstance(backend, str) and backend else None


def choose_backend(environ=os.environ, apply=False):
    """The backend Keras will use, and why.

    Args:
        environ: the environment to read (and, with `apply`, to write).
        apply: set ``KERAS_BACKEND`` in `environ` when the choice is
            medresae's (nothing named one and TensorFlow is missing).

    Returns:
        `(backend, reason)`: `backend` is None when none is installed.

    Examples:
        >>> choose_backend({"KERAS_BACKEND": "jax"})
        ('jax', 'KERAS_BACKEND')
    """
    global applied
    if environ.get("KERAS_BACKEND"):
        return environ["KERAS_BACKEND"], "KERAS_BACKEND"
    configured = _configured_backend(environ)
    # Keras writes keras.json with "tensorflow" on its first import, whatever backend it ran:
    # a configured backend that is not installed is not a choice to keep.
    if configured and _installed(configured):
        return configured, keras_config_path(environ)
    if _installed("tensorflow"):
        return "tensorflow", "Keras' default"
    for backend in PREFERENCE[1:]:
        if _installed(backend):
            choice = backend, "KERAS_BACKEND unset and TensorFlow not installed: the first installed of jax, torch"
            if apply:
                environ["KERAS_BACKEND"] = backend
                applied = choice
            return choice
    return None, "no backend installed (pip install 'medresae[tensorflow]', '[jax]' or '[torch]')"
