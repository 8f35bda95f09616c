"""Image-quality metrics for denoised volumes: PSNR, SSIM, NRMSE (numpy + scikit-image).

Every metric takes a `reference` (the clean volume) and an `image` (the
denoised one) of the same shape and returns a Python float. Shapes:

- `(H, W)` and `(H, W, 1)` are 2D images;
- any other `(H, W, D)` is a 3D volume (so a thick-slice `(256, 256, 3)` CT
  is a volume, not an RGB image);
- `(H, W, D, C)` is a volume with `C` channels; each metric is computed per
  channel and averaged.

`mask` restricts a metric to the head or body, so a method is not rewarded
for flattening the empty background: a boolean array of the spatial shape or
`"auto"` (`foreground_mask(reference)`).
`data_range` defaults to the reference's max - min over the whole volume
(per channel), masked metrics included, so numbers compare across methods.
"""

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy import ndimage
from skimage.metrics import structural_similarity

from medresae._arrays import check_finite_array
from medresae._defaults import CT_BODY_HU, SSIM_WINDOWS
from medresae._validation import check_choice, check_positive_int, check_positive_number

_HU_MIN = CT_BODY_HU


def _check_finite(x, name):
    """Returns `x` as a non-empty, finite float64 numpy array."""
    return check_finite_array(x, name).astype(np.float64, copy=False)


def _with_channels(x, name):
    """Returns `x` reshaped to `spatial_shape + (channels,)` (see the module docstring)."""
    if x.ndim == 2:
        return x[..., None]
    if x.ndim == 3:
        # A trailing 1 is a channel axis; any other size is a slice axis.
        return x if x.shape[-1] == 1 else x[..., None]
    if x.ndim == 4:
        return x
    raise ValueError(
        f"`{name}` must be 2D or 3D, optionally with a trailing channel axis. "
        f"Received: {name}.shape={x.shape}"
    )


def _prepare(reference, image):
    """Validates the pair; returns float64 arrays of shape `spatial + (channels,)`."""
    reference = _check_finite(reference, "reference")
    image = _check_finite(image, "image")
    if reference.shape != image.shape:
        raise ValueError(
            "`reference` and `image` must have the same shape. Received: "
            f"reference.shape={reference.shape} and image.shape={image.shape}"
        )
    return _with_channels(reference, "reference"), _with_channels(image, "image")


def _resolve_mask(mask, reference):
    """Returns None or a non-empty boolean mask of the reference's spatial shape."""
    spatial = reference.shape[:-1]
    if mask is None:
        return None
    if isinstance(mask, str):
        if mask != "auto":
            raise ValueError(
                f'`mask` must be None, "auto" or a boolean array. Received: mask={mask!r}'
            )
        # Several channels: one mask from their mean, so every channel is
        # scored over the same region.
        return foreground_mask(reference.mean(axis=-1))
    mask = np.asarray(mask)
    if mask.shape == spatial + (1,):
        mask = mask[..., 0]
    if mask.shape != spatial:
        raise ValueError(
            f"`mask` must have the spatial shape of `reference`, {spatial}. "
            f"Received: mask.shape={mask.shape}"
        )
    if mask.dtype != bool:
        if mask.dtype.kind not in "biuf" or not np.all((mask == 0) | (mask == 1)):
            raise ValueError(
                f"`mask` must be a boolean array (or 0/1 values). Received: mask with "
                f"dtype {mask.dtype}"
            )
        mask = mask.astype(bool)
    if not mask.any():
        raise ValueError(
            f"`mask` must select at least one voxel. Received: mask with shape "
            f"{mask.shape} and no True voxel"
        )
    return mask


def _data_ranges(reference, data_range):
    """One data range per channel: `data_range`, or the reference's max - min."""
    if data_range is not None:
        value = check_positive_number(data_range, "data_range")
        return [value] * reference.shape[-1]
    ranges = []
    for c in range(reference.shape[-1]):
        channel = reference[..., c]
        value = float(channel.max() - channel.min())
        if value <= 0:
            raise ValueError(
                "`reference` is constant, so its range (the default `data_range`) is 0; "
                f"pass `data_range`. Received: reference with every value {float(channel.flat[0])}"
            )
        ranges.append(value)
    return ranges


