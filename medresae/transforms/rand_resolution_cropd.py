"""Random patches on a random voxel grid: any axis order, flips, in-plane zoom, thick slices."""

from collections.abc import Sequence

import numpy as np
from monai.transforms import MapTransform, Randomizable

from medresae.transforms._arrays import generator_from, to_numpy


def _resample_axis(x, axis, start, factor, n_out):
    """`n_out` samples along `axis` of `x`, each `factor` source voxels wide from `start`.

    A coarser grid (`factor >= 1`) averages the source over each output
    voxel's extent (a box slice profile: what a thick slice or a larger
    in-plane voxel records); a finer one interpolates linearly. Positions
    outside the array take the edge value.
    """
    n = x.shape[axis]
    x = np.moveaxis(x, axis, -1)
    if factor >= 1.0:
        # Exact box integration for any real factor: differences of the
        # piecewise-linear cumulative integral at the output voxels' edges.
        cum = np.concatenate([np.zeros(x.shape[:-1] + (1,), x.dtype), np.cumsum(x, axis=-1)], axis=-1)
        edges = start + factor * np.arange(n_out + 1)
        clipped = np.clip(edges, 0.0, n)
        lo = np.clip(np.floor(clipped).astype(int), 0, n - 1)
        frac = (clipped - lo).astype(x.dtype)
        integral = cum[..., lo] + frac * (cum[..., lo + 1] - cum[..., lo])
        # Beyond the edges the first/last voxel repeats.
        integral = integral + np.minimum(edges, 0.0).astype(x.dtype) * x[..., :1]
        integral = integral + np.maximum(edges - n, 0.0).astype(x.dtype) * x[..., -1:]
        out = np.diff(integral, axis=-1) / np.float32(factor)
    else:
        centres = np.clip(start + factor * (np.arange(n_out) + 0.5) - 0.5, 0.0, n - 1.0)
        lo = np.clip(np.floor(centres).astype(int), 0, max(n - 2, 0))
        hi = np.minimum(lo + 1, n - 1)
        frac = (centres - lo).astype(x.dtype)
        out = x[..., lo] * (1 - frac) + x[..., hi] * frac
    return np.moveaxis(out.astype(x.dtype, copy=False), -1, axis)


