"""medresae_napari.compute: what the napari widget computes, on every backend, without napari."""

import keras
import nibabel as nib
import numpy as np
import pytest

from medresae.inference import denoise
from medresae.mean_restoration import restore_local_mean
from medresae.metrics import psnr
from medresae.noise import low_dose_ct, rician
from medresae.presets import load_preset
from medresae.sample_data import sample_path
from medresae_napari.compute import denoise_layer_data


def _layer(sigma=0.05):
    """A real thick-slice scan as napari shows it: (Z, Y, X), slices along the first axis."""
    clean = np.asarray(nib.load(sample_path("brain_mr_heldout")).dataobj, np.float32)[:64, :64]
    noisy = rician(clean, sigma * float(np.percentile(clean, 99.5)), rng=0)
    return np.moveaxis(clean, -1, 0), np.moveaxis(noisy, -1, 0)


def test_denoises_a_layer_like_denoise_with_the_slice_axis_moved_last():
    clean, noisy = _layer()
    model = load_preset("brain-mr")
    calls = []
    result = denoise_layer_data(noisy, model, progress=lambda *args: calls.append(args))
    assert result.data.shape == noisy.shape and result.data.dtype == np.float32
    expected = denoise(model, np.moveaxis(noisy, 0, -1)[..., None], progress=False)[..., 0]
    np.testing.assert_allclose(result.data, np.moveaxis(expected, -1, 0), atol=1e-5)
    assert psnr(clean, result.data, mask="auto") > psnr(clean, noisy, mask="auto") + 2.0
    assert result.report is not None and result.report.ok and not result.harmful
    assert result.adapt_info is None
    phases, done, total = zip(*calls)
    assert set(phases) == {"denoising"} and list(done) == list(range(1, total[0] + 1)) and total[-1] == done[-1]


def test_a_model_that_erases_the_scan_is_reported_harmful():
    _, noisy = _layer()
    eraser = keras.Sequential([keras.Input((None, None, None, 1)),
                               keras.layers.Conv3D(1, 1, kernel_initializer="zeros", bias_initializer="zeros")])
    result = denoise_layer_data(noisy, eraser, tile=32)
    assert result.harmful and "not trained" in result.report.message()


@pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                    reason="adaptation itself is tested on every backend in tests/training/test_adaptation.py; "
                    "this checks the widget's use of it, which does not depend on the backend")
def test_adaptation_runs_first_and_reports_its_steps():
    _, noisy = _layer()
    calls = []
    result = denoise_layer_data(noisy[:, :32, :32], load_preset("brain-mr"), adapt_steps=2,
                                progress=lambda *args: calls.append(args))
    assert result.adapt_info["kept"] in ("adapted", "original")
    adapting = [c for c in calls if c[0] == "adapting"]
    assert [c[1] for c in adapting] == [1, 2] and adapting[-1][2] == 2
    assert calls[-1][0] == "denoising"  # after adaptation


def test_a_ct_layer_gets_its_local_mean_back_over_its_own_voxel_sizes():
    image = nib.load(sample_path("chest_ct"))
    zooms = tuple(float(z) for z in image.header.get_zooms()[:3])
    noisy = low_dose_ct(np.asarray(image.dataobj, np.float32), 1e4, voxel_size_mm=zooms[0], rng=0)
    model = load_preset("ct")
    layer = np.moveaxis(noisy, -1, 0).astype(np.float32)  # (Z, Y, X)
    result = denoise_layer_data(layer, model, voxel_sizes=(zooms[2], zooms[1], zooms[0]))
    plain = denoise(model, noisy[..., None], normalize="window", progress=False)
    expected = restore_local_mean(noisy[..., None], plain, zooms)
    np.testing.assert_allclose(result.data, np.moveaxis(expected[..., 0], -1, 0), atol=1e-3)
    with pytest.raises(ValueError, match="scale must hold 3 positive voxel sizes"):
        denoise_layer_data(layer, model, voxel_sizes=(1.0, 1.0))


@pytest.mark.parametrize(("data", "match"), [
    (np.zeros((32, 32), np.float32), "must be 3D .* 2 dimensions"),
    (np.zeros((2, 8, 32, 32), np.float32), "must be 3D .* 4 dimensions"),
    (np.zeros((8, 32, 32), np.complex64), "real numbers"),
])
def test_rejects_layers_it_cannot_denoise(data, match):
    with pytest.raises(ValueError, match=match):
        denoise_layer_data(data, load_preset("brain-mr"))
