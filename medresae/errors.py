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

    Examples:
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

    Examples:
        >>> isinstance(InputFileNotFoundError("x.nii.gz: no such file"), FileNotFoundError)
        True
    """


class OutputExistsError(InputFileError, FileExistsError):
    """The output file exists and overwriting was not asked for.

    Both an ``InputFileError`` and a ``FileExistsError``.

    Examples:
        >>> isinstance(OutputExistsError("out.nii.gz: exists"), InputFileError)
        True
    """


class ModelOutputError(ValueError):
    """A model returned something a denoiser cannot: several arrays, or an
    output whose spatial shape differs from its input's.

    Raised by `medresae.inference.denoise`; the fault is the model's, not the
    volume's, so the command line names the model file in the message.

    Examples:
        >>> isinstance(ModelOutputError("returned 2 arrays"), ValueError)
        True
    """


class ExtremeValuesWarning(UserWarning):
    """A few voxels lie far outside the scan's intensity range (e.g. a
    corrupt 1e30 voxel); `medresae.inference.denoise` kept them out of the
    model's input and passed them through unchanged.

    Examples:
        >>> issubclass(ExtremeValuesWarning, UserWarning)
        True
    """


class ClippedValuesWarning(UserWarning):
    """Values were clipped to fit the integer dtype of an output file.

    Issued by `medresae.io.save_volume` (e.g. ``denoise --dtype input`` on
    an int16 or uint8 scan) with a one-line message that names the file,
    the number of clipped voxels and the dtype's range.

    Examples:
        >>> issubclass(ClippedValuesWarning, UserWarning)
        True
    """


def first_line(err):
    """The first line of an exception's message, or its type when it has none.

    Examples:
        >>> first_line(ValueError("volume.nii.gz: empty\\nmore detail"))
        'volume.nii.gz: empty'
        >>> first_line(KeyError())
        'KeyError'
    """
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def one_line_reason(err, limit=400):
    """Another library's exception as one line for our messages: its type and
    text, whitespace folded, and a long text cut at the end of a sentence
    (or a word) rather than mid-word.

    Examples:
        >>> one_line_reason(ValueError("Bad value.   Try again."))
        'ValueError: Bad value. Try again.'
    """
    text = " ".join(str(err).split())
    if len(text) > limit:
        cut = text.rfind(". ", 0, limit)
        text = text[: cut + 1] if cut > limit // 2 else text[: text.rfind(" ", 0, limit)] + " ..."
    return f"{type(err).__name__}: {text}" if text else type(err).__name__
