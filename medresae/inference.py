"""Denoising of whole volumes: normalise, predict tile by tile, map back.

`denoise` runs any Keras model (or callable) over a volume of any size in
fixed-shape tiles (`medresae.tiling`), so memory is bounded by the tile, not
the volume, and JAX / TensorFlow compile the model once per call. Its three
steps are separate: the volume is scaled to model units
(`medresae.intensity`), `medresae.tiling.sliding_window_predict` blends the
tiles' predictions, and the result is scaled back to the input's units.
"""

import math
import numbers
import warnings
from collections.abc import Callable, Sequence
from typing import Literal, Protocol

import keras
import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from medresae._validation import (
    check_choice,
    check_positive_int,
    check_positive_number,
    standardize_tuple,
)
from medresae.errors import ExtremeValuesWarning, ModelOutputError
from medresae.intensity import IntensityNormalizer
from medresae.tiling import (  # noqa: F401  (gaussian_importance_map, tile_starts: part of this module's API)
    MIN_WEIGHT,
    _round_up,
    balanced_batch,
    choose_tile,
    gaussian_importance_map,
    plan_tiles,
    row_chunks,
    sliding_window_predict,
    tile_starts,
)

NORMALIZE = ("percentile", "window", None)
DTYPES = ("float16", "float32", "float64")
# Default tiles (by spatial dims): at most this many voxels per tile, and as
# many tiles per call as fit in the call budget (a batch of 4 of 96^3 in 3D,
# a few hundred MB of activations in a small U-Net), so a call's memory stays
# what it was with 96^3 tiles while a 128^3 volume runs as one tile.
DEFAULT_TILE_VOXELS = {2: 512 * 512, 3: 128**3}
DEFAULT_CALL_VOXELS = {2: 4 * 512 * 512, 3: 4 * 96**3}
# No default tile edge is shorter than this, unless its axis is: thin tiles
# lose context at their borders.
DEFAULT_MIN_TILE = 96


class SupportsPredict(Protocol):
    """An object with a `predict(batch)` method, which `denoise` also runs (e.g. a wrapped PyTorch network)."""

    def predict(self, batch: np.ndarray) -> ArrayLike: ...


_NOT_IMAGE_MODEL = (
    "`model` must be an image-to-image model with one input and one output of shape "
    "(batch, X, Y[, Z], channels) (2 or 3 spatial dims), such as a medresae ResUNet; {what}"
)


def _model_spec(model):
    """(spatial_dims or None, divisor or None, in_channels or None, fixed spatial size or None)."""
    divisor = getattr(model, "spatial_divisor", None)
    try:
        shape = model.input_shape
    except Exception:  # noqa: BLE001 - unbuilt models, plain functions: nothing to read
        shape = None
    if isinstance(shape, list) and len(shape) == 1:
        shape = shape[0]
    if isinstance(shape, list) or (isinstance(shape, tuple) and len(shape) not in (4, 5)):
        # A known input that is not one (batch, X, Y[, Z], channels) tensor:
        # e.g. a Dense classifier. Say so now, not deep inside predict.
        raise ValueError(_NOT_IMAGE_MODEL.format(what=f"its input shape is {shape}"))
    if isinstance(shape, tuple):
        try:
            out_shape = model.output_shape
        except Exception:  # noqa: BLE001 - nothing known about the output
            out_shape = None
        if isinstance(out_shape, list) and len(out_shape) == 1:
            out_shape = out_shape[0]
        if isinstance(out_shape, list) or (isinstance(out_shape, tuple) and len(out_shape) != len(shape)):
            raise ValueError(
                _NOT_IMAGE_MODEL.format(what=f"it maps input shape {shape} to output shape {out_shape}")
            )
    if not isinstance(shape, tuple):
        shape = None
    dims = len(divisor) if divisor else (len(shape) - 2 if shape else None)
    if shape is not None and len(shape) - 2 != dims:
        shape = None
    in_channels = shape[-1] if shape else None
    fixed = tuple(shape[1:-1]) if shape else None
    return dims, (tuple(divisor) if divisor else None), in_channels, fixed


