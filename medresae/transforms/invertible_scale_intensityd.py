"""Invertible intensity normalisation (MONAI dictionary transform)."""

from collections.abc import Sequence
from typing import Literal

from monai.transforms import MapTransform

from medresae.intensity import IntensityNormalizer
from medresae.transforms._arrays import to_numpy


class InvertibleScaleIntensityd(MapTransform):
    """Scales `keys` with one `IntensityNormalizer` fitted on `ref_key`.

    All keys share the parameters fitted on the reference (the noisy input
    for paired data: at inference only the noisy scan exists), and the
    parameters are stored under `params_key` so `inverse` restores the
    input's units exactly. MONAI's `ScaleIntensityRangePercentilesd` computes
    the same map but keeps no parameters to invert it.

    Args:
        keys: keys to scale.
        ref_key: key the parameters are fitted on (default: the first key).
        method: 'percentile' (MRI) or 'window' (CT in HU).
        lower, upper: percentiles or HU window bounds (see IntensityNormalizer).
        params_key: where the fitted parameters go.
        channel_wise: fit each channel (axis 0, MONAI's channel-first
            layout) on its own rather than all channels together.

    Examples:
        >>> t = InvertibleScaleIntensityd("image", method="window")
        >>> out = t({"image": np.array([[-1024.0, 3071.0]])})
        >>> out["image"].tolist(), t.inverse(out)["image"].tolist()
        ([[0.0, 1.0]], [[-1024.0, 3071.0]])
    """

    def __init__(self, keys: str | Sequence[str], ref_key: str | None = None,
                 method: Literal["percentile", "window"] = "percentile", lower: float | None = None,
                 upper: float | None = None, params_key: str = "intensity", allow_missing_keys: bool = False,
                 channel_wise: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.ref_key = ref_key or self.keys[0]
        self.normalizer = IntensityNormalizer(method, lower, upper, channel_axis=0 if channel_wise else None)
        self.params_key = params_key

    def __call__(self, data):
        d = dict(data)
        norm = IntensityNormalizer.from_config(self.normalizer.get_config()).fit(to_numpy(d[self.ref_key]))
        for key in self.key_iterator(d):
            d[key] = norm.transform(to_numpy(d[key]))
        d[self.params_key] = norm.get_config()
        return d

    def inverse(self, data):
        d = dict(data)
        norm = IntensityNormalizer.from_config(d[self.params_key])
        for key in self.key_iterator(d):
            d[key] = norm.inverse(to_numpy(d[key]))
        return d
