"""Seeded noise models on numpy arrays: Gaussian, Rician, noncentral chi, low-dose CT.

Every function takes `rng`: None (fresh entropy), an int seed, or a
`numpy.random.Generator`; the same seed gives the same output. Outputs are
float32 arrays of the input's shape. Gaussian, Rician and noncentral chi work
elementwise, so any shape works (2D, 3D, with or without a channel axis); the
CT model works on 2D slices.

`NoiseSpec` is the one-string form used on the command line and in configs:
`MODEL:LEVEL[-HIGH][:OPTION[,OPTION...]]`, e.g. `"rician:0.05"`,
`"gaussian:0.01-0.1"`, `"chi:0.05:coils=8"`, `"gaussian:12:abs"`,
`"ct:5e3-5e4:electronic=5"`.
"""


from medresae.noise._common import robust_max
from medresae.noise.ct import CT_UNITS, low_dose_ct
from medresae.noise.estimate import estimate_noise_sigma
from medresae.noise.mri import gaussian, noncentral_chi, rician, rician_mean
from medresae.noise.spec import NOISE_MODELS, NoiseSpec, add_noise
from medresae.noise.volume import simulate_volume

__all__ = [
    "CT_UNITS",
    "NOISE_MODELS",
    "NoiseSpec",
    "add_noise",
    "estimate_noise_sigma",
    "gaussian",
    "low_dose_ct",
    "noncentral_chi",
    "rician",
    "rician_mean",
    "robust_max",
    "simulate_volume",
]
