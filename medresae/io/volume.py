"""`Volume`: channels-last voxels with the affine and header of their file."""

from dataclasses import dataclass, field

import numpy as np
from nibabel.orientations import aff2axcodes


@dataclass(repr=False)
class Volume:
    """A volume read from disk: channels-last voxels plus their geometry.

    Attributes:
        array: float32 array of shape ``(X, Y, Z, C)``, always three spatial
            axes and one channel axis; a 2D image has ``Z == 1``, a 4D NIfTI
            keeps its fourth axis (e.g. time) as channels.
        affine: 4x4 float64 voxel-to-world matrix (mm), RAS+. For NIfTI it
            is the file's affine as stored; for DICOM it is MONAI's RAS
            affine; MGH, NRRD and MetaImage geometry is converted to it.
        header: a copy of the original header: nibabel's ``Nifti1Header``
            / ``Nifti2Header`` or ``MGHHeader``, pynrrd's header dict for
            NRRD, SimpleITK's metadata dict for MetaImage; None for DICOM.
        source_dtype: the on-disk dtype (e.g. ``int16``). For DICOM it is
            the pixel dtype, or float32 when the series has a rescale
            slope/intercept (MONAI applies it).
        path: the file or folder that was read.

    Examples:
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
    def voxel_sizes(self) -> tuple[float, float, float]:
        """Voxel edge lengths in mm along X, Y, Z (the affine's column norms)."""
        return tuple(float(np.linalg.norm(self.affine[:3, i])) for i in range(3))

    @property
    def orientation(self) -> tuple[str, str, str]:
        """Axis codes of X, Y, Z in world space, e.g. ``('R', 'A', 'S')``."""
        return tuple(aff2axcodes(self.affine))

    @property
    def spatial_shape(self) -> tuple[int, int, int]:
        """``(X, Y, Z)``."""
        return tuple(int(s) for s in self.array.shape[:3])

    def __repr__(self):
        return (
            f"Volume(path={self.path!r}, shape={self.array.shape}, "
            f"voxel_sizes={tuple(round(v, 4) for v in self.voxel_sizes)}, "
            f"orientation={''.join(self.orientation)}, source_dtype={self.source_dtype})"
        )
