"""Shared by reading and writing: file suffixes and one-line error reasons."""

_NIFTI_SUFFIXES = (".nii.gz", ".nii")
_READABLE = ".nii, .nii.gz, or a folder holding one DICOM series"


def _reason(err):
    """An exception as one line, for use inside our own messages."""
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text}" if text else type(err).__name__
