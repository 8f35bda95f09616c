"""Noise models checked against their theoretical statistics, on real arrays."""

import numpy as np
import pytest
from scipy import stats
from scipy.special import gammaln

from medresae.noise import (
    NOISE_MODELS,
    NoiseSpec,
    add_noise,
    gaussian,
    low_dose_ct,
    noncentral_chi,
    rician,
    rician_mean,
    robust_max,
)

# 200k samples: the sample mean is within ~0.01 sigma and the sample
# variance within ~1.5 % of the truth at 5 standard errors.
N = 200_000
SIGMA = 2.0


def _full(value):
    return np.full((400, 500), value, dtype=np.float64)


def _water_disc(size=64, slices=6):
    """HU phantom: a water disc (0 HU, 51 mm across at 1 mm) in air (-1000 HU)."""
    yy, xx = np.mgrid[:size, :size] - size / 2 + 0.5
    disc = xx**2 + yy**2 < (0.4 * size) ** 2
    hu = np.where(disc, 0.0, -1000.0)
    return np.repeat(hu[..., None], slices, axis=-1), disc


# ---------------------------------------------------------------- Gaussian


def test_gaussian_mean_and_variance():
    x = _full(3.0)
    y = gaussian(x, SIGMA, rng=0).astype(np.float64)
    assert abs(y.mean() - 3.0) < 0.02 * SIGMA
    assert y.var() == pytest.approx(SIGMA**2, rel=0.02)


def test_gaussian_is_elementwise_on_a_varying_signal():
    x = np.linspace(-5, 5, N).reshape(400, 500)
    noise = gaussian(x, SIGMA, rng=1).astype(np.float64) - x
    assert abs(noise.mean()) < 0.02 * SIGMA
    assert noise.std() == pytest.approx(SIGMA, rel=0.01)


# ---------------------------------------------------------------- Rician


def test_rician_background_is_rayleigh():
    y = rician(_full(0.0), SIGMA, rng=0).astype(np.float64)
    assert y.mean() == pytest.approx(SIGMA * np.sqrt(np.pi / 2), rel=0.01)
    assert y.var() == pytest.approx((2 - np.pi / 2) * SIGMA**2, rel=0.02)
    assert y.min() >= 0


def test_rician_high_snr_is_nearly_gaussian():
    signal = 10 * SIGMA
    y = rician(_full(signal), SIGMA, rng=0).astype(np.float64)
    assert y.mean() == pytest.approx(np.sqrt(signal**2 + SIGMA**2), abs=0.01 * SIGMA)
    assert y.std() == pytest.approx(SIGMA, rel=0.02)


def test_rician_matches_scipy_rice_distribution():
    signal = 2 * SIGMA
    y = rician(np.full(20_000, signal), SIGMA, rng=3).astype(np.float64)
    result = stats.kstest(y, stats.rice(b=signal / SIGMA, scale=SIGMA).cdf)
    assert result.pvalue > 1e-3


# ---------------------------------------------------------------- noncentral chi


@pytest.mark.parametrize("coils", [2, 4, 8])
def test_chi_background_mean(coils):
    y = noncentral_chi(_full(0.0), SIGMA, coils=coils, rng=0).astype(np.float64)
    expected = SIGMA * np.sqrt(2) * np.exp(gammaln(coils + 0.5) - gammaln(coils))
    assert y.mean() == pytest.approx(expected, rel=0.01)


@pytest.mark.parametrize("signal", [0.0, 3 * SIGMA])
def test_chi_second_moment(signal):
    coils = 8
    y = noncentral_chi(_full(signal), SIGMA, coils=coils, rng=0).astype(np.float64)
    assert np.mean(y**2) == pytest.approx(signal**2 + 2 * coils * SIGMA**2, rel=0.01)