def _mse(reference, image, mask):
    """Mean squared error per channel, over the whole volume or inside `mask`."""
    diff2 = (reference - image) ** 2
    if mask is not None:
        diff2 = diff2[mask]  # -> (voxels, channels)
    return diff2.reshape(-1, reference.shape[-1]).mean(axis=0)


def _psnr(mse, ranges):
    values = [
        float("inf") if m == 0 else 10.0 * np.log10(r * r / m) for m, r in zip(mse, ranges)
    ]
    return float(np.mean(values))


def _nrmse(mse, ranges):
    return float(np.mean([np.sqrt(m) / r for m, r in zip(mse, ranges)]))


# The Gaussian window of Wang et al. (2004), as MONAI, TensorFlow and most papers use it:
# sigma 1.5, 11 voxels wide (scikit-image truncates at 3.5 sigma).
_GAUSSIAN_SIGMA, _GAUSSIAN_WIDTH = 1.5, 11


def _ssim_map(reference, image, data_range, window="uniform"):
    """Local SSIM map of one channel and the voxels away from the border."""
    shape = reference.shape
    # The uniform window shrinks to fit (down to 3); the Gaussian one has a fixed width.
    least = 3 if window == "uniform" else _GAUSSIAN_WIDTH
    long_axes = [a for a, n in enumerate(shape) if n >= least]
    short_axes = [a for a, n in enumerate(shape) if n < least]
    if not long_axes:
        raise ValueError(f"SSIM with window={window!r} needs an axis of size >= {least}. "
                         f"Received: reference.shape={shape}")
    if window == "uniform":
        smallest = min(shape[a] for a in long_axes)
        win_size = min(7, smallest if smallest % 2 else smallest - 1)
        # gaussian_weights=False (the scikit-image default): a uniform
        # win_size^n window, so numbers match structural_similarity's defaults.
        kwargs = dict(data_range=data_range, win_size=win_size, full=True, gaussian_weights=False)
    else:
        win_size = _GAUSSIAN_WIDTH
        kwargs = dict(data_range=data_range, full=True, gaussian_weights=True, sigma=_GAUSSIAN_SIGMA,
                      use_sample_covariance=False)
    # Axes shorter than the window cannot hold it: score each slice across them.
    order = short_axes + long_axes
    long_shape = tuple(shape[a] for a in long_axes)
    ref_slices = np.transpose(reference, order).reshape((-1,) + long_shape)
    img_slices = np.transpose(image, order).reshape((-1,) + long_shape)
    maps = [structural_similarity(r, i, **kwargs)[1] for r, i in zip(ref_slices, img_slices)]
    ssim_map = np.stack(maps).reshape([shape[a] for a in order]).transpose(np.argsort(order))
    # scikit-image averages only voxels at least win_size // 2 from the border
    # (the filter reflects there); the same crop keeps ssim(mask=all) == ssim().
    pad = win_size // 2
    interior = np.zeros(shape, dtype=bool)
    interior[tuple(slice(pad, n - pad) if n >= least else slice(None) for n in shape)] = True
    return ssim_map, interior


def _ssim(reference, image, ranges, masks, window="uniform"):
    """Mean SSIM per entry of `masks` (None = whole volume), averaged over channels."""
    totals = np.zeros(len(masks))
    for c, value_range in enumerate(ranges):
        ssim_map, interior = _ssim_map(reference[..., c], image[..., c], value_range, window)
        for k, mask in enumerate(masks):
            region = interior if mask is None else interior & mask
            if mask is not None and not region.any():
                # A mask lying entirely on the border strip: use it as is.
                region = mask
            totals[k] += ssim_map[region].mean(dtype=np.float64)
    return [float(t / len(ranges)) for t in totals]


def psnr(reference, image, mask=None, data_range=None):
    """Peak signal-to-noise ratio in dB: `10 * log10(data_range**2 / MSE)`.

    Args:
        reference: the clean array, 2D or 3D (optionally a trailing channel axis).
        image: the array to score, same shape as `reference`.
        mask: None (whole volume), `"auto"` (`foreground_mask(reference)`) or
            a boolean array of the spatial shape; the MSE is taken inside it.
        data_range: the peak value range. Defaults to `reference.max() -
            reference.min()` over the whole volume, also when `mask` is given.

    Returns:
        A Python float; `inf` when the images are equal (inside the mask).

    Raises:
        ValueError: shapes differ, NaN/inf values, a bad `mask` or `data_range`,
            or a constant `reference` without `data_range`.

    Examples:
        >>> ref = np.zeros((8, 8)); ref[2:6, 2:6] = 1.0
        >>> round(psnr(ref, ref + 0.1), 2)
        20.0
        >>> psnr(ref, ref)
        inf
    """
    reference, image = _prepare(reference, image)
    ranges = _data_ranges(reference, data_range)
    return _psnr(_mse(reference, image, _resolve_mask(mask, reference)), ranges)


