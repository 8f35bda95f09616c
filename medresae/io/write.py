"""Writing arrays as NIfTI (or MGH, NRRD, MetaImage) with a source volume's geometry, atomically."""

import os
import warnings
from typing import Literal

import nibabel as nib
import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from medresae._atomic import check_output_path, write_atomically
from medresae.errors import ClippedValuesWarning, InputFileError
from medresae.io._common import _WRITABLE, _reason
from medresae.io.formats import METAIMAGE_SUFFIXES, NRRD_SUFFIXES, WRITABLE_SUFFIXES, WRITERS, _sitk, format_of
from medresae.io.read import is_nifti_path
from medresae.io.volume import Volume


def save_volume(path: str | os.PathLike, array: ArrayLike, like: Volume | None = None,
                dtype: DTypeLike | Literal["input"] = "float32", overwrite: bool = False) -> str:
    """Writes `array` as a NIfTI (or MGH, NRRD, MetaImage) file, atomically, with `like`'s geometry.

    The format follows `path`'s suffix: ``.nii``/``.nii.gz``, ``.mgz``/``.mgh``
    (FreeSurfer), ``.nrrd`` (gzip-compressed) or ``.mha`` (compressed;
    needs SimpleITK). In the last three, `like`'s affine is stored in the
    format's own convention (see `medresae.io.formats`), and an MGH or NRRD
    `like` of the same format also gives its header fields; scaling
    (scl_slope) is a NIfTI feature, so `dtype="input"` there writes the
    input's dtype unscaled.

    With `like` from a NIfTI file, its header is reused: affine, sform and
    qform with their codes, pixdim, xyzt units, descrip and intent are kept
    exactly; only the data shape, dtype and scaling (slope 1, intercept 0)
    change. With `like` from DICOM, its affine is stored as sform and qform
    (code "scanner"). Without `like`, the affine is the identity.

    The data go to a hidden temporary file in the target folder that is
    renamed into place, so an interrupted write never leaves a partial file.

    Args:
        path: output ``.nii``, ``.nii.gz``, ``.mgz``, ``.mgh``, ``.nrrd`` or
            ``.mha`` file.
        array: ``(X, Y)``, ``(X, Y, Z)`` or ``(X, Y, Z, C)`` numbers; ``C == 1``
            is written as a 3D volume.
        like: a `Volume` (from `load_volume`) whose affine and header to
            keep; its spatial shape must match `array`'s.
        dtype: ``"float32"``; ``"input"``: `like`'s on-disk dtype, with
            its scl_slope/scl_inter when that dtype is an integer stored
            scaled (values rounded and clipped to what it can hold, with a
            `ClippedValuesWarning` that counts the clipped voxels); or
            another NIfTI-compatible NumPy dtype name (integers rounded,
            clipped with the same warning, written unscaled).
        overwrite: replace an existing `path`. The input file of `like` is
            never replaced.

    Returns:
        `path`, as a string.

    Warns:
        ClippedValuesWarning: an integer `dtype` cannot hold some values;
            they were clipped to its range.

    Raises:
        InputFileError: bad suffix, `array` shape or NaN/inf values, bad
            `like` or `dtype`, missing or read-only folder, `path` is `like`'s
            file, or `path` exists without `overwrite` (an
            `OutputExistsError`, also a ``FileExistsError``).

    Examples:
        >>> vol = load_volume("t1.nii.gz")  # doctest: +SKIP
        >>> save_volume("t1_denoised.nii.gz", vol.array, like=vol)  # doctest: +SKIP
        't1_denoised.nii.gz'
    """
    path = os.fspath(path)
    _check_output_suffix(path)
    if like is not None and not isinstance(like, Volume):
        raise InputFileError(
            f"{path}: `like` must be a Volume from medresae.io.load_volume, or None. "
            f"Received: like={type(like).__name__}"
        )
    out_dtype = _output_dtype(dtype, like, path)
    check_nifti_output(path, like, overwrite)
    fmt = format_of(path)
    if fmt is not None:
        data = _prepare_array(array, like, out_dtype, path)
        suffix = os.path.splitext(path)[1]
        _write_with(lambda temp: WRITERS[fmt](temp, data, like, path), path, overwrite, suffix)
        return path
    scaling = _input_scaling(like) if _is_input(dtype) and out_dtype.kind in "iu" else (1.0, 0.0)
    data = _prepare_array(array, like, out_dtype, path, scaling)
    image = _nifti_image(data, like, out_dtype, scaling)
    _write_atomically(image, path, overwrite)
    return path