@pytest.mark.parametrize("nu", [0.0, 0.5, 2.0, 8.0, 20.0])
def test_rician_mean_matches_scipy_and_samples(nu):
    sigma = 1.5
    expected = stats.rice.mean(nu / sigma, scale=sigma)
    assert float(rician_mean(np.array([nu]), sigma)[0]) == pytest.approx(expected, rel=1e-9)
    samples = rician(np.full(200_000, nu), sigma, rng=0)
    assert float(rician_mean(np.array(nu), sigma)) == pytest.approx(samples.mean(), abs=0.01 * sigma)


def test_rician_mean_limits_and_errors():
    assert float(rician_mean(np.array(0.0), 1.0)) == pytest.approx(np.sqrt(np.pi / 2))
    assert float(rician_mean(np.array(1e4), 1.0)) == pytest.approx(1e4 + 1 / 2e4, rel=1e-12)  # no overflow
    assert float(rician_mean(np.array(-3.0), 1.0)) == float(rician_mean(np.array(0.0), 1.0))
    for sigma in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="sigma"):
            rician_mean(np.ones(3), sigma)
    with pytest.raises(ValueError, match="nu"):
        rician_mean(np.array([np.inf]), 1.0)


def test_chi_with_one_coil_is_rician():
    x = np.random.default_rng(0).random((16, 16, 8)) * 10
    np.testing.assert_array_equal(noncentral_chi(x, 0.5, coils=1, rng=7), rician(x, 0.5, rng=7))


# ---------------------------------------------------------------- low-dose CT


def test_ct_variance_scales_as_one_over_i0_and_mean_is_kept():
    hu, disc = _water_disc()
    centre = (slice(24, 40), slice(24, 40))
    low = low_dose_ct(hu, i0=1e4, rng=0).astype(np.float64)
    high = low_dose_ct(hu, i0=4e4, rng=0).astype(np.float64)
    assert low.shape == hu.shape
    ratio = low[centre].var() / high[centre].var()
    assert ratio == pytest.approx(4.0, rel=0.25)
    # Only noise is added: the disc's mean HU and the air stay where they were.
    assert abs(low[disc].mean()) < 3.0
    assert abs(low[~disc].mean() + 1000.0) < 3.0
    assert low[centre].std() > 10.0  # visibly noisy at 1e4 photons


def test_ct_noise_is_larger_behind_more_attenuation():
    # A 0 HU disc against a dense 1000 HU disc: fewer photons get through
    # the dense one, so its centre is noisier.
    water, disc = _water_disc(slices=4)
    bone = np.where(disc[..., None], 1000.0, -1000.0) * np.ones_like(water)
    centre = (slice(24, 40), slice(24, 40))
    var_water = low_dose_ct(water, i0=1e4, rng=0)[centre].var()
    var_bone = low_dose_ct(bone, i0=1e4, rng=0)[centre].var()
    assert var_bone > 1.5 * var_water


def test_ct_electronic_noise_increases_variance():
    hu, _ = _water_disc(slices=4)
    centre = (slice(24, 40), slice(24, 40))
    plain = low_dose_ct(hu, i0=1e4, rng=0)[centre].var()
    electronic = low_dose_ct(hu, i0=1e4, electronic_sigma=30.0, rng=0)[centre].var()
    assert electronic > 1.1 * plain


def test_ct_normalized_units_match_the_hu_path():
    hu, _ = _water_disc(slices=2)
    lo, hi = -1024.0, 3071.0
    normalized = (hu - lo) / (hi - lo)
    out_hu = low_dose_ct(hu, i0=2e4, rng=5)
    out_norm = low_dose_ct(normalized, i0=2e4, units="normalized", rng=5)
    np.testing.assert_allclose(out_norm * (hi - lo) + lo, out_hu, atol=0.05)


