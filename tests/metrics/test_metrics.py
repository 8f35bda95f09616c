"""PSNR / SSIM / NRMSE checked against scikit-image and the textbook formulas.

The metrics are numpy + scikit-image only, so these tests do not depend on
the Keras backend; they run (identically) once per backend with the suite.
"""

import doctest

import numpy as np
import pytest
from skimage.metrics import (
    normalized_root_mse,
    peak_signal_noise_ratio,
    structural_similarity,
)

from medresae import metrics
from medresae.metrics import evaluate, foreground_mask, nrmse, psnr, ssim


def _ellipsoid(shape, radii, center=None):
    center = [n / 2 - 0.5 for n in shape] if center is None else center
    grid = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    return sum(((g - c) / r) ** 2 for g, c, r in zip(grid, center, radii)) <= 1.0


def _head(shape=(48, 48, 24), seed=0):
    """MR-like phantom: a bright textured ellipsoid, a dark hole inside, noisy air.

    Returns (volume, filled ellipsoid mask, background noise sigma).
    """
    rng = np.random.default_rng(seed)
    head = _ellipsoid(shape, (18, 20, 9))
    hole = _ellipsoid(shape, (5, 6, 3))  # a ventricle: dark, enclosed
    vol = np.where(head, 1.0, 0.0)
    vol[head] += 0.2 * np.sin(np.nonzero(head)[0] / 3.0)  # texture for SSIM
    vol[hole] = 0.0
    # Rician-like air: magnitude of complex Gaussian noise, always >= 0.
    sigma = 0.02
    noise = np.abs(sigma * rng.standard_normal(shape) + 1j * sigma * rng.standard_normal(shape))
    return vol + noise, head, sigma


def _iou(a, b):
    return np.logical_and(a, b).sum() / np.logical_or(a, b).sum()


def _one_line_error(match, fn, *args, **kwargs):
    with pytest.raises(ValueError, match=match) as info:
        fn(*args, **kwargs)
    assert "\n" not in str(info.value)
    return str(info.value)


@pytest.fixture
def pair():
    rng = np.random.default_rng(1)
    ref, _, _ = _head()
    return ref, ref + 0.05 * rng.standard_normal(ref.shape)


# PSNR ---------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(40, 36), (24, 20, 10)])
def test_psnr_matches_skimage(shape):
    rng = np.random.default_rng(2)
    ref = rng.random(shape) * 100
    img = ref + rng.standard_normal(shape)
    expected = peak_signal_noise_ratio(ref, img, data_range=ref.max() - ref.min())
    value = psnr(ref, img)
    assert isinstance(value, float)
    assert value == pytest.approx(expected, rel=1e-12)
    assert psnr(ref, img, data_range=255) == pytest.approx(
        peak_signal_noise_ratio(ref, img, data_range=255), rel=1e-12
    )


def test_psnr_in_mask_is_the_hand_formula(pair):
    ref, img = pair
    mask = _ellipsoid(ref.shape, (10, 10, 5))
    value_range = ref.max() - ref.min()  # the whole volume's range, also in a mask
    mse = np.mean((ref[mask] - img[mask]) ** 2)
    assert psnr(ref, img, mask=mask) == pytest.approx(10 * np.log10(value_range**2 / mse))


def test_psnr_drops_as_noise_grows(pair):
    ref, _ = pair
    rng = np.random.default_rng(3)
    noise = rng.standard_normal(ref.shape)
    values = [psnr(ref, ref + s * noise) for s in (0.01, 0.05, 0.2)]
    assert values[0] > values[1] > values[2]


def test_identical_images_are_perfect(pair):
    ref, _ = pair
    assert psnr(ref, ref) == float("inf")
    assert psnr(ref, ref, mask="auto") == float("inf")
    assert ssim(ref, ref) == pytest.approx(1.0)
    assert nrmse(ref, ref) == 0.0


# SSIM ---------------------------------------------------------------------


def test_ssim_matches_skimage_in_3d(pair):
    ref, img = pair
    expected = structural_similarity(
        ref, img, data_range=ref.max() - ref.min(), win_size=7, gaussian_weights=False
    )
    value = ssim(ref, img)
    assert isinstance(value, float)
    assert value == pytest.approx(expected, rel=1e-10)
    assert 0.0 < value < 1.0


