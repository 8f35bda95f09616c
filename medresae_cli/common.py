"""Small argument parsers shared by the subcommands."""

import argparse
import contextlib
import math
import sys
import warnings


class UsageError(ValueError):
    """Flags the command cannot use together, or a flag value the library
    rejects: one line naming the flag, exit status 2, as argparse's own errors."""


def int_tuple(text):
    """'64,64,8' -> (64, 64, 8); 1 to 3 positive ints."""
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        values = ()
    if not 1 <= len(values) <= 3 or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"expected positive ints like 64,64,8; got {text!r}")
    return values


def _checked(convert, ok, expected):
    def parse(text):
        try:
            value = convert(text)
        except (TypeError, ValueError):
            value = None
        if value is None or not ok(value):
            raise argparse.ArgumentTypeError(f"expected {expected}; got {text!r}")
        return value

    return parse


positive_int = _checked(int, lambda v: v > 0, "a positive integer")
non_negative_float = _checked(float, lambda v: 0 <= v < float("inf"), "a number >= 0")


def workers_count(text):
    """'auto' or a positive integer (loader threads)."""
    return "auto" if text == "auto" else _checked(int, lambda v: v > 0, "a positive integer or auto")(text)


non_negative_int = _checked(int, lambda v: v >= 0, "an integer >= 0")
positive_float = _checked(float, lambda v: math.isfinite(v) and v > 0, "a finite number > 0")
fraction = _checked(float, lambda v: 0.0 <= v < 1.0, "a number from 0 to below 1")


def add_ssim_window(parser):
    """The `--ssim-window` flag of `evaluate` and `bench quality`."""
    from medresae_cli.defaults import SSIM_WINDOWS

    parser.add_argument("--ssim-window", choices=SSIM_WINDOWS, default=SSIM_WINDOWS[0],
                        help="SSIM window: uniform, up to 7 voxels (scikit-image's default), or gaussian (sigma "
                        "1.5, 11 voxels, as MONAI, TensorFlow and most papers; default uniform)")


def check_report_folder(folder, names, overwrite, flag="--out"):
    """Refuses a report folder that is a file, or holds an earlier report, unless `overwrite`."""
    import os

    from medresae.errors import InputFileError, OutputExistsError

    if os.path.lexists(folder) and not os.path.isdir(folder):
        raise InputFileError(f"{flag} {folder}: is a file; give a folder for the report")
    found = [n for n in names if os.path.lexists(os.path.join(folder, n))]
    if found and not overwrite:
        raise OutputExistsError(f"{flag} {folder}: holds an earlier report ({found[0]}); pass --overwrite "
                                f"to replace it, or another {flag}")


def per_axis(values):
    """An int_tuple for an argument that is one value for every axis or one per axis:
    (2,) -> 2, (2, 2, 1) -> (2, 2, 1), None -> None."""
    if values is not None and len(values) == 1:
        return values[0]
    return values


@contextlib.contextmanager
def one_line_warnings(prefix=""):
    """Prints medresae's own warnings raised inside as `medresae: warning: ...` lines on stderr.

    A command-line user sees one line instead of Python's file:line format;
    `prefix` goes before each (e.g. the file the warning is about). Warnings
    of other libraries (e.g. a backend's deprecation notes) are handed back
    to Python's filters, which usually keep them quiet.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for warning in caught:
        if not warning.category.__module__.startswith("medresae"):
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
            continue
        text = " ".join(str(warning.message).split())
        print(f"medresae: warning: {prefix}{text}", file=sys.stderr, flush=True)
