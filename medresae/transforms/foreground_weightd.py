"""A foreground weight map for RandWeightedCropd, so patches are not mostly air."""

from collections.abc import Sequence

import numpy as np
from monai.transforms import MapTransform

from medresae.transforms._arrays import to_numpy


class ForegroundWeightd(MapTransform):
    """Writes a weight map: 1 inside the foreground, `background` elsewhere.

    The foreground is where the reference image exceeds `threshold`
    (absolute, in the data's units) or, if None, `fraction` of its 99.5th
    percentile. Feed `weight_key` to MONAI's `RandWeightedCropd` so crop
    centres fall mostly in tissue but air is still seen sometimes.

    Args:
        keys: the reference image key.
        weight_key: where the weight map (1 channel) goes.
        fraction: threshold as a fraction of the robust maximum.
        threshold: absolute threshold (overrides `fraction`).
        background: weight of background voxels (> 0 keeps them possible).

    Examples:
        >>> t = ForegroundWeightd("image")
        >>> x = np.zeros((1, 8, 8, 2), "float32"); x[:, 2:6, 2:6] = 1.0
        >>> float(t({"image": x})["weight"].max())
        1.0
    """

    def __init__(self, keys: str | Sequence[str], weight_key: str = "weight", fraction: float = 0.1,
                 threshold: float | None = None, background: float = 0.02, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.weight_key = weight_key
        self.fraction = float(fraction)
        self.threshold = threshold
        self.background = float(background)

    def __call__(self, data):
        d = dict(data)
        x = to_numpy(d[self.keys[0]])
        threshold = self.threshold
        if threshold is None:
            threshold = self.fraction * float(np.percentile(x, 99.5))
        weight = np.where(x.max(axis=0, keepdims=True) > threshold, 1.0, self.background)
        d[self.weight_key] = weight.astype(np.float32)
        return d
