"""`medresae export` and `medresae.export.export_model`: real exports, run with their own runtimes.

What works where (Keras 3.15): savedmodel on tensorflow and jax (any size),
onnx on tensorflow (any size) and torch (fixed size only); the other
combinations fail with a one-line message naming the backend and format.
onnxruntime, tf2onnx and onnxscript come with the `export` extra (part of
`test`), so nothing here is skipped on a full test install.
"""

import os

import keras
import numpy as np
import pytest

import medresae_cli
from medresae.errors import InputFileError
from medresae.export import ExportNotSupportedError, export_model, unsupported_reason
from medresae.models import ResUNet

BACKEND = keras.backend.backend()
SAVEDMODEL_OK = BACKEND in ("tensorflow", "jax")
ONNX_DYNAMIC = BACKEND == "tensorflow"
ONNX_FIXED = BACKEND in ("tensorflow", "torch")
ATOL = 1e-4


def _trained(spatial_dims, strides):
    """A tiny ResUNet after a few steps away from the identity (batch-norm stats non-trivial)."""
    keras.utils.set_random_seed(0)
    model = ResUNet(spatial_dims=spatial_dims, filters=(4, 8), n_blocks=1, strides=strides)
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse")
    shape = (2, 8, 8, 4, 1) if spatial_dims == 3 else (2, 8, 8, 1)
    x = np.random.default_rng(0).standard_normal(shape).astype("float32")
    for _ in range(3):
        model.train_on_batch(x, 0.5 * x)
    return model


@pytest.fixture(scope="module")
def model3d():
    return _trained(3, (2, 2, 1))


@pytest.fixture(scope="module")
def model2d():
    return _trained(2, 2)


@pytest.fixture(scope="module")
def model3d_file(model3d, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("models") / "m3.keras")
    model3d.save(path)
    return path


def _probe(shape, seed=1):
    return np.random.default_rng(seed).standard_normal(shape).astype("float32")


def _run_savedmodel(path, x):
    tf = pytest.importorskip("tensorflow")
    served = tf.saved_model.load(path)  # keep a reference: its variables live with it
    return np.asarray(served.serve(tf.constant(x)))


def _run_onnx(path, x):
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def _assert_same(model, run, path, shapes):
    for shape in shapes:
        x = _probe(shape)
        expected = model.predict(x, verbose=0)
        assert np.abs(expected - x).max() > 1e-2  # the model is not the identity
        got = run(path, x)
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, atol=ATOL, rtol=0)


def _supported_cli_args(folder, spatial="8,8,4"):
    """OUT and the options of an export that works on this backend."""
    if SAVEDMODEL_OK:
        return str(folder / "sm"), ["--format", "savedmodel"]
    return str(folder / "m.onnx"), ["--format", "onnx", "--shape", spatial]


def _leftovers(folder):
    return [name for name in os.listdir(folder) if ".tmp" in name]


def test_savedmodel_3d_any_size(model3d, tmp_path):
    out = str(tmp_path / "sm")
    if not SAVEDMODEL_OK:
        with pytest.raises(ExportNotSupportedError) as info:
            export_model(model3d, out, format="savedmodel")
        message = str(info.value)
        assert "savedmodel" in message and BACKEND in message and "--backend tensorflow" in message
        assert "\n" not in message and not os.path.exists(out)
        return
    result = export_model(model3d, out, format="savedmodel")
    assert result.path == out and os.path.isdir(out) and not _leftovers(tmp_path)
    assert result.input_shape == (None, None, None, None, 1)
    assert result.max_abs_diff <= result.tolerance and result.max_abs_diff < ATOL
    # Two sizes and batch sizes, each a multiple of the divisor (2, 2, 1).
    _assert_same(model3d, _run_savedmodel, out, [(1, 8, 8, 4, 1), (2, 16, 12, 6, 1)])


def test_onnx_3d(model3d, tmp_path):
    out = str(tmp_path / "m.onnx")
    if BACKEND == "jax":
        with pytest.raises(ExportNotSupportedError, match="onnx export is not supported on the jax backend.*"
                           "--backend tensorflow"):
            export_model(model3d, out, format="onnx")
        assert not os.path.exists(out) and not _leftovers(tmp_path)
        return
    if BACKEND == "torch":
        with pytest.raises(ExportNotSupportedError, match="torch backend needs a fixed input size.*--shape"):
            export_model(model3d, out, format="onnx")
        result = export_model(model3d, out, format="onnx", shape=(16, 8, 4))
        assert result.input_shape == (1, 16, 8, 4, 1)
        shapes = [(1, 16, 8, 4, 1)]
    else:
        result = export_model(model3d, out, format="onnx")
        assert result.input_shape == (None, None, None, None, 1)
        shapes = [(1, 8, 8, 4, 1), (2, 16, 12, 6, 1)]
    assert os.path.isfile(out) and not _leftovers(tmp_path)
    assert result.max_abs_diff < ATOL
    _assert_same(model3d, _run_onnx, out, shapes)


