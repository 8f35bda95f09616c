"""The napari widget, headless: a real napari viewer model and Qt widgets on the offscreen platform."""

import os
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before Qt loads: no display needed

import pytest  # noqa: E402

try:  # Qt's GUI library needs system libraries (libEGL, libfontconfig, libxkbcommon, libdbus) even offscreen
    from qtpy.QtWidgets import QApplication
except ImportError as err:  # pragma: no cover - depends on the machine
    pytest.skip(f"Qt cannot load here ({err}); on Debian/Ubuntu: apt-get install libegl1 libfontconfig1 "
                "libxkbcommon0 libdbus-1-3", allow_module_level=True)

import keras  # noqa: E402
import nibabel as nib  # noqa: E402
import npe2  # noqa: E402
import numpy as np  # noqa: E402
from napari.components import ViewerModel  # noqa: E402

from medresae.noise import rician  # noqa: E402
from medresae.presets import load_preset  # noqa: E402
from medresae.sample_data import sample_path  # noqa: E402
from medresae_napari.compute import denoise_layer_data  # noqa: E402
from medresae_napari.widget import MODEL_FILE, DenoiseWidget  # noqa: E402


@pytest.fixture(scope="module")
def qapp():
    return QApplication.instance() or QApplication([])


@pytest.fixture
def viewer(qapp):
    clean = np.asarray(nib.load(sample_path("brain_mr_heldout")).dataobj, np.float32)[:64, :64]
    noisy = np.moveaxis(rician(clean, 0.05 * float(np.percentile(clean, 99.5)), rng=0), -1, 0)
    viewer = ViewerModel()
    viewer.add_image(noisy, name="scan", scale=(6.5, 0.78125, 0.78125), translate=(10.0, -3.0, 2.0),
                     contrast_limits=(0.0, float(noisy.max())), metadata={"source": "test"})
    return viewer


def _wait(widget, seconds=120):
    """Runs Qt's event loop until the widget's run has finished (its Denoise button is enabled again):
    the worker's signals are delivered on this thread."""
    deadline = time.monotonic() + seconds
    while not widget._run.enabled and time.monotonic() < deadline:
        QApplication.processEvents()
        time.sleep(0.01)
    assert widget._run.enabled, "the run did not finish"


def test_manifest_offers_the_widget_to_napari():
    manager = npe2.PluginManager.instance()
    manager.discover()
    manifest = manager.get_manifest("medresae")
    [widget] = manifest.contributions.widgets
    [command] = [c for c in manifest.contributions.commands if c.id == widget.command]
    assert command.python_name == "medresae_napari.widget:DenoiseWidget"


def test_denoises_the_selected_layer_into_a_new_layer_in_the_same_place(viewer):
    widget = DenoiseWidget(viewer)
    source = viewer.layers["scan"]
    assert widget._image.value is source  # the active layer is preselected
    widget._tta.value = False
    assert widget.run() is not None
    _wait(widget)
    assert [layer.name for layer in viewer.layers] == ["scan", "scan denoised"]
    out = viewer.layers["scan denoised"]
    expected = denoise_layer_data(source.data, load_preset("brain-mr")).data
    np.testing.assert_allclose(out.data, expected, atol=1e-5)
    np.testing.assert_allclose(out.scale, source.scale)
    np.testing.assert_allclose(out.translate, source.translate)
    np.testing.assert_allclose(out.affine.affine_matrix, source.affine.affine_matrix)
    assert tuple(out.contrast_limits) == tuple(source.contrast_limits)
    assert out.metadata["source"] == "test" and out.metadata["medresae"]["model"] == "brain-mr"
    assert widget._run.enabled and not widget._progress.visible
    assert "done in" in widget._status.value
    assert widget._image.value is source  # the new layer does not become the next run's input


def test_a_harmful_output_adds_no_layer_unless_the_guard_is_off(viewer, tmp_path):
    eraser = keras.Sequential([keras.Input((None, None, None, 1)),
                               keras.layers.Conv3D(1, 1, kernel_initializer="zeros", bias_initializer="zeros")])
    path = tmp_path / "eraser.keras"
    eraser.save(path)
    widget = DenoiseWidget(viewer)
    widget._model.value = MODEL_FILE
    assert not widget._file.native.isHidden()  # shown once a model file is asked for
    widget._file.value = path
    widget.run()
    _wait(widget)
    assert len(viewer.layers) == 1 and "added no layer" in widget._status.value
    widget._guard.value = False
    widget.run()
    _wait(widget)
    assert [layer.name for layer in viewer.layers] == ["scan", "scan denoised"]


def test_invalid_choices_say_what_to_do_and_start_nothing(viewer):
    viewer.add_image(np.zeros((32, 32), np.float32), name="slice")
    widget = DenoiseWidget(viewer)
    assert widget._image.value is viewer.layers["slice"]
    assert widget.run() is None and "2D; the widget denoises 3D layers" in widget._status.value
    widget._image.value = viewer.layers["scan"]
    widget._model.value = MODEL_FILE
    assert widget.run() is None and "model file: choose a .keras file" in widget._status.value
    assert len(viewer.layers) == 2


def test_a_model_file_that_fails_to_load_is_reported(viewer, tmp_path):
    bad = tmp_path / "not_a_model.keras"
    bad.write_text("not a zip")
    widget = DenoiseWidget(viewer)
    widget._model.value = MODEL_FILE
    widget._file.value = bad
    widget.run()
    _wait(widget)
    assert str(bad) in widget._status.value and len(viewer.layers) == 1 and widget._run.enabled
