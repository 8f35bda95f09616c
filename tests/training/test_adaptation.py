"""Self-supervised adaptation (Recorrupted-to-Recorrupted) of a preset to one scan."""

import keras
import nibabel as nib
import numpy as np
import pytest

import medresae_cli
from medresae.adaptation import adapt, keep_original_outside_foreground
from medresae.io import load_volume
from medresae.models import ResUNet
from medresae.noise import low_dose_ct, rician
from medresae.presets import load_preset
from medresae.sample_data import sample_path


@pytest.fixture(scope="module")
def noisy_scan(tmp_path_factory):
    """A Rician-noisy crop of the shipped brain scan (sigma known)."""
    image = nib.load(sample_path("brain_mr"))
    clean = image.get_fdata().astype("float32")[:64, :64, :8]
    sigma = 0.05 * float(np.percentile(clean, 99.5))
    path = tmp_path_factory.mktemp("adapt") / "noisy.nii.gz"
    nib.save(nib.Nifti1Image(rician(clean, sigma, rng=0), image.affine), str(path))
    return str(path), sigma


def _weights(model):
    return [np.array(w) for w in model.get_weights()]


def test_adapt_updates_the_weights_and_measures_sigma(noisy_scan):
    path, sigma = noisy_scan
    model = load_preset("brain-mr")
    before = _weights(model)
    adapted, info = adapt(model, path, steps=3, batch_size=2, verbose=0)
    assert adapted is model
    # Measured on the flat foreground voxels of the model's output, the estimate is within 6 % of the truth.
    assert info["noise_sigma"] == pytest.approx(sigma, rel=0.06)
    changed = any(not np.array_equal(a, b) for a, b in zip(before, _weights(model)))
    # The model changes exactly when a round beat the original on the check batches.
    if info["kept"] == "adapted":
        assert changed and info["check_loss_best"] < info["check_loss_start"]
    else:
        assert info["kept"] == "original" and not changed and info["check_loss_best"] == info["check_loss_start"]


def test_measured_sigma_leaves_edges_out_at_low_noise(tmp_path):
    from medresae.adaptation import _measured_sigma, _model_output
    from medresae.intensity import IntensityNormalizer
    from medresae.noise import estimate_noise_sigma

    image = nib.load(sample_path("brain_mr"))
    clean = image.get_fdata().astype("float32")[:64, :64, :8]
    sigma = 0.01 * float(np.percentile(clean, 99.5))
    path = str(tmp_path / "quiet.nii.gz")
    nib.save(nib.Nifti1Image(rician(clean, sigma, rng=0), image.affine), path)
    image, scan, signal = _model_output(load_preset("brain-mr"), path)
    normalizer = IntensityNormalizer("percentile").fit(scan)
    # At 1 % noise the brain's edges dominate a plain estimate in the foreground.
    assert estimate_noise_sigma(scan, scan > 0.1 * np.percentile(scan, 99.5)) > 1.15 * sigma
    measured = _measured_sigma(image, scan, signal, normalizer, "mr") * normalizer.scale()
    assert measured == pytest.approx(sigma, rel=0.08)


@pytest.fixture(scope="module")
def noisy_ct(tmp_path_factory):
    """The shipped chest CT crop with simulated low-dose noise (filtered back-projection: correlated)."""
    image = nib.load(sample_path("chest_ct"))
    clean = np.asarray(image.dataobj, np.float32)
    noisy = low_dose_ct(clean, i0=3e4, voxel_size_mm=float(image.header.get_zooms()[0]), rng=0)
    path = tmp_path_factory.mktemp("adapt-ct") / "noisy_ct.nii.gz"
    nib.save(nib.Nifti1Image(noisy, image.affine), str(path))
    return str(path), clean, noisy, image.affine