def _check_volume(volume, dims, in_channels, divisor=None):
    if volume.dtype.kind not in "biuf" or volume.ndim not in (3, 4) or 0 in volume.shape:
        raise ValueError(
            "`volume` must be a real array of shape (*spatial, channels) with 2 or 3 "
            f"non-empty spatial axes. Received: volume.shape={volume.shape}, dtype={volume.dtype}"
        )
    if dims == 3 and volume.ndim == 3:
        raise ValueError(
            "`volume` must have shape (X, Y, Z, channels) for a 3D model; add a channel axis "
            f"with volume[..., None]. Received: volume.shape={volume.shape}"
        )
    if in_channels is not None and volume.shape[-1] != in_channels:
        raise ValueError(
            f"`volume` has {volume.shape[-1]} channel(s) but the model expects {in_channels} "
            f"(channels last); pass a volume with {in_channels} channel(s) or a model trained on "
            f"{volume.shape[-1]}. Received: volume.shape={volume.shape}"
        )
    if dims is not None and divisor is not None:
        for axis, (size, div) in enumerate(zip(volume.shape[:dims], divisor)):
            if size < div:
                raise ValueError(
                    f"`volume` has {size} voxel(s) on axis {axis}, fewer than the model's spatial_divisor "
                    f"{divisor} asks for there ({div}), so the model would see mostly padding; use a "
                    "larger volume or a model that down-samples that axis less. "
                    f"Received: volume.shape={volume.shape}"
                )
    if volume.dtype.kind == "f" and not np.isfinite(volume).all():
        bad = int(np.size(volume) - np.count_nonzero(np.isfinite(volume)))
        raise ValueError(
            f"`volume` must contain only finite values; it has {bad} NaN or infinite voxel(s). "
            "Replace them first (e.g. np.nan_to_num)."
        )


def _resolve_tile(tile, sizes, divisor, fixed, overlap=0.25):
    """Per model axis: the tile, after checks, defaults and shrinking to the volume."""
    n = len(divisor)
    if tile is None:
        return choose_tile(sizes, divisor, overlap, max_voxels=DEFAULT_TILE_VOXELS[n],
                           min_size=DEFAULT_MIN_TILE, fixed=fixed)
    if isinstance(tile, (tuple, list)) and len(tile) == 1:
        tile = tile[0]
    if isinstance(tile, (tuple, list)) and len(tile) == n + 1 and tile[-1] == 1:
        # A 2D model on a volume: accept X,Y,1 (one slice per tile).
        tile = tuple(tile[:-1])
    tile = standardize_tuple(tile, n, "tile")
    if any(t % d for t, d in zip(tile, divisor)):
        nearest = tuple(_round_up(t, d) for t, d in zip(tile, divisor))
        raise ValueError(
            f"`tile` must be a multiple of the model's spatial_divisor {divisor} on every axis "
            f"(and at least that), e.g. tile={nearest}. Received: tile={tile}"
        )
    if any(f is not None and t != f for t, f in zip(tile, fixed)):
        raise ValueError(f"`tile` must equal the model's fixed input size {fixed}. Received: tile={tile}")
    return tuple(
        t if f is not None else min(t, _round_up(s, d)) for t, s, d, f in zip(tile, sizes, divisor, fixed)
    )


