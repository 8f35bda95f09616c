"""Atomic file writes: a temporary file in the target folder, then a rename.

A reader never sees a half-written file, and a failed write leaves nothing
behind. Used for NIfTI volumes, checkpoints, JSON and figures alike.

Temporary names are ``.NAME.PID-RANDOM.tmpSUFFIX``: hidden, next to the
output (so the rename stays on one file system), and tagged with the
writer's process id, so the next write of the same output can remove what a
killed process (SIGKILL, power loss) left behind without touching the
temporary file of a writer that is still running.
"""

import os
import re
import shutil
import uuid

from medresae.errors import InputFileError, OutputExistsError

_RANDOM_HEX = 8


def _exists_message(path):
    return f"{path}: file exists; pass overwrite=True (--overwrite) to replace it"


def _read_only_message(path, folder):
    return f"{path}: cannot write to folder {folder} (permission denied); choose another output folder"


def _name_max(folder):
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        return 255


def _temp_stem(folder, name, suffix):
    """`.NAME.` for the temporary files of output `name`, with NAME shortened
    (on a character boundary) so that the whole temporary name fits the file
    system's name limit."""
    tail = len(f".{os.getpid()}-{'0' * _RANDOM_HEX}.tmp{suffix}".encode())
    room = _name_max(folder) - 1 - tail
    encoded = name.encode()
    if len(encoded) > room:
        name = encoded[: max(room, 1)].decode(errors="ignore")
    return f".{name}"


def temp_path(path, suffix=""):
    """A fresh temporary path for writing `path` (not created)."""
    folder = os.path.dirname(os.path.abspath(path))
    stem = _temp_stem(folder, os.path.basename(path), suffix)
    return os.path.join(folder, f"{stem}.{os.getpid()}-{uuid.uuid4().hex[:_RANDOM_HEX]}.tmp{suffix}")


def _alive(pid):
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def remove_stale_temporaries(path, suffix=""):
    """Removes temporary files of `path` whose writer process no longer runs."""
    folder = os.path.dirname(os.path.abspath(path))
    stem = _temp_stem(folder, os.path.basename(path), suffix)
    # Any suffix: the writer may have used another one (.nii.gz, .png, ...).
    pattern = re.compile(re.escape(stem) + rf"\.(\d+)-[0-9a-f]{{{_RANDOM_HEX}}}\.tmp[^/]*$")
    try:
        entries = os.listdir(folder)
    except OSError:
        return
    for entry in entries:
        match = pattern.match(entry)
        if match and not _alive(int(match.group(1))):
            try:
                os.remove(os.path.join(folder, entry))
            except OSError:
                pass


def check_output_path(path, overwrite=False, inputs=(), what="file"):
    """Raises a one-line `InputFileError` if writing `path` is bound to fail.

    Call it before the work that produces the file: the folder exists and
    takes new files (probed by creating and removing a temporary file, which
    is what the write will do), the name fits the file system, `path` is not
    a folder, not one of `inputs`, and does not exist unless `overwrite`.

    Args:
        path: the output path.
        overwrite: an existing file may be replaced.
        inputs: paths the command reads; `path` must be none of them (same
            file by any name: symlinks and hard links count).
        what: what the file is, for the message when `path` is a folder
            (e.g. "a .json file").

    Raises:
        InputFileError: with the reason; `OutputExistsError` when the file
            exists and `overwrite` is False.

    Examples:
        >>> check_output_path("scores.json", overwrite=True)
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    name = os.path.basename(path)
    if not os.path.isdir(folder):
        raise InputFileError(f"{path}: folder {folder} does not exist; create it first")
    limit = _name_max(folder)
    if not name or len(name.encode()) > limit:
        raise InputFileError(
            f"{path}: the file name is {len(name.encode())} bytes long, more than this file system's "
            f"{limit}; choose a shorter name"
        )
    for source in inputs:
        if source is not None and _same_file(path, os.fspath(source)):
            raise InputFileError(f"{path}: would overwrite the input {source}; write to a different file")
    if os.path.isdir(path):
        raise InputFileError(f"{path}: is a folder; give {what} name")
    if os.path.lexists(path) and not overwrite:
        raise OutputExistsError(_exists_message(path))
    suffix = ".nii.gz" if name.lower().endswith(".nii.gz") else os.path.splitext(name)[1]
    remove_stale_temporaries(path, suffix)
    probe = temp_path(path, suffix)
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except PermissionError:
        raise InputFileError(_read_only_message(path, folder)) from None
    except OSError as err:
        raise InputFileError(
            f"{path}: cannot create files in folder {folder} ({type(err).__name__}: {err.strerror or err}); "
            "choose another output folder"
        ) from None
    os.remove(probe)


def _same_file(a, b):
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def remove_path(path):
    """Removes a file or a folder tree, if present; never raises."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        try:
            os.remove(path)
        except OSError:
            pass


def _publish_folder(temp, path, overwrite):
    if not overwrite:
        if os.path.lexists(path):
            raise OutputExistsError(_exists_message(path))
        try:
            os.rename(temp, path)
        except OSError:
            if os.path.lexists(path):
                raise OutputExistsError(_exists_message(path)) from None
            raise
        return
    if not os.path.lexists(path):
        os.rename(temp, path)
        return
    # Replace: move the old output aside, move the new one in, then delete
    # the old one (os.replace cannot replace a non-empty folder).
    backup = f"{temp}.old"
    os.rename(path, backup)
    try:
        os.rename(temp, path)
    except OSError:
        os.rename(backup, path)
        raise
    remove_path(backup)


def publish(temp, path, overwrite):
    """Moves the finished `temp` file or folder (e.g. a SavedModel) to `path`,
    never replacing an output that appeared meanwhile unless `overwrite`."""
    if os.path.isdir(temp) and not os.path.islink(temp):
        _publish_folder(temp, path, overwrite)
        return
    if overwrite:
        try:
            os.replace(temp, path)
        except PermissionError:
            if os.path.lexists(path):
                raise InputFileError(
                    f"{path}: cannot replace the existing file (permission denied: it is protected or "
                    "immutable); remove its protection or choose another output name"
                ) from None
            raise
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

    Temporary files of `path` left by a killed process are removed first.

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

    Examples:
        >>> write_atomically("out.txt", lambda p: open(p, "w").write("hi"), overwrite=True)
        'out.txt'
    """
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise InputFileError(f"{path}: folder {folder} does not exist; create it first")
    if os.path.lexists(path) and not overwrite:
        raise OutputExistsError(_exists_message(path))
    remove_stale_temporaries(path, suffix)
    temp = temp_path(path, suffix)
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
        raise InputFileError(_read_only_message(path, folder)) from None
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