def ssim(reference, image, mask=None, data_range=None, window="uniform"):
    """Structural similarity (Wang et al. 2004) over the whole 2D/3D array.

    Calls `skimage.metrics.structural_similarity` on the whole array (3D
    windows for volumes). With `window='uniform'` (scikit-image's default)
    the window is uniform and `win_size` the largest odd size <= 7 that fits:
    a thick-slice `(256, 256, 5)` volume gets 5, and axes shorter than 3 are
    scored slice by slice. With `window='gaussian'` it is Wang et al.'s
    Gaussian window (sigma 1.5, 11 voxels, population covariances), the SSIM
    of MONAI, TensorFlow and most papers; axes shorter than 11 are scored
    slice by slice. Like scikit-image, voxels within half a window of the
    border are left out of the mean. With a mask, the full SSIM map is
    averaged over the mask's voxels.

    Args:
        reference, image: as for `psnr`.
        mask: None, `"auto"` or a boolean array of the spatial shape.
        data_range: the range in SSIM's stabilising constants; as for `psnr`.
        window: 'uniform' or 'gaussian' (see above).

    Returns:
        A Python float, 1.0 for identical images.

    Raises:
        ValueError: as for `psnr`, or no axis of size >= 3.

    Examples:
        >>> ref = np.random.default_rng(0).random((16, 16, 4))
        >>> ssim(ref, ref)
        1.0
    """
    window = check_choice(window, "window", SSIM_WINDOWS)
    reference, image = _prepare(reference, image)
    ranges = _data_ranges(reference, data_range)
    return _ssim(reference, image, ranges, [_resolve_mask(mask, reference)], window)[0]


def nrmse(reference, image, mask=None, data_range=None):
    """Root mean squared error divided by the reference's range (min-max normalisation).

    `sqrt(MSE) / (reference.max() - reference.min())`, the range taken over the
    whole volume even when `mask` is given (so masked and whole-volume numbers
    share a scale, and a uniform foreground cannot divide by 0). Without a
    mask this equals `skimage.metrics.normalized_root_mse(reference, image,
    normalization="min-max")`, and always `nrmse == 10 ** (-psnr / 20)`.

    Args:
        reference, image, mask: as for `psnr`.
        data_range: the normaliser; defaults to the reference's max - min.

    Returns:
        A Python float >= 0, 0.0 for identical images.

    Raises:
        ValueError: as for `psnr`.

    Examples:
        >>> ref = np.zeros((8, 8)); ref[2:6, 2:6] = 2.0
        >>> round(nrmse(ref, ref + 0.1), 3)
        0.05
    """
    reference, image = _prepare(reference, image)
    ranges = _data_ranges(reference, data_range)
    return _nrmse(_mse(reference, image, _resolve_mask(mask, reference)), ranges)


def _largest_component(mask):
    labels, count = ndimage.label(mask)
    if count <= 1:
        return mask
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0  # label 0 is the background
    return labels == np.argmax(sizes)