def test_ct_works_slice_by_slice_along_axis():
    hu, _ = _water_disc(size=32, slices=3)
    volume = np.moveaxis(hu, -1, 1)  # slices along axis 1
    out = low_dose_ct(volume, i0=1e4, axis=1, rng=2)
    first = low_dose_ct(volume[:, 0, :], i0=1e4, rng=2)
    np.testing.assert_array_equal(out[:, 0, :], first)
    assert not np.array_equal(out[:, 1, :], out[:, 2, :])


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"i0": 0}, "i0"),
        ({"i0": 1e4, "electronic_sigma": -1}, "electronic_sigma"),
        ({"i0": 1e4, "units": "mm"}, "units"),
        ({"i0": 1e4, "axis": 3}, "axis"),
        ({"i0": 1e4, "hu_range": (10, -10)}, "hu_range"),
        ({"i0": 1e4, "n_angles": 0}, "n_angles"),
    ],
)
def test_ct_rejects_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        low_dose_ct(np.zeros((8, 8, 2)), **kwargs)


# ---------------------------------------------------------------- add_noise


def test_relative_level_uses_the_995th_percentile():
    x = np.random.default_rng(0).random((400, 500))
    x[0, :10] = 100.0  # outliers that a plain max would follow
    scale = robust_max(x)
    assert scale == pytest.approx(np.percentile(x, 99.5))
    assert scale < 1.0
    noise = add_noise(x, "gaussian", 0.1, rng=0).astype(np.float64) - x
    assert noise.std() == pytest.approx(0.1 * scale, rel=0.01)


def test_absolute_level_is_sigma():
    x = _full(50.0)
    noise = add_noise(x, "gaussian", 3.0, relative=False, rng=0).astype(np.float64) - x
    assert noise.std() == pytest.approx(3.0, rel=0.01)


def test_add_noise_dispatches_to_each_model():
    x = np.random.default_rng(0).random((16, 16, 4))
    sigma = 0.05 * robust_max(x)
    np.testing.assert_array_equal(add_noise(x, "rician", 0.05, rng=1), rician(x, sigma, rng=1))
    np.testing.assert_array_equal(
        add_noise(x, "chi", 0.05, coils=3, rng=1), noncentral_chi(x, sigma, coils=3, rng=1)
    )
    hu = x * 100
    np.testing.assert_array_equal(
        add_noise(hu, "ct", 1e4, rng=1, electronic_sigma=2.0),
        low_dose_ct(hu, 1e4, electronic_sigma=2.0, rng=1),
    )


def test_add_noise_on_all_zero_input_returns_zeros():
    out = add_noise(np.zeros((8, 8)), "gaussian", 0.1, rng=0)
    np.testing.assert_array_equal(out, 0.0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"model": "poisson"}, "'gaussian', 'rician', 'chi', 'ct'"),
        ({"level": 0}, "`level`.*level=0"),
        ({"level": float("nan")}, "`level`"),
        ({"model": "gaussian", "units": "hu"}, "model='ct'"),
        ({"coils": 0, "model": "chi"}, "`coils`"),
        ({"rng": "seed"}, "`rng`"),
    ],
)
def test_add_noise_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        add_noise(np.ones((4, 4)), **kwargs)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("model", NOISE_MODELS)
def test_non_finite_input_is_rejected(model, bad):
    x = np.zeros((8, 8, 2))
    x[1, 2, 0] = bad
    with pytest.raises(ValueError, match="`x` must contain only finite values"):
        add_noise(x, model, 1e4 if model == "ct" else 0.1)


# ---------------------------------------------------------------- seeding, shapes


SHAPES = {"2d": (16, 12), "3d": (16, 12, 3), "3d+channel": (16, 12, 3, 2)}


@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
@pytest.mark.parametrize("model", NOISE_MODELS)
def test_seeding_shape_and_dtype(model, shape):
    x = np.random.default_rng(0).random(shape) * 100
    level = 1e4 if model == "ct" else 0.1
    kwargs = {"axis": 2} if model == "ct" and len(shape) == 4 else {}
    a = add_noise(x, model, level, rng=42, **kwargs)
    b = add_noise(x, model, level, rng=np.random.default_rng(42), **kwargs)
    c = add_noise(x, model, level, rng=43, **kwargs)
    assert a.shape == x.shape and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_integer_input_gives_float32():
    out = gaussian(np.arange(12, dtype=np.int16).reshape(3, 4), 1.0, rng=0)
    assert out.dtype == np.float32 and out.shape == (3, 4)


