"""BioImage Model Zoo packages: a trained denoiser with ONNX and TensorFlow weights, test tensors and docs.

`export_bmz` writes one ``.zip`` in the BioImage Model Zoo's model format
(``format_version`` 0.5, validated with ``bioimageio.spec`` before it is
written). A Zoo consumer (bioimageio.core, deepImageJ, ilastik, the Zoo's
own test runner) then runs the network with onnxruntime or TensorFlow and
applies medresae's intensity scaling as the package's pre- and
post-processing:

- MRI models (``normalize='percentile'``): ``scale_range`` from the scan's
  minimum (percentile 0) to its 99.5th percentile, per scan, exactly as
  `medresae.intensity.IntensityNormalizer` does. The Zoo has no inverse of
  a data-dependent scaling, so the output stays in that scale (0 for the
  minimum, 1 for the robust maximum); the package's documentation says how
  to map it back, and ``medresae denoise`` does it for you.
- CT models (``normalize='window'``): the fixed HU window is a
  ``scale_linear`` before and its exact inverse after, so the output is in
  HU.

The tensors are channels-last ``(batch, x, y, z, channel)``, with sizes any
multiple of the model's spatial divisor. The network alone is exported;
tiling, blending and test-time augmentation are the consumer's (or
``medresae denoise``'s). Needs the TensorFlow backend (it writes both weight
formats) and ``pip install "medresae[bmz]"``.
"""

from __future__ import annotations

import datetime
import os
import shutil
import tempfile
import textwrap
from typing import TYPE_CHECKING

import numpy as np

from medresae._atomic import check_output_path, write_atomically
from medresae.errors import one_line_reason
from medresae.intensity import CT_WINDOW

if TYPE_CHECKING:
    import keras

REPOSITORY = "https://github.com/medresae/medresae"
_PERCENTILES = (0.0, 99.5)  # IntensityNormalizer('percentile') defaults
_EPS = 1e-6  # scale_range's default


def _spec():
    try:
        import bioimageio.spec  # noqa: F401
    except ImportError:
        raise ImportError(
            'BioImage Model Zoo packages are written and validated with bioimageio.spec: '
            'pip install "medresae[bmz]"', name="bioimageio.spec") from None
    import bioimageio.spec.model.v0_5 as v0_5

    return bioimageio.spec, v0_5


