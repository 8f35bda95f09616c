"""Exceptions (and one warning) for problems with the user's files (standard library only).

Every message is one line that names the file (and the argument, where one
is involved), says what is wrong and what to do, so a command-line user can
act on it without reading a traceback.
"""


class InputFileError(ValueError):
    """An input file cannot be used, or an output path cannot be written.

    Raised for unreadable, truncated or invalid images (wrong type, too many
    axes, NaN/inf or constant voxels, mixed DICOM series) and for output
    paths that would overwrite a file or lie in a missing or read-only
    folder. It is a ``ValueError``, so code that already catches
    ``ValueError`` keeps working.

    Example:

    >>> try:
    ...     raise InputFileError("scan.nii.gz: the volume is empty (all voxels are 0)")
    ... except ValueError as err:
    ...     print(err)
    scan.nii.gz: the volume is empty (all voxels are 0)
    """


class InputFileNotFoundError(InputFileError, FileNotFoundError):
    """The input path does not exist.

    Both an ``InputFileError`` and a ``FileNotFoundError``, so either
    ``except`` clause catches it.

    Example:

    >>> isinstance(InputFileNotFoundError("x.nii.gz: no such file"), FileNotFoundError)
    True
    """


class OutputExistsError(InputFileError, FileExistsError):
    """The output file exists and overwriting was not asked for.

    Both an ``InputFileError`` and a ``FileExistsError``.

    Example:

    >>> isinstance(OutputExistsError("out.nii.gz: exists"), InputFileError)
    True
    """


class ClippedValuesWarning(UserWarning):
    """Values were clipped to fit the integer dtype of an output file.

    Issued by `medresae.io.save_volume` (e.g. ``denoise --dtype input`` on
    an int16 or uint8 scan) with a one-line message that names the file,
    the number of clipped voxels and the dtype's range.

    Example:

    >>> issubclass(ClippedValuesWarning, UserWarning)
    True
    """
