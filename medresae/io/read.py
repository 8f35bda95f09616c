"""Reading NIfTI, MGH, NRRD and MetaImage files and DICOM folders into a `Volume`, with one-line errors."""

import os
import re

import nibabel as nib
import numpy as np

from medresae.errors import InputFileError, InputFileNotFoundError
from medresae.io._common import _NIFTI_SUFFIXES, _READABLE, _reason
from medresae.io.formats import READERS, format_of
from medresae.io.volume import Volume


def is_nifti_path(path: str | os.PathLike) -> bool:
    """Whether `path` names a NIfTI file (``.nii`` or ``.nii.gz``, any case).

    Examples:
        >>> is_nifti_path("scan.nii.gz"), is_nifti_path("scan.nii"), is_nifti_path("scan.gz")
        (True, True, False)
    """
    return os.fspath(path).lower().endswith(_NIFTI_SUFFIXES)


def is_volume_path(path: str | os.PathLike) -> bool:
    """Whether `path` names a file `load_volume` reads by its suffix: NIfTI, MGH/MGZ, NRRD or MetaImage.

    Examples:
        >>> [is_volume_path(p) for p in ("t1.nii.gz", "brain.mgz", "ct.nrrd", "ct.mha", "notes.txt")]
        [True, True, True, True, False]
    """
    return is_nifti_path(path) or format_of(path) is not None


def list_volumes(folder: str | os.PathLike) -> list[str]:
    """The volume files in `folder` that `load_volume` reads (by suffix), sorted by name.

    As `list_nifti`, for every readable format (see `is_volume_path`).

    Examples:
        >>> list_volumes("scans")  # doctest: +SKIP
        ['scans/a.nii.gz', 'scans/b.mgz', 'scans/c.nrrd']
    """
    return _list_files(folder, is_volume_path, "volume files (.nii, .nii.gz, .mgz, .nrrd, .mha, ...)")


def list_nifti(folder: str | os.PathLike) -> list[str]:
    """The NIfTI files in `folder`, sorted by name, as paths.

    Hidden files are skipped (they include the temporary files of a write in
    progress). Sub-folders are not searched.

    Args:
        folder: a folder path.

    Returns:
        A sorted list of paths (`folder` joined with each file name).

    Raises:
        InputFileError: if `folder` does not exist or is not a folder.

    Examples:
        >>> list_nifti("scans")  # doctest: +SKIP
        ['scans/a.nii.gz', 'scans/b.nii']
    """
    return _list_files(folder, is_nifti_path, ".nii/.nii.gz files")


def _list_files(folder, accept, what):
    folder = os.fspath(folder)
    if not os.path.exists(folder):
        raise InputFileNotFoundError(f"{folder}: no such folder; check the path")
    if not os.path.isdir(folder):
        raise InputFileError(f"{folder}: not a folder; pass a folder of {what}")
    names = (n for n in os.listdir(folder) if not n.startswith(".") and accept(n))
    paths = (os.path.join(folder, n) for n in names)
    return sorted(p for p in paths if os.path.isfile(p))


# ---------------------------------------------------------------- reading


def load_volume(path: str | os.PathLike, check_values: bool = True) -> Volume:
    """Reads a NIfTI, MGH/MGZ, NRRD or MetaImage file, or a DICOM series folder, into a `Volume`.

    NIfTI data is read through nibabel with the header's scaling applied.
    FreeSurfer MGH/MGZ (nibabel), NRRD (pynrrd) and MetaImage (SimpleITK,
    optional) files get the same RAS+ affine convention as NIfTI: their
    geometry is converted from the file's own space (see
    `medresae.io.formats`).
    A 2D image becomes ``(X, Y, 1, 1)``, a 3D one ``(X, Y, Z, 1)`` and a 4D
    one ``(X, Y, Z, T)`` with T as channels; singleton axes beyond the fourth
    are dropped. A folder is read as one DICOM series with MONAI's
    ``PydicomReader`` (RAS affine); it must hold exactly one
    ``SeriesInstanceUID``.

    Args:
        path: a ``.nii``/``.nii.gz``, ``.mgz``/``.mgh``, ``.nrrd``/``.nhdr``
            or ``.mha``/``.mhd`` file, or a folder holding one DICOM series.
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

    Examples:
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
    elif format_of(path) is not None:
        volume = READERS[format_of(path)](path)
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
    if source_dtype.names is not None:
        raise InputFileError(
            f"{path}: a colour ({'RGBA' if len(source_dtype.names) == 4 else 'RGB'}) image; medresae denoises "
            "greyscale scans: convert it to one channel first (e.g. the scan it was rendered from)"
        )
    if source_dtype.kind == "c":
        raise InputFileError(
            f"{path}: complex-valued data ({source_dtype}); medresae denoises real images: save the "
            "magnitude (numpy.abs) first"
        )
    shape = _channels_last_shape(on_disk_shape, path)
    try:
        # nibabel reads lazily; reading every voxel here is what turns a
        # truncated file into an error now rather than inside a model later.
        with np.errstate(over="ignore"):  # values float32 cannot hold: reported below
            data = image.get_fdata(dtype=np.float32)
    except Exception as err:
        raise InputFileError(
            f"{path}: the image data is truncated or corrupt ({_reason(err)}); "
            "copy or export the file again"
        ) from None
    if not np.isfinite(data).all():
        _check_float32_range(image, data, path)
    return Volume(data.reshape(shape), affine, header, source_dtype, path)


def _check_float32_range(image, data, path):
    """Finite values (float64 data, or a large scl_slope) that became inf in float32."""
    stored = image.get_fdata(dtype=np.float64)
    overflow = np.isfinite(stored) & ~np.isfinite(data)
    n = int(np.count_nonzero(overflow))
    if n:
        largest = float(np.max(np.abs(stored[overflow])))
        raise InputFileError(
            f"{path}: {n} of {data.size} voxels hold values beyond the float32 range medresae computes in "
            f"(up to {largest:.3g} in magnitude; float32 holds up to 3.4e+38); rescale the image first"
        )


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
        from monai.data import PydicomReader

        import medresae._monai  # noqa: F401  (before monai)
    except ImportError as err:
        raise ImportError(
            f"Reading DICOM ({folder}) needs MONAI, which needs PyTorch: pip install 'medresae[monai]' "
            f"({_reason(err)})",
            name="monai",
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
