"""Intensity normalisation with an exact inverse, shared by training and inference.

Models see intensities in roughly [0, 1]; users get their output back in the
input's units. Both directions live here, once, so training and inference
can never disagree about the scaling.
"""

from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

from medresae._validation import check_choice

METHODS = ("percentile", "window")
# CT values outside this range do not occur in HU (air is -1000, the 12-bit
# scanner range ends at 3071).
CT_WINDOW = (-1024.0, 3071.0)


class IntensityNormalizer:
    """An affine map ``y = (x - low) / (high - low)`` fitted to a volume, and its inverse.

    - ``method='percentile'`` (MRI, arbitrary units): `low` and `high` are
      the `lower` and `upper` percentiles of the volume (default 0 and 99.5,
      so background stays at 0 and the robust maximum maps to 1).
    - ``method='window'`` (CT in HU): a fixed window (default -1024 to
      3071 HU), the same for every scan.

    No clipping happens, so `inverse(transform(x))` returns `x` up to float
    rounding.

    Args:
        method: 'percentile' or 'window'.
        lower: lower percentile (percentile) or HU value (window).
        upper: upper percentile (percentile) or HU value (window).

    Examples:
        >>> x = np.array([0.0, 10.0, 200.0, 1000.0])
        >>> norm = IntensityNormalizer("percentile", upper=100.0).fit(x)
        >>> print([round(float(v), 6) for v in norm.transform(x)])
        [0.0, 0.01, 0.2, 1.0]
        >>> np.allclose(norm.inverse(norm.transform(x)), x)
        True
    """

    def __init__(self, method: Literal["percentile", "window"] = "percentile", lower: float | None = None,
                 upper: float | None = None, low: float | None = None, high: float | None = None) -> None:
        self.method = check_choice(method, "method", METHODS)
        if method == "percentile":
            self.lower = 0.0 if lower is None else float(lower)
            self.upper = 99.5 if upper is None else float(upper)
            if not 0.0 <= self.lower < self.upper <= 100.0:
                raise ValueError(
                    "Percentiles must satisfy 0 <= lower < upper <= 100. "
                    f"Received: lower={lower!r}, upper={upper!r}"
                )
        else:
            self.lower = CT_WINDOW[0] if lower is None else float(lower)
            self.upper = CT_WINDOW[1] if upper is None else float(upper)
            if not self.lower < self.upper:
                raise ValueError(
                    f"The CT window needs lower < upper. Received: lower={lower!r}, upper={upper!r}"
                )
            low, high = (self.lower, self.upper) if low is None else (low, high)
        self.low = None if low is None else float(low)
        self.high = None if high is None else float(high)

    @property
    def fitted(self) -> bool:
        return self.low is not None

    def fit(self, x: ArrayLike) -> "IntensityNormalizer":
        """Sets `low`/`high` from `x` (percentile) or the window; returns self."""
        if self.method == "window":
            self.low, self.high = self.lower, self.upper
            return self
        x = np.asarray(x)
        low, high = np.percentile(x[np.isfinite(x)], [self.lower, self.upper])
        if not high > low:
            # A mostly constant volume: fall back to the full range so the
            # map stays invertible.
            low, high = float(np.min(x)), float(np.max(x))
        if not high > low:
            raise ValueError(
                "Cannot normalise a constant volume (every voxel is "
                f"{low!r}); check the input file."
            )
        self.low, self.high = float(low), float(high)
        return self

    def _require_fitted(self):
        if not self.fitted:
            raise ValueError("IntensityNormalizer is not fitted: call fit(x) first.")

    def transform(self, x: ArrayLike) -> np.ndarray:
        """Maps `x` to model units (float32)."""
        self._require_fitted()
        x = np.asarray(x, dtype=np.float64)
        return ((x - self.low) / (self.high - self.low)).astype(np.float32)

    def inverse(self, y: ArrayLike) -> np.ndarray:
        """Maps model units back to the input's units (float32)."""
        self._require_fitted()
        y = np.asarray(y, dtype=np.float64)
        return (y * (self.high - self.low) + self.low).astype(np.float32)

    def scale(self) -> float:
        """Input units per model unit (to convert noise levels)."""
        self._require_fitted()
        return self.high - self.low

    def get_config(self) -> dict[str, Any]:
        return dict(method=self.method, lower=self.lower, upper=self.upper, low=self.low, high=self.high)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "IntensityNormalizer":
        return cls(**config)

    def __repr__(self) -> str:
        return (
            f"IntensityNormalizer(method={self.method!r}, lower={self.lower}, "
            f"upper={self.upper}, low={self.low}, high={self.high})"
        )