# ---------------------------------------------------------------- NoiseSpec


@pytest.mark.parametrize(
    "text, expected",
    [
        ("rician:0.05", NoiseSpec("rician", 0.05, 0.05)),
        ("gaussian:0.01-0.1", NoiseSpec("gaussian", 0.01, 0.1)),
        ("chi:0.05:coils=8", NoiseSpec("chi", 0.05, 0.05, coils=8)),
        ("gaussian:12:abs", NoiseSpec("gaussian", 12.0, 12.0, relative=False)),
        ("chi:1e-05-2e-3:abs,coils=2", NoiseSpec("chi", 1e-5, 2e-3, relative=False, coils=2)),
        ("ct:1e4", NoiseSpec("ct", 1e4, 1e4)),
        ("ct:5e3-5e4:electronic=5", NoiseSpec("ct", 5e3, 5e4, electronic_sigma=5.0)),
    ],
)
def test_parse_and_round_trip(text, expected):
    spec = NoiseSpec.parse(text)
    assert spec == expected
    assert NoiseSpec.parse(str(spec)) == spec


def test_str_is_the_canonical_text():
    for text in ["rician:0.05", "gaussian:0.01-0.1", "chi:0.05:coils=8", "gaussian:12:abs",
                 "ct:10000", "ct:5000-50000:electronic=5"]:
        assert str(NoiseSpec.parse(text)) == text


@pytest.mark.parametrize(
    "text, reason",
    [
        ("poisson:0.1", "unknown model 'poisson'"),
        ("rician", "2 or 3"),
        ("rician:0.1:abs:x", "2 or 3"),
        ("rician:abc", "bad level"),
        ("rician:-0.1", "bad level"),
        ("rician:0.2-0.1", "`high` must be >= `low`"),
        ("rician:0", "`low`"),
        ("rician:0.1:coils=8", "unknown option 'coils=8'"),
        ("ct:1e4:abs", "unknown option 'abs'"),
        ("chi:0.1:coils=two", "bad option"),
        ("chi:0.1:coils=0", "`coils`"),
        ("gaussian:0.1:abs,abs", "given twice"),
        ("ct:1e4:electronic=-1", "`electronic_sigma`"),
        ("", "2 or 3"),
    ],
)
def test_parse_errors_are_one_line_and_quote_the_text(text, reason):
    with pytest.raises(ValueError) as info:
        NoiseSpec.parse(text)
    message = str(info.value)
    assert "\n" not in message
    assert reason in message
    assert f"text={text!r}" in message
    assert "e.g. 'rician:0.05'" in message


def test_parse_rejects_non_strings():
    with pytest.raises(ValueError, match="text=0.05"):
        NoiseSpec.parse(0.05)


def test_constructor_validates_fields():
    with pytest.raises(ValueError, match="Unknown `model`"):
        NoiseSpec("speckle", 0.1, 0.1)
    with pytest.raises(ValueError, match="`relative`"):
        NoiseSpec("ct", 1e4, 1e4, relative=False)
    with pytest.raises(ValueError, match="`electronic_sigma`"):
        NoiseSpec("rician", 0.1, 0.1, electronic_sigma=1.0)


def test_spec_is_frozen():
    spec = NoiseSpec.parse("rician:0.05")
    with pytest.raises(AttributeError):
        spec.low = 0.1


def test_sample_level_stays_in_range():
    spec = NoiseSpec.parse("gaussian:0.01-0.1")
    rng = np.random.default_rng(0)
    levels = np.array([spec.sample_level(rng) for _ in range(2000)])
    assert levels.min() >= 0.01 and levels.max() <= 0.1
    assert levels.mean() == pytest.approx(0.055, rel=0.05)
    assert NoiseSpec.parse("rician:0.05").sample_level(0) == 0.05


