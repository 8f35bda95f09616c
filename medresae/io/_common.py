"""Shared by reading and writing: file suffixes and one-line error reasons."""

from medresae.errors import one_line_reason as _reason  # noqa: F401

_NIFTI_SUFFIXES = (".nii.gz", ".nii")
_READABLE = ".nii, .nii.gz, .mgz, .mgh, .nrrd, .nhdr, .mha, .mhd, or a folder holding one DICOM series"
_WRITABLE = ".nii, .nii.gz, .mgz, .mgh, .nrrd or .mha"
