"""Atomic file writes: a temporary file in the target folder, then a rename.

A reader never sees a half-written file, and a failed write leaves nothing
behind. Used for NIfTI volumes, checkpoints, JSON and figures alike.
"""

import os
import uuid

from medresae.errors import InputFileError, OutputExistsError


def _exists_message(path):
    return f"{path}: file exists; pass overwrite=True (--overwrite) to replace it"


def publish(temp, path, overwrite):
    """Moves the finished `temp` file to `path` (never replacing a file that
    appeared meanwhile unless `overwrite`)."""
    if overwrite:
        os.replace(temp, path)
        return
    try:
        # A hard link fails if `path` appeared since it was checked.
        os.link(temp, path)
    except FileExistsError:
        raise OutputExistsError(_exists_message(path)) from None
    except OSError:
        # Some file systems (FAT, some network shares) have no hard links.
        if os.path.lexists(path):
            raise OutputExistsError(_exists_message(path)) from None
        os.replace(temp, path)
        return
    os.remove(temp)


def write_atomically(path, write, overwrite=False, suffix=""):
    """Calls `write(temp_path)`, then moves the result to `path`.

    Args:
        path: the final path.
        write: a function that writes the whole file to the path it is given.
        overwrite: replace an existing `path`.
        suffix: suffix of the temporary name (libraries such as nibabel pick
            the format from it).

    Raises:
        InputFileError: the folder is missing or read-only, the file exists
            (without `overwrite`), or the write failed; the temporary file is
            removed in every case.

    Example:

    >>> write_atomically("out.txt", lambda p: open(p, "w").write("hi"), overwrite=True)
    """
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise InputFileError(f"{path}: folder {folder} does not exist; create it first")
    if os.path.lexists(path) and not overwrite:
        raise OutputExistsError(_exists_message(path))
    temp = os.path.join(folder, f".{os.path.basename(path)}.{uuid.uuid4().hex[:12]}.tmp{suffix}")
    created = published = False
    try:
        # O_EXCL: never truncate somebody else's file; mode 0o666 lets the
        # umask decide the final permissions, as for any new file.
        os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        created = True
        write(temp)
        publish(temp, path, overwrite)
        published = True
    except InputFileError:
        raise
    except PermissionError:
        raise InputFileError(
            f"{path}: cannot write to folder {folder} (permission denied); choose another output folder"
        ) from None
    except OSError as err:
        raise InputFileError(
            f"{path}: could not write the file ({type(err).__name__}: {err}); check free disk "
            "space and the output folder"
        ) from None
    finally:
        if created and not published:
            try:
                os.remove(temp)
            except OSError:
                pass
    return path


def atomic_write_text(path, text, overwrite=True):
    """Writes `text` to `path` atomically (UTF-8)."""

    def write(temp):
        with open(temp, "w", encoding="utf-8") as f:
            f.write(text)

    return write_atomically(path, write, overwrite=overwrite)
