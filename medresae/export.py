"""Export a trained model for serving (TensorFlow SavedModel, ONNX) and check it.

The export goes through Keras' own `model.export`; what it can do depends on
the Keras backend (measured with Keras 3.15):

| format       | tensorflow         | jax                | torch                             |
|--------------|--------------------|--------------------|-----------------------------------|
| `savedmodel` | any size           | any size           | not supported (needs torch_xla)   |
| `onnx`       | any size (tf2onnx) | not supported      | fixed size (`shape=`), batch 1    |

"Any size" means any batch and any spatial size that is a multiple of the
model's `spatial_divisor`.

A `.keras` file loads on every backend, so exporting on TensorFlow
(`--backend tensorflow`) gives the most general artifacts whatever backend
the model was trained on.

The artifact is the network alone: it takes intensity-normalised volumes of
shape `(batch, *spatial, channels)` whose spatial sizes are multiples of the
model's `spatial_divisor`, and does no normalisation, padding or tiling
(`medresae.inference.denoise` does those around the Keras model).

After writing, the artifact is run with its own runtime (TensorFlow's
`tf.saved_model.load`, or onnxruntime) on a seeded probe input and compared
with `model.predict`; the result is published only if they agree.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import os
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

from medresae._atomic import publish, remove_path, temp_path
from medresae._defaults import BACKENDS
from medresae.errors import one_line_reason

if TYPE_CHECKING:
    import keras

FORMATS = ("savedmodel", "onnx")
_KERAS_FORMATS = {"savedmodel": "tf_saved_model", "onnx": "onnx"}
_ALIASES = {"tf_saved_model": "savedmodel", "saved_model": "savedmodel"}


class ExportNotSupportedError(ValueError):
    """The format cannot be exported on the active Keras backend (or needs a
    package that is not installed); the message says what to do.

    Examples:
        >>> isinstance(ExportNotSupportedError("onnx on jax"), ValueError)
        True
    """


@dataclasses.dataclass
class ExportResult:
    """What `export_model` wrote and how well the artifact matched the model.

    Attributes:
        path: where the artifact was written.
        format: `"savedmodel"` or `"onnx"`.
        backend: the Keras backend that exported it.
        input_shape: the artifact's input shape; `None` marks an axis of any
            size (spatial axes then take multiples of `spatial_divisor`).
        probe_shape: the shape of the seeded input used for the check, or
            `None` when the check was skipped.
        max_abs_diff: largest absolute difference between the artifact's
            output and `model.predict` on the probe (`None` if not checked).
        tolerance: the largest difference accepted.
    """

    path: str
    format: str
    backend: str
    input_shape: tuple
    probe_shape: tuple = None
    max_abs_diff: float = None
    tolerance: float = None


def normalize_format(format):
    """`"savedmodel"`/`"tf_saved_model"` -> `"savedmodel"`, `"onnx"` -> `"onnx"`.

    Raises:
        ValueError: for any other name.

    Examples:
        >>> normalize_format("tf_saved_model")
        'savedmodel'
    """
    name = _ALIASES.get(str(format).lower(), str(format).lower())
    if name not in FORMATS:
        raise ValueError(f"`format` must be one of {', '.join(FORMATS)}. Received: format={format!r}")
    return name


def unsupported_reason(format, backend, shape=None):
    """Why `format` cannot be exported on `backend`, or `None` if it can.

    Args:
        format: `"savedmodel"` or `"onnx"`.
        backend: `"tensorflow"`, `"jax"` or `"torch"`.
        shape: the fixed spatial size asked for, if any (ONNX on torch needs one).

    Returns:
        A one-line message naming the backend and the format and saying what
        to do, or `None`.

    Examples:
        >>> unsupported_reason("savedmodel", "tensorflow") is None
        True
        >>> print(unsupported_reason("onnx", "jax"))  # doctest: +ELLIPSIS
        onnx export is not supported on the jax backend (...); use --backend tensorflow (...), the .keras file loads ...
    """
    format = normalize_format(format)
    hint = "use --backend tensorflow (KERAS_BACKEND=tensorflow), the .keras file loads on any backend"
    if backend not in BACKENDS:
        return f"{format} export is not supported on the {backend} backend; {hint}"
    if format == "savedmodel" and backend == "torch":
        return (
            "savedmodel export is not supported on the torch backend (Keras needs torch_xla for it); "
            "use --backend tensorflow or --backend jax (KERAS_BACKEND=...), the .keras file loads on any backend"
        )
    if format == "onnx" and backend == "jax":
        return (
            "onnx export is not supported on the jax backend (Keras' jax2onnx route cannot convert 3D "
            f"channels-last convolutions); {hint}"
        )
    if format == "onnx" and backend == "torch" and shape is None:
        return (
            "onnx export on the torch backend needs a fixed input size (Keras cannot export dynamic sizes "
            "there): pass --shape X,Y[,Z] (shape=...), or use --backend tensorflow (KERAS_BACKEND=tensorflow) "
            "for an artifact that takes any size"
        )
    return None


def _missing_packages(format, backend, check):
    needed = []
    if format == "savedmodel":
        needed.append(("tensorflow", "tensorflow"))
    if format == "onnx":
        if backend == "tensorflow":
            needed.append(("tf2onnx", "tf2onnx"))
        if backend == "torch":
            needed += [("onnx", "onnx"), ("onnxscript", "onnxscript")]
        if check:
            needed.append(("onnxruntime", "onnxruntime"))
    return [pip for module, pip in needed if importlib.util.find_spec(module) is None]


def _check_shape(shape, model_shape, divisor):
    spatial = model_shape[1:-1]
    if shape is None:
        return None
    try:
        shape = tuple(int(s) for s in shape)
    except (TypeError, ValueError):
        shape = None
    if shape is None or len(shape) != len(spatial) or min(shape) <= 0:
        raise ValueError(
            f"`shape` must be {len(spatial)} positive ints (one per spatial axis of the model). "
            f"Received: shape={shape!r}"
        )
    bad = [
        i for i, (s, d, m) in enumerate(zip(shape, divisor, spatial)) if s % d or (m is not None and s != m)
    ]
    if bad:
        raise ValueError(
            f"`shape` must be a multiple of the model's spatial_divisor {tuple(divisor)} on every axis"
            + (f" and equal its fixed input size {tuple(spatial)}" if any(m is not None for m in spatial) else "")
            + f". Received: shape={shape}"
        )
    return shape


def _serving_graph(model):
    """A plain functional model over the same layers (and weights).

    medresae's models check input sizes with Python ints in `call`, which the
    symbolic shapes of an export trace cannot give; the graph itself is
    the same.
    """
    import keras

    inputs, outputs = getattr(model, "inputs", None), getattr(model, "outputs", None)
    if not inputs or not outputs:
        return model
    # A single tensor in and out (not one-element lists), as `model` takes.
    return keras.Model(
        inputs[0] if len(inputs) == 1 else inputs,
        outputs[0] if len(outputs) == 1 else outputs,
        name=f"{model.name}_serving",
    )


def _probe_shape(input_shape, divisor, batch):
    spatial = [
        s if s is not None else d * max(1, math.ceil(8 / d)) for s, d in zip(input_shape[1:-1], divisor)
    ]
    return (batch, *spatial, input_shape[-1])


def _run_artifact(path, format, probe):
    import numpy as np

    if format == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        return np.asarray(session.run(None, {session.get_inputs()[0].name: probe})[0])
    import tensorflow as tf

    artifact = tf.saved_model.load(path)
    return np.asarray(artifact.serve(tf.constant(probe)))


def export_model(model: keras.Model, path: str | os.PathLike, format: str = "savedmodel",
                 shape: Sequence[int] | None = None, overwrite: bool = False, check: bool = True,
                 atol: float | None = None, seed: int = 0) -> ExportResult:
    """Exports a Keras model with `model.export` and checks the artifact.

    The artifact is written to a temporary sibling of `path`, run with its
    own runtime on a seeded probe input, compared with `model.predict`, and
    only then renamed to `path`. On any failure nothing is left behind, and
    an existing `path` is kept unless `overwrite`. A checked ONNX export on
    TensorFlow is converted again (up to 3 times in all) when the artifact's
    output has the wrong shape: tf2onnx now and then writes such a graph on a
    busy CPU.

    Args:
        model: a built Keras model with one input of shape
            `(batch, *spatial, channels)` (every medresae model).
        path: output path: a folder for `"savedmodel"`, a file (`.onnx`)
            for `"onnx"`.
        format: `"savedmodel"` (TensorFlow SavedModel, endpoint `serve`) or
            `"onnx"`.
        shape: optional fixed spatial size, e.g. `(64, 64, 32)`; each axis a
            multiple of the model's `spatial_divisor`. Without it the
            artifact takes any valid size (where the backend can export
            dynamic sizes: see `unsupported_reason`). ONNX on the torch
            backend needs it and then has a batch size of 1.
        overwrite: replace an existing `path`.
        check: run the artifact and compare it with `model.predict`.
        atol: largest accepted absolute difference; default `1e-4` times
            the range of the model's output on the probe (at least `1e-4`).
        seed: seed of the probe input.

    Returns:
        An `ExportResult` (path, input shape, max difference, ...).

    Raises:
        ExportNotSupportedError: the format cannot be exported on this
            backend, or a package it needs is not installed.
        InputFileError: the output folder is missing, or `path` exists and
            `overwrite` is False.
        ValueError: unknown format, bad `shape`, a model that is not
            single-input float32, a failed export, or an artifact whose
            output differs from the model's by more than `atol`.

    Examples:
        >>> from medresae.models import ResUNet
        >>> model = ResUNet(spatial_dims=2, filters=(4, 8), n_blocks=1)
        >>> result = export_model(model, "denoiser_savedmodel")  # doctest: +SKIP
        >>> result.max_abs_diff < result.tolerance  # doctest: +SKIP
        True
        >>> import tensorflow as tf  # doctest: +SKIP
        >>> served = tf.saved_model.load("denoiser_savedmodel")  # doctest: +SKIP
        >>> y = served.serve(tf.zeros((1, 32, 32, 1)))  # doctest: +SKIP
    """
    import keras
    import numpy as np

    format = normalize_format(format)
    backend = keras.backend.backend()
    path = os.fspath(path)
    model = _float32(model)
    model_shape, divisor, shape = _checked_shapes(model, shape)
    _check_supported(format, backend, shape, check)
    _check_destination(path, overwrite)

    signature_shape, kwargs = _signature(model, format, backend, model_shape, divisor, shape)
    probe_shape = _probe_shape(signature_shape, divisor, batch=1 if signature_shape[0] == 1 else 2)
    probe = np.random.default_rng(seed).normal(size=probe_shape).astype("float32")
    graph = _serving_graph(model)
    graph(probe[:1])  # Keras exports only models that have been called

    temp = temp_path(path, ".onnx" if format == "onnx" else "")
    result = ExportResult(path=path, format=format, backend=backend, input_shape=signature_shape)
    attempts = _TF_ONNX_ATTEMPTS if (format, backend) == ("onnx", "tensorflow") and check else 1
    try:
        for attempt in range(attempts):
            _export_to(graph, temp, format, backend, kwargs)
            if not check:
                break
            result.probe_shape = probe_shape
            try:
                result.max_abs_diff, result.tolerance = _compare_artifact(model, temp, format, probe, atol)
                break
            except _ArtifactShapeError:
                if attempt == attempts - 1:
                    raise
                remove_path(temp)
        publish(temp, path, overwrite)
    except BaseException:
        remove_path(temp)
        raise
    return result


class _ArtifactShapeError(ValueError):
    """The exported artifact's output has another shape than the model's."""


# tf2onnx (through Keras' TensorFlow ONNX exporter) now and then writes a graph whose output
# has an extra leading axis when the CPU is busy (seen in about 1 run in 4 with both cores
# loaded, never on an idle machine): a checked ONNX export from TensorFlow is converted again.
_TF_ONNX_ATTEMPTS = 3


def _export_to(graph, temp, format, backend, kwargs):
    try:
        with warnings.catch_warnings():
            # The exporters' own deprecation and tracing chatter.
            warnings.simplefilter("ignore")
            graph.export(temp, format=_KERAS_FORMATS[format], verbose=False, **kwargs)
    except Exception as err:
        hint = "" if backend == "tensorflow" else "; try --backend tensorflow"
        raise ValueError(f"{format} export failed on the {backend} backend ({one_line_reason(err)}){hint}") from err
    if not os.path.exists(temp):
        raise ValueError(f"{format} export on the {backend} backend wrote nothing to {temp}")


def _float32(model):
    """Keras exports float32 graphs: a medresae model in another dtype policy is
    copied into float32; any other model must already be float32."""
    if hasattr(model, "with_dtype"):
        return model.with_dtype("float32")
    policies = {layer.dtype_policy.name for layer in model._flatten_layers()} if hasattr(model, "_flatten_layers") \
        else {getattr(getattr(model, "dtype_policy", None), "name", "float32")}
    if policies <= {"float32"}:
        return model
    raise ValueError(
        f"export_model needs a float32 model (Keras exports float32 only). Received: dtype policies {sorted(policies)}"
    )


def _checked_shapes(model, shape):
    """(the model's input shape, its spatial divisor, the export's spatial shape or None)."""
    inputs = getattr(model, "inputs", None)
    if inputs is not None and len(inputs) != 1:
        raise ValueError(
            f"export_model needs a model with one input. Received: a model with {len(inputs)} inputs"
        )
    model_shape = tuple(model.input_shape)
    if len(model_shape) < 3 or model_shape[-1] is None:
        raise ValueError(
            "export_model needs an input of shape (batch, *spatial, channels) with known channels. "
            f"Received: model.input_shape={model_shape}"
        )
    divisor = tuple(getattr(model, "spatial_divisor", None) or (1,) * (len(model_shape) - 2))
    shape = _check_shape(shape, model_shape, divisor)
    if shape is None and None not in model_shape[1:-1]:
        shape = tuple(model_shape[1:-1])  # a model built for one size
    return model_shape, divisor, shape


def _check_supported(format, backend, shape, check):
    reason = unsupported_reason(format, backend, shape)
    if reason:
        raise ExportNotSupportedError(reason)
    missing = _missing_packages(format, backend, check)
    if missing:
        skip = " (or pass --no-check / check=False)" if missing == ["onnxruntime"] else ""
        raise ExportNotSupportedError(
            f"{format} export on the {backend} backend needs {', '.join(missing)}: "
            f"pip install 'medresae[export]'{skip}"
        )


def _check_destination(path, overwrite):
    from medresae.errors import InputFileError, OutputExistsError

    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise InputFileError(f"{path}: folder {folder} does not exist; create it first")
    if os.path.lexists(path) and not overwrite:
        raise OutputExistsError(f"{path}: already exists; pass overwrite=True (--overwrite) to replace it")


def _signature(model, format, backend, model_shape, divisor, shape):
    """The exported input's shape (channels known; spatial axes free unless `shape`)
    and the keyword arguments of `Model.export`."""
    import keras

    spatial = shape if shape is not None else model_shape[1:-1]
    batch = 1 if (backend == "torch") else None
    signature_shape = (batch, *spatial, model_shape[-1])
    inputs = getattr(model, "inputs", None)
    name = getattr(inputs[0], "name", None) if inputs else None
    spec = keras.InputSpec(shape=signature_shape, dtype="float32", name=name or "image")
    kwargs = {"input_signature": [spec]}
    if backend == "jax" and format == "savedmodel":
        # Declare each free axis a multiple of its divisor, so jax2tf can
        # prove that down- and upsampled sizes meet again at the skips.
        dims = iter("hwdefgijk")
        poly = ["batch"] + [
            str(s) if s is not None else (next(dims) if d == 1 else f"{d}*{next(dims)}")
            for s, d in zip(spatial, divisor)
        ] + [str(model_shape[-1])]
        kwargs["jax2tf_kwargs"] = {"polymorphic_shapes": [f"({', '.join(poly)})"]}
    return signature_shape, kwargs


def _compare_artifact(model, temp, format, probe, atol):
    """Runs the exported artifact on `probe`; returns (max difference to the Keras
    model, tolerance), or raises if they differ or it does not run."""
    import numpy as np

    expected = np.asarray(model.predict(probe, verbose=0))
    try:
        got = _run_artifact(temp, format, probe)
    except Exception as err:
        raise ValueError(f"the exported {format} artifact does not run ({one_line_reason(err)})") from err
    if got.shape != expected.shape:
        raise _ArtifactShapeError(f"the exported {format} artifact returned shape {got.shape}, the model "
                                  f"{expected.shape}")
    diff = float(np.max(np.abs(got.astype("float64") - expected)))
    spread = float(np.max(expected) - np.min(expected))
    tolerance = float(atol) if atol is not None else 1e-4 * max(spread, 1.0)
    if not diff <= tolerance:
        raise ValueError(
            f"the exported {format} artifact differs from the Keras model by up to {diff:.3g} "
            f"(tolerance {tolerance:.3g}) on a {probe.shape} probe; nothing was written"
        )
    return diff, tolerance
