"""Noise on a whole volume, slice by slice for low-dose CT, with a progress bar."""

from collections.abc import Sequence

import numpy as np

from medresae.noise.spec import NoiseSpec


def simulate_volume(array: np.ndarray, spec: NoiseSpec | str, voxel_sizes: Sequence[float], seed: int = 0,
                    progress: bool = True) -> tuple[np.ndarray, float]:
    """Adds `spec`'s noise to a (X, Y, Z[, C]) array; CT slice by slice with a progress bar.

    Args:
        array: float array, HU for CT specs.
        spec: a `NoiseSpec` (or its string form).
        voxel_sizes: the volume's voxel sizes in mm (CT uses the in-plane one).
        seed: int seed; it draws the level (for a range) and then the noise.
        progress: show a progress bar over slices for CT.

    Returns:
        (noisy float32 array, the level used).

    Examples:
        >>> import numpy as np
        >>> noisy, level = simulate_volume(np.full((16, 16, 4), 100.0), "rician:0.05", (1, 1, 1), progress=False)
        >>> noisy.shape, level
        ((16, 16, 4), 0.05)
    """
    spec = NoiseSpec.parse(spec) if isinstance(spec, str) else spec
    rng = np.random.default_rng(seed)
    level = spec.sample_level(rng)
    if spec.model != "ct" or array.ndim < 3:
        kwargs = {"units": "hu", "voxel_size_mm": float(voxel_sizes[0])} if spec.model == "ct" else {}
        return spec.apply(array, rng=rng, level=level, **kwargs), level
    if progress:
        import keras  # only for its progress bar: the noise models are plain NumPy

    bar = keras.utils.Progbar(array.shape[2], unit_name="slice") if progress else None
    out = np.empty(array.shape, np.float32)
    for k in range(array.shape[2]):
        out[:, :, k] = spec.apply(array[:, :, k], rng=rng, level=level, units="hu",
                                  voxel_size_mm=float(voxel_sizes[0]))
        if bar is not None:
            bar.update(k + 1)
    return out, level
