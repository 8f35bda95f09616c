"""Noise2Void blind-spot masking (MONAI dictionary transform)."""

from collections.abc import Sequence
from typing import Literal

import numpy as np
from monai.transforms import MapTransform, RandomizableTransform

from medresae._validation import check_choice, standardize_tuple
from medresae.transforms._arrays import generator_from, to_numpy


class N2VMaskd(RandomizableTransform, MapTransform):
    """Replaces a random fraction of voxels by a neighbour's value (Noise2Void, Krull et al. 2019) or by the
    median of their neighbourhood (N2V2, Hoeck et al. 2022).

    For each key, the original image is kept under `target_key`, a `ratio`
    of its voxels are replaced, and a float mask with 1 at those voxels is
    written under `mask_key`. A loss evaluated only where the mask is 1
    cannot learn the identity, so the network learns to predict each voxel
    from its neighbours: denoising without clean data. MONAI has no such
    transform.

    Args:
        keys: the noisy image key (one key).
        ratio: fraction of voxels to mask (Noise2Void uses about 0.2 %).
        radius: neighbourhood radius, int or per spatial axis; 0 on an axis
            keeps the replacement in-plane (thick slices).
        target_key: where the unmasked image goes.
        mask_key: where the mask goes.
        replacement: 'neighbour' (the value of one random other voxel within
            `radius`, Noise2Void) or 'median' (the median of the
            neighbourhood without the voxel itself, N2V2; fewer
            checkerboard artefacts).
        per_channel: mask each channel at its own voxels (the mask then has
            one channel per image channel), so no channel shows the network
            another channel's value at a blind spot; otherwise the same
            voxels are masked in every channel and the mask has one channel.

    Examples:
        >>> t = N2VMaskd("image", ratio=0.05)
        >>> t = t.set_random_state(0)
        >>> out = t({"image": np.random.rand(1, 16, 16, 4).astype("float32")})
        >>> sorted(out), out["mask"].shape
        (['image', 'mask', 'target'], (1, 16, 16, 4))
    """

    def __init__(self, keys: str | Sequence[str], ratio: float = 0.002, radius: int | Sequence[int] = 2,
                 target_key: str = "target", mask_key: str = "mask", allow_missing_keys: bool = False,
                 replacement: Literal["neighbour", "median"] = "neighbour", per_channel: bool = False) -> None:
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
        self.replacement = check_choice(replacement, "replacement", ("neighbour", "median"))
        self.per_channel = bool(per_channel)

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
        target = x.copy()
        groups = [[c] for c in range(x.shape[0])] if self.per_channel else [list(range(x.shape[0]))]
        mask = np.zeros((len(groups), *spatial), np.float32)
        for m, channels in enumerate(groups):
            coords = np.stack([rng.integers(0, s, n) for s in spatial], axis=1)
            dst = (channels, *[c[:, None] for c in coords.T]) if len(channels) > 1 else (channels[0], *coords.T)
            if self.replacement == "median":
                values = self._medians(target[channels], coords, radius)
            else:
                values = target[channels][(slice(None), *self._neighbours(rng, coords, radius, spatial).T)]
            x[dst] = values.T if len(channels) > 1 else values[0]
            mask[(m, *coords.T)] = 1.0
        d[key], d[self.target_key], d[self.mask_key] = x, target, mask
        return d

    @staticmethod
    def _neighbours(rng, coords, radius, spatial):
        """One random other voxel within `radius` of each of `coords`, reflected into the volume."""
        n = len(coords)
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
        return neighbours

    @staticmethod
    def _medians(image, coords, radius):
        """Per channel, the median of each voxel's (2 radius + 1) window without the voxel, clipped at borders."""
        out = np.empty((image.shape[0], len(coords)), np.float32)
        spatial = image.shape[1:]
        for i, c in enumerate(coords):
            window = tuple(slice(max(p - r, 0), min(p + r + 1, s)) for p, r, s in zip(c, radius, spatial))
            centre = tuple(p - w.start for p, w in zip(c, window))
            block = image[(slice(None), *window)].reshape(image.shape[0], -1)
            keep = np.ones(block.shape[1], bool)
            keep[np.ravel_multi_index(centre, [w.stop - w.start for w in window])] = False
            out[:, i] = np.median(block[:, keep], axis=1)
        return out
