"""Read and write medical volumes with their affine and header kept.

`load_volume` reads a NIfTI file (``.nii``/``.nii.gz``, through nibabel) or a
folder holding one DICOM series (through MONAI's ``PydicomReader``) into a
`Volume`: a float32, channels-last ``(X, Y, Z, C)`` array plus the voxel-to-
world affine and, for NIfTI, the original header. `save_volume` writes an
array as NIfTI with the affine and header of a `Volume` it came from, and
never leaves a half-written file behind.

Every problem with a file is raised as a one-line
`medresae.errors.InputFileError` that names the file, says what is wrong and
what to do.

This module imports nibabel; pydicom and MONAI (which imports torch) are
imported only when a DICOM folder is read.
"""

import os
import re
import warnings
from dataclasses import dataclass, field

import nibabel as nib
import numpy as np
from nibabel.orientations import aff2axcodes

from medresae._atomic import write_atomically
from medresae.errors import ClippedValuesWarning, InputFileError, InputFileNotFoundError, OutputExistsError

_NIFTI_SUFFIXES = (".nii.gz", ".nii")
_READABLE = ".nii, .nii.gz, or a folder holding one DICOM series"


def _reason(err):
    """An exception as one line, for use inside our own messages."""
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


@dataclass(repr=False)
class Volume:
    """A volume read from disk: channels-last voxels plus their geometry.

    Attributes:
        array: float32 array of shape ``(X, Y, Z, C)``, always three spatial
            axes and one channel axis; a 2D image has ``Z == 1``, a 4D NIfTI
            keeps its fourth axis (e.g. time) as channels.
        affine: 4x4 float64 voxel-to-world matrix (mm). For NIfTI it is the
            file's affine as stored (RAS+); for DICOM it is MONAI's RAS affine.
        header: a copy of the original nibabel ``Nifti1Header`` or
            ``Nifti2Header``; None for DICOM.
        source_dtype: the on-disk dtype (e.g. ``int16``). For DICOM it is
            the pixel dtype, or float32 when the series has a rescale
            slope/intercept (MONAI applies it).
        path: the file or folder that was read.

    Example:

    >>> import numpy as np
    >>> v = Volume(np.zeros((4, 4, 2, 1), "float32"), np.diag([0.5, 0.5, 2.0, 1.0]))
    >>> v.spatial_shape, v.voxel_sizes, v.orientation
    ((4, 4, 2), (0.5, 0.5, 2.0), ('R', 'A', 'S'))
    """

    array: np.ndarray
    affine: np.ndarray
    header: object = None
    source_dtype: np.dtype = field(default_factory=lambda: np.dtype("float32"))
    path: str = ""

    def __post_init__(self):
        self.array = np.asarray(self.array)
        self.affine = np.asarray(self.affine, dtype=np.float64)
        self.source_dtype = np.dtype(self.source_dtype)
        if self.array.ndim != 4:
            raise ValueError(
                "`array` must have shape (X, Y, Z, C). "
                f"Received: array.shape={self.array.shape}"
            )
        if self.affine.shape != (4, 4):
            raise ValueError(
                f"`affine` must be a 4x4 matrix. Received: affine.shape={self.affine.shape}"
            )

    @property
    def voxel_sizes(self):
        """Voxel edge lengths in mm along X, Y, Z (the affine's column norms)."""
        return tuple(float(np.linalg.norm(self.affine[:3, i])) for i in range(3))

    @property
    def orientation(self):
        """Axis codes of X, Y, Z in world space, e.g. ``('R', 'A', 'S')``."""
        return tuple(aff2axcodes(self.affine))

    @property
    def spatial_shape(self):
        """``(X, Y, Z)``."""
        return tuple(int(s) for s in self.array.shape[:3])

    def __repr__(self):
        return (
            f"Volume(path={self.path!r}, shape={self.array.shape}, "
            f"voxel_sizes={tuple(round(v, 4) for v in self.voxel_sizes)}, "
            f"orientation={''.join(self.orientation)}, source_dtype={self.source_dtype})"
        )


def is_nifti_path(path):
    """Whether `path` names a NIfTI file (``.nii`` or ``.nii.gz``, any case).

    Example:

    >>> is_nifti_path("scan.nii.gz"), is_nifti_path("scan.nii"), is_nifti_path("scan.gz")
    (True, True, False)
    """
    return os.fspath(path).lower().endswith(_NIFTI_SUFFIXES)


