"""Read and write medical volumes with their affine and header kept.

`load_volume` reads a NIfTI file (``.nii``/``.nii.gz``, through nibabel), a
FreeSurfer MGH/MGZ, NRRD or MetaImage file (`medresae.io.formats`) or a
folder holding one DICOM series (through MONAI's ``PydicomReader``) into a
`Volume`: a float32, channels-last ``(X, Y, Z, C)`` array plus the RAS+
voxel-to-world affine and the original header. `save_volume` writes an
array in the format its path names, with the geometry (and, within one
format, the header) of a `Volume` it came from, and never leaves a
half-written file behind.

Every problem with a file is raised as a one-line
`medresae.errors.InputFileError` that names the file, says what is wrong and
what to do.

This module imports nibabel; pynrrd, SimpleITK, pydicom and MONAI (which
imports torch) are imported only when a file of their format is read or
written.
"""

from medresae.io.read import is_nifti_path, is_volume_path, list_nifti, list_volumes, load_volume
from medresae.io.volume import Volume
from medresae.io.write import check_nifti_output, save_volume

__all__ = ["Volume", "check_nifti_output", "is_nifti_path", "is_volume_path", "list_nifti", "list_volumes",
           "load_volume", "save_volume"]