def test_apply_matches_add_noise():
    x = np.random.default_rng(0).random((16, 16, 4))
    spec = NoiseSpec.parse("chi:0.02-0.08:coils=8")
    a, b = spec.apply(x, rng=3), spec.apply(x, rng=3)
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float32 and a.shape == x.shape
    rng = np.random.default_rng(3)
    level = spec.sample_level(rng)
    np.testing.assert_array_equal(a, add_noise(x, "chi", level, coils=8, rng=rng))
    np.testing.assert_array_equal(
        spec.apply(x, rng=4, level=0.05), add_noise(x, "chi", 0.05, coils=8, rng=4)
    )


def test_apply_ct_uses_the_spec_electronic_noise():
    hu, _ = _water_disc(size=32, slices=2)
    spec = NoiseSpec.parse("ct:1e4:electronic=5")
    np.testing.assert_array_equal(
        spec.apply(hu, rng=0, units="hu"), low_dose_ct(hu, 1e4, electronic_sigma=5.0, rng=0)
    )
    with pytest.raises(ValueError, match="`electronic_sigma` comes from the spec"):
        spec.apply(hu, rng=0, electronic_sigma=1.0)


def test_estimate_noise_sigma_on_white_noise_and_smooth_images():
    from medresae.noise import estimate_noise_sigma

    rng = np.random.default_rng(0)
    xx, yy, zz = np.meshgrid(np.linspace(0, 1, 64), np.linspace(0, 1, 64), np.linspace(0, 1, 6), indexing="ij")
    smooth = 500.0 * np.sin(3 * xx) * np.cos(2 * yy) + 100.0 * zz  # content the operator cancels
    for sigma in (1.0, 7.0):
        assert estimate_noise_sigma(smooth + rng.normal(0, sigma, smooth.shape)) == pytest.approx(sigma, rel=0.1)
    assert estimate_noise_sigma(smooth[..., 0] + rng.normal(0, 3.0, smooth.shape[:2])) == pytest.approx(3.0, rel=0.1)


def test_a_denoised_reference_keeps_edges_and_dark_voxels_out_of_the_estimate():
    from medresae.noise import estimate_noise_sigma, rician

    i = np.arange(96)
    board = 0.5 + 0.5 * ((i[:, None, None] // 4 + i[None, :, None] // 4) % 2) * np.ones((96, 96, 6))
    # Edges everywhere raise the plain estimate.
    noisy = rician(board, 0.02, rng=1)
    assert estimate_noise_sigma(noisy) > 0.026
    assert estimate_noise_sigma(noisy, reference=board) == pytest.approx(0.02, rel=0.03)
    # A dark band, where Rician noise is narrower than sigma, lowers it.
    board[:, :60] = 0.01
    noisy = rician(board, 0.02, rng=1)
    plain = estimate_noise_sigma(noisy)
    assert plain < 0.018
    assert estimate_noise_sigma(noisy, reference=board) == pytest.approx(0.02, rel=0.03)
    # A reference with nothing above three sigma (or a 2D one) leaves the plain estimate.
    assert estimate_noise_sigma(noisy, reference=np.zeros_like(board)) == plain
    assert estimate_noise_sigma(noisy[..., 0], reference=board[..., 0]) == pytest.approx(0.02, rel=0.1)


def test_estimate_noise_sigma_rejects_bad_input():
    from medresae.noise import estimate_noise_sigma

    with pytest.raises(ValueError, match="2D or 3D"):
        estimate_noise_sigma(np.zeros(10))
    with pytest.raises(ValueError, match="mask"):
        estimate_noise_sigma(np.zeros((16, 16)), mask=np.ones((8, 8), bool))
    with pytest.raises(ValueError, match="Too few voxels"):
        estimate_noise_sigma(np.zeros((16, 16)), mask=np.zeros((16, 16), bool))
    with pytest.raises(ValueError, match="NaN"):
        estimate_noise_sigma(np.full((16, 16), np.nan))
    with pytest.raises(ValueError, match="`reference` must have x's shape"):
        estimate_noise_sigma(np.zeros((16, 16)), reference=np.zeros((16, 8)))
