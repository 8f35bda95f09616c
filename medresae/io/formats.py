"""NRRD, MetaImage and FreeSurfer MGH volumes: reading into a `Volume` and writing with its geometry.

Every reader returns the RAS+ voxel-to-world affine that nibabel gives for
NIfTI, so a volume converts between formats without moving in world space:

- MGH/MGZ (FreeSurfer) through nibabel; the file's vox2ras is already RAS.
- NRRD (``.nrrd``, detached ``.nhdr``) through pynrrd; ``space directions``
  and ``space origin`` are given in the file's ``space`` (for example
  left-posterior-superior) and are turned into RAS by flipping the axes
  that point left, posterior or inferior.
- MetaImage (``.mha``, detached ``.mhd``) through SimpleITK (optional:
  ``pip install "medresae[metaimage]"``); ITK geometry (spacing, origin,
  direction) is LPS.

Writers store the affine the same way back: a volume read from one of
these files and written to the same format has the same geometry. Detached
headers (``.nhdr``, ``.mhd``) are read but not written: a write is one file
renamed into place, and a detached header is two.
"""

import os

import numpy as np

from medresae.errors import InputFileError
from medresae.io._common import _reason
from medresae.io.volume import Volume

MGH_SUFFIXES = (".mgz", ".mgh")
NRRD_SUFFIXES = (".nrrd", ".nhdr")
METAIMAGE_SUFFIXES = (".mha", ".mhd")
# Single-file formats only: the atomic write renames one file into place.
WRITABLE_SUFFIXES = (".mgz", ".mgh", ".nrrd", ".mha")

# Axis names of NRRD 'space' values that point against RAS+.
_AGAINST_RAS = {"left": -1.0, "posterior": -1.0, "inferior": -1.0,
                "right": 1.0, "anterior": 1.0, "superior": 1.0}
_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])  # LPS <-> RAS (its own inverse)


def format_of(path: str | os.PathLike) -> str | None:
    """'mgh', 'nrrd' or 'metaimage' for a path with one of their suffixes; None otherwise.

    Examples:
        >>> format_of("brain.mgz"), format_of("scan.nhdr"), format_of("ct.mha"), format_of("t1.nii.gz")
        ('mgh', 'nrrd', 'metaimage', None)
    """
    name = os.fspath(path).lower()
    for fmt, suffixes in (("mgh", MGH_SUFFIXES), ("nrrd", NRRD_SUFFIXES), ("metaimage", METAIMAGE_SUFFIXES)):
        if name.endswith(suffixes):
            return fmt
    return None


def _to_channels_last(data, spatial_axes, path):
    """`data` with its spatial axes first (X, Y, Z; Z added for 2D) and one channel axis last."""
    others = [a for a in range(data.ndim) if a not in spatial_axes]
    if len(others) > 1 or len(spatial_axes) not in (2, 3):
        raise InputFileError(
            f"{path}: {len(spatial_axes)} spatial and {len(others)} other axes (shape {data.shape}); "
            "medresae reads 2D/3D volumes with at most one channel axis"
        )
    data = np.transpose(data, list(spatial_axes) + others)
    if not others:
        data = data[..., None]
    if len(spatial_axes) == 2:
        data = data[:, :, None, :]
    if data.size == 0:
        raise InputFileError(f"{path}: the image has no voxels (shape {data.shape})")
    return data


def _real_dtype(dtype, path):
    dtype = np.dtype(dtype)
    if dtype.kind not in "biuf":
        raise InputFileError(
            f"{path}: {dtype} voxels; medresae denoises real-valued greyscale scans: save the magnitude "
            "or one channel first"
        )
    return dtype


def _as_float32(data, path):
    with np.errstate(over="ignore"):
        out = np.asarray(data, dtype=np.float32)
    if not np.isfinite(out).all() and np.isfinite(np.asarray(data, dtype=np.float64)).all():
        raise InputFileError(
            f"{path}: values beyond the float32 range medresae computes in; rescale the image first"
        )
    return out


# ---------------------------------------------------------------- reading


