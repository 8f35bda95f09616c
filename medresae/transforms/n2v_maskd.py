"""Noise2Void blind-spot masking (MONAI dictionary transform)."""

from collections.abc import Sequence

import numpy as np
from monai.transforms import MapTransform, RandomizableTransform

from medresae._validation import standardize_tuple
from medresae.transforms._arrays import generator_from, to_numpy


class N2VMaskd(RandomizableTransform, MapTransform):
    """Replaces a random fraction of voxels by a random neighbour (Krull et al. 2019).

    For each key, the original image is kept under `target_key`, a `ratio`
    of its voxels are replaced (in every channel) by the value of a random
    other voxel within `radius` per axis, and a float mask with 1 at those
    voxels is written under `mask_key` (one channel). A loss evaluated only
    where the mask is 1 cannot learn the identity, so the network learns to
    predict each voxel from its neighbours: denoising without clean data.
    MONAI has no such transform.

    Args:
        keys: the noisy image key (one key).
        ratio: fraction of voxels to mask (Noise2Void uses about 0.2 %).
        radius: neighbourhood radius, int or per spatial axis; 0 on an axis
            keeps the replacement in-plane (thick slices).
        target_key: where the unmasked image goes.
        mask_key: where the mask goes.

    Examples:
        >>> t = N2VMaskd("image", ratio=0.05)
        >>> t = t.set_random_state(0)
        >>> out = t({"image": np.random.rand(1, 16, 16, 4).astype("float32")})
        >>> sorted(out), out["mask"].shape
        (['image', 'mask', 'target'], (1, 16, 16, 4))
    """

    def __init__(self, keys: str | Sequence[str], ratio: float = 0.002, radius: int | Sequence[int] = 2,
                 target_key: str = "target", mask_key: str = "mask", allow_missing_keys: bool = False) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        RandomizableTransform.__init__(self, 1.0)
        if len(self.keys) != 1:
            raise ValueError(f"N2VMaskd masks one key. Received: keys={self.keys}")
        if not 0.0 < ratio < 0.5:
            raise ValueError(f"`ratio` must be in (0, 0.5). Received: ratio={ratio!r}")
        self.ratio = float(ratio)
        self.radius = radius
        self.target_key = target_key
        self.mask_key = mask_key

    def __call__(self, data):
        d = dict(data)
        rng = generator_from(self.R)
        key = self.keys[0]
        x = to_numpy(d[key]).astype(np.float32)
        spatial = x.shape[1:]
        radius = np.array(standardize_tuple(self.radius, len(spatial), "radius", minimum=0))
        if not radius.any():
            raise ValueError(f"`radius` must be > 0 on at least one axis. Received: radius={self.radius!r}")
        n = max(1, int(round(self.ratio * np.prod(spatial))))
        coords = np.stack([rng.integers(0, s, n) for s in spatial], axis=1)
        offsets = np.stack([rng.integers(-r, r + 1, n) for r in radius], axis=1)
        # A zero offset would show the network the voxel itself: move it one
        # step along a random axis that allows it.
        zero = ~offsets.any(axis=1)
        if zero.any():
            movable = np.flatnonzero(radius)
            axes = rng.choice(movable, zero.sum())
            offsets[np.flatnonzero(zero), axes] = rng.choice([-1, 1], zero.sum())
        neighbours = coords + offsets
        # Reflect at the borders so the neighbour stays inside and differs.
        for axis, size in enumerate(spatial):
            c = neighbours[:, axis]
            c = np.where(c < 0, -c, c)
            neighbours[:, axis] = np.where(c >= size, 2 * (size - 1) - c, c)
        target = x.copy()
        src = (slice(None), *neighbours.T)
        dst = (slice(None), *coords.T)
        x[dst] = target[src]
        mask = np.zeros((1, *spatial), np.float32)
        mask[(0, *coords.T)] = 1.0
        d[key], d[self.target_key], d[self.mask_key] = x, target, mask
        return d