def foreground_mask(reference: ArrayLike, fraction: float = 0.1, closing: int = 2) -> np.ndarray:
    """An automatic head/body mask: threshold, largest component, closing, hole filling.

    1. Threshold: voxels above `fraction` times the 99.5th percentile (a
       maximum that ignores hot voxels). A volume whose minimum is below
       -500 looks like CT in Hounsfield units: then the threshold is -500 HU
       (between air and soft tissue) and `fraction` is not used.
    2. Keep the largest connected component (drops background noise, the CT
       table, a separate hand).
    3. A binary closing of `closing` iterations bridges thin dark gaps in the
       outline, so step 4 sees a closed surface.
    4. Fill enclosed holes in 3D (ventricles, lungs, sinuses), then in each
       2D slice along the last axis (cavities open only at the volume's top
       or bottom).

    The mask is never empty: if nothing passes the threshold (a constant
    volume), every voxel is True.

    Args:
        reference: a 2D or 3D array (optionally a trailing channel axis; several
            channels are averaged).
        fraction: threshold as a fraction of the 99.5th percentile, in (0, 1].
        closing: iterations of the binary closing; 0 turns it off.

    Returns:
        A boolean numpy array of the spatial shape (channel axis dropped).

    Raises:
        ValueError: NaN/inf in `reference`, a bad `fraction` or `closing`.

    Examples:
        >>> vol = np.zeros((32, 32, 8)); vol[8:24, 8:24, 2:6] = 1.0
        >>> vol[14:18, 14:18, 3:5] = 0.0  # a dark hole inside
        >>> mask = foreground_mask(vol)
        >>> int(mask.sum()) == 16 * 16 * 4
        True
    """
    reference = _with_channels(_check_finite(reference, "reference"), "reference").mean(axis=-1)
    fraction = check_positive_number(fraction, "fraction")
    if fraction > 1:
        raise ValueError(f"`fraction` must be in (0, 1]. Received: fraction={fraction!r}")
    closing = check_positive_int(closing, "closing", minimum=0)
    if reference.min() < _HU_MIN:
        threshold = _HU_MIN
    else:
        threshold = fraction * np.percentile(reference, 99.5)
    mask = reference > threshold
    if not mask.any():
        return np.ones(reference.shape, dtype=bool)
    mask = _largest_component(mask)
    if closing:
        # Pad first: erosion treats outside the array as background, which
        # would eat an object touching the volume's edge.
        padded = np.pad(mask, closing)
        structure = ndimage.generate_binary_structure(mask.ndim, 1)
        padded = ndimage.binary_closing(padded, structure, iterations=closing)
        mask = padded[tuple(slice(closing, -closing) for _ in mask.shape)]
    mask = ndimage.binary_fill_holes(mask)
    if mask.ndim == 3:
        for k in range(mask.shape[-1]):
            mask[..., k] = ndimage.binary_fill_holes(mask[..., k])
    return mask


def evaluate(reference: ArrayLike, image: ArrayLike, mask: Literal["auto"] | ArrayLike | None = "auto",
             data_range: float | None = None,
             ssim_window: Literal["uniform", "gaussian"] = "uniform") -> dict[str, float]:
    """PSNR, SSIM and NRMSE over the whole volume and inside a foreground mask.

    Args:
        reference, image: as for `psnr`.
        mask: `"auto"` (`foreground_mask(reference)`), a boolean array of the
            spatial shape, or None for the whole-volume metrics only.
        data_range: shared by every metric; defaults to the reference's
            max - min over the whole volume.
        ssim_window: 'uniform' or 'gaussian' (see `ssim`).

    Returns:
        A dict of Python floats with keys `psnr`, `ssim`, `nrmse`, plus
        `psnr_mask`, `ssim_mask`, `nrmse_mask` unless `mask` is None.

    Raises:
        ValueError: as for `psnr`.

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> ref = np.zeros((24, 24, 8)); ref[4:20, 4:20, 2:6] = 1.0
        >>> scores = evaluate(ref, ref + 0.05 * rng.standard_normal(ref.shape))
        >>> sorted(scores)
        ['nrmse', 'nrmse_mask', 'psnr', 'psnr_mask', 'ssim', 'ssim_mask']
        >>> round(scores["psnr"])
        26
    """
    ssim_window = check_choice(ssim_window, "ssim_window", SSIM_WINDOWS)
    reference, image = _prepare(reference, image)
    ranges = _data_ranges(reference, data_range)
    mask = _resolve_mask(mask, reference)
    mse = _mse(reference, image, None)
    scores = {"psnr": _psnr(mse, ranges), "nrmse": _nrmse(mse, ranges)}
    if mask is None:
        scores["ssim"] = _ssim(reference, image, ranges, [None], ssim_window)[0]
        return {k: scores[k] for k in ("psnr", "ssim", "nrmse")}
    # One SSIM map serves both the whole and the masked score.
    scores["ssim"], scores["ssim_mask"] = _ssim(reference, image, ranges, [None, mask], ssim_window)
    mse = _mse(reference, image, mask)
    scores["psnr_mask"] = _psnr(mse, ranges)
    scores["nrmse_mask"] = _nrmse(mse, ranges)
    order = ("psnr", "ssim", "nrmse", "psnr_mask", "ssim_mask", "nrmse_mask")
    return {k: scores[k] for k in order}