def read_mgh(path: str | os.PathLike) -> Volume:
    """A FreeSurfer ``.mgh``/``.mgz`` file as a `Volume` (nibabel's RAS vox2ras)."""
    import nibabel as nib

    try:
        image = nib.load(path, mmap=False)
        if not isinstance(image, nib.MGHImage):
            raise ValueError(f"nibabel read it as {type(image).__name__}")
        dtype = _real_dtype(image.get_data_dtype(), path)
        data = np.asanyarray(image.dataobj)
    except InputFileError:
        raise
    except Exception as err:
        raise InputFileError(
            f"{path}: not a readable MGH/MGZ image ({_reason(err)}); check that it was copied completely"
        ) from None
    # MGH keeps frames on axis 4; width/height/depth are always the first three.
    data = _to_channels_last(data, (0, 1, 2), path) if data.ndim > 3 else data.reshape(data.shape + (1,))
    return Volume(_as_float32(data, path), np.asarray(image.affine, np.float64), image.header.copy(), dtype, path)


def _nrrd_space_signs(space, path):
    """Per-axis signs that turn coordinates of NRRD `space` into RAS."""
    if space is None:
        return np.ones(3)  # no named space: the coordinates are taken as they are
    words = str(space).lower().split("-")
    if len(words) == 3 and all(w in _AGAINST_RAS for w in words):
        return np.array([_AGAINST_RAS[w] for w in words])
    if space in ("scanner-xyz", "3D-right-handed"):
        return np.ones(3)
    raise InputFileError(
        f"{path}: NRRD space {space!r} is not a 3D anatomical space medresae can place in RAS; "
        "resample it to left-posterior-superior or right-anterior-superior first"
    )


def read_nrrd(path: str | os.PathLike) -> Volume:
    """A ``.nrrd`` or ``.nhdr`` (+ data file) as a `Volume`, geometry turned into RAS."""
    import nrrd

    try:
        data, header = nrrd.read(path, index_order="F")
    except Exception as err:
        raise InputFileError(
            f"{path}: not a readable NRRD image ({_reason(err)}); check that it (and the data file of a "
            ".nhdr) was copied completely"
        ) from None
    dtype = _real_dtype(data.dtype, path)
    directions = header.get("space directions")
    if directions is not None:
        directions = np.asarray(directions, dtype=np.float64)
        spatial_axes = [a for a in range(data.ndim) if np.isfinite(directions[a]).all()]
        columns = directions[spatial_axes].T  # world x (spatial axes)
    else:
        kinds = header.get("kinds") or ["domain"] * data.ndim
        spatial_axes = [a for a in range(data.ndim) if kinds[a] in ("domain", "space")]
        spacings = header.get("spacings")
        steps = [1.0 if spacings is None or not np.isfinite(spacings[a]) else float(spacings[a])
                 for a in spatial_axes]
        columns = np.diag(steps)
    array = _to_channels_last(data, spatial_axes, path)
    sdim = columns.shape[0]
    affine = np.eye(4)
    affine[:sdim, : columns.shape[1]] = columns
    origin = header.get("space origin")
    if origin is not None:
        affine[:sdim, 3] = np.asarray(origin, dtype=np.float64)[:sdim]
    if not np.isfinite(affine).all():
        raise InputFileError(f"{path}: the NRRD header's space directions or origin are not finite numbers")
    signs = _nrrd_space_signs(header.get("space"), path) if sdim == 3 else np.ones(3)
    affine = np.diag([*signs, 1.0]) @ affine
    return Volume(_as_float32(array, path), affine, header, dtype, path)


def _sitk():
    try:
        import SimpleITK
    except ImportError:
        raise ImportError(
            'MetaImage files (.mha/.mhd) are read and written with SimpleITK: pip install "medresae[metaimage]"'
        ) from None
    return SimpleITK


def read_metaimage(path: str | os.PathLike) -> Volume:
    """A ``.mha`` or ``.mhd`` (+ data file) as a `Volume`, ITK's LPS geometry turned into RAS."""
    sitk = _sitk()
    try:
        image = sitk.ReadImage(os.fspath(path))
        data = sitk.GetArrayFromImage(image)
    except Exception as err:
        raise InputFileError(
            f"{path}: not a readable MetaImage ({_reason(err)}); check that it (and the data file of a "
            ".mhd) was copied completely"
        ) from None
    dtype = _real_dtype(data.dtype, path)
    dim = image.GetDimension()
    # SimpleITK's arrays are (z, y, x[, components]); ours are (x, y, z, c).
    spatial_axes = list(range(dim))[::-1]
    array = _to_channels_last(data, spatial_axes, path)
    direction = np.asarray(image.GetDirection(), dtype=np.float64).reshape(dim, dim)
    lps = np.eye(4)
    lps[:dim, :dim] = direction @ np.diag(image.GetSpacing())
    lps[:dim, 3] = image.GetOrigin()
    header = {key: image.GetMetaData(key) for key in image.GetMetaDataKeys()}
    return Volume(_as_float32(array, path), _LPS @ lps, header, dtype, path)


