"""Loading a trained denoiser from a `.keras` file or a shipped preset, with one-line errors."""

import os
import zipfile

import keras

from medresae._seeding import python_random_seeded
from medresae.errors import InputFileError, InputFileNotFoundError, one_line_reason


def load_denoiser(path: str | os.PathLike | None = None, preset: str | None = None,
                  dtype: str | None = "float32") -> keras.Model:
    """Loads an image-to-image Keras model for `medresae.inference.denoise`.

    Exactly one of `path` and `preset` is given. The model is loaded without
    its compile state (inference needs no optimizer) on the active backend,
    and checked to be image-to-image (`medresae.inference.check_model`).
    A medresae model saved in another dtype policy (e.g. trained with mixed
    precision) is loaded in `dtype`: CPUs lack float16 kernels for some 3D
    layers and run the others slowly.

    Args:
        path: a `.keras` file (a medresae model, or any Keras model whose input
            and output are `(batch, X, Y[, Z], channels)` images).
        preset: the name of a shipped preset (`medresae.presets.PRESETS`).
        dtype: the dtype policy to run a medresae model in ('float32'), or
            None for the one it was saved with.

    Returns:
        The Keras model.

    Raises:
        InputFileError: a one-line message naming the file (or the preset):
            missing, not a `.keras` zip archive, not loadable (unknown
            layers, a Lambda layer's Python code), or not image-to-image;
            `InputFileNotFoundError` for a missing file.
        ValueError: both or neither of `path` and `preset`.

    Examples:
        >>> model = load_denoiser(preset="brain-mr")
        >>> model.metadata["modality"]
        'mr'
    """
    if (path is None) == (preset is None):
        raise ValueError(f"Pass exactly one of `path` and `preset`. Received: path={path!r}, preset={preset!r}")
    import medresae  # noqa: F401  (registers medresae's layers with Keras)
    from medresae.inference import check_model
    from medresae.presets import PRESETS, load_preset

    if preset is not None:
        if preset not in PRESETS:
            raise InputFileError(f"preset {preset!r}: unknown preset; choose one of {', '.join(PRESETS)}")
        return load_preset(preset)
    path = os.fspath(path)
    if not os.path.exists(path):
        raise InputFileNotFoundError(f"{path}: no such model file; pass a .keras file written by medresae train")
    if os.path.isdir(path) or not path.endswith(".keras"):
        raise InputFileError(f"{path}: not a .keras model file; pass a model saved with model.save('x.keras')")
    if not zipfile.is_zipfile(path):
        raise InputFileError(
            f"{path}: not a Keras model file (a .keras file is a zip archive; this one is not, or is "
            "truncated); pass a model saved with model.save('x.keras') or by medresae train"
        )
    try:
        # compile=False: inference needs no optimizer, and a compile config saved on JAX
        # (jit_compile=True) would make torch run torch.compile first, 30 s a model on a CPU.
        # Keras draws seeds for the layers it rebuilds from Python's `random`: not from the caller's.
        with python_random_seeded(0):
            model = keras.saving.load_model(path, compile=False)
    except Exception as err:  # zip errors, unknown layers, bad configs
        if "safe_mode" in str(err):
            raise InputFileError(
                f"{path}: cannot load this Keras model: it holds Python code (a Lambda layer), which Keras "
                "refuses to load from a file; rebuild the model without Lambda layers (or, for a file you "
                "trust, load it in Python with keras.saving.load_model(path, safe_mode=False) and call "
                "medresae.inference.denoise)"
            ) from None
        raise InputFileError(f"{path}: cannot load this Keras model ({one_line_reason(err)})") from None
    try:
        check_model(model)
    except ValueError as err:
        raise InputFileError(f"{path}: {err}") from None
    return _in_dtype(model, dtype)


def _in_dtype(model, dtype):
    return model if dtype is None or not hasattr(model, "with_dtype") else model.with_dtype(dtype)