def default_test_input(model: keras.Model, seed: int = 0) -> np.ndarray:
    """A test input in the model's own units: a shipped sample crop (MRI with 5 % Rician noise; CT as acquired).

    Its spatial sizes are multiples of the model's spatial divisor; the shape
    is ``(1, X, Y, Z, 1)``.
    """
    from medresae.io import load_volume
    from medresae.noise import rician, robust_max
    from medresae.sample_data import sample_path

    ct = _normalize(model) == "window"
    volume = load_volume(sample_path("chest_ct" if ct else "brain_mr")).array[..., 0]
    divisor = getattr(model, "spatial_divisor", (1, 1, 1))
    size = [min(64, s) // d * d for s, d in zip(volume.shape, divisor)]
    if min(size) < 1:
        raise ValueError(f"the sample scan {volume.shape} is smaller than the model's spatial divisor {divisor}; "
                         "pass test_input=")
    start = [(s - n) // 2 for s, n in zip(volume.shape, size)]
    crop = volume[tuple(slice(a, a + n) for a, n in zip(start, size))]
    if not ct:
        crop = rician(crop, 0.05 * robust_max(crop), rng=seed)
    return crop[None, ..., None].astype(np.float32)


def _normalize(model):
    return (getattr(model, "metadata", None) or {}).get("normalize", "percentile")


def _preprocess(x, normalize):
    if normalize == "window":
        low, high = CT_WINDOW
        return (x - low) / (high - low)
    low, high = np.percentile(x, _PERCENTILES)
    return (x - low) / (high - low + _EPS)


def _postprocess(y, normalize):
    if normalize == "window":
        low, high = CT_WINDOW
        return y * (high - low) + low
    return y


def _processing(v0_5, normalize, axes):
    if normalize == "window":
        low, high = CT_WINDOW
        gain = 1.0 / (high - low)
        pre = [v0_5.ScaleLinearDescr(kwargs=v0_5.ScaleLinearKwargs(gain=gain, offset=-low * gain))]
        post = [v0_5.ScaleLinearDescr(kwargs=v0_5.ScaleLinearKwargs(gain=high - low, offset=low))]
        return pre, post
    kwargs = v0_5.ScaleRangeKwargs(axes=axes, min_percentile=_PERCENTILES[0], max_percentile=_PERCENTILES[1],
                                   eps=_EPS)
    return [v0_5.ScaleRangeDescr(kwargs=kwargs)], []


def _cover(path, x, y, normalize):
    """Input and output, middle slice, side by side (2:1), both in the input's units."""
    import matplotlib.figure

    z = x.shape[3] // 2
    noisy, denoised = x[0, :, :, z, 0], y[0, :, :, z, 0]
    if normalize != "window":  # back from the package's output scale, for the picture only
        low, high = np.percentile(x, _PERCENTILES)
        denoised = denoised * (high - low + _EPS) + low
    vmin, vmax = np.percentile(noisy, (0.5, 99.5))
    fig = matplotlib.figure.Figure(figsize=(8, 4))
    for ax, image, title in zip(fig.subplots(1, 2), (noisy, denoised), ("input", "denoised")):
        ax.imshow(image.T, cmap="gray", origin="lower", vmin=vmin, vmax=vmax)
        ax.set_title(title)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def _documentation(name, description, normalize, divisor, metadata):
    scaling = (
        "The input is scaled with `scale_range` from its minimum to its 99.5th percentile (per scan). The output "
        "stays in that scale: to return to the input's units, multiply it by (p99.5 - min) of the input and add "
        "the input's minimum. `medresae denoise` does this, and tiles large scans."
        if normalize == "percentile" else
        f"The input, in Hounsfield units, is scaled linearly from the window {CT_WINDOW[0]:g} to {CT_WINDOW[1]:g} HU "
        "to 0-1, and the output scaled back: the output is in HU."
    )
    trained = ", ".join(f"{k}: {metadata[k]}" for k in ("kind", "noise", "patch_size", "augment") if k in metadata)
    return textwrap.dedent(f"""\
        # {name}

        {description}

        A residual U-Net (medresae `ResUNet`) that predicts the noise in a 3D scan and subtracts it. Tensors
        are channels-last `(batch, x, y, z, channel)`, one channel, float32; every spatial size must be a
        multiple of {tuple(int(d) for d in divisor)}.

        ## Intensity scaling

        {scaling}

        ## Training

        {trained or "See the medresae documentation."}

        ## Validation

        The package's test input is a shipped sample crop ({"CT as acquired" if normalize == "window" else
        "with 5 % Rician noise"}); its test output is the Keras model's, and both weight formats reproduce it
        (`bioimageio.core`'s model test). On held-out scans, against BM4D and the other presets: the medresae
        documentation, Benchmarks page.

        ## Limits

        Trained on simulated noise. Check its output against the input on your own scans (medresae's
        `denoise` command does, and keeps the input where the model removed anatomy). Made with medresae:
        {REPOSITORY}
        """)


def export_bmz(model: keras.Model, path: str | os.PathLike, name: str, description: str,
               test_input: np.ndarray | None = None, overwrite: bool = False) -> str:
    """Writes `model` as a BioImage Model Zoo package (a ``.zip``), validated before it is written.

    Args:
        model: a trained 3D medresae denoiser (e.g. `load_preset("brain-mr")`).
        path: the output ``.zip`` file.
        name: the package's name (letters, digits, spaces, ``_-.()``).
        description: one sentence about the model.
        test_input: ``(1, X, Y, Z, 1)`` float32 in the scan's units, sizes
            multiples of the spatial divisor; default: `default_test_input`.
        overwrite: replace an existing `path`.

    Returns:
        `path`, as a string.

    Raises:
        ImportError: bioimageio.spec (or the export packages) are missing.
        ValueError: not on the TensorFlow backend, not a 3D single-channel
            model, or a package that does not validate.

    Examples:
        >>> from medresae.presets import load_preset
        >>> export_bmz(load_preset("ct"), "ct.zip", "medresae low-dose CT",
        ...            "Denoises low-dose CT.", overwrite=True)  # doctest: +SKIP
        'ct.zip'
    """
    import keras

    path = os.fspath(path)
    if not path.lower().endswith(".zip"):
        raise ValueError(f"{path}: a BioImage Model Zoo package is a .zip file; name the output *.zip")
    if keras.backend.backend() != "tensorflow":
        raise ValueError(f"{path}: BioImage Model Zoo packages hold ONNX and TensorFlow weights, which are written "
                         "on the tensorflow backend; pass --backend tensorflow")
    spec, v0_5 = _spec()
    if len(model.inputs[0].shape) != 5 or model.inputs[0].shape[-1] != 1:
        raise ValueError(f"{path}: export_bmz takes a 3D single-channel denoiser; the model's input is "
                         f"{tuple(model.inputs[0].shape)}")
    check_output_path(path, overwrite, what="a .zip file")
    normalize = _normalize(model)
    divisor = tuple(int(d) for d in getattr(model, "spatial_divisor", (1, 1, 1)))
    x = default_test_input(model) if test_input is None else np.asarray(test_input, np.float32)
    if x.ndim != 5 or x.shape[0] != 1 or x.shape[-1] != 1 or any(s % d for s, d in zip(x.shape[1:4], divisor)):
        raise ValueError(f"{path}: test_input must have shape (1, X, Y, Z, 1) with X, Y, Z multiples of {divisor}. "
                         f"Received: {x.shape}")
    y = _postprocess(np.asarray(model.predict_on_batch(_preprocess(x, normalize).astype(np.float32))), normalize)

    from medresae.export import export_model

    with tempfile.TemporaryDirectory(prefix="medresae-bmz-") as folder:
        def inside(name_):
            return os.path.join(folder, name_)

        _write_tf_bundle(model, inside("saved_model"), x)
        shutil.make_archive(inside("tf_saved_model"), "zip", inside("saved_model"))
        export_model(model, inside("model.onnx"), format="onnx")  # checked against the Keras model
        np.save(inside("test_input.npy"), x)
        np.save(inside("test_output.npy"), y.astype(np.float32))
        _cover(inside("cover.png"), x, y, normalize)
        metadata = getattr(model, "metadata", None) or {}
        with open(inside("README.md"), "w") as f:
            f.write(_documentation(name, description, normalize, divisor, metadata))
        descr = _description(spec, v0_5, folder, name, description, normalize, divisor)
        write_atomically(path, lambda temp: spec.save_bioimageio_package(descr, output_path=temp), overwrite,
                         suffix=".zip")
    return path


def _write_tf_bundle(model, folder, x):
    """A SavedModel whose ``serve`` endpoint returns ``{"output": ...}`` (Zoo consumers read outputs by name),
    checked against the Keras model on the normalised test input."""
    import keras
    import tensorflow as tf

    from medresae.export import _serving_graph

    graph = _serving_graph(model)
    archive = keras.export.ExportArchive()
    archive.track(graph)
    archive.add_endpoint(name="serve", fn=lambda image: {"output": graph(image, training=False)},
                         input_signature=[tf.TensorSpec((None, None, None, None, 1), tf.float32)])
    archive.write_out(folder, verbose=False)
    probe = x / max(float(np.abs(x).max()), 1e-6)
    loaded = tf.saved_model.load(folder)  # kept referenced: its variables live as long as it does
    exported = loaded.serve(tf.constant(probe))["output"].numpy()
    difference = float(np.abs(exported - np.asarray(model.predict_on_batch(probe))).max())
    if not difference <= 1e-4:
        raise ValueError(f"the TensorFlow weights differ from the Keras model by {difference:.3g} on the test input")


def _description(spec, v0_5, folder, name, description, normalize, divisor):
    import onnx
    import tensorflow as tf

    space = [v0_5.AxisId(a) for a in "xyz"]
    pre, post = _processing(v0_5, normalize, space)
    unit = "HU" if normalize == "window" else "arbitrary unit"

    def axes(output):
        batch = v0_5.BatchAxis()
        channel = v0_5.ChannelAxis(channel_names=[v0_5.Identifier("intensity")])
        if output:
            spatial = [v0_5.SpaceOutputAxis(id=a, size=v0_5.SizeReference(tensor_id=v0_5.TensorId("input"),
                                                                           axis_id=a)) for a in space]
        else:
            spatial = [v0_5.SpaceInputAxis(id=a, size=v0_5.ParameterizedSize(min=d, step=d))
                       for a, d in zip(space, divisor)]
        return [batch, *spatial, channel]

    opset = max(op.version for op in onnx.load(os.path.join(folder, "model.onnx")).opset_import
                if op.domain in ("", "ai.onnx"))
    try:
        with spec.ValidationContext(root=folder, perform_io_checks=True):
            return v0_5.ModelDescr(
                name=name,
                description=description,
                covers=[v0_5.FileDescr(source=os.path.join(folder, "cover.png"))],
                authors=[v0_5.Author(name="medresae developers")],
                cite=[v0_5.CiteEntry(text="medresae: residual autoencoders that denoise MRI and CT volumes",
                                     url=REPOSITORY)],
                license="BSD-3-Clause",
                documentation=v0_5.FileDescr(source=os.path.join(folder, "README.md")),
                git_repo=REPOSITORY,
                tags=["denoising", "3d", "ct" if normalize == "window" else "mri", "residual-unet", "medresae"],
                inputs=[v0_5.InputTensorDescr(
                    id=v0_5.TensorId("input"), description=f"noisy scan ({unit})", axes=axes(False),
                    test_tensor=v0_5.FileDescr(source=os.path.join(folder, "test_input.npy")),
                    preprocessing=pre)],
                outputs=[v0_5.OutputTensorDescr(
                    id=v0_5.TensorId("output"),
                    description="denoised scan (" + ("HU" if normalize == "window" else
                                                     "scaled: 0 = the input's minimum, 1 = its 99.5th percentile")
                                + ")",
                    axes=axes(True),
                    test_tensor=v0_5.FileDescr(source=os.path.join(folder, "test_output.npy")),
                    postprocessing=post)],
                weights=v0_5.WeightsDescr(
                    tensorflow_saved_model_bundle=v0_5.TensorflowSavedModelBundleWeightsDescr(
                        source=os.path.join(folder, "tf_saved_model.zip"),
                        tensorflow_version=v0_5.Version(tf.__version__)),
                    onnx=v0_5.OnnxWeightsDescr(source=os.path.join(folder, "model.onnx"), opset_version=opset,
                                               parent="tensorflow_saved_model_bundle"),
                ),
                timestamp=datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0),
            )
    except Exception as err:
        raise ValueError(f"the BioImage Model Zoo description does not validate: {one_line_reason(err)}") from None
