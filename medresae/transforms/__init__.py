"""MONAI dictionary transforms that MONAI itself does not have.

Everything else in medresae's pipelines is MONAI's own (LoadImaged,
EnsureChannelFirstd, Orientationd, RandWeightedCropd, RandFlipd, RandAdjustContrastd, RandBiasFieldd,
RandRotate90d, CacheDataset ...). Importing this module imports MONAI.
"""

import medresae._monai  # noqa: F401  (before monai)
from medresae.transforms.estimate_noise_sigmad import EstimateNoiseSigmad
from medresae.transforms.foreground_weightd import ForegroundWeightd
from medresae.transforms.invertible_scale_intensityd import InvertibleScaleIntensityd
from medresae.transforms.n2v_maskd import N2VMaskd
from medresae.transforms.rand_add_noised import RandAddNoised
from medresae.transforms.rand_resolution_cropd import RandResolutionCropd
from medresae.transforms.recorrupted_pairsd import RecorruptedPairsd

__all__ = [
    "EstimateNoiseSigmad",
    "ForegroundWeightd",
    "InvertibleScaleIntensityd",
    "N2VMaskd",
    "RandAddNoised",
    "RandResolutionCropd",
    "RecorruptedPairsd",
]