def check_model(model: keras.Model | SupportsPredict | Callable[[np.ndarray], ArrayLike],
                tile: int | Sequence[int] | None = None) -> None:
    """Checks that `denoise` can run `model`, and with `tile`, before any data is read.

    `denoise` makes the same checks; calling this first lets a program fail
    fast, e.g. before loading a large volume.

    Args:
        model: see `denoise`.
        tile: None, or a tile size as `denoise` takes it.

    Raises:
        ValueError: `model` is a Keras model whose input or output is not
            one ``(batch, X, Y[, Z], channels)`` tensor (e.g. a Dense
            classifier), or `tile` is not a multiple of its
            `spatial_divisor` or differs from its fixed input size.

    Examples:
        >>> check_model(keras.Sequential([keras.Input((None, None, 1)), keras.layers.Identity()]), tile=64)
        >>> check_model(keras.Sequential([keras.Input((10,)), keras.layers.Dense(3)]))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: `model` must be an image-to-image model ... its input shape is (None, 10)
    """
    dims, divisor, _, fixed = _model_spec(model)
    if tile is not None and dims is not None:
        divisor = standardize_tuple(divisor or 1, dims, "spatial_divisor")
        _resolve_tile(tile, divisor, divisor, fixed or (None,) * dims)


def _predict(model, batch):
    if hasattr(model, "predict_on_batch"):
        # Keras models: one compiled predict step (jit / tf.function) reused
        # for every batch of the same shape; fastest on all three backends.
        out = model.predict_on_batch(batch)
    elif hasattr(model, "predict"):
        out = model.predict(batch)
    else:
        out = model(batch)
    if isinstance(out, (list, tuple)) and len(out) == 1:
        out = out[0]
    if isinstance(out, (list, tuple, dict)):
        raise ModelOutputError(f"`model` must return one array; it returned a {type(out).__name__}.")
    return np.asarray(keras.ops.convert_to_numpy(out), dtype=np.float32)


