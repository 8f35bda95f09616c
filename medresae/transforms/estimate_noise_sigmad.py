"""Measures a volume's noise level once, before patches are drawn."""

from collections.abc import Sequence

from monai.transforms import MapTransform

from medresae.noise import estimate_noise_sigma
from medresae.transforms._arrays import to_numpy


class EstimateNoiseSigmad(MapTransform):
    """Writes the white-noise sigma of an image, measured inside its foreground.

    A patch is too small (and often too dark) for a stable estimate, so this
    runs on the whole cached volume and the random transforms that follow
    (`RecorruptedPairsd`) read the number from `sigma_key`.

    Args:
        keys: the image key (channel-first, one or more channels; the first
            channel is measured).
        mask_key: a weight map where 1 marks the foreground (as written by
            `ForegroundWeightd`); without it the whole image is used.
        sigma_key: where sigma goes (a float, in the image's units).
        reference_key: optional key of a denoised copy of the image that
            marks its flat voxels (`estimate_noise_sigma`'s `reference`).

    Examples:
        >>> t = EstimateNoiseSigmad("image", mask_key=None)
        >>> x = np.random.default_rng(0).normal(0.5, 0.05, (1, 32, 32, 8))
        >>> abs(t({"image": x})["noise_sigma"] - 0.05) < 0.005
        True
    """

    def __init__(self, keys: str | Sequence[str], mask_key: str | None = "weight", sigma_key: str = "noise_sigma",
                 reference_key: str | None = None, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.mask_key = mask_key
        self.sigma_key = sigma_key
        self.reference_key = reference_key

    def __call__(self, data):
        d = dict(data)
        image = to_numpy(d[self.keys[0]])[0]
        mask = None
        if self.mask_key is not None and self.mask_key in d:
            mask = to_numpy(d[self.mask_key])[0] >= 1.0
            if mask.sum() < 1000:  # almost no foreground: measure everywhere
                mask = None
        reference = None if self.reference_key is None else to_numpy(d[self.reference_key])[0]
        d[self.sigma_key] = estimate_noise_sigma(image, mask, reference=reference)
        return d