def test_ct_noise_is_measured_with_its_correlation(noisy_ct):
    from scipy import signal

    from medresae.adaptation import CT_NOISE_RADIUS, _measured_ct_noise, _model_output
    from medresae.intensity import IntensityNormalizer
    from medresae.noise.colour import noise_autocovariance

    path, clean, noisy, affine = noisy_ct
    image, scan, output = _model_output(load_preset("ct"), path)
    normalizer = IntensityNormalizer("window").fit(scan)
    sigma, kernel = _measured_ct_noise(image, scan, output, normalizer)
    # The truth, in the voxel order adaptation sees (RAS), inside the body.
    canonical = nib.as_closest_canonical(nib.Nifti1Image(np.stack([noisy - clean, clean], -1), affine))
    noise, body = np.asarray(canonical.dataobj)[..., 0], np.asarray(canonical.dataobj)[..., 1] > -500
    truth = noise_autocovariance(noise, body, CT_NOISE_RADIUS)
    centre = tuple(n // 2 for n in truth.shape)
    assert sigma * normalizer.scale() == pytest.approx(np.sqrt(truth[centre]), rel=0.15)
    # The noise that recorrupts the scan has the scan's correlation between neighbours.
    drawn = signal.correlate(kernel, kernel, mode="same")
    for lag in ((1, 0, 0), (0, 1, 0)):
        at = tuple(c + d for c, d in zip(centre, lag))
        assert truth[at] / truth[centre] > 0.1
        assert drawn[at] == pytest.approx(truth[at] / truth[centre], abs=0.05)


def test_adapt_runs_on_ct_without_a_warning(noisy_ct):
    import warnings

    model = load_preset("ct")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, info = adapt(model, noisy_ct[0], steps=2, batch_size=2, checks=1, validation_batches=2, verbose=0)
    # The backends' own deprecation notices may come; none from adapt about CT.
    assert not [w for w in caught if "CT" in str(w.message)]
    assert info["kept"] in ("adapted", "original") and info["noise_sigma"] > 0


def test_adapt_keeps_the_original_when_no_round_beats_the_check_noise():
    from medresae.adaptation import _KeepBest

    # One weight w; check batch b has loss (w - c_b)^2, so the per-batch losses of any w are known.
    model = keras.Sequential([keras.Input((1, 1, 1, 1)), keras.layers.Conv3D(1, 1, use_bias=False)])

    def one_round(targets, w):
        check = [(np.ones((1, 1, 1, 1, 1), "float32"), np.full((1, 1, 1, 1, 1), c, "float32")) for c in targets]
        model.set_weights([np.ones((1, 1, 1, 1, 1), "float32")])
        keep = _KeepBest(check)
        keep.set_model(model)
        keep.start(model)
        model.set_weights([np.full((1, 1, 1, 1, 1), w, "float32")])
        keep.on_epoch_end(0)
        keep.on_train_end()
        return float(model.get_weights()[0].ravel()[0]), keep

    # w = 1.1 lowers the mean check loss, but two batches get better and two worse: within the noise.
    targets = np.array([0.2, 1.95, 0.5, 1.6])
    gain = np.square(1.0 - targets) - np.square(1.1 - targets)
    assert 0 < gain.mean() < 2 * gain.std(ddof=1) / np.sqrt(gain.size)
    kept, keep = one_round(targets, 1.1)
    assert kept == 1.0 and keep.best == keep.initial
    # Every batch gets better, beyond the noise: the round is kept.
    kept, keep = one_round([1.5, 1.6, 1.4, 1.55], 1.1)
    assert kept == pytest.approx(1.1) and keep.best < keep.initial

def test_adapt_takes_a_given_sigma_and_in_memory_volumes(noisy_scan):
    path, sigma = noisy_scan
    volume = load_volume(path)
    model, info = adapt(load_preset("brain-mr"), volume.array[..., 0], steps=2, batch_size=2, noise_sigma=sigma,
                        verbose=0)
    assert info["noise_sigma"] == pytest.approx(sigma)
    assert info["noise_sigma_normalized"] < info["noise_sigma"]  # scaled into the model's units
    out = model.predict(np.zeros((1, 16, 16, 8, 1), "float32"), verbose=0)
    assert out.shape == (1, 16, 16, 8, 1)


def test_check_alpha_sets_the_strength_of_the_check_batches(noisy_scan):
    path, sigma = noisy_scan
    kwargs = dict(steps=1, batch_size=2, noise_sigma=sigma, verbose=0)
    _, default = adapt(load_preset("brain-mr"), path, **kwargs)
    _, weak = adapt(load_preset("brain-mr"), path, check_alpha=0.25, **kwargs)
    # The check targets carry the scan's noise plus z / alpha: (1 + 16) against (1 + 4) sigma^2.
    assert 2.0 < weak["check_loss_start"] / default["check_loss_start"] < 4.5
    with pytest.raises(ValueError, match="check_alpha"):
        adapt(load_preset("brain-mr"), path, check_alpha=0.0, **kwargs)


def test_rician_targets_take_the_noise_floor_out(noisy_scan, tmp_path):
    from medresae.adaptation import _model_output, _rician_targets
    from medresae.inference import denoise

    path, sigma = noisy_scan
    model = load_preset("brain-mr")
    scan = load_volume(path).array[..., 0]
    signal = np.maximum(denoise(model, scan[..., None], progress=False)[..., 0], 0)
    image, raw, output = _model_output(model, path)
    np.testing.assert_allclose(output, signal, atol=1e-6)
    base_path, scale_path = _rician_targets(image, raw, output, sigma, str(tmp_path))
    base, scale = nib.load(base_path).get_fdata(), nib.load(scale_path).get_fdata()
    dark, bright = signal < 0.5 * sigma, signal > 8 * sigma
    assert dark.mean() > 0.05 and bright.mean() > 0.05
    # The raw background sits about 1.25 sigma above the model's output; the base sits on it.
    assert scan[dark].mean() - signal[dark].mean() > sigma
    assert abs(base[dark].mean() - signal[dark].mean()) < 0.2 * sigma
    assert np.all(np.abs((base - scan)[bright]) < 0.07 * sigma)  # tissue: almost no correction
    # The recorruption noise follows the local Rician spread: 0.66 sigma with no signal, sigma in tissue.
    assert np.median(scale[dark]) == pytest.approx(np.sqrt(2 - np.pi / 2), abs=0.03)
    assert np.median(scale[bright]) == pytest.approx(1.0, abs=0.01)


def test_adapt_does_not_put_the_noise_floor_back(noisy_scan):
    from medresae.inference import denoise

    path, sigma = noisy_scan
    scan = load_volume(path).array
    model = load_preset("brain-mr")
    before = denoise(model, scan, progress=False)
    _, info = adapt(model, path, steps=8, batch_size=2, checks=1, learning_rate=1e-3, verbose=0)
    after = denoise(model, scan, progress=False)
    dark = before < 0.5 * sigma
    # Targets built from the raw magnitude lifted this background by about one sigma in a few steps.
    assert info["kept"] == "original" or abs(after[dark].mean() - before[dark].mean()) < 0.2 * sigma


def test_adapt_is_seeded(noisy_scan):
    import random

    path, _ = noisy_scan
    state = random.getstate()
    preset = load_preset("brain-mr")
    first = _weights(adapt(preset, path, steps=2, batch_size=2, seed=3, verbose=0)[0])
    assert random.getstate() == state  # the seed is the call's own, not the process's
    second = _weights(adapt(load_preset("brain-mr"), path, steps=2, batch_size=2, seed=3, verbose=0)[0])
    for a, b in zip(first, second):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_adapt_rejects_2d_models_and_bad_volumes(noisy_scan):
    path, _ = noisy_scan
    model_2d = ResUNet(spatial_dims=2, filters=(4, 8), n_blocks=1)
    with pytest.raises(ValueError, match="3D model"):
        adapt(model_2d, path, steps=1)
    with pytest.raises(ValueError, match="3D scan"):
        adapt(load_preset("brain-mr"), np.zeros((8, 8), "float32"), steps=1)
    with pytest.raises(ValueError, match="steps"):
        adapt(load_preset("brain-mr"), path, steps=0)
    bad = np.ones((32, 32, 8), "float32")
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        adapt(load_preset("brain-mr"), bad, steps=1)


def test_cli_denoise_with_adapt(noisy_scan, tmp_path, capsys):
    path, _ = noisy_scan
    out = tmp_path / "out.nii.gz"
    code = medresae_cli.main(["denoise", path, "-o", str(out), "--preset", "brain-mr", "--adapt",
                              "--adapt-steps", "2"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "adapting the model" in printed and "noise sigma" in printed
    result = nib.load(str(out))
    assert result.shape == nib.load(path).shape
    assert np.all(np.isfinite(result.get_fdata()))


def _head_phantom():
    """A bright ellipsoid 'head' in a dark background, with a darker 'ventricle' inside."""
    grid = np.mgrid[:40, :40, :10].astype("float32")
    head = ((grid[0] - 20) / 13) ** 2 + ((grid[1] - 20) / 11) ** 2 + ((grid[2] - 5) / 6) ** 2 < 1
    original = np.where(head, 100.0, 2.0).astype("float32")
    original[18:22, 18:22, 4:6] = 30.0
    return original, head


def test_keep_original_outside_foreground_blends_at_the_edge_only():
    original, head = _head_phantom()
    adapted = original + 7.0
    out = keep_original_outside_foreground(adapted, original)
    assert out.dtype == np.float32 and out.shape == original.shape
    # Deep inside (the dark ventricle included: holes are filled) the adapted output; far outside the original.
    assert out[20, 20, 5] == pytest.approx(37.0) and out[20, 14, 5] == pytest.approx(107.0)
    assert out[0, 0, 0] == pytest.approx(2.0) and out[39, 39, 9] == pytest.approx(2.0)
    # Across the edge the output moves between the two, never outside them.
    assert np.all(out >= original - 1e-4) and np.all(out <= adapted + 1e-4)
    assert np.any((out > original + 0.5) & (out < adapted - 0.5))
    # edge=0 switches at the mask; a channel axis is kept.
    hard = keep_original_outside_foreground(adapted[..., None], original[..., None], edge=0)
    assert hard.shape == (40, 40, 10, 1)
    np.testing.assert_array_equal(hard[..., 0], np.where(head, adapted, original))
    with pytest.raises(ValueError, match="same shape"):
        keep_original_outside_foreground(adapted[:-1], original)
    with pytest.raises(ValueError, match="edge"):
        keep_original_outside_foreground(adapted, original, edge=-1)


def test_cli_adapt_changes_the_output_inside_the_foreground_only(noisy_scan, tmp_path, capsys):
    from scipy import ndimage

    from medresae.metrics import foreground_mask

    path, _ = noisy_scan
    # An untrained model: adaptation is sure to beat it on the check batches.
    model_path = str(tmp_path / "untrained.keras")
    ResUNet(spatial_dims=3, filters=(4, 8), n_blocks=1).save(model_path)
    outs = {}
    for name, extra in (("plain", []), ("adapted", ["--adapt", "--adapt-steps", "20"])):
        outs[name] = tmp_path / f"{name}.nii.gz"
        assert medresae_cli.main(["denoise", path, "-o", str(outs[name]), "--model", model_path, "--no-guard",
                                  *extra]) == 0
    assert "kept the adapted model" in capsys.readouterr().out
    plain, adapted = (nib.load(str(outs[k])).get_fdata() for k in ("plain", "adapted"))
    body = foreground_mask(plain)
    outside = ~ndimage.binary_dilation(body, iterations=4)
    assert outside.sum() > 1000 and body.sum() > 1000
    np.testing.assert_allclose(adapted[outside], plain[outside], rtol=1e-3, atol=1e-2 * np.abs(plain).max())
    inside = ndimage.binary_erosion(body, iterations=3)
    assert np.abs(adapted[inside] - plain[inside]).mean() > 10 * np.abs(adapted[outside] - plain[outside]).mean()
    keras.backend.clear_session()


def test_cli_adapt_options_need_adapt(noisy_scan, tmp_path, capsys):
    path, _ = noisy_scan
    out = tmp_path / "out.nii.gz"
    assert medresae_cli.main(["denoise", path, "-o", str(out), "--preset", "brain-mr", "--noise-sigma", "3"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--adapt" in err and "\n" not in err
    assert medresae_cli.main(["denoise", path, "-o", str(out), "--preset", "brain-mr", "--adapt",
                              "--adapt-steps", "0"]) == 2
    assert "--adapt-steps" in capsys.readouterr().err
    assert not out.exists()
    keras.backend.clear_session()
