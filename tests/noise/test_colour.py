"""Correlated noise: measuring CT noise's autocovariance and drawing noise that has it."""

import numpy as np
import pytest

from medresae.noise import low_dose_ct
from medresae.noise.colour import (
    coloured_noise,
    colouring_kernel,
    estimate_noise_autocovariance,
    noise_autocovariance,
)


def _water_phantom(size=96, slices=4):
    """A water cylinder with a bone ring in air, in HU."""
    i, j = np.mgrid[:size, :size] - (size - 1) / 2.0
    r = np.hypot(i, j)
    hu = np.where(r < 0.42 * size, 0.0, -1000.0)
    hu = np.where((r > 0.36 * size) & (r < 0.40 * size), 1000.0, hu)
    return np.repeat(hu[..., None], slices, axis=-1).astype("float32"), r < 0.3 * size


@pytest.fixture(scope="module")
def ct_noise():
    """Simulated low-dose CT noise (filtered back-projection) inside the water of the phantom."""
    clean, inside = _water_phantom()
    noisy = low_dose_ct(clean, i0=2e4, voxel_size_mm=2.0, rng=0)
    return clean, noisy, np.repeat(inside[..., None], clean.shape[-1], axis=-1)


def test_ct_noise_is_correlated_and_the_kernel_reproduces_its_correlation(ct_noise):
    clean, noisy, inside = ct_noise
    measured = noise_autocovariance(noisy - clean, inside, radius=(3, 3, 1))
    centre = (3, 3, 1)
    correlation = measured / measured[centre]
    # Filtered back-projection makes neighbours in a slice correlated; slices are reconstructed apart.
    assert abs(correlation[4, 3, 1]) > 0.1 and abs(correlation[3, 3, 2]) < 0.05
    kernel = colouring_kernel(measured)
    assert np.sum(kernel**2) == pytest.approx(1.0)
    drawn = coloured_noise((128, 128, 16), kernel, np.random.default_rng(1))
    again = noise_autocovariance(drawn, radius=(3, 3, 1))
    assert again[centre] == pytest.approx(1.0, rel=0.03)
    np.testing.assert_allclose(again / again[centre], correlation, atol=0.04)
    # White noise has none of it.
    white = noise_autocovariance(np.random.default_rng(1).normal(size=(128, 128, 16)), radius=(3, 3, 1))
    assert abs(white[4, 3, 1] / white[centre]) < 0.02


def test_the_residual_of_a_good_denoiser_gives_the_noise_correlation(ct_noise):
    clean, noisy, inside = ct_noise
    truth = noise_autocovariance(noisy - clean, inside, radius=(2, 2, 0))
    # The clean image stands in for an ideal denoiser's output; the bone ring's edges are left out as not flat.
    body = clean > -500
    estimate = estimate_noise_autocovariance(noisy, clean, body, radius=(2, 2, 0))
    assert np.sqrt(estimate[2, 2, 0]) == pytest.approx(np.sqrt(truth[2, 2, 0]), rel=0.1)
    np.testing.assert_allclose(estimate / estimate[2, 2, 0], truth / truth[2, 2, 0], atol=0.05)


def test_bad_arguments_are_named():
    x = np.zeros((16, 16, 4))
    with pytest.raises(ValueError, match="mask"):
        noise_autocovariance(x, np.ones((8, 8, 4), bool))
    with pytest.raises(ValueError, match="radius"):
        noise_autocovariance(x, radius=(1, -1, 0))
    with pytest.raises(ValueError, match="Too few voxels"):
        noise_autocovariance(x, np.zeros(x.shape, bool))
    with pytest.raises(ValueError, match="odd sides"):
        colouring_kernel(np.ones((4, 3, 1)))
    with pytest.raises(ValueError, match="positive at lag zero"):
        colouring_kernel(np.zeros((3, 3, 1)))
    with pytest.raises(ValueError, match="axes"):
        coloured_noise((8, 8), np.ones((3, 3, 1)), np.random.default_rng(0))
    with pytest.raises(ValueError, match="reference"):
        estimate_noise_autocovariance(x, np.zeros((8, 8, 4)))
