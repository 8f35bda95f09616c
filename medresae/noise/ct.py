"""Low-dose CT noise simulated on the sinogram of each axial slice."""

import math
import numbers
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from medresae._arrays import check_finite_array
from medresae._validation import check_choice, check_positive_int, check_positive_number
from medresae.noise._common import _rng

CT_UNITS = ("hu", "normalized")


# Fewer photons than this per ray leave almost every ray of a body starved.
MIN_PHOTONS = 100.0


def _check_hu_range(hu_range):
    try:
        low, high = (float(v) for v in hu_range)
        ok = math.isfinite(low) and math.isfinite(high) and low < high
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(
            "`hu_range` must be two finite numbers (low, high) with low < high. "
            f"Received: hu_range={hu_range!r}"
        )
    return low, high


def _ct_slice(hu, i0, electronic_sigma, voxel_size_mm, mu_water, n_angles, rng):
    """Low-dose noise for one 2D slice in HU (float64 in, float64 out)."""
    from skimage.transform import iradon, radon

    size = max(hu.shape)
    if n_angles is None:
        # pi/2 views per detector bin is the parallel-beam angular Nyquist
        # rate: fewer views would alias the noise into streaks; more only
        # cost time. 64x64 -> 101 views, 512x512 -> 805 (clinical scanners
        # take ~1000 per turn).
        n_angles = max(1, math.ceil(math.pi / 2 * size))
    theta = np.linspace(0.0, 180.0, n_angles, endpoint=False)
    mu = np.clip(mu_water * (1.0 + hu / 1000.0), 0.0, None)
    p = radon(mu, theta, circle=False) * voxel_size_mm
    counts = rng.poisson(i0 * np.exp(-p)).astype(np.float64)
    if electronic_sigma > 0:
        counts += rng.normal(0.0, electronic_sigma, counts.shape)
    # A ray with no photons left has no finite log; real scanners clamp too.
    counts = np.clip(counts, 1.0, None)
    p_noisy = -np.log(counts / i0)
    # Reconstruct the noise only, so the clean image itself carries no FBP
    # blur or streaks: the output is exactly `hu` plus CT-textured noise.
    noise = iradon(p_noisy - p, theta, circle=False, filter_name="ramp", output_size=size)
    noise /= voxel_size_mm
    # radon centres the slice at index shape//2 and iradon puts that centre
    # at output_size//2, so this crop lines the noise up with the slice.
    r0, c0 = size // 2 - hu.shape[0] // 2, size // 2 - hu.shape[1] // 2
    noise = noise[r0 : r0 + hu.shape[0], c0 : c0 + hu.shape[1]]
    return hu + 1000.0 * noise / mu_water


