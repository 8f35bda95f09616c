"""BioImage Model Zoo packages of the presets: valid, and their weights reproduce the Keras model."""

import zipfile

import numpy as np
import pytest
from conftest import BACKEND

import medresae_cli

pytest.importorskip("bioimageio.spec", reason="pip install 'medresae[bmz]'")


@pytest.mark.skipif(BACKEND != "tensorflow", reason="BMZ packages hold TF and ONNX weights, written on TensorFlow")
@pytest.mark.parametrize("preset", ["brain-mr", "ct"])
def test_preset_package_passes_the_model_zoo_test(preset, tmp_path, capsys, monkeypatch):
    from bioimageio.core import test_model

    monkeypatch.chdir(tmp_path)  # bioimageio.core unpacks TensorFlow weights into the working directory

    path = tmp_path / f"{preset}.zip"
    assert medresae_cli.main(["export", "--preset", preset, "-o", str(path)]) == 0
    assert "BioImage Model Zoo package" in capsys.readouterr().out
    with zipfile.ZipFile(path) as package:
        names = set(package.namelist())
        assert {"rdf.yaml", "model.onnx", "tf_saved_model.zip", "test_input.npy", "test_output.npy", "cover.png",
                "README.md"} <= names
        rdf = package.read("rdf.yaml").decode()
    # The scaling medresae applies, stated as the package's processing.
    if preset == "ct":
        assert rdf.count("id: scale_linear") == 2
    else:
        assert "id: scale_range" in rdf and "max_percentile: 99.5" in rdf
    # bioimageio.core runs both weight formats on the test input (pre- and post-processing included) and on
    # other valid sizes and batch sizes.
    summary = test_model(str(path))
    failed = [(d.name, [e.msg for e in d.errors]) for d in summary.details if d.status != "passed"]
    assert summary.status == "passed", failed
    names = " ".join(d.name for d in summary.details)
    assert "(onnx)" in names and "(tensorflow_saved_model_bundle)" in names
    # The test output is the Keras model's own output for the test input, with the package's processing.
    from medresae.bmz import default_test_input
    from medresae.presets import load_preset

    model = load_preset(preset)
    x = default_test_input(model)
    with zipfile.ZipFile(path) as package:
        np.testing.assert_array_equal(np.load(package.open("test_input.npy")), x)
        output = np.load(package.open("test_output.npy"))
    if preset == "ct":
        expected = model.predict_on_batch((x + 1024.0) / 4095.0) * 4095.0 - 1024.0
    else:
        low, high = np.percentile(x, (0.0, 99.5))
        expected = model.predict_on_batch((x - low) / (high - low + 1e-6))
    np.testing.assert_allclose(output, expected, rtol=1e-5, atol=1e-4)


@pytest.mark.skipif(BACKEND == "tensorflow", reason="checks the message on the other backends")
def test_bmz_export_names_the_backend_to_use(tmp_path, capsys):
    assert medresae_cli.main(["export", "--preset", "ct", "-o", str(tmp_path / "ct.zip")]) == 2
    message = capsys.readouterr().err.strip()
    assert message.endswith("pass --backend tensorflow") and "\n" not in message
    assert not (tmp_path / "ct.zip").exists()