def test_fixed_shape_savedmodel_and_onnx(model2d, tmp_path):
    """`shape=` fixes the spatial size (batch stays free except for torch ONNX)."""
    for fmt, name, run in (("savedmodel", "sm", _run_savedmodel), ("onnx", "m.onnx", _run_onnx)):
        out = str(tmp_path / name)
        if unsupported_reason(fmt, BACKEND, shape=(16, 12)):
            with pytest.raises(ExportNotSupportedError, match=f"{fmt}.*{BACKEND}|{BACKEND}.*{fmt}"):
                export_model(model2d, out, format=fmt, shape=(16, 12))
            continue
        result = export_model(model2d, out, format=fmt, shape=(16, 12))
        batch = 1 if BACKEND == "torch" else None
        assert result.input_shape == (batch, 16, 12, 1)
        assert result.probe_shape[1:] == (16, 12, 1)
        _assert_same(model2d, run, out, [(1, 16, 12, 1)])


def test_cli_exports_2d_and_prints_check(model2d, tmp_path, capsys):
    src = str(tmp_path / "m2.keras")
    model2d.save(src)
    if ONNX_FIXED:
        out, run = str(tmp_path / "m2.onnx"), _run_onnx
        extra = ["--shape", "16,12"] if BACKEND == "torch" else []
        shapes = [(1, 16, 12, 1)] if BACKEND == "torch" else [(1, 16, 12, 1), (3, 8, 24, 1)]
    else:
        out, run, extra = str(tmp_path / "m2_savedmodel"), _run_savedmodel, []
        shapes = [(1, 16, 12, 1), (3, 8, 24, 1)]
    assert medresae_cli.main(["export", src, "-o", out, *extra]) == 0
    printed = capsys.readouterr().out
    assert "check: max |exported - keras| = " in printed and f"wrote {out}" in printed
    _assert_same(keras.saving.load_model(src), run, out, shapes)
    assert not _leftovers(tmp_path)


