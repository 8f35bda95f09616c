"""Do no harm: notice when a denoiser removed more than noise from a scan.

A model meets scans unlike its training data: another body part, another
intensity range, bone in a CT model trained on chest scans. There it can
remove anatomy along with the noise and return a scan worse than its input.
No clean reference exists at inference, but the noise level does: in each
intensity band (MR: dark, middle and bright thirds of the foreground; CT:
air, soft tissue and bone), what the model removed should be about as large
as the noise measured in the input. A band where the removed part is several
times the noise means the model changed the anatomy there.
"""

import dataclasses
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from medresae._defaults import CT_BODY_HU
from medresae.metrics import foreground_mask
from medresae.noise import estimate_noise_sigma

# Removed RMS over measured noise sigma above which a band counts as harmed:
# 1.5x the largest value the presets reach on their own training volumes
# (1.87 for brain-mr at Rician 1-15 %, 1.94 for ct at 1e4-1e5 photons;
# tools/guard_calibration.py, docs/presets.md#do-no-harm). The measured sigma
# is below the true one for correlated (CT) noise and the Rician noise floor
# adds to what an MR model removes in dark tissue, so a faithful model sits
# above 1 too.
DEFAULT_LIMIT = 3.0
# CT intensity bands in HU: (name, low, high).
CT_BANDS = (("air", -np.inf, CT_BODY_HU), ("soft tissue", CT_BODY_HU, 300.0), ("bone", 300.0, np.inf))
_MIN_BAND_VOXELS = 500


@dataclasses.dataclass(frozen=True)
class GuardReport:
    """What `check_denoised` found.

    Attributes:
        sigma: noise sigma measured in the input (its units).
        ratios: {band: removed RMS / sigma} for each band with enough voxels.
        limit: the ratio above which a band counts as harmed.
        harmed: names of the bands over the limit (or the count of
            non-finite output voxels, which always count as harm).
    """

    sigma: float
    ratios: dict[str, float]
    limit: float
    harmed: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """True when no band was changed by much more than the noise."""
        return not self.harmed

    def message(self) -> str:
        """One line for users: which bands, by how much."""
        worst = max(self.ratios, key=self.ratios.get) if self.ratios else None
        if self.ok:
            return f"removed at most {self.ratios.get(worst, 0.0):.2f}x the measured noise ({self.sigma:.4g})"
        if not self.ratios:
            return f"the model returned {self.harmed[0]}"
        parts = ", ".join(f"{band} {self.ratios[band]:.1f}x" for band in self.harmed)
        return (f"the model changed this scan by more than {self.limit:g}x its measured noise "
                f"({self.sigma:.4g}) in: {parts}; it was not trained on scans like this one")


def intensity_bands(image, modality, body):
    """{band name: boolean mask}: CT air, soft tissue and bone by HU; MR dark,
    middle and bright thirds of the intensities inside `body`.

    Examples:
        >>> image = np.arange(27.0).reshape(3, 3, 3)
        >>> {name: int(m.sum()) for name, m in intensity_bands(image, "mr", image > 2).items()}
        {'dark tissue': 8, 'middle tissue': 8, 'bright tissue': 8}
    """
    if modality == "ct":
        return {name: (image >= lo) & (image < hi) for name, lo, hi in CT_BANDS}
    values = image[body]
    edges = np.quantile(values, [1 / 3, 2 / 3]) if values.size else [0.0, 0.0]
    return {
        "dark tissue": body & (image < edges[0]),
        "middle tissue": body & (image >= edges[0]) & (image < edges[1]),
        "bright tissue": body & (image >= edges[1]),
    }


def check_denoised(noisy: ArrayLike, denoised: ArrayLike, modality: Literal["mr", "ct"] = "mr",
                   sigma: float | None = None, limit: float = DEFAULT_LIMIT) -> GuardReport:
    """Compares what a denoiser removed with the noise measured in its input.

    Args:
        noisy: the input scan (2D or 3D, or with a trailing channel axis of 1).
        denoised: the model's output, same shape and units.
        modality: 'mr' (bands: thirds of the foreground's intensities) or
            'ct' (bands: air, soft tissue, bone in HU).
        sigma: the input's noise sigma if known; default measured inside the
            foreground with `estimate_noise_sigma`.
        limit: removed RMS / sigma above which a band counts as harmed.

    Returns:
        A `GuardReport`.

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> clean = np.zeros((48, 48, 8)); clean[8:40, 8:40] = 1.0
        >>> noisy = clean + rng.normal(0, 0.05, clean.shape)
        >>> check_denoised(noisy, clean).ok
        True
        >>> check_denoised(noisy, np.full(clean.shape, 0.5)).ok
        False
    """
    noisy = np.asarray(noisy, np.float64)
    denoised = np.asarray(denoised, np.float64)
    if noisy.shape != denoised.shape:
        raise ValueError(f"`noisy` and `denoised` must have one shape. Received: {noisy.shape} and {denoised.shape}")
    if noisy.ndim == 4:
        # Channels share one anatomy: compare their mean.
        noisy, denoised = noisy.mean(axis=-1), denoised.mean(axis=-1)
    if modality not in ("mr", "ct"):
        raise ValueError(f"`modality` must be 'mr' or 'ct'. Received: modality={modality!r}")
    body = noisy > CT_BODY_HU if modality == "ct" else foreground_mask(noisy)
    if sigma is None:
        sigma = estimate_noise_sigma(noisy, mask=body if body.sum() >= 1000 else None)
    sigma = max(float(sigma), 1e-12)
    if not np.all(np.isfinite(denoised)):
        count = int(denoised.size - np.count_nonzero(np.isfinite(denoised)))
        return GuardReport(sigma=sigma, ratios={}, limit=float(limit), harmed=(f"{count} non-finite voxels",))
    removed = noisy - denoised
    bands = intensity_bands(denoised, modality, body)
    ratios = {}
    for name, band in bands.items():
        if band.sum() >= _MIN_BAND_VOXELS:
            ratios[name] = float(np.sqrt(np.mean(removed[band] ** 2)) / sigma)
    # `not <=` also catches NaN: a model that returned non-finite values harmed the scan.
    harmed = tuple(name for name, ratio in ratios.items() if not ratio <= limit)
    return GuardReport(sigma=sigma, ratios=ratios, limit=float(limit), harmed=harmed)