def low_dose_ct(
    x: ArrayLike,
    i0: float,
    electronic_sigma: float = 0.0,
    units: Literal["hu", "normalized"] = "hu",
    voxel_size_mm: float = 1.0,
    mu_water: float = 0.0192,
    n_angles: int | None = None,
    axis: int = -1,
    hu_range: tuple[float, float] = (-1024.0, 3071.0),
    rng: int | np.random.Generator | None = None,
) -> np.ndarray:
    """Simulates a low-dose CT scan of each axial slice (parallel beam, FBP).

    Per slice: HU -> attenuation `mu = mu_water * (1 + HU/1000)` (>= 0),
    line integrals `p = radon(mu) * voxel_size_mm`, detected counts
    `Poisson(i0 * exp(-p)) + N(0, electronic_sigma^2)` (clipped to >= 1),
    noisy line integrals `-log(I / i0)`. Only the sinogram noise is
    reconstructed (ramp-filtered back-projection) and added to the slice, so
    the clean image is kept exactly and the noise has CT's correlated,
    attenuation-dependent texture: more noise behind dense or thick objects.
    Noise variance scales as `1 / i0`.

    Args:
        x: a 2D slice, or an array of 3 or more axes whose slices are taken
            along `axis`; the slice plane is the first two of the other axes
            and any further axis (e.g. channels) is looped over.
        i0: incident photons per ray (at least 100); lower means noisier.
        electronic_sigma: standard deviation of the detector's electronic
            noise, in photon counts (>= 0).
        units: 'hu' (Hounsfield units) or 'normalized' ([0, 1] mapping
            linearly onto `hu_range`; converted to HU and back).
        voxel_size_mm: in-plane voxel size in mm (> 0).
        mu_water: linear attenuation of water in 1/mm (> 0); 0.0192 is
            about 70 keV.
        n_angles: number of projection angles over 180 degrees; default
            `ceil(pi/2 * max(slice shape))` (angular Nyquist rate). The noise
            falls as views are added, since `i0` is per ray and per view.
        axis: the slice axis (ignored for 2D input); default -1, the last
            axis as in NIfTI (x, y, z).
        hu_range: (low, high) HU of 0 and 1 when `units='normalized'`.
        rng: None, an int seed or a `numpy.random.Generator`.

    Returns:
        float32 array of `x.shape`, in the units of `x`.

    Raises:
        ValueError: on NaN/inf in `x`, a non-positive `i0`, `voxel_size_mm`
            or `mu_water`, a negative `electronic_sigma`, an unknown `units`,
            a bad `axis`, `n_angles` or `hu_range`.

    Examples:
        >>> water = np.zeros((32, 32, 2))  # HU 0 everywhere
        >>> low_dose_ct(water, i0=1e4, rng=0).shape
        (32, 32, 2)
    """
    x = check_finite_array(x)
    i0 = check_positive_number(i0, "i0")
    if i0 < MIN_PHOTONS:
        raise ValueError(
            f"`i0` (incident photons per ray) must be at least {MIN_PHOTONS:g}: below that almost no photon "
            f"reaches the detector and the image is noise (clinical doses are about 1e4 to 1e6). Received: i0={i0!r}"
        )
    electronic_sigma = check_positive_number(electronic_sigma, "electronic_sigma", allow_zero=True)
    check_choice(units, "units", CT_UNITS)
    voxel_size_mm = check_positive_number(voxel_size_mm, "voxel_size_mm")
    mu_water = check_positive_number(mu_water, "mu_water")
    if n_angles is not None:
        n_angles = check_positive_int(n_angles, "n_angles")
    hu_low, hu_high = _check_hu_range(hu_range)
    rng = _rng(rng)
    if x.ndim < 2:
        raise ValueError(f"`x` must have at least 2 axes (a slice). Received: x.shape={x.shape}")

    hu = x.astype(np.float64)
    if units == "normalized":
        hu = hu_low + hu * (hu_high - hu_low)

    if x.ndim == 2:
        out = _ct_slice(hu, i0, electronic_sigma, voxel_size_mm, mu_water, n_angles, rng)
    else:
        if isinstance(axis, bool) or not isinstance(axis, numbers.Integral) or not (
            -x.ndim <= axis < x.ndim
        ):
            raise ValueError(
                f"`axis` must be an int in [{-x.ndim}, {x.ndim - 1}] for x.shape={x.shape}. "
                f"Received: axis={axis!r}"
            )
        axis = int(axis) % x.ndim
        others = [a for a in range(x.ndim) if a != axis]
        order = others[:2] + [axis] + others[2:]
        moved = np.transpose(hu, order)
        plane = moved.shape[:2]
        stack = moved.reshape(plane + (-1,))
        result = np.empty_like(stack)
        for k in range(stack.shape[-1]):
            result[..., k] = _ct_slice(
                stack[..., k], i0, electronic_sigma, voxel_size_mm, mu_water, n_angles, rng
            )
        out = np.transpose(result.reshape(moved.shape), np.argsort(order))

    if units == "normalized":
        out = (out - hu_low) / (hu_high - hu_low)
    return out.astype(np.float32)


