"""IntensityNormalizer: percentile and CT-window scaling with an exact inverse."""

import numpy as np
import pytest

from medresae.intensity import CT_WINDOW, IntensityNormalizer


def test_percentile_maps_robust_max_to_one_and_inverts():
    x = np.random.default_rng(0).gamma(2.0, 100.0, size=(20, 20, 10)).astype("float32")
    norm = IntensityNormalizer("percentile").fit(x)
    y = norm.transform(x)
    assert norm.low == pytest.approx(float(x.min()))
    assert np.percentile(y, 99.5) == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(norm.inverse(y), x, rtol=1e-6, atol=1e-4)


def test_window_is_fixed_and_inverts():
    hu = np.array([-1024.0, -1000.0, 0.0, 40.0, 3071.0], "float32")
    norm = IntensityNormalizer("window").fit(hu)
    assert (norm.low, norm.high) == CT_WINDOW
    np.testing.assert_allclose(norm.transform(hu)[[0, -1]], [0.0, 1.0])
    np.testing.assert_allclose(norm.inverse(norm.transform(hu)), hu, atol=1e-3)


def test_config_round_trip_keeps_parameters():
    norm = IntensityNormalizer("percentile", upper=99.0).fit(np.arange(100.0))
    clone = IntensityNormalizer.from_config(norm.get_config())
    assert clone.get_config() == norm.get_config()


def test_errors():
    with pytest.raises(ValueError, match="'zscore'"):
        IntensityNormalizer("zscore")
    with pytest.raises(ValueError, match="upper=101"):
        IntensityNormalizer("percentile", upper=101)
    with pytest.raises(ValueError, match="constant"):
        IntensityNormalizer().fit(np.zeros((4, 4)))
    with pytest.raises(ValueError, match="fit"):
        IntensityNormalizer().transform(np.zeros(3))


def test_channel_wise_fits_each_channel_and_round_trips():
    rng = np.random.default_rng(1)
    x = np.stack([rng.gamma(2.0, 100.0, (16, 16, 8)), rng.gamma(2.0, 0.1, (16, 16, 8))], axis=-1)
    pooled = IntensityNormalizer("percentile").fit(x)
    per_channel = IntensityNormalizer("percentile", channel_axis=-1).fit(x)
    y = per_channel.transform(x)
    for c in range(2):  # each channel's own robust maximum maps to 1
        assert np.percentile(y[..., c], 99.5) == pytest.approx(1.0, abs=1e-5)
    assert np.percentile(pooled.transform(x)[..., 1], 99.5) < 0.01  # pooled: the small channel nearly vanishes
    np.testing.assert_allclose(per_channel.inverse(y), x, rtol=1e-5, atol=1e-4)
    clone = IntensityNormalizer.from_config(per_channel.get_config())
    np.testing.assert_array_equal(clone.transform(x), y)
    assert isinstance(per_channel.scale(), np.ndarray) and per_channel.scale().shape == (2,)
    with pytest.raises(ValueError, match="fitted on 2 channels; the array has 3"):
        per_channel.transform(np.ones((4, 4, 4, 3)))
