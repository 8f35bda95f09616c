"""Tiles over a volume and the sliding-window predictor that blends them.

`plan_tiles` lays fixed-shape tiles on a grid over a (padded) volume;
`sliding_window_predict` runs a predictor over them in batches and blends
the overlapping predictions with a Gaussian importance map, as MONAI's
sliding-window inference does, which hides the seams where a tile's border
context is poor. Plain numpy: nothing here knows about models, intensities
or files (`medresae.inference.denoise` puts them together).
"""

import dataclasses
import functools
import itertools
import math
import numbers
from collections.abc import Callable, Sequence

import keras
import numpy as np

from medresae._validation import check_positive_int, check_positive_number, standardize_tuple

# Floor of each per-axis Gaussian (MONAI clamps at 1e-3 too): a border voxel
# that only one tile covers still gets a positive weight.
MIN_WEIGHT = 1e-3


def _gaussian_1d(n, sigma_scale):
    offsets = np.arange(n, dtype=np.float64) - (n - 1) / 2.0
    w = np.exp(-(offsets**2) / (2.0 * (sigma_scale * n) ** 2))
    return np.maximum(w / w.max(), MIN_WEIGHT)


def gaussian_importance_map(tile, sigma_scale=0.125):
    """Gaussian weights for blending overlapping tile predictions.

    Per axis ``exp(-d**2 / (2 * (sigma_scale * tile)**2))`` with `d` the
    distance to the tile centre, normalised to a maximum of 1 and floored at
    `MIN_WEIGHT` (1e-3); the map is the product of the per-axis weights. It
    is symmetric (the centre of an even axis lies between two voxels) and
    strictly positive, so voxels at a tile's border still count where no
    other tile covers them. Because it is separable, `denoise` never needs
    a volume-size weight array.

    Args:
        tile: int or tuple of ints, the tile size per axis.
        sigma_scale: the Gaussian's standard deviation as a fraction of the
            tile size (MONAI's default 0.125).

    Returns:
        A float32 array of shape `tile`.

    Examples:
        >>> w = gaussian_importance_map((5, 4))
        >>> w.shape, float(w.max()), bool(w.min() > 0)
        ((5, 4), 1.0, True)
        >>> bool(np.allclose(w, w[::-1, ::-1]))
        True
    """
    if isinstance(tile, numbers.Integral) and not isinstance(tile, bool):
        tile = (tile,)
    if not isinstance(tile, (tuple, list)) or not tile:
        raise ValueError(f"`tile` must be an int or a tuple of ints. Received: tile={tile!r}")
    tile = standardize_tuple(tile, len(tile), "tile")
    sigma_scale = check_positive_number(sigma_scale, "sigma_scale")
    maps = [_gaussian_1d(n, sigma_scale) for n in tile]
    return functools.reduce(np.multiply.outer, maps).astype(np.float32)


def tile_starts(size, tile, step):
    """Start indices of tiles of length `tile` that cover ``[0, size)``.

    Tiles start every `step` voxels; the last tile ends flush with `size`
    (it overlaps its neighbour more rather than running past the end).

    Args:
        size: the axis length.
        tile: the tile length, at most `size`.
        step: the distance between starts, at most `tile` (no gaps).

    Returns:
        A sorted list of distinct ints, first 0 and last ``size - tile``.

    Examples:
        >>> tile_starts(10, 4, 3)
        [0, 3, 6]
        >>> tile_starts(11, 4, 3)
        [0, 3, 6, 7]
    """
    size = check_positive_int(size, "size")
    tile = check_positive_int(tile, "tile")
    step = check_positive_int(step, "step")
    if tile > size:
        raise ValueError(f"`tile` must be <= `size`. Received: tile={tile}, size={size}")
    if step > tile:
        raise ValueError(f"`step` must be <= `tile` or tiles leave gaps. Received: step={step}, tile={tile}")
    starts = list(range(0, size - tile + 1, step))
    if starts[-1] != size - tile:
        starts.append(size - tile)
    return starts