class RandResolutionCropd(Randomizable, MapTransform):
    """Random patches of `keys` resampled to a random voxel grid, with random axis order and flips.

    A model trained on one scanner's protocol learns that protocol's voxel
    grid: which axis is the thick one, how large anatomy is in voxels, how
    correlated neighbouring slices are. This transform takes that away.
    For each patch it draws

    - a permutation of the three axes and a flip of each (`permute`, `flip`);
    - an in-plane zoom: every output voxel is `zoom` source voxels wide
      (log-uniform in `zoom_range`; > 1 is a coarser grid; an axis with
      fewer source voxels than the patch needs is sampled more finely);
    - with probability `thick_prob`, a thick-slice axis: on one output axis
      whose source voxels are near the volume's finest, a slice thickness
      drawn from `thickness_mm` (by the volume's voxel size in
      `spacing_key`), made by averaging the source over each slice.

    The source region is cut around a foreground voxel (from the weight map
    in `w_key`, like MONAI's `RandWeightedCropd`), resampled by separable box
    averaging (coarser grids) or linear interpolation (finer), and returned
    at exactly `spatial_size`. All `keys` share one geometry, so noisy/clean
    pairs stay aligned. Apply it to clean data, before noise is added: noise
    is white on the grid a scanner acquires, which is the output grid here.

    Data are channel-first, as everywhere in MONAI.

    Args:
        keys: images to cut alike (channel-first, 3 spatial axes).
        spatial_size: output patch (X, Y, Z).
        w_key: foreground weight map (1 in tissue, small elsewhere), or None
            for uniform centres.
        spacing_key: voxel size in mm (3 numbers); without it the source is
            taken as isotropic 1 mm.
        num_samples: patches per call (a list is returned when > 1).
        permute: random axis order.
        flip: random flips.
        zoom_range: (low, high) in-plane zoom factors.
        thick_prob: probability of a thick-slice axis.
        thickness_mm: (low, high) slice thickness in mm.
        slice_axis: None (any axis may become any output axis, and any
            finely sampled axis may become thick), or the source axis that
            stays the slice axis: only the other two are swapped, zoomed
            and flipped in plane, and only this one is made thicker. For
            data whose noise is already in the volume and has a fixed
            texture in the acquisition plane (reconstructed CT slices).

    Examples:
        >>> t = RandResolutionCropd("image", (8, 8, 8), w_key=None)
        >>> t = t.set_random_state(0)
        >>> t({"image": np.ones((1, 32, 32, 16), "float32")})["image"].shape
        (1, 8, 8, 8)
    """

    def __init__(self, keys: str | Sequence[str], spatial_size: Sequence[int], w_key: str | None = "weight",
                 spacing_key: str = "spacing", num_samples: int = 1, permute: bool = True, flip: bool = True,
                 zoom_range: tuple[float, float] = (0.8, 1.5), thick_prob: float = 0.5,
                 thickness_mm: tuple[float, float] = (2.0, 7.0), slice_axis: int | None = None,
                 allow_missing_keys: bool = False) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        self.spatial_size = tuple(int(s) for s in spatial_size)
        if len(self.spatial_size) != 3 or min(self.spatial_size) < 1:
            raise ValueError(f"`spatial_size` must be 3 positive ints. Received: spatial_size={spatial_size!r}")
        self.w_key = w_key
        self.spacing_key = spacing_key
        self.num_samples = int(num_samples)
        self.permute = bool(permute)
        self.flip = bool(flip)
        low, high = (float(v) for v in zoom_range)
        if not 0 < low <= high:
            raise ValueError(f"`zoom_range` must be 0 < low <= high. Received: zoom_range={zoom_range!r}")
        self.zoom_range = (low, high)
        self.thick_prob = float(thick_prob)
        self.thickness_mm = tuple(float(v) for v in thickness_mm)
        if slice_axis not in (None, 0, 1, 2):
            raise ValueError(f"`slice_axis` must be None, 0, 1 or 2. Received: slice_axis={slice_axis!r}")
        self.slice_axis = slice_axis

    def randomize(self, data=None):
        """Nothing to draw here: every patch draws its own geometry in `__call__`."""

    def _centre(self, rng, weight, shape):
        """A voxel index: foreground-weighted by rejection sampling (cheap on
        large volumes, no cumulative sum per call), uniform without weights."""
        if weight is not None:
            w = weight[0] if weight.ndim == 4 else weight
            w_max = float(w.max()) or 1.0
            for _ in range(200):
                index = tuple(int(rng.integers(s)) for s in shape)
                if rng.random() * w_max <= w[index]:
                    return index
        return tuple(int(rng.integers(s)) for s in shape)

    def _geometry(self, rng, spacing, shape):
        if self.slice_axis is not None:
            return self._slice_geometry(rng, spacing, shape)
        order = list(rng.permutation(3)) if self.permute else [0, 1, 2]
        zoom = float(np.exp(rng.uniform(*np.log(self.zoom_range))))
        factors = [zoom] * 3
        if rng.random() < self.thick_prob:
            finest = min(spacing)
            candidates = [i for i in range(3) if spacing[order[i]] <= 1.5 * finest]
            axis = int(rng.choice(candidates))
            src = order[axis]
            thickness = rng.uniform(*self.thickness_mm)
            factor = thickness / spacing[src]
            # The source region must fit the volume along that axis.
            factor = min(factor, shape[src] / self.spatial_size[axis])
            if factor > zoom:
                factors[axis] = factor
        return order, self._fit(factors, order, shape), self._flips(rng)

    def _slice_geometry(self, rng, spacing, shape):
        s = self.slice_axis
        plane = [a for a in range(3) if a != s]
        if self.permute and rng.random() < 0.5:
            plane = plane[::-1]
        order = list(plane)
        order.insert(s, s)
        zoom = float(np.exp(rng.uniform(*np.log(self.zoom_range))))
        factors = [zoom] * 3
        factors[s] = 1.0
        if rng.random() < self.thick_prob:
            # Thicker slices only: a slice thinner than acquired cannot be made.
            factor = rng.uniform(*self.thickness_mm) / spacing[s]
            factors[s] = max(1.0, min(factor, shape[s] / self.spatial_size[s]))
        return order, self._fit(factors, order, shape), self._flips(rng)

    def _flips(self, rng):
        return [bool(rng.random() < 0.5) if self.flip else False for _ in range(3)]

    def _fit(self, factors, order, shape):
        # A source axis shorter than the region it should cover (a thick-slice
        # axis read as an in-plane one) is sampled more finely instead.
        return [min(f, shape[order[i]] / self.spatial_size[i]) for i, f in enumerate(factors)]

    def _cut(self, arrays, rng, spacing):
        shape = next(iter(arrays.values())).shape[1:]
        order, factors, flips = self._geometry(rng, spacing, shape)
        centre = self._centre(rng, arrays.get(self.w_key) if self.w_key else None, shape)
        # Output axis i reads source axis order[i]: the source box first, so
        # resampling touches only the voxels the patch needs.
        box, starts = [slice(None)] * 4, {}
        for i, src in enumerate(order):
            extent = factors[i] * self.spatial_size[i]
            start = centre[src] + 0.5 - extent / 2.0
            start = float(np.clip(start, min(0.0, shape[src] - extent), max(0.0, shape[src] - extent)))
            lo = max(0, int(np.floor(start)))
            hi = min(shape[src], int(np.ceil(start + extent)) + 1)
            starts[src] = (i, start - lo)
            box[1 + src] = slice(lo, hi)
        out = {}
        for key, x in arrays.items():
            if key == self.w_key:
                continue
            y = x[tuple(box)]
            for src in range(3):
                i, start = starts[src]
                y = _resample_axis(y, 1 + src, start, factors[i], self.spatial_size[i])
            y = np.transpose(y, [0] + [1 + s for s in order])
            for i, f in enumerate(flips):
                if f:
                    y = np.flip(y, axis=1 + i)
            # A copy, not ascontiguousarray: a flipped length-1 axis keeps a negative
            # stride that numpy calls contiguous and torch refuses.
            out[key] = np.array(y, dtype=np.float32, order="C", copy=True)
        return out

    def __call__(self, data):
        d = dict(data)
        rng = generator_from(self.R)
        arrays = {key: to_numpy(d[key]) for key in self.key_iterator(d)}
        if self.w_key and self.w_key in d:
            arrays[self.w_key] = to_numpy(d[self.w_key])
        spacing = tuple(float(s) for s in d.get(self.spacing_key, (1.0, 1.0, 1.0)))
        samples = []
        for _ in range(self.num_samples):
            sample = {k: v for k, v in d.items() if k != self.w_key}
            sample.update(self._cut(arrays, rng, spacing))
            samples.append(sample)
        return samples if self.num_samples > 1 else samples[0]