def _check_output_suffix(path):
    lower = path.lower()
    if is_nifti_path(lower) or lower.endswith(WRITABLE_SUFFIXES):
        return
    if lower.endswith((".nhdr", ".mhd")):
        single = ".nrrd" if lower.endswith(NRRD_SUFFIXES) else METAIMAGE_SUFFIXES[0]
        raise InputFileError(
            f"{path}: detached headers (.nhdr, .mhd) are read but not written (a write is one file); "
            f"write {single} instead"
        )
    raise InputFileError(f"{path}: unsupported output type; medresae writes {_WRITABLE} files")


def _is_input(dtype):
    return isinstance(dtype, str) and dtype == "input"


def _input_scaling(like):
    """(slope, intercept) of `like`'s integer data on disk; (1, 0) if unscaled."""
    header = getattr(like, "header", None)
    if not isinstance(header, nib.Nifti1Header):
        return 1.0, 0.0
    slope, inter = header.get_slope_inter()
    slope = 1.0 if slope is None or not np.isfinite(slope) or slope == 0 else float(slope)
    inter = 0.0 if inter is None or not np.isfinite(inter) else float(inter)
    return slope, inter


def _output_dtype(dtype, like, path):
    if _is_input(dtype):
        if like is None:
            raise InputFileError(
                f"{path}: dtype='input' needs `like` (the volume whose on-disk dtype "
                "to reuse); pass like=... or dtype='float32'"
            )
        dtype = like.source_dtype
    try:
        out = np.dtype(dtype)
        nib.Nifti1Header().set_data_dtype(out)
        ok = out.kind in "iuf"
    except Exception:
        ok = False
    if not ok:
        raise InputFileError(
            f"{path}: `dtype` must be 'float32', 'input' or a real NIfTI dtype such as "
            f"'int16' or 'uint8'. Received: dtype={dtype!r}"
        )
    return out


def check_nifti_output(path: str | os.PathLike, like: Volume | None = None, overwrite: bool = False,
                       dtype: DTypeLike | Literal["input"] | None = None,
                       source: str | os.PathLike | None = None) -> None:
    """Raises InputFileError if `save_volume(path, ..., like, dtype, overwrite)`
    would fail for a reason known before any data is computed.

    Call it before long work whose result goes to `path`: a wrong suffix or
    dtype, a missing or read-only folder, a name too long for the file
    system, an existing file (without `overwrite`) or the input itself are
    reported now rather than after the work.

    Args:
        path: the output ``.nii`` / ``.nii.gz`` path.
        like: the `Volume` whose geometry will be kept, if loaded already.
        overwrite: an existing file may be replaced.
        dtype: the output dtype (as for `save_volume`); None skips this check.
        source: the input's path when `like` is not loaded yet.

    Examples:
        >>> check_nifti_output("denoised.nii.gz", overwrite=True)
        >>> check_nifti_output("denoised.png")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        medresae.errors.InputFileError: denoised.png: unsupported output type; medresae writes .nii, .nii.gz, ...
    """
    path = os.fspath(path)
    _check_output_suffix(path)
    if format_of(path) == "metaimage":
        _sitk()  # ImportError now, naming the extra to install, rather than after the work
    if dtype is not None and (like is not None or not _is_input(dtype)):
        _output_dtype(dtype, like, path)
    source = like.path if like is not None else source
    check_output_path(path, overwrite, inputs=[source], what=f"a {_WRITABLE} file")


