"""Small argument parsers shared by the subcommands."""

import argparse
import contextlib
import sys
import warnings


def int_tuple(text):
    """'64,64,8' -> (64, 64, 8); 1 to 3 positive ints."""
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        values = ()
    if not 1 <= len(values) <= 3 or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"expected positive ints like 64,64,8; got {text!r}")
    return values


def per_axis(values):
    """An int_tuple for an argument that is one value for every axis or one per axis:
    (2,) -> 2, (2, 2, 1) -> (2, 2, 1), None -> None."""
    if values is not None and len(values) == 1:
        return values[0]
    return values


@contextlib.contextmanager
def one_line_warnings():
    """Prints the warnings raised inside as `medresae: warning: ...` lines on stderr.

    For short calls that only medresae warns from (e.g. `save_volume`), so a
    command-line user sees one line instead of Python's file:line format.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for warning in caught:
        text = " ".join(str(warning.message).split())
        print(f"medresae: warning: {text}", file=sys.stderr, flush=True)