def list_nifti(folder):
    """The NIfTI files in `folder`, sorted by name, as paths.

    Hidden files are skipped (they include the temporary files of a write in
    progress). Sub-folders are not searched.

    Args:
        folder: a folder path.

    Returns:
        A sorted list of paths (`folder` joined with each file name).

    Raises:
        InputFileError: if `folder` does not exist or is not a folder.

    Example:

    >>> list_nifti("scans")  # doctest: +SKIP
    ['scans/a.nii.gz', 'scans/b.nii']
    """
    folder = os.fspath(folder)
    if not os.path.exists(folder):
        raise InputFileNotFoundError(f"{folder}: no such folder; check the path")
    if not os.path.isdir(folder):
        raise InputFileError(f"{folder}: not a folder; pass a folder of .nii/.nii.gz files")
    names = (n for n in os.listdir(folder) if not n.startswith(".") and is_nifti_path(n))
    paths = (os.path.join(folder, n) for n in names)
    return sorted(p for p in paths if os.path.isfile(p))


# ---------------------------------------------------------------- reading


def load_volume(path, check_values=True):
    """Reads a NIfTI file or a DICOM series folder into a `Volume`.

    NIfTI data is read through nibabel with the header's scaling applied.
    A 2D image becomes ``(X, Y, 1, 1)``, a 3D one ``(X, Y, Z, 1)`` and a 4D
    one ``(X, Y, Z, T)`` with T as channels; singleton axes beyond the fourth
    are dropped. A folder is read as one DICOM series with MONAI's
    ``PydicomReader`` (RAS affine); it must hold exactly one
    ``SeriesInstanceUID``.

    Args:
        path: a ``.nii``/``.nii.gz`` file or a folder holding one DICOM series.
        check_values: reject volumes with NaN/inf voxels and constant
            (e.g. all-zero) volumes.

    Returns:
        A `Volume`.

    Raises:
        InputFileError: the path is missing (an `InputFileNotFoundError`,
            also a ``FileNotFoundError``), has an unsupported type, is not a
            readable or complete image, has more than one non-spatial axis,
            is a folder with no or mixed DICOM series, or (with
            `check_values`) has NaN/inf voxels or constant values.

    Example:

    >>> vol = load_volume("t1.nii.gz")  # doctest: +SKIP
    >>> vol.array.shape, vol.voxel_sizes  # doctest: +SKIP
    ((182, 218, 182, 1), (1.0, 1.0, 1.0))
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise InputFileNotFoundError(f"{path}: no such file or folder; check the path")
    if os.path.isdir(path):
        volume = _load_dicom_folder(path)
    elif is_nifti_path(path):
        volume = _load_nifti(path)
    else:
        hint = ""
        if path.lower().endswith((".dcm", ".ima")):
            hint = " (pass the folder that holds the DICOM series, not one slice)"
        raise InputFileError(
            f"{path}: unsupported file type; medresae reads {_READABLE}{hint}"
        )
    if check_values:
        _check_values(volume.array, path)
    return volume


def _channels_last_shape(shape, path):
    """The ``(X, Y, Z, C)`` shape for an on-disk shape, or InputFileError."""
    shape = tuple(int(s) for s in shape)
    extra = shape[3:]
    if len(extra) > 1:
        # NIfTI keeps time on axis 4 and vector components on axis 5, so e.g.
        # (X, Y, Z, 1, 3) still has only one non-singleton non-spatial axis.
        extra = tuple(s for s in extra if s != 1) or (1,)
    if len(shape) < 2 or len(extra) > 1:
        raise InputFileError(
            f"{path}: {len(shape)}-D image (shape {shape}); medresae reads 2D/3D "
            "volumes with at most one channel axis"
        )
    if 0 in shape:
        raise InputFileError(f"{path}: the image has no voxels (shape {shape})")
    spatial = shape[:3] + (1,) * (3 - len(shape[:3]))
    return spatial + (extra[0] if extra else 1,)


def _load_nifti(path):
    try:
        # mmap=False: the file is read now and no handle stays open, so the
        # same path can be replaced later (Windows locks mapped files).
        image = nib.load(path, mmap=False)
        on_disk_shape = image.shape
        header = image.header.copy()
        affine = np.asarray(image.affine, dtype=np.float64)
        source_dtype = np.dtype(image.get_data_dtype())
        # nibabel moves scl_slope/scl_inter from the header into the data
        # proxy; put them back in our copy so dtype='input' can reuse them.
        slope, inter = float(image.dataobj.slope), float(image.dataobj.inter)
        if (slope, inter) != (1.0, 0.0) and np.isfinite([slope, inter]).all() and slope != 0:
            header.set_slope_inter(slope, inter)
    except Exception as err:
        raise InputFileError(
            f"{path}: not a readable NIfTI image ({_reason(err)}); check that it is "
            "a .nii/.nii.gz file and that it was copied completely"
        ) from None
    if not isinstance(header, nib.Nifti1Header):
        raise InputFileError(
            f"{path}: not a single-file NIfTI image ({type(image).__name__}); "
            "convert it to .nii or .nii.gz"
        )
    shape = _channels_last_shape(on_disk_shape, path)
    try:
        # nibabel reads lazily; reading every voxel here is what turns a
        # truncated file into an error now rather than inside a model later.
        data = image.get_fdata(dtype=np.float32)
    except Exception as err:
        raise InputFileError(
            f"{path}: the image data is truncated or corrupt ({_reason(err)}); "
            "copy or export the file again"
        ) from None
    return Volume(data.reshape(shape), affine, header, source_dtype, path)


def _scan_dicom_folder(folder):
    """Paths of the DICOM files in `folder`, grouped by SeriesInstanceUID."""
    import pydicom

    series = {}
    # Hidden files are skipped like a shell glob would (e.g. macOS "._" files).
    for name in sorted(os.listdir(folder)):
        file = os.path.join(folder, name)
        if name.startswith(".") or not os.path.isfile(file):
            continue
        try:
            is_dicom = pydicom.misc.is_dicom(file)
        except OSError:
            is_dicom = False
        if not is_dicom:
            continue
        try:
            ds = pydicom.dcmread(file, stop_before_pixels=True)
        except Exception as err:
            raise InputFileError(
                f"{folder}: cannot read DICOM file {name} ({_reason(err)}); remove it "
                "or copy the series again"
            ) from None
        uid = str(ds.get("SeriesInstanceUID", "") or "(no SeriesInstanceUID)")
        series.setdefault(uid, []).append(file)
    return series


def _load_dicom_folder(folder):
    series = _scan_dicom_folder(folder)
    if not series:
        hint = ""
        if any(is_nifti_path(n) for n in os.listdir(folder)):
            hint = " (it holds NIfTI files: pass one of those files instead)"
        raise InputFileError(
            f"{folder}: no DICOM files in this folder{hint}; medresae reads {_READABLE}"
        )
    if len(series) > 1:
        uids = sorted(series)
        shown = ", ".join(uids[:3]) + (" ..." if len(uids) > 3 else "")
        raise InputFileError(
            f"{folder}: mixed DICOM series ({len(uids)} series: {shown}); put one "
            "series per folder"
        )
    try:
        import medresae._monai  # noqa: F401  (before monai)
        from monai.data import PydicomReader
    except ImportError as err:
        raise ImportError(
            f"Reading DICOM ({folder}) needs MONAI: pip install monai ({_reason(err)})"
        ) from None
    (files,) = series.values()
    # MONAI globs the folder itself; this pattern makes it read exactly the
    # slices scanned above, not notes, sub-folders or hidden files.
    only_scanned = "^(?:" + "|".join(re.escape(f) for f in files) + r")\Z"
    try:
        reader = PydicomReader(fname_regex=only_scanned)
        array, meta = reader.get_data(reader.read(folder))
    except Exception as err:
        raise InputFileError(
            f"{folder}: cannot read the DICOM series ({_reason(err)}); check that "
            "every slice has the same size and pixel data pydicom can decode"
        ) from None
    array = np.asarray(array)
    source_dtype = array.dtype
    channel_dim = meta.get("original_channel_dim", float("nan"))
    if isinstance(channel_dim, (int, np.integer)):
        array = np.moveaxis(array, int(channel_dim), -1)
    else:
        array = array[..., None]
    if array.ndim == 3:
        array = array[:, :, None, :]
    if array.ndim != 4 or array.size == 0:
        raise InputFileError(
            f"{folder}: the DICOM series has an unexpected shape {array.shape}; "
            "medresae reads 2D/3D series"
        )
    affine = np.asarray(meta["affine"], dtype=np.float64)
    if affine.shape == (3, 3):
        # A 2D series gets a 2D affine; embed it so Z keeps unit spacing.
        full = np.eye(4)
        full[:2, :2], full[:2, 3] = affine[:2, :2], affine[:2, 2]
        affine = full
    return Volume(array.astype(np.float32), affine, None, source_dtype, folder)


def _check_values(array, path):
    n_bad = array.size - int(np.count_nonzero(np.isfinite(array)))
    if n_bad:
        n_nan = int(np.count_nonzero(np.isnan(array)))
        raise InputFileError(
            f"{path}: {n_bad} of {array.size} voxels are NaN or infinite ({n_nan} NaN, "
            f"{n_bad - n_nan} inf); fix or mask them first (in Python, check_values=False skips this check)"
        )
    low, high = float(array.min()), float(array.max())
    if low == high:
        what = "empty (all voxels are 0)" if low == 0 else f"constant (all voxels are {low:g})"
        raise InputFileError(
            f"{path}: the volume is {what}; check that this is the right file (in Python, "
            "check_values=False skips this check)"
        )


# ---------------------------------------------------------------- writing


def save_volume(path, array, like=None, dtype="float32", overwrite=False):
    """Writes `array` as a NIfTI file, atomically, with `like`'s geometry.

    With `like` from a NIfTI file, its header is reused: affine, sform and
    qform with their codes, pixdim, xyzt units, descrip and intent are kept
    exactly; only the data shape, dtype and scaling (slope 1, intercept 0)
    change. With `like` from DICOM, its affine is stored as sform and qform
    (code "scanner"). Without `like`, the affine is the identity.

    The data go to a hidden temporary file in the target folder that is
    renamed into place, so an interrupted write never leaves a partial file.

    Args:
        path: output ``.nii`` or ``.nii.gz`` file.
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

    Example:

    >>> vol = load_volume("t1.nii.gz")  # doctest: +SKIP
    >>> save_volume("t1_denoised.nii.gz", vol.array, like=vol)  # doctest: +SKIP
    't1_denoised.nii.gz'
    """
    path = os.fspath(path)
    if not is_nifti_path(path):
        raise InputFileError(
            f"{path}: unsupported output type; medresae writes .nii or .nii.gz files"
        )
    if like is not None and not isinstance(like, Volume):
        raise InputFileError(
            f"{path}: `like` must be a Volume from medresae.io.load_volume, or None. "
            f"Received: like={type(like).__name__}"
        )
    out_dtype = _output_dtype(dtype, like, path)
    _check_output_path(path, like, overwrite)
    scaling = _input_scaling(like) if _is_input(dtype) and out_dtype.kind in "iu" else (1.0, 0.0)
    data = _prepare_array(array, like, out_dtype, path, scaling)
    image = _nifti_image(data, like, out_dtype, scaling)
    _write_atomically(image, path, overwrite)
    return path


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


def _same_file(a, b):
    if not a or not b:
        return False
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _check_output_path(path, like, overwrite, dtype=None, source=None):
    """Raises InputFileError if `save_volume(path, ..., like, dtype, overwrite)`
    would fail for a reason known before any data is computed.

    `source` is the input path when `like` is not loaded yet; `dtype` None
    skips the dtype check.
    """
    path = os.fspath(path)
    if not is_nifti_path(path):
        raise InputFileError(
            f"{path}: unsupported output type; medresae writes .nii or .nii.gz files"
        )
    if dtype is not None and (like is not None or not _is_input(dtype)):
        _output_dtype(dtype, like, path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise InputFileError(f"{path}: folder {folder} does not exist; create it first")
    source = like.path if like is not None else source
    if source is not None and _same_file(path, os.fspath(source)):
        raise InputFileError(
            f"{path}: would overwrite the input {source}; write to a different file"
        )
    if os.path.isdir(path):
        raise InputFileError(f"{path}: is a folder; give a .nii or .nii.gz file name")
    if os.path.lexists(path) and not overwrite:
        raise OutputExistsError(
            f"{path}: file exists; pass overwrite=True (--overwrite) to replace it"
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputFileError(
            f"{path}: cannot write to folder {folder} (permission denied); choose "
            "another output folder"
        )


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
    try:
        # The temporary name ends in the real suffix so nibabel picks the compression.
        write_atomically(path, lambda temp: nib.save(image, temp), overwrite, suffix=suffix)
    except InputFileError:
        raise
    except Exception as err:
        raise InputFileError(
            f"{path}: could not write the file ({_reason(err)}); check free disk space "
            "and the output folder"
        ) from None