def denoise(
    model: keras.Model | SupportsPredict | Callable[[np.ndarray], ArrayLike],
    volume: ArrayLike,
    tile: int | Sequence[int] | None = None,
    overlap: float = 0.25,
    batch_size: int | None = None,
    tta: bool = False,
    normalize: Literal["percentile", "window"] | None = "percentile",
    normalizer: IntensityNormalizer | None = None,
    sigma_scale: float = 0.125,
    progress: bool | Callable[[int, int], None] = True,
    dtype: DTypeLike = "float32",
    channel_wise: bool | None = None,
    slice_axis: int | None = None,
) -> np.ndarray:
    """Denoises a whole 2D/3D volume with a model, tile by tile.

    Steps: fit an `IntensityNormalizer` on the volume (or use `normalizer`)
    and scale it to model units; pad it (reflect) to a multiple of the
    model's `spatial_divisor`; run the model on overlapping tiles, a fixed
    number of fixed-shape tiles per call; blend the predictions with
    `gaussian_importance_map`; crop the padding and map the result back to
    the input's units.

    A 2D model (2-entry `spatial_divisor`, or a rank-4 `input_shape`) on a
    3D volume denoises it slice by slice along the last spatial axis (or
    `slice_axis`); the slices are batched like tiles.

    Tiles: by default the tile shape that covers the volume with the fewest
    voxels through the model (`medresae.tiling.choose_tile`), at most 128^3
    voxels for 3D models and 512^2 for 2D ones, no edge shorter than 96
    unless the axis is: a 128^3 volume runs as one tile, a 512x512x400 one
    as 100 tiles of 128x128x124. Starts lie `step`
    apart, ``step = tile * (1 - overlap)`` rounded down to a multiple of the
    divisor (at least one divisor), so every tile sits on the same
    down-sampling grid and overlapping tiles agree better. A model with a
    fixed input size uses that size as its tile.

    Memory: the model sees one batch of tiles at a time. Besides the
    caller's array, two float32 arrays of the padded volume size live at
    once (the scaled input and the blended prediction; the weights are
    separable and kept per axis), plus the returned array when padding is
    cropped: a 512x512x400 single-channel volume needs about 3 x 420 MB.

    Args:
        model: a Keras model (called with `predict_on_batch`), an object
            with `predict(batch)`, or a function from a batch array
            `(batch, *tile, channels)` to an array of the same spatial
            shape. `model.spatial_divisor` (default 1 per axis) and
            `model.input_shape` are used when present.
        volume: array of shape `(*spatial, channels)`, 2 or 3 spatial axes,
            channels last (e.g. `medresae.io.Volume.array`).
        tile: tile size, an int or one int per model spatial axis, a
            multiple of `spatial_divisor`; shrunk to the (padded) volume
            where the volume is smaller. None picks the default above.
        overlap: fraction of a tile shared with its neighbour, in [0, 1); 0.25 (as
            MONAI) costs about 2x the work of no overlap in 3D, 0.5 about 8x.
        batch_size: tiles per model call, or None for as many as fit in
            4 x 96^3 voxels (3D models) or 4 x 512^2 (2D), spread evenly
            over the calls. Every call gets the same number of tiles of one
            shape (the last batch is filled with zeros), so the model
            compiles once.
        tta: test-time augmentation: also predict each tile flipped along
            each spatial axis of the model and average (1 + spatial dims
            passes).
        normalize: 'percentile' (MRI), 'window' (CT in HU) or None (the
            model sees the raw values).
        normalizer: an `IntensityNormalizer` to use instead of `normalize`;
            fitted on the volume (a copy) if it is not fitted yet.
        sigma_scale: width of the Gaussian blending weights, as a fraction
            of the tile size.
        progress: True shows a `keras.utils.Progbar` over the model calls; a
            function is called as `progress(done, total)` after each call;
            False shows nothing.
        dtype: dtype of the tiles given to the model ('float16', 'float32'
            or 'float64'); the result is float32 regardless.
        channel_wise: fit the `normalize` map to each channel on its own
            (channels with different ranges, e.g. several contrasts) rather
            than to all channels together; None: as the model was trained
            (its `metadata['channel_wise']`, else False).
        slice_axis: for a 2D model on a 3D volume, the spatial axis (0, 1
            or 2) to go along slice by slice, e.g. the thick axis of a
            thick-slice scan; None: the last. `tile` then names the other
            two axes in their order.

    Returns:
        A float32 array of the volume's spatial shape with the model's
        output channels, in the input's units.

    Raises:
        ValueError: on a Keras model that is not image-to-image (see
            `check_model`); a volume of the wrong rank or channel count, with
            NaN/inf values, or smaller than the model's `spatial_divisor` on
            an axis (the model would see mostly padding; a volume smaller
            than the receptive field but not than the divisor is fine); a
            `tile` that is not a multiple of the model's
            `spatial_divisor`; `overlap` outside [0, 1); `batch_size` < 1;
            an unknown `normalize` or `dtype`; `ModelOutputError` (a
            ValueError): a model output whose spatial shape differs from its
            input's, or several outputs.

    Warns:
        ExtremeValuesWarning: voxels more than 20 times the normalised
            range away from it (corrupt values such as 1e30) were kept out
            of the model's input and passed through unchanged.

    Examples:
        >>> model = keras.Sequential([keras.Input((None, None, None, 1)), keras.layers.Identity()])
        >>> volume = np.random.default_rng(0).random((23, 17, 9, 1)).astype("float32")
        >>> out = denoise(model, volume, tile=16, overlap=0.25, progress=False)
        >>> out.shape, bool(np.allclose(out, volume, atol=1e-5))
        ((23, 17, 9, 1), True)
    """
    if (
        not isinstance(overlap, numbers.Real) or isinstance(overlap, bool)
        or not 0.0 <= overlap < 1.0
    ):
        raise ValueError(f"`overlap` must be a number in [0, 1). Received: overlap={overlap!r}")
    if batch_size is not None:
        batch_size = check_positive_int(batch_size, "batch_size")
    sigma_scale = check_positive_number(sigma_scale, "sigma_scale")
    check_choice(normalize, "normalize", NORMALIZE)
    if dtype is not None:  # np.dtype(None) would silently mean float64
        try:
            dtype = np.dtype(dtype).name
        except TypeError:
            pass
    check_choice(dtype, "dtype", DTYPES)
    if normalizer is not None and not (hasattr(normalizer, "transform") and hasattr(normalizer, "inverse")):
        raise ValueError(
            f"`normalizer` must be an IntensityNormalizer or None. Received: normalizer={normalizer!r}"
        )
    if not (hasattr(model, "predict_on_batch") or hasattr(model, "predict") or callable(model)):
        raise ValueError(f"`model` must be a Keras model or a callable. Received: model={model!r}")

    volume = np.asarray(volume)
    dims, divisor, in_channels, fixed = _model_spec(model)
    _check_volume(volume, dims, in_channels, divisor)
    if slice_axis is not None:
        if dims != 2 or volume.ndim != 4:
            raise ValueError(
                "`slice_axis` applies to a 2D model on a 3D volume; leave it None for this model and volume. "
                f"Received: slice_axis={slice_axis!r}, a {dims}D model, volume shape {volume.shape}"
            )
        bad = isinstance(slice_axis, bool) or not isinstance(slice_axis, numbers.Integral)
        if bad or slice_axis not in range(-3, 3):
            raise ValueError(f"`slice_axis` must be 0, 1, 2 (or -3 to -1) or None. Received: slice_axis={slice_axis!r}")
        axis = int(slice_axis) % 3
        if axis != 2:
            out = denoise(model, np.moveaxis(volume, axis, 2), tile=tile, overlap=overlap, batch_size=batch_size,
                          tta=tta, normalize=normalize, normalizer=normalizer, sigma_scale=sigma_scale,
                          progress=progress, dtype=dtype, channel_wise=channel_wise)
            return np.ascontiguousarray(np.moveaxis(out, 2, axis))
    plan, batch_size, flips = _plan(model, volume.shape, tile, overlap, batch_size, tta, sigma_scale)

    if channel_wise is None:
        channel_wise = bool((getattr(model, "metadata", None) or {}).get("channel_wise", False))
    normalizer = _fitted_normalizer(normalizer, normalize, volume, channel_wise)
    x, extreme = _to_model_units(volume, normalizer, dtype)
    out = sliding_window_predict(lambda batch: _predict(model, batch), x, plan, batch_size=batch_size,
                                 flips=flips, progress=progress, check=_check_output)
    del x
    if normalizer is not None:
        for rows in row_chunks(len(out), int(np.prod(out.shape[1:]))):
            out[rows] = normalizer.inverse(out[rows])
    if extreme is not None and out.shape[-1] == volume.shape[-1]:
        out[extreme] = volume[extreme]
    return out