READERS = {"mgh": read_mgh, "nrrd": read_nrrd, "metaimage": read_metaimage}


# ---------------------------------------------------------------- writing


def _split_affine(affine, path, what):
    """(unit direction columns, spacings, origin) of a 4x4 affine; InputFileError if it has shear."""
    columns = affine[:3, :3]
    spacings = np.linalg.norm(columns, axis=0)
    if not np.all(spacings > 0):
        raise InputFileError(f"{path}: the volume's affine has a zero-length axis; {what} cannot store it")
    directions = columns / spacings
    if not np.allclose(directions.T @ directions, np.eye(3), atol=1e-5):
        raise InputFileError(
            f"{path}: the volume's affine has shear (non-orthogonal axes), which {what} cannot store; "
            "write .nii or .nii.gz instead"
        )
    return directions, spacings, affine[:3, 3].copy()


def write_mgh(temp: str, data: np.ndarray, like: Volume | None, path: str) -> None:
    """Writes `data` (X, Y, Z[, C]) to `temp` as MGH/MGZ with `like`'s affine (and MGH header)."""
    import nibabel as nib

    if data.dtype.newbyteorder("=") not in (np.uint8, np.int16, np.int32, np.float32):
        raise InputFileError(
            f"{path}: MGH stores uint8, int16, int32 or float32 voxels, not {data.dtype}; pass "
            "dtype='float32' (--dtype float32)"
        )
    affine = np.eye(4) if like is None else like.affine
    _split_affine(affine, path, "MGH")
    same_format = like is not None and isinstance(like.header, nib.freesurfer.mghformat.MGHHeader)
    header = like.header.copy() if same_format else None
    image = nib.MGHImage(data, affine, header)
    image.header.set_data_dtype(data.dtype)
    nib.save(image, temp)


def write_nrrd(temp: str, data: np.ndarray, like: Volume | None, path: str) -> None:
    """Writes `data` (X, Y, Z[, C]) to `temp` as gzip-compressed NRRD in `like`'s space (default LPS)."""
    import nrrd

    affine = np.eye(4) if like is None else like.affine
    source = like.header if like is not None and isinstance(like.header, dict) and "sizes" in like.header else {}
    space = source.get("space") if "space" in source else "left-posterior-superior"
    if space is None:
        space = "right-anterior-superior"
    signs = _nrrd_space_signs(space, path)
    in_space = np.diag([*signs, 1.0]) @ affine
    _split_affine(in_space, path, "NRRD")
    directions = in_space[:3, :3].T.copy()  # one row per spatial axis
    kinds = ["domain"] * 3
    if data.ndim == 4:
        directions = np.vstack([directions, np.full((1, 3), np.nan)])
        kinds.append("list")
    header = {"space": space, "space directions": directions, "space origin": in_space[:3, 3],
              "kinds": kinds, "encoding": "gzip", "endian": "little"}
    for key in ("measurement frame", "space units"):
        if key in source:
            header[key] = source[key]
    nrrd.write(temp, np.ascontiguousarray(data), header, index_order="F")


def write_metaimage(temp: str, data: np.ndarray, like: Volume | None, path: str) -> None:
    """Writes `data` (X, Y, Z[, C]) to `temp` as a compressed ``.mha`` with `like`'s geometry in LPS."""
    sitk = _sitk()
    affine = np.eye(4) if like is None else like.affine
    directions, spacings, origin = _split_affine(_LPS @ affine, path, "MetaImage")
    zyx = np.transpose(data, (2, 1, 0) + ((3,) if data.ndim == 4 else ()))
    image = sitk.GetImageFromArray(np.ascontiguousarray(zyx), isVector=data.ndim == 4)
    image.SetSpacing([float(s) for s in spacings])
    image.SetOrigin([float(o) for o in origin])
    image.SetDirection([float(d) for d in directions.ravel()])  # row-major, columns = axes
    sitk.WriteImage(image, os.fspath(temp), True)


WRITERS = {"mgh": write_mgh, "nrrd": write_nrrd, "metaimage": write_metaimage}