def test_cli_unsupported_format_on_this_backend(model3d_file, tmp_path, capsys):
    """The one-line message names the backend and the format and says what to do."""
    combos = [("savedmodel", str(tmp_path / "sm")), ("onnx", str(tmp_path / "m.onnx"))]
    unsupported = [(f, o) for f, o in combos if unsupported_reason(f, BACKEND)]
    if BACKEND == "tensorflow":
        assert unsupported == []
        assert unsupported_reason("onnx", "jax") and unsupported_reason("savedmodel", "torch")
        return
    for fmt, out in unsupported:
        assert medresae_cli.main(["export", model3d_file, "-o", out, "--format", fmt]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("medresae: error: ") and "\n" not in err
        assert fmt in err and f"{BACKEND} backend" in err and "--backend tensorflow" in err
        assert not os.path.exists(out) and not _leftovers(tmp_path)


def test_cli_existing_output_is_kept_unless_overwrite(model3d_file, tmp_path, capsys):
    out, options = _supported_cli_args(tmp_path)
    fmt, out = options[1], tmp_path / os.path.basename(out)
    if fmt == "savedmodel":
        out.mkdir()
        (out / "keep.txt").write_text("keep me")
    else:
        out.write_bytes(b"keep me")
    args = ["export", model3d_file, "-o", str(out), *options]
    assert medresae_cli.main(args) == 2
    err = capsys.readouterr().err
    assert "already exists" in err and "--overwrite" in err
    kept = (out / "keep.txt").read_text() if fmt == "savedmodel" else out.read_bytes().decode()
    assert kept == "keep me" and not _leftovers(tmp_path)
    assert medresae_cli.main([*args, "--overwrite", "--no-check"]) == 0
    assert "check skipped" in capsys.readouterr().out
    run = _run_savedmodel if fmt == "savedmodel" else _run_onnx
    shape = (1, 8, 8, 4, 1)
    _assert_same(keras.saving.load_model(model3d_file), run, str(out), [shape])
    if fmt == "savedmodel":
        assert not (out / "keep.txt").exists()
    assert not _leftovers(tmp_path)


def test_cli_errors_are_one_line(model3d_file, tmp_path, capsys):
    out, options = _supported_cli_args(tmp_path / "missing")
    assert medresae_cli.main(["export", model3d_file, "-o", out, *options]) == 2
    err = capsys.readouterr().err.strip()
    assert "does not exist" in err and "\n" not in err and not os.path.exists(tmp_path / "missing")
    assert medresae_cli.main(["export", "-o", str(tmp_path / "x")]) == 2
    assert "pass MODEL.keras or --preset NAME" in capsys.readouterr().err
    assert medresae_cli.main(["export", str(tmp_path / "nope.keras"), "-o", str(tmp_path / "x")]) == 2
    assert "no such model file" in capsys.readouterr().err
    assert medresae_cli.main(["export", "--preset", "nope", "-o", str(tmp_path / "x")]) == 2
    assert "nope" in capsys.readouterr().err
    # argparse: unknown --format, one line too
    assert medresae_cli.main(["export", model3d_file, "-o", str(tmp_path / "x"), "--format", "tflite"]) == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'tflite'" in err and err.count("\n") == 1
    # A --shape that is not a multiple of the divisor (2, 2, 1).
    out, options = _supported_cli_args(tmp_path, spatial="7,8,4")
    options = options if "--shape" in options else [*options, "--shape", "7,8,4"]
    assert medresae_cli.main(["export", model3d_file, "-o", out, *options]) == 2
    assert "multiple of the model's spatial_divisor" in capsys.readouterr().err
    assert not _leftovers(tmp_path) and sorted(os.listdir(tmp_path)) == []


def test_python_errors(model2d, tmp_path):
    with pytest.raises(ValueError, match="`format` must be one of savedmodel, onnx. Received: format='tflite'"):
        export_model(model2d, str(tmp_path / "x"), format="tflite")
    with pytest.raises(ValueError, match="`shape` must be 2 positive ints"):
        export_model(model2d, str(tmp_path / "x"), shape=(8, 8, 8))
    fmt = "savedmodel" if SAVEDMODEL_OK else "onnx"
    with pytest.raises(InputFileError, match="does not exist"):
        export_model(model2d, str(tmp_path / "no" / "x"), format=fmt, shape=(8, 8))
    # A failed check publishes nothing and leaves no temporary files.
    out = str(tmp_path / ("sm" if fmt == "savedmodel" else "m.onnx"))
    with pytest.raises(ValueError, match="differs from the Keras model.*nothing was written"):
        export_model(model2d, out, format=fmt, shape=(8, 8), atol=-1.0)
    assert os.listdir(tmp_path) == []


def test_cli_exports_a_preset(tmp_path, capsys):
    from medresae.presets import preset_names

    if "brain-mr" not in preset_names():
        pytest.skip("the brain-mr preset is not shipped in this installation")
    out = str(tmp_path / ("brain.onnx" if BACKEND == "torch" else "brain_savedmodel"))
    model = keras.saving.load_model(__import__("medresae.presets", fromlist=["x"]).preset_path("brain-mr"))
    divisor = model.spatial_divisor
    shape = [d * max(1, 8 // d) for d in divisor]
    extra = ["--shape", ",".join(map(str, shape))] if BACKEND == "torch" else []
    assert medresae_cli.main(["export", "--preset", "brain-mr", "-o", out, *extra]) == 0
    printed = capsys.readouterr().out
    assert "check: max |exported - keras|" in printed and "normalised with" in printed
    run = _run_onnx if BACKEND == "torch" else _run_savedmodel
    _assert_same(model, run, out, [(1, *shape, model.input_shape[-1])])


def test_a_mixed_precision_model_is_exported_in_float32(model2d, tmp_path):
    mixed = model2d.with_dtype("mixed_float16")
    fmt, run = ("savedmodel", _run_savedmodel) if SAVEDMODEL_OK else ("onnx", _run_onnx)
    out = str(tmp_path / ("sm" if fmt == "savedmodel" else "m.onnx"))
    result = export_model(mixed, out, format=fmt, shape=(16, 12))
    assert result.max_abs_diff <= result.tolerance
    _assert_same(model2d, run, out, [(1, 16, 12, 1)])  # the float32 weights, unchanged
