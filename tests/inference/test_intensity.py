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