def test_ssim_thick_slices():
    rng = np.random.default_rng(4)
    ref = rng.random((32, 32, 3))
    img = ref + 0.1 * rng.standard_normal(ref.shape)
    # A side of 3: the window shrinks to 3 and SSIM stays 3D.
    expected = structural_similarity(ref, img, data_range=np.ptp(ref), win_size=3)
    assert ssim(ref, img) == pytest.approx(expected, rel=1e-10)
    # Two slices cannot hold a window: SSIM is the mean over 2D slices.
    ref2, img2 = ref[..., :2], img[..., :2]
    per_slice = [
        structural_similarity(ref2[..., k], img2[..., k], data_range=np.ptp(ref2), win_size=7)
        for k in range(2)
    ]
    assert ssim(ref2, img2) == pytest.approx(np.mean(per_slice), rel=1e-10)
    # An even smallest side (4) becomes win_size 3.
    ref4, img4 = rng.random((20, 20, 4)), rng.random((20, 20, 4))
    assert ssim(ref4, img4, data_range=1.0) == pytest.approx(
        structural_similarity(ref4, img4, data_range=1.0, win_size=3), rel=1e-10
    )


def test_gaussian_window_ssim_is_wang_et_al():
    rng = np.random.default_rng(6)
    ref = rng.random((24, 24, 16))
    img = ref + 0.1 * rng.standard_normal(ref.shape)
    gaussian = dict(data_range=np.ptp(ref), gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    value = ssim(ref, img, window="gaussian")
    assert value == pytest.approx(structural_similarity(ref, img, **gaussian), rel=1e-10)
    assert value != pytest.approx(ssim(ref, img), rel=1e-3)  # not the uniform window
    # 8 slices cannot hold the 11-voxel window: the mean over 2D slices, 5 voxels in from each edge.
    thin, thin_img = ref[..., :8], img[..., :8]
    maps = [structural_similarity(thin[..., k], thin_img[..., k], full=True, **gaussian)[1] for k in range(8)]
    expected = np.mean([m[5:-5, 5:-5].mean() for m in maps])
    assert ssim(thin, thin_img, window="gaussian", data_range=np.ptp(ref)) == pytest.approx(expected, rel=1e-10)
    scores = evaluate(ref, img, ssim_window="gaussian")
    assert scores["ssim"] == pytest.approx(value, rel=1e-10)
    with pytest.raises(ValueError, match="window"):
        ssim(ref, img, window="box")
    with pytest.raises(ValueError, match="size >= 11"):
        ssim(ref[:8, :8, :8], img[:8, :8, :8], window="gaussian")


def test_masked_ssim_ignores_a_noisy_background():
    ref, head, _ = _head()
    rng = np.random.default_rng(5)
    img = ref + np.where(head, 0.0, 0.3 * rng.standard_normal(ref.shape))
    whole = ssim(ref, img)
    inside = ssim(ref, img, mask=head)
    assert inside > whole + 0.2
    # A mask of everything is the whole-volume score.
    assert ssim(ref, img, mask=np.ones(ref.shape, bool)) == pytest.approx(whole, rel=1e-12)


# NRMSE --------------------------------------------------------------------


def test_nrmse_formula(pair):
    ref, img = pair
    value_range = ref.max() - ref.min()
    expected = np.sqrt(np.mean((ref - img) ** 2)) / value_range
    assert nrmse(ref, img) == pytest.approx(expected, rel=1e-12)
    assert nrmse(ref, img) == pytest.approx(
        normalized_root_mse(ref, img, normalization="min-max"), rel=1e-12
    )
    mask = _ellipsoid(ref.shape, (10, 10, 5))
    expected_mask = np.sqrt(np.mean((ref[mask] - img[mask]) ** 2)) / value_range
    assert nrmse(ref, img, mask=mask) == pytest.approx(expected_mask, rel=1e-12)
    # Same normalisation as PSNR's default data_range.
    assert nrmse(ref, img) == pytest.approx(10 ** (-psnr(ref, img) / 20), rel=1e-10)


# foreground_mask ------------------------------------------------------------


def test_foreground_mask_finds_a_filled_head():
    vol, head, _ = _head()
    mask = foreground_mask(vol)
    assert mask.dtype == bool and mask.shape == vol.shape
    assert _iou(mask, head) > 0.9
    assert mask[_ellipsoid(vol.shape, (5, 6, 3))].all()  # the dark hole is filled
    assert not mask[:4].any()  # background noise is dropped


def test_foreground_mask_finds_the_body_in_hu():
    rng = np.random.default_rng(6)
    shape = (64, 64, 6)
    body = _ellipsoid(shape[:2], (24, 18))[..., None].repeat(shape[2], axis=2)
    lungs = _ellipsoid(shape[:2], (8, 5), center=(31.5, 22))[..., None].repeat(shape[2], 2)
    vol = np.full(shape, -1000.0)
    vol[body] = 0.0
    vol[lungs] = -850.0
    vol[2:4, 10:54, :] = -100.0  # the table: separate from the body
    vol += 15.0 * rng.standard_normal(shape)
    mask = foreground_mask(vol)
    assert _iou(mask, body) > 0.9
    assert mask[lungs].all()
    assert not mask[2:4].any()


@pytest.mark.parametrize("vol", [np.zeros((16, 16, 4)), np.full((8, 8), 7.0), -np.ones((8, 8, 8))])
def test_foreground_mask_is_never_empty(vol):
    mask = foreground_mask(vol)
    assert mask.shape == vol.shape and mask.any()


def test_foreground_mask_2d_and_channel_axis():
    vol, head, _ = _head()
    slice_2d = vol[..., 12]
    assert _iou(foreground_mask(slice_2d), head[..., 12]) > 0.9
    assert np.array_equal(foreground_mask(vol[..., None]), foreground_mask(vol))


# evaluate -----------------------------------------------------------------


def test_evaluate_keys_and_consistency(pair):
    ref, img = pair
    scores = evaluate(ref, img)
    assert list(scores) == ["psnr", "ssim", "nrmse", "psnr_mask", "ssim_mask", "nrmse_mask"]
    assert all(isinstance(v, float) for v in scores.values())
    mask = foreground_mask(ref)
    assert scores["psnr"] == pytest.approx(psnr(ref, img))
    assert scores["ssim"] == pytest.approx(ssim(ref, img))
    assert scores["ssim_mask"] == pytest.approx(ssim(ref, img, mask=mask))
    assert scores["nrmse_mask"] == pytest.approx(nrmse(ref, img, mask=mask))
    whole = evaluate(ref, img, mask=None)
    assert list(whole) == ["psnr", "ssim", "nrmse"]
    assert whole["psnr"] == scores["psnr"]
    explicit = evaluate(ref, img, mask=mask, data_range=2.0)
    assert explicit["psnr_mask"] == pytest.approx(psnr(ref, img, mask=mask, data_range=2.0))


def test_channel_axis(pair):
    ref, img = pair
    single = evaluate(ref, img)
    assert evaluate(ref[..., None], img[..., None]) == pytest.approx(single)
    # Two channels: each scored with its own range, then averaged.
    ref2 = np.stack([ref, 10 * ref], axis=-1)
    img2 = np.stack([img, 10 * ref], axis=-1)
    assert ssim(ref2, img2) == pytest.approx((ssim(ref, img) + 1.0) / 2)
    assert nrmse(ref2, img2) == pytest.approx(nrmse(ref, img) / 2)
    assert psnr(ref2, img2) == float("inf")  # one perfect channel


# bad inputs -----------------------------------------------------------------


def test_bad_inputs_raise_one_line_errors(pair):
    ref, img = pair
    message = _one_line_error("same shape", psnr, ref, img[:-1])
    assert str(ref.shape) in message and str(img[:-1].shape) in message
    bad = img.copy()
    bad[0, 0, 0] = np.nan
    _one_line_error("`image` must contain only finite", ssim, ref, bad)
    _one_line_error("`reference` must contain only finite", evaluate, bad, ref)
    small, empty = np.ones((3, 3), bool), np.zeros(ref.shape, bool)
    _one_line_error("`mask` must have the spatial shape", nrmse, ref, img, mask=small)
    _one_line_error("`mask` must select at least one", psnr, ref, img, mask=empty)
    _one_line_error("`mask` must be None", evaluate, ref, img, mask="head")
    _one_line_error("`data_range`", psnr, ref, img, data_range=-1.0)
    _one_line_error("`reference` is constant", psnr, np.ones((8, 8)), np.zeros((8, 8)))
    five_d = np.ones((2, 8, 8, 8, 1))
    _one_line_error("`reference` must be 2D or 3D", psnr, five_d, five_d)
    _one_line_error("`fraction`", foreground_mask, ref, fraction=1.5)
    _one_line_error("`closing`", foreground_mask, ref, closing=-1)


def test_docstring_examples():
    result = doctest.testmod(metrics, extraglobs={"np": np}, verbose=False)
    assert result.attempted > 0 and result.failed == 0