def _prepare_array(array, like, out_dtype, path, scaling=(1.0, 0.0)):
    """`array` checked, squeezed to what goes on disk and cast to `out_dtype`.

    Integer output is ``rint((array - inter) / slope)`` for ``scaling =
    (slope, inter)``, clipped to the dtype's range with a
    `ClippedValuesWarning` when values fall outside it.
    """
    data = np.asarray(array)
    if data.dtype.kind not in "biuf":
        raise InputFileError(
            f"{path}: `array` must hold real numbers. Received: array.dtype={data.dtype}"
        )
    if data.ndim == 4 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim not in (2, 3, 4) or data.size == 0:
        raise InputFileError(
            f"{path}: `array` must have shape (X, Y), (X, Y, Z) or (X, Y, Z, C). "
            f"Received: array.shape={np.shape(array)}"
        )
    spatial = tuple(data.shape[:3]) + (1,) * (3 - min(data.ndim, 3))
    if like is not None and spatial != like.spatial_shape:
        raise InputFileError(
            f"{path}: `array` spatial shape {spatial} differs from the `like` volume's "
            f"{like.spatial_shape}, so its affine would not fit; crop or resample "
            "the array to the input's shape"
        )
    if data.dtype.kind == "f":
        n_bad = data.size - int(np.count_nonzero(np.isfinite(data)))
        if n_bad:
            raise InputFileError(
                f"{path}: `array` has {n_bad} NaN or infinite values; replace them "
                "(e.g. numpy.nan_to_num) before saving"
            )
    if out_dtype.kind == "f":
        out = data.astype(out_dtype)
        if not np.isfinite(out).all():
            raise InputFileError(
                f"{path}: `array` values exceed the range of {out_dtype}; pass "
                "dtype='float64'"
            )
        return out
    slope, inter = scaling
    if data.dtype.kind in "biu" and np.can_cast(data.dtype, out_dtype) and scaling == (1.0, 0.0):
        return data.astype(out_dtype)
    info = np.iinfo(out_dtype)
    # float64 rounds 2**63 - 1 up to 2**63, which would wrap: step inside.
    low, high = float(info.min), float(info.max)
    if high > info.max:
        high = np.nextafter(high, 0.0)
    raw = data.astype(np.float64)
    if scaling != (1.0, 0.0):
        raw = (raw - inter) / slope
    raw = np.rint(raw, out=raw)
    n_out = int(np.count_nonzero(raw < low)) + int(np.count_nonzero(raw > high))
    if n_out:
        stored = sorted((inter + slope * info.min, inter + slope * info.max))
        scaled = "" if scaling == (1.0, 0.0) else f" with the input's scaling (slope {slope:.6g}, inter {inter:.6g})"
        warnings.warn(
            f"{path}: {n_out} of {data.size} voxels (values from {float(data.min()):.6g} to "
            f"{float(data.max()):.6g}) lie outside the range {stored[0]:.6g} to {stored[1]:.6g} that "
            f"{out_dtype}{scaled} can hold and were clipped to it; write float32 "
            "(dtype='float32', --dtype float32) to keep them",
            ClippedValuesWarning,
            stacklevel=3,
        )
    return np.clip(raw, low, high, out=raw).astype(out_dtype)


def _nifti_image(data, like, out_dtype, scaling=(1.0, 0.0)):
    header = None if like is None else like.header
    if isinstance(header, nib.Nifti1Header):
        image_class = nib.Nifti2Image if isinstance(header, nib.Nifti2Header) else nib.Nifti1Image
        # affine=None: nibabel then leaves the header's sform/qform and their
        # codes alone instead of rewriting them from an affine.
        image = image_class(data, None, header.copy())
        hdr = image.header
        hdr.set_data_shape(data.shape)
        # set_data_shape resets pixdim beyond the new number of axes to 1;
        # keep the input's values (e.g. its TR) as they were.
        hdr["pixdim"] = header["pixdim"]
        if not np.allclose(like.affine, hdr.get_best_affine(), rtol=0, atol=1e-6):
            # The caller edited like.affine: store it, keeping the codes set.
            hdr.set_sform(like.affine, int(hdr["sform_code"]) or "aligned")
            hdr.set_qform(like.affine, int(hdr["qform_code"]) or "aligned")
    else:
        affine = np.eye(4) if like is None else like.affine
        image = nib.Nifti1Image(data, affine, dtype=out_dtype)
        hdr = image.header
        if like is not None:
            hdr.set_sform(affine, "scanner")
            hdr.set_qform(affine, "scanner")
            hdr.set_xyzt_units("mm")
    hdr.set_data_dtype(out_dtype)
    # An explicit slope / intercept (1 and 0 unless the input's integer
    # scaling is reused; never NaN) makes nibabel write the array as given,
    # without computing a scaling of its own.
    hdr.set_slope_inter(*scaling)
    return image


def _write_atomically(image, path, overwrite):
    suffix = ".nii.gz" if path.lower().endswith(".nii.gz") else ".nii"
    # The temporary name ends in the real suffix so nibabel picks the compression.
    _write_with(lambda temp: nib.save(image, temp), path, overwrite, suffix)


def _write_with(write, path, overwrite, suffix):
    try:
        write_atomically(path, write, overwrite, suffix=suffix)
    except (InputFileError, ImportError):
        raise
    except Exception as err:
        raise InputFileError(
            f"{path}: could not write the file ({_reason(err)}); check free disk space "
            "and the output folder"
        ) from None
