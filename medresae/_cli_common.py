"""Small argument parsers shared by the subcommands."""

import argparse


def int_tuple(text):
    """'64,64,8' -> (64, 64, 8); 1 to 3 positive ints."""
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        values = ()
    if not 1 <= len(values) <= 3 or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"expected positive ints like 64,64,8; got {text!r}")
    return values
