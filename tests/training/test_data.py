"""PatchDataset: MONAI pipelines from NIfTI folders into model.fit on this backend."""

import gzip
import os

import keras
import nibabel as nib
import numpy as np
import pytest
from conftest import BACKEND

from medresae.bench.data import loader_throughput
from medresae.data import PatchDataset
from medresae.errors import InputFileError
from medresae.losses import masked_mse
from medresae.models import ResUNet
from medresae.noise import rician
from medresae.sample_data import sample_path
from medresae.splits import split_by_volume

# Small patches everywhere; JAX's CPU 3D convolutions are slow.
PATCH = (16, 16, 4)


def _crop_like(path, out, crop=(slice(0, 48), slice(0, 40), slice(0, 8)), transform=None, seed=0):
    img = nib.load(path)
    data = np.asarray(img.dataobj, dtype=np.float32)[crop]
    if transform is not None:
        data = transform(data, seed)
    header = img.header.copy()
    header.set_data_dtype(np.float32)
    nib.save(nib.Nifti1Image(data, img.affine, header), out)
    return str(out)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A folder of real NIfTI crops (shipped brain MR and chest CT) with noisy versions."""
    root = tmp_path_factory.mktemp("volumes")
    brain = sample_path("brain_mr")
    noisy = lambda x, seed: rician(x, 0.05 * np.percentile(x, 99.5), rng=seed)  # noqa: E731
    files = {
        "clean": [_crop_like(brain, root / "clean0.nii.gz"),
                  _crop_like(brain, root / "clean1.nii.gz", crop=(slice(60, 108), slice(50, 90), slice(6, 14)))],
        "noisy_a": _crop_like(brain, root / "noisy_a.nii.gz", transform=noisy, seed=1),
        "noisy_b": _crop_like(brain, root / "noisy_b.nii.gz", transform=noisy, seed=2),
        "ct": _crop_like(sample_path("chest_ct"), root / "ct.nii.gz"),
    }
    return files


def _fit(ds, loss="mse"):
    model = ResUNet(spatial_dims=3, filters=(4, 8), n_blocks=1, strides=(2, 2, 1))
    model.compile(optimizer="adam", loss=loss)
    history = model.fit(ds, epochs=1, steps_per_epoch=2, verbose=0)
    assert np.isfinite(history.history["loss"][-1])
    return model


@pytest.mark.parametrize("kind", ["synthetic", "pairs", "noise2noise", "noise2void", "recorrupted"])
def test_each_dataset_kind_feeds_fit(kind, folder):
    volumes = {
        "synthetic": folder["clean"],
        "pairs": [(folder["noisy_a"], folder["clean"][0])],
        "noise2noise": [(folder["noisy_a"], folder["noisy_b"])],
        "noise2void": [folder["noisy_a"]],
        "recorrupted": [folder["noisy_a"]],
    }[kind]
    ds = PatchDataset(kind, volumes, PATCH, batch_size=2, noise="rician:0.02-0.08", seed=0)
    x, y = ds[0]
    assert x.shape == (2, *PATCH, 1) and x.dtype == np.float32
    assert y.shape == (2, *PATCH, 2 if kind == "noise2void" else 1)
    _fit(ds, loss=masked_mse if kind == "noise2void" else "mse")


def test_recorrupted_measures_each_volume_noise(folder):
    ds = PatchDataset("recorrupted", [folder["noisy_a"], folder["clean"][0]], PATCH, batch_size=2, seed=0)
    noisy_sigma, clean_sigma = ds.noise_sigmas()
    # noisy_a has Rician noise of 5 % of the 99.5th percentile, which maps to about 0.05 after scaling.
    assert 0.035 < noisy_sigma < 0.065 and clean_sigma < noisy_sigma
    given = PatchDataset("recorrupted", [folder["noisy_a"]], PATCH, batch_size=2, noise_sigma=0.02)
    assert given.noise_sigmas() == [0.02]
    with pytest.raises(ValueError, match="recorrupted"):
        PatchDataset("noise2void", [folder["noisy_a"]], PATCH).noise_sigmas()


def test_ct_synthetic_low_dose_feeds_fit(folder):
    ds = PatchDataset("synthetic", [folder["ct"]], PATCH, batch_size=2, noise="ct:2e4-1e5", modality="ct")
    x, y = ds[0]
    assert 0.0 < float(np.std(x - y)) < 0.05  # noise in window units
    _fit(ds)


def test_noise_is_added_on_the_fly_with_random_level(folder):
    ds = PatchDataset("synthetic", folder["clean"], (24, 24, 4), batch_size=4, noise="gaussian:0.02-0.1",
                      augment=False)
    x, y = ds[0]
    stds = [float(np.std(x[i] - y[i])) for i in range(4)]
    assert all(0.015 < s < 0.11 for s in stds) and np.ptp(stds) > 0.005


def test_noise_weighting_balances_noise_levels(folder):
    ds = PatchDataset("synthetic", folder["clean"], (24, 24, 4), batch_size=4, noise=["gaussian:0.01", "gaussian:0.1"],
                      augment=False, weighting="noise", seed=3)
    x, y, weights = ds[0]
    assert weights.shape == (4, 1, 1, 1) and weights.dtype == np.float32
    w = weights.ravel()
    np.testing.assert_allclose(w, 1 / np.mean((x - y) ** 2, axis=(1, 2, 3, 4)), rtol=1e-5)
    # With the weights, the noisy input itself scores 1 at every level: each level counts the same.
    np.testing.assert_allclose(w * np.mean((x - y) ** 2, axis=(1, 2, 3, 4)), 1.0, rtol=1e-5)
    assert w.max() / w.min() > 50  # levels 10x apart: weights 100x apart
    # Keras' weighted MSE is the mean over patches of (error power / noise power), on every backend;
    # the patch's last axis (4) equals the batch (4), so weights matched to the wrong axis would show.
    model = _fit(ds)
    predicted = np.asarray(model.predict(x, verbose=0))
    expected = np.mean(np.mean((predicted - y) ** 2, axis=(1, 2, 3, 4)) * w)
    model.compile(loss="mse")
    assert float(model.evaluate(x, y, sample_weight=weights, verbose=0)) == pytest.approx(expected, rel=1e-4)


def test_amplitude_weighting_is_the_square_root(folder):
    kwargs = dict(kind="synthetic", volumes=folder["clean"], patch_size=(24, 24, 4), batch_size=4,
                  noise=["gaussian:0.01", "gaussian:0.1"], augment=False, seed=3)
    x, y, power = PatchDataset(weighting="noise", **kwargs)[0]
    x2, y2, amplitude = PatchDataset(weighting="amplitude", **kwargs)[0]
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_allclose(amplitude, np.sqrt(power), rtol=1e-6)
    assert 5 < amplitude.max() / amplitude.min() < 20  # levels 10x apart: weights 10x apart


def test_recorrupted_tuples_carry_a_base_and_an_unscaled_noise_map(folder, tmp_path):
    image = nib.load(folder["clean"][0])
    noisy = image.get_fdata().astype("float32")
    paths = []
    for name, array in (("base", noisy - 0.1 * noisy.max()), ("scale", np.full(noisy.shape, 0.5, "float32"))):
        paths.append(str(tmp_path / f"{name}.nii.gz"))
        nib.save(nib.Nifti1Image(array, image.affine), paths[-1])
    kwargs = dict(kind="recorrupted", patch_size=PATCH, batch_size=4, noise_sigma=0.05, augment=False, seed=2)
    x, t = PatchDataset(volumes=[folder["clean"][0]], **kwargs)[0]
    x2, t2 = PatchDataset(volumes=[(folder["clean"][0], *paths)], **kwargs)[0]
    z = (x - t) / (0.5 + 1 / 0.5)  # x = y + 0.5 z, t = y - z / 0.5
    y = x - 0.5 * z  # the patch before recorruption
    # Same patches and z; z is halved by the map (not rescaled), and the target is built on
    # the base, which is lowered by 0.1 of the maximum (rescaled with the image).
    np.testing.assert_allclose(x2 - y, 0.5 * 0.5 * z, atol=1e-5)
    offset = y - 0.5 * z / 0.5 - t2
    assert np.ptp(offset) < 1e-4 and float(offset.mean()) > 0.05
    with pytest.raises(ValueError, match="noise scale"):
        PatchDataset(volumes=[(folder["clean"][0],)], **kwargs)


def test_two_dimensional_slices(folder):
    ds = PatchDataset("synthetic", folder["clean"], (16, 16), batch_size=3)
    x, y = ds[0]
    assert x.shape == (3, 16, 16, 1) == y.shape


def test_fixed_dataset_repeats_its_batches(folder):
    ds = PatchDataset("pairs", [(folder["noisy_a"], folder["clean"][0])], PATCH, batch_size=2,
                      fixed=True, steps_per_epoch=2)
    np.testing.assert_array_equal(ds[1][0], ds[1][0])
    assert len(ds) == 2


def test_foreground_weighting_avoids_air(folder):
    # The CT crop has air outside the body: weighted crops land in tissue.
    ds = PatchDataset("synthetic", [folder["ct"]], (8, 8, 2), batch_size=32, modality="ct",
                      noise="ct:1e5", augment=False)
    _, y = ds[0]
    tissue = (0.0 - (-1024.0)) / 4095.0 - 0.12  # about -500 HU in window units
    assert np.mean(y.mean(axis=(1, 2, 3, 4)) > tissue) > 0.8


def test_split_by_volume():
    train, val = split_by_volume([f"v{i}" for i in range(10)], 0.2, seed=3)
    assert len(val) == 2 and len(train) == 8 and not set(train) & set(val)
    with pytest.raises(ValueError, match="at least 2 volumes"):
        split_by_volume(["only"], 0.2)


def test_loader_throughput_reports_patches_per_second(folder):
    stats = loader_throughput(folder["clean"], patch_size=(16, 16, 8), batch_size=2, batches=3)
    assert stats["patches_per_second"] > 0 and stats["batch_size"] == 2


def _write(path, data, dtype=np.float32):
    nib.save(nib.Nifti1Image(np.asarray(data, dtype), np.eye(4)), str(path))
    return str(path)


@pytest.mark.parametrize("case", ["missing", "not_image", "truncated", "nan", "inf", "zeros", "too_small", "suffix"])
def test_bad_volumes_give_one_line_naming_the_file(case, tmp_path):
    path = tmp_path / "vol.nii.gz"
    good = np.random.default_rng(0).uniform(size=(24, 24, 6))
    if case == "missing":
        path = tmp_path / "nothere.nii.gz"
    elif case == "not_image":
        path.write_text("this is not an image")
    elif case == "truncated":
        _write(path, good)
        raw = gzip.decompress(path.read_bytes())
        path.write_bytes(gzip.compress(raw)[: len(gzip.compress(raw)) // 2])
    elif case in ("nan", "inf"):
        good[3, 3, 3] = np.nan if case == "nan" else np.inf
        _write(path, good)
    elif case == "zeros":
        _write(path, np.zeros((24, 24, 6)))
    elif case == "too_small":
        _write(path, good[:8, :8, :2])
    elif case == "suffix":
        path = tmp_path / "vol.txt"
        path.write_text("x")
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(InputFileError) as info:
        PatchDataset("synthetic", [str(path)], PATCH, noise="rician:0.05")
    message = str(info.value)
    assert os.path.basename(str(path)) in message and "\n" not in message, message
    assert sorted(os.listdir(tmp_path)) == before
    assert keras.backend.backend() == BACKEND


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(kind="clean"), "'clean'"),
        (dict(patch_size=(16, 0, 4)), "patch_size"),
        (dict(modality="pet"), "'pet'"),
        (dict(batch_size=0), "batch_size=0"),
        (dict(noise="poisson:0.1"), "poisson"),
        (dict(weighting="snr"), "'snr'"),
        (dict(kind="noise2void", weighting="noise"), "--loss-weighting"),
        (dict(kind="noise2void", weighting="amplitude"), "--loss-weighting amplitude"),
    ],
)
def test_bad_arguments(kwargs, message, folder):
    args = dict(kind="synthetic", volumes=folder["clean"], patch_size=PATCH, noise="rician:0.05")
    args.update(kwargs)
    with pytest.raises(ValueError) as info:
        PatchDataset(**args)
    assert message in str(info.value)


def test_resolution_augmentation_gives_cubic_patches_from_thin_volumes(folder):
    # The crops are 8 slices thick; 'resolution' still cuts 16^3 patches (finer sampling across slices)
    # and draws gamma, bias field and noise on top.
    ds = PatchDataset("synthetic", folder["clean"], (16, 16, 16), batch_size=4, noise="rician:0.02-0.08",
                      augment="resolution", seed=0)
    x, y = ds[0]
    assert x.shape == y.shape == (4, 16, 16, 16, 1)
    assert np.all(np.isfinite(x)) and 0.01 < float(np.std(x - y)) < 0.12
    model = ResUNet(spatial_dims=3, filters=(4, 8), n_blocks=1, strides=2)
    model.compile(optimizer="adam", loss="mse")
    assert np.isfinite(model.fit(ds, epochs=1, steps_per_epoch=1, verbose=0).history["loss"][-1])


def test_resolution_augmentation_on_slices_and_pairs(folder):
    slices = PatchDataset("synthetic", folder["clean"], (16, 16), batch_size=3, augment="resolution")
    assert slices[0][0].shape == (3, 16, 16, 1)
    pairs = PatchDataset("pairs", [(folder["noisy_a"], folder["clean"][0])], (12, 12, 12), batch_size=2,
                         augment="resolution")
    x, y = pairs[0]
    assert x.shape == y.shape == (2, 12, 12, 12, 1)
    with pytest.raises(ValueError, match="augment"):
        PatchDataset("synthetic", folder["clean"], PATCH, augment="rotate")


def test_loader_threads_keep_pairs_aligned(folder, tmp_path):
    # Identical noisy and clean files: any patch whose two halves differ was cut, flipped or
    # rotated by another thread's draw.
    from concurrent.futures import ThreadPoolExecutor

    twin = _crop_like(folder["clean"][0], tmp_path / "twin.nii.gz")
    ds = PatchDataset("pairs", [(folder["clean"][0], twin), (folder["clean"][1], folder["clean"][1])],
                      (16, 16, 4), batch_size=8, steps_per_epoch=60)
    with ThreadPoolExecutor(8) as pool:
        batches = list(pool.map(ds.__getitem__, range(60)))
    for x, y in batches:
        np.testing.assert_array_equal(x, y)