def _round_up(size, divisor):
    return -(-size // divisor) * divisor


def _tile_step(tile, divisor, overlap):
    return max(divisor, int(tile * (1.0 - overlap)) // divisor * divisor)


def _axis_choices(size, divisor, overlap, min_size, fixed):
    """(tile, tile count) pairs for one axis, keeping only those where no
    smaller tile covers the axis with as few model voxels."""
    padded = _round_up(size, divisor)
    if fixed is not None:
        return [(fixed, len(tile_starts(max(padded, fixed), fixed, _tile_step(fixed, divisor, overlap))))]
    lowest = min(padded, _round_up(min_size, divisor))
    choices, best = [], math.inf
    for tile in range(lowest, padded + 1, divisor):
        count = len(tile_starts(padded, tile, _tile_step(tile, divisor, overlap)))
        if count * tile < best:
            best = count * tile
            choices.append((tile, count))
    return choices


def choose_tile(sizes: Sequence[int], divisor: Sequence[int], overlap: float = 0.25,
                max_voxels: int = 128**3, min_size: int = 96,
                fixed: Sequence[int | None] | None = None) -> tuple[int, ...]:
    """The tile that covers a volume with the fewest voxels through the model.

    Overlapping tiles cost model time: a 128^3 volume in tiles of 96^3 (step
    72) needs 8 tiles, 3.4 times the volume, where one tile of 128^3 needs
    none extra. Among tiles of at most `max_voxels` voxels, each axis a
    multiple of its divisor and at least `min_size` (or the whole padded
    axis when that is shorter, since thin tiles lose context at their
    borders), this returns the one whose tiles add up to the fewest voxels
    as `plan_tiles` lays them; of equal costs, the one with fewer tiles.

    Args:
        sizes: the spatial shape the model sees (its axes only).
        divisor: the model's `spatial_divisor`, one int per axis.
        overlap: fraction of a tile shared with its neighbour, in [0, 1).
        max_voxels: the largest tile, in voxels.
        min_size: the shortest tile edge, where the axis is at least that long.
        fixed: per axis, a size the model requires, or None.

    Returns:
        One int per axis.

    Examples:
        >>> choose_tile((128, 128, 128), (4, 4, 4))
        (128, 128, 128)
        >>> choose_tile((512, 512, 400), (4, 4, 4))
        (128, 128, 124)
        >>> choose_tile((512, 512, 16), (4, 4, 1))
        (208, 512, 16)
    """
    divisor = tuple(int(d) for d in divisor)
    fixed = tuple(fixed) if fixed is not None else (None,) * len(divisor)
    per_axis = [_axis_choices(int(s), d, overlap, min_size, f) for s, d, f in zip(sizes, divisor, fixed)]
    best_key, best_tile = None, None
    for combo in itertools.product(*per_axis):
        tile = tuple(t for t, _ in combo)
        if math.prod(tile) > max_voxels:
            continue
        key = (math.prod(t * n for t, n in combo), math.prod(n for _, n in combo))
        if best_key is None or key < best_key:
            best_key, best_tile = key, tile
    if best_tile is None:  # even the smallest tiles exceed max_voxels: take those
        best_tile = tuple(choices[0][0] for choices in per_axis)
    return best_tile


def balanced_batch(n_jobs: int, max_batch: int) -> int:
    """Tiles per call for `n_jobs` tiles, at most `max_batch`, in as few calls
    as possible and with the least zero-filling of the last call.

    Examples:
        >>> balanced_batch(9, 4), balanced_batch(1, 4), balanced_batch(8, 4)
        (3, 1, 4)
    """
    n_jobs = check_positive_int(n_jobs, "n_jobs")
    max_batch = check_positive_int(max_batch, "max_batch")
    calls = -(-n_jobs // max_batch)
    return -(-n_jobs // calls)


@dataclasses.dataclass(frozen=True)
class TilePlan:
    """Where the tiles of one volume go.

    Attributes:
        sizes: the volume's spatial shape.
        padded_sizes: the shape after padding (a multiple of the divisor,
            and at least one tile).
        pads: (before, after) reflect padding per axis.
        tile: the model's tile (its spatial axes only).
        grid_tile: the tile on every volume axis (1 on the slice axis when a
            2D model runs slice by slice).
        starts: tile start indices per axis, in the padded volume.
        slicewise: a 2D model over the slices of a 3D volume.
        sigma_scale: width of the Gaussian blending weights.
    """

    sizes: tuple[int, ...]
    padded_sizes: tuple[int, ...]
    pads: tuple[tuple[int, int], ...]
    tile: tuple[int, ...]
    grid_tile: tuple[int, ...]
    starts: tuple[list[int], ...]
    slicewise: bool
    sigma_scale: float

    def positions(self) -> list[tuple[int, ...]]:
        """Every tile's start, one tuple per tile, in C order."""
        return list(itertools.product(*self.starts))

    def index(self, position: Sequence[int]) -> tuple[slice | int, ...]:
        """The slices of one tile in the padded volume (the model's axes only)."""
        if self.slicewise:
            return tuple(slice(p, p + t) for p, t in zip(position[:-1], self.tile)) + (position[-1],)
        return tuple(slice(p, p + t) for p, t in zip(position, self.tile))

    def crop(self) -> tuple[slice, ...]:
        """The slices of the volume inside the padded volume."""
        return tuple(slice(lo, lo + s) for (lo, _), s in zip(self.pads, self.sizes))

    def weight_sums(self) -> list[np.ndarray]:
        """Per axis, over the unpadded volume: the sum of the Gaussian weights of
        every tile covering each voxel. The full sum is their outer product,
        because the map is a product of per-axis maps and the starts are a grid."""
        sums = []
        for p, t, s, (lo, _), start_list in zip(self.padded_sizes, self.grid_tile, self.sizes, self.pads,
                                                 self.starts):
            g = _gaussian_1d(t, self.sigma_scale)
            total = np.zeros(p)
            for start in start_list:
                total[start:start + t] += g
            sums.append(total[lo:lo + s])
        return sums


def plan_tiles(sizes: Sequence[int], tile: Sequence[int], divisor: Sequence[int], overlap: float = 0.25,
               slicewise: bool = False, sigma_scale: float = 0.125) -> TilePlan:
    """Lays tiles over a volume of spatial shape `sizes`.

    Each axis is padded to a multiple of `divisor` (and at least the tile);
    starts lie ``step = tile * (1 - overlap)`` apart, rounded down to a
    multiple of the divisor (at least one divisor), so every tile sits on
    the same down-sampling grid; the last tile ends flush with the padded
    volume.

    Args:
        sizes: the volume's spatial shape.
        tile: the tile per model axis, each a multiple of `divisor`.
        divisor: the model's `spatial_divisor`.
        overlap: fraction of a tile shared with its neighbour, in [0, 1).
        slicewise: a 2D model over a 3D volume (the last axis is sliced).
        sigma_scale: width of the blending Gaussian, as a fraction of the tile.

    Returns:
        A `TilePlan`.

    Examples:
        >>> plan = plan_tiles((100, 40, 9), tile=(64, 40, 8), divisor=(4, 4, 1))
        >>> plan.padded_sizes, plan.starts
        ((100, 40, 9), ([0, 36], [0], [0, 1]))
    """
    sizes = tuple(int(s) for s in sizes)
    tile, divisor = tuple(tile), tuple(divisor)
    grid_tile = tile + (1,) * slicewise
    grid_div = divisor + (1,) * slicewise
    padded = tuple(max(_round_up(s, d), t) for s, d, t in zip(sizes, grid_div, grid_tile))
    steps = tuple(_tile_step(t, d, overlap) for t, d in zip(grid_tile, grid_div))
    starts = tuple(tile_starts(p, t, s) for p, t, s in zip(padded, grid_tile, steps))
    pads = tuple(((p - s) // 2, p - s - (p - s) // 2) for p, s in zip(padded, sizes))
    return TilePlan(sizes, padded, pads, tile, grid_tile, starts, bool(slicewise), float(sigma_scale))


def sliding_window_predict(predict: Callable[[np.ndarray], np.ndarray], x: np.ndarray, plan: TilePlan,
                           batch_size: int = 4, flips: Sequence[tuple[int, ...]] = ((),),
                           progress: bool | Callable[[int, int], None] = True,
                           check: Callable[[np.ndarray, np.ndarray], None] | None = None) -> np.ndarray:
    """Runs `predict` over the tiles of `x` and blends them into one array.

    Args:
        predict: a function from a batch `(n, *tile, channels)` to an array
            of the same spatial shape (any channel count).
        x: the volume in model units, `(*plan.sizes, channels)`, already in
            the dtype the model takes.
        plan: a `TilePlan` for `x`.
        batch_size: tiles per call; every call gets exactly
            ``min(batch_size, tiles x passes)`` tiles (the last batch is
            filled with zeros), so a compiled model traces once.
        flips: test-time augmentation passes: each a tuple of the model axes
            to flip (`()` is the plain pass); their predictions are averaged.
        progress: True shows a `keras.utils.Progbar` over the calls; a
            function is called as `progress(done, total)` after each call
            (e.g. to drive a GUI's progress bar); False shows nothing.
        check: optional function `(batch, prediction)` called on the first
            batch (e.g. to check the output shape).

    Returns:
        A float32 array `(*plan.sizes, out_channels)`: the blended
        prediction, cropped to the volume.

    Examples:
        >>> plan = plan_tiles((20, 12, 3), tile=(8, 8, 2), divisor=(1, 1, 1))
        >>> x = np.random.default_rng(0).random((20, 12, 3, 1)).astype("float32")
        >>> out = sliding_window_predict(lambda b: b, x, plan, progress=False)
        >>> bool(np.allclose(out, x, atol=1e-5))
        True
    """
    if any(any(p) for p in plan.pads):
        x = np.pad(x, list(plan.pads) + [(0, 0)], mode="reflect")
    jobs = [(flip, pos) for flip in flips for pos in plan.positions()]
    n = min(batch_size, len(jobs))
    n_batches = math.ceil(len(jobs) / n)
    batch = np.zeros((n, *plan.tile, x.shape[-1]), dtype=x.dtype)
    weight = gaussian_importance_map(plan.tile, plan.sigma_scale)[..., None]
    if callable(progress):
        report = progress
    elif progress:
        bar = keras.utils.Progbar(n_batches, unit_name="batch")

        def report(done, total):
            bar.update(done)
    else:
        report = None
    acc = None
    for b in range(n_batches):
        chunk = jobs[b * n:(b + 1) * n]
        for i, (flip, pos) in enumerate(chunk):
            batch[i] = np.flip(x[plan.index(pos)], flip) if flip else x[plan.index(pos)]
        batch[len(chunk):] = 0
        pred = predict(batch)
        if acc is None:
            if check is not None:
                check(batch, pred)
            acc = np.zeros(plan.padded_sizes + pred.shape[-1:], dtype=np.float32)
        for i, (flip, pos) in enumerate(chunk):
            acc[plan.index(pos)] += (np.flip(pred[i], flip) if flip else pred[i]) * weight
        if report is not None:
            report(b + 1, n_batches)
    del x, batch
    return _normalise_blend(acc, plan, len(flips))


def _normalise_blend(acc, plan, passes):
    """Divides the summed, weighted predictions by the sum of the weights, cropped
    to the volume, in row chunks so that float64 temporaries stay small."""
    sums = plan.weight_sums()
    rest = functools.reduce(np.multiply.outer, sums[1:]) * passes
    crop = plan.crop()
    out = acc if acc.shape[:-1] == plan.sizes else np.empty(plan.sizes + acc.shape[-1:], np.float32)
    for rows in row_chunks(plan.sizes[0], int(np.prod(out.shape[1:]))):
        lo = crop[0].start
        part = acc[(slice(lo + rows.start, lo + rows.stop),) + crop[1:]]
        out[rows] = part / np.multiply.outer(sums[0][rows], rest)[..., None]
    return out


# Voxels per chunk when normalising or dividing whole volumes, so float64
# temporaries stay small (~8 MB).
_CHUNK_VOXELS = 1 << 20


def row_chunks(length, row_voxels):
    """Slices of the first axis, each about a million voxels (`row_voxels` per row)."""
    rows = max(1, _CHUNK_VOXELS // max(1, row_voxels))
    for start in range(0, length, rows):
        yield slice(start, min(length, start + rows))