def _plan(model, shape, tile, overlap, batch_size, tta, sigma_scale=0.125):
    """The tile plan, tiles per call and flips of `denoise` for a volume of `shape`."""
    dims, divisor, _, fixed = _model_spec(model)
    vol_dims = len(shape) - 1
    dims = dims or vol_dims
    slicewise = dims == 2 and vol_dims == 3
    divisor = standardize_tuple(divisor or 1, dims, "spatial_divisor")
    fixed = fixed or (None,) * dims
    sizes = tuple(shape[:-1])
    model_tile = _resolve_tile(tile, sizes[:dims], divisor, fixed, overlap)
    plan = plan_tiles(sizes, model_tile, divisor, overlap, slicewise=slicewise, sigma_scale=sigma_scale)
    flips = [()] + [(axis,) for axis in range(dims)] if tta else [()]
    n_jobs = len(flips) * math.prod(len(starts) for starts in plan.starts)
    if batch_size is None:
        batch_size = balanced_batch(n_jobs, max(1, DEFAULT_CALL_VOXELS[dims] // math.prod(model_tile)))
    return plan, min(batch_size, n_jobs), flips


def model_batch_shape(model: keras.Model | SupportsPredict | Callable[[np.ndarray], ArrayLike],
                      shape: Sequence[int], tile: int | Sequence[int] | None = None, overlap: float = 0.25,
                      batch_size: int | None = None, tta: bool = False) -> tuple[int, ...]:
    """The batch shape `denoise` calls `model` with on a volume of `shape`.

    Every call of one `denoise` run has this shape, so running the model
    once on it beforehand (e.g. on zeros) compiles it, and a timed `denoise`
    then measures only the work.

    Args:
        model, tile, overlap, batch_size, tta: as `denoise` takes them.
        shape: the volume's shape, `(*spatial, channels)`.

    Returns:
        `(tiles per call, *tile, channels)`.

    Examples:
        >>> from medresae.models import ResUNet
        >>> model = ResUNet(spatial_dims=3, filters=(4, 8), n_blocks=1)
        >>> model_batch_shape(model, (128, 128, 128, 1)), model_batch_shape(model, (300, 256, 40, 1))
        ((1, 128, 128, 128, 1), (2, 172, 256, 40, 1))
    """
    plan, batch_size, _ = _plan(model, tuple(shape), tile, overlap, batch_size, tta)
    return (batch_size, *plan.tile, shape[-1])


def _fitted_normalizer(normalizer, normalize, volume, channel_wise=False):
    """`normalizer` fitted on the volume (a copy, if it was not fitted yet), or a new one for `normalize`."""
    if normalizer is not None and not getattr(normalizer, "fitted", True):
        return IntensityNormalizer.from_config(normalizer.get_config()).fit(volume)
    if normalizer is None and normalize is not None:
        return IntensityNormalizer(normalize, channel_axis=-1 if channel_wise else None).fit(volume)
    return normalizer


def _to_model_units(volume, normalizer, dtype):
    """The volume scaled to model units in `dtype`, chunk by chunk (the normalizer works
    in float64), with corrupt extreme voxels held back; and their mask (or None)."""
    if normalizer is None:
        return np.asarray(volume, dtype=dtype), None  # no copy when it already is `dtype`
    row = int(np.prod(volume.shape[1:]))
    x = np.empty(volume.shape, dtype=dtype)
    for rows in row_chunks(len(volume), row):
        x[rows] = normalizer.transform(volume[rows])
    return x, _hold_back_extremes(x, row)


def _check_output(batch, prediction):
    if prediction.ndim != batch.ndim or prediction.shape[:-1] != batch.shape[:-1]:
        raise ModelOutputError(
            f"the model must return an image of the shape it is given: it maps a batch of tiles of "
            f"shape {batch.shape} to shape {prediction.shape}; use an image-to-image model that keeps the "
            "spatial shape"
        )


# Normalised intensities beyond [-EXTREME, 1 + EXTREME] (20 times the range the
# normaliser maps to [0, 1]) are not anatomy but corrupt voxels.
EXTREME = 20.0


def _hold_back_extremes(x, row):
    """Clips voxels of `x` (model units) far outside the scan's range into the
    range of the other voxels, in place, so that a convolution cannot spread
    them over their neighbours; returns their mask (None if there are none)
    with an `ExtremeValuesWarning`."""
    extreme = None
    for rows in row_chunks(len(x), row):
        part = x[rows]
        found = (part < -EXTREME) | (part > 1.0 + EXTREME)
        if found.any():
            if extreme is None:
                extreme = np.zeros(x.shape, bool)
            extreme[rows] = found
    if extreme is None:
        return None
    n = int(np.count_nonzero(extreme))
    largest = float(np.max(np.abs(x[extreme])))
    rest = x[~extreme]
    if rest.size:
        np.clip(x, rest.min(), rest.max(), out=x, where=extreme)
    else:
        x[extreme] = 0.0
    warnings.warn(
        f"{n} of {x.size} voxels lie far outside the scan's intensity range ({largest:.3g} times its "
        "robust range); they were kept out of the model's input, so they cannot spread into their "
        "neighbours, and are passed through unchanged; check the scan for corrupt voxels",
        ExtremeValuesWarning,
        stacklevel=4,  # the caller of denoise (via _to_model_units)
    )
    return extreme
