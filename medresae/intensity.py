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

    With `channel_axis`, a percentile map is fitted to each channel on its
    own (`low` and `high` become lists, one value per channel): channels
    with different units or ranges (several contrasts, coils, echoes) each
    map their own robust range to 0-1. Without it, every channel shares one
    map fitted on all of them.

    Args:
        method: 'percentile' or 'window'.
        lower: lower percentile (percentile) or HU value (window).
        upper: upper percentile (percentile) or HU value (window).
        low, high: fitted values (from `get_config`), or None.
        channel_axis: the channel axis of the arrays this normaliser will
            see (e.g. -1 for channels-last volumes), to fit each channel
            separately; None pools the channels.

    Examples:
        >>> x = np.array([0.0, 10.0, 200.0, 1000.0])
        >>> norm = IntensityNormalizer("percentile", upper=100.0).fit(x)
        >>> print([round(float(v), 6) for v in norm.transform(x)])
        [0.0, 0.01, 0.2, 1.0]
        >>> np.allclose(norm.inverse(norm.transform(x)), x)
        True
        >>> two = np.stack([x, 10 * x], axis=-1)  # two channels, ten times apart
        >>> per_channel = IntensityNormalizer("percentile", upper=100.0, channel_axis=-1).fit(two)
        >>> per_channel.high
        [1000.0, 10000.0]
        >>> bool(np.allclose(per_channel.transform(two)[..., 1], per_channel.transform(two)[..., 0]))
        True
    """

    def __init__(self, method: Literal["percentile", "window"] = "percentile", lower: float | None = None,
                 upper: float | None = None, low: float | list[float] | None = None,
                 high: float | list[float] | None = None, channel_axis: int | None = None) -> None:
        self.channel_axis = None if channel_axis is None else int(channel_axis)
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
        self.low = _as_values(low)
        self.high = _as_values(high)

    @property
    def fitted(self) -> bool:
        return self.low is not None

    def fit(self, x: ArrayLike) -> "IntensityNormalizer":
        """Sets `low`/`high` from `x` (percentile) or the window; returns self."""
        if self.method == "window":
            self.low, self.high = self.lower, self.upper
            return self
        x = np.asarray(x)
        if self.channel_axis is None:
            self.low, self.high = self._fit_one(x)
            return self
        ranges = [self._fit_one(channel) for channel in np.moveaxis(x, self.channel_axis, 0)]
        self.low, self.high = [r[0] for r in ranges], [r[1] for r in ranges]
        return self

    def _fit_one(self, x):
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
        return float(low), float(high)

    def _bounds(self, x):
        """`low` and `high` shaped to broadcast against `x` (per channel along `channel_axis`)."""
        if not isinstance(self.low, list):
            return self.low, self.high
        shape = [1] * x.ndim
        channels = x.shape[self.channel_axis]
        if channels != len(self.low):
            raise ValueError(f"This normaliser was fitted on {len(self.low)} channels; the array has {channels} "
                             f"along axis {self.channel_axis}.")
        shape[self.channel_axis] = channels
        return np.reshape(self.low, shape), np.reshape(self.high, shape)

    def _require_fitted(self):
        if not self.fitted:
            raise ValueError("IntensityNormalizer is not fitted: call fit(x) first.")

    def transform(self, x: ArrayLike) -> np.ndarray:
        """Maps `x` to model units (float32)."""
        self._require_fitted()
        x = np.asarray(x, dtype=np.float64)
        low, high = self._bounds(x)
        return ((x - low) / (high - low)).astype(np.float32)

    def inverse(self, y: ArrayLike) -> np.ndarray:
        """Maps model units back to the input's units (float32)."""
        self._require_fitted()
        y = np.asarray(y, dtype=np.float64)
        low, high = self._bounds(y)
        return (y * (high - low) + low).astype(np.float32)

    def scale(self) -> float | np.ndarray:
        """Input units per model unit (to convert noise levels); one per channel when fitted per channel."""
        self._require_fitted()
        if isinstance(self.low, list):
            return np.subtract(self.high, self.low)
        return self.high - self.low

    def get_config(self) -> dict[str, Any]:
        return dict(method=self.method, lower=self.lower, upper=self.upper, low=self.low, high=self.high,
                    channel_axis=self.channel_axis)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "IntensityNormalizer":
        return cls(**config)

    def __repr__(self) -> str:
        return (
            f"IntensityNormalizer(method={self.method!r}, lower={self.lower}, "
            f"upper={self.upper}, low={self.low}, high={self.high}, channel_axis={self.channel_axis})"
        )


def _as_values(value):
    """A fitted bound as a float, a list of floats (per channel) or None."""
    if value is None:
        return None
    if np.ndim(value):
        return [float(v) for v in value]
    return float(value)
