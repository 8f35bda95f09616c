"""medresae.mean_restoration: a denoised CT scan gets back its noisy input's local mean."""

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from medresae.mean_restoration import default_sigma_mm, restore_local_mean
from medresae.metrics import foreground_mask, psnr
from medresae.noise import low_dose_ct
from medresae.sample_data import sample_path


@pytest.fixture(scope="module")
def chest():
    image = nib.load(sample_path("chest_ct"))
    clean = np.asarray(image.dataobj, np.float32)
    noisy = low_dose_ct(clean, 1e4, voxel_size_mm=float(image.header.get_zooms()[0]), rng=0).astype(np.float32)
    return clean, noisy, tuple(float(z) for z in image.header.get_zooms()[:3])


def test_a_biased_denoiser_gets_the_body_mean_back(chest):
    clean, noisy, zooms = chest
    body = foreground_mask(clean)
    # An in-plane smoothing denoiser that also darkens the body by 12 HU.
    biased = (ndimage.gaussian_filter(noisy, (1.0, 1.0, 0.0)) - 12.0 * body).astype(np.float32)
    restored = restore_local_mean(noisy, biased, zooms)
    before = float(np.mean(biased[body] - clean[body]))
    after = float(np.mean(restored[body] - clean[body]))
    noisy_bias = float(np.mean(noisy[body] - clean[body]))
    assert before < -10.0
    assert abs(after - noisy_bias) < 1.5, (before, after, noisy_bias)
    assert psnr(clean, restored, mask=body) > psnr(clean, biased, mask=body) + 1.0
    # Outside the body the denoised scan is untouched.
    outside = ~foreground_mask(biased)
    np.testing.assert_array_equal(restored[outside], biased[outside])


def test_an_unbiased_denoiser_keeps_its_quality(chest):
    clean, noisy, zooms = chest
    body = foreground_mask(clean)
    smoothed = ndimage.gaussian_filter(noisy, (1.0, 1.0, 0.0))
    restored = restore_local_mean(noisy, smoothed, zooms)
    # The restored low frequencies of the noise cost little.
    assert psnr(clean, restored, mask=body) > psnr(clean, smoothed, mask=body) - 0.1


def test_channels_mask_and_sigma(chest):
    clean, noisy, zooms = chest
    denoised = clean - 5.0
    stacked = restore_local_mean(noisy[..., None], denoised[..., None], zooms)
    np.testing.assert_allclose(stacked[..., 0], restore_local_mean(noisy, denoised, zooms), atol=1e-4)
    # A wider Gaussian averages the noise over more voxels: closer to the +5 HU shift everywhere.
    mask = np.ones(clean.shape, bool)
    wide = restore_local_mean(noisy, denoised, zooms, sigma_mm=40.0, mask=mask) - denoised
    narrow = restore_local_mean(noisy, denoised, zooms, sigma_mm=2.0, mask=mask) - denoised
    assert np.std(wide) < np.std(narrow)
    assert abs(float(np.mean(wide)) - 5.0) < 1.0


def test_bad_arguments(chest):
    clean, noisy, zooms = chest
    with pytest.raises(ValueError, match="same shape"):
        restore_local_mean(noisy, clean[:-1], zooms)
    with pytest.raises(ValueError, match="sigma_mm"):
        restore_local_mean(noisy, clean, zooms, sigma_mm=0)
    with pytest.raises(ValueError, match="voxel_sizes"):
        restore_local_mean(noisy, clean, (1.0,))
    with pytest.raises(ValueError, match="voxel_sizes"):
        restore_local_mean(noisy, clean, (1.0, 0.0, 1.0))
    with pytest.raises(ValueError, match="mask"):
        restore_local_mean(noisy, clean, zooms, mask=np.ones((3, 3, 3), bool))


def test_default_is_on_for_ct_presets_only():
    from medresae.presets import load_preset

    assert default_sigma_mm(load_preset("ct")) == 5.0
    assert default_sigma_mm(load_preset("brain-mr")) == 0.0


def test_denoise_command_restores_ct_means_by_default(chest, tmp_path, capsys):
    import medresae_cli

    clean, noisy, zooms = chest
    src = tmp_path / "noisy.nii.gz"
    nib.save(nib.Nifti1Image(noisy, np.diag([*zooms, 1.0])), str(src))
    default, plain = tmp_path / "default.nii.gz", tmp_path / "plain.nii.gz"
    assert medresae_cli.main(["denoise", str(src), "-o", str(default), "--preset", "ct"]) == 0
    assert medresae_cli.main(["denoise", str(src), "-o", str(plain), "--preset", "ct", "--restore-mean", "0"]) == 0
    default, plain = (np.asarray(nib.load(str(p)).dataobj, np.float32) for p in (default, plain))
    np.testing.assert_allclose(default, restore_local_mean(noisy, plain, zooms), atol=1e-3)
    body = foreground_mask(clean)
    assert abs(np.mean(default[body] - clean[body])) <= abs(np.mean(plain[body] - clean[body]))
    capsys.readouterr()
    assert medresae_cli.main(["denoise", str(src), "-o", str(tmp_path / "x.nii.gz"), "--preset", "ct",
                              "--restore-mean", "-1"]) == 2
    assert "--restore-mean" in capsys.readouterr().err
    assert not (tmp_path / "x.nii.gz").exists()
