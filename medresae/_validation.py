"""Argument checks shared by every public constructor (standard library only).

Each check raises a one-line ``ValueError`` that names the argument and the
value received, so a user sees what to change without reading a traceback.
"""

import numbers


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_spatial_dims(spatial_dims, name="spatial_dims"):
    """Returns `spatial_dims` if it is 2 or 3, else raises ValueError."""
    if not _is_int(spatial_dims) or spatial_dims not in (2, 3):
        raise ValueError(
            f"`{name}` must be 2 (images) or 3 (volumes). "
            f"Received: {name}={spatial_dims!r}"
        )
    return int(spatial_dims)


def check_positive_int(value, name, minimum=1):
    """Returns `value` as int if it is an integer >= `minimum`."""
    if not _is_int(value) or value < minimum:
        raise ValueError(
            f"`{name}` must be an integer >= {minimum}. Received: {name}={value!r}"
        )
    return int(value)


def check_positive_number(value, name, allow_zero=False):
    """Returns `value` as float if it is a finite number > 0 (or >= 0)."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    ok = ok and value == value and value not in (float("inf"), float("-inf"))
    ok = ok and (value >= 0 if allow_zero else value > 0)
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(
            f"`{name}` must be a finite number {bound}. Received: {name}={value!r}"
        )
    return float(value)


def check_choice(value, name, choices):
    """Returns `value` if it is one of `choices`, else raises ValueError."""
    if value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise ValueError(
            f"Unknown `{name}`: {value!r}. Expected one of {listed}."
        )
    return value


def standardize_tuple(value, n, name, minimum=1):
    """Turns an int or a sequence of `n` ints into a tuple of `n` ints.

    Args:
        value: an int (used on every axis) or a sequence of `n` ints.
        n: the number of axes.
        name: the argument name, for the error message.
        minimum: the smallest value allowed on an axis.

    Returns:
        A tuple of `n` Python ints.

    Examples:
        >>> standardize_tuple(2, 3, "strides")
        (2, 2, 2)
        >>> standardize_tuple((2, 2, 1), 3, "strides")
        (2, 2, 1)
    """
    if _is_int(value):
        values = (int(value),) * n
    else:
        try:
            values = tuple(value)
        except TypeError:
            values = None
        if values is None or len(values) != n or not all(_is_int(v) for v in values):
            raise ValueError(
                f"`{name}` must be an int or a tuple of {n} ints (one per "
                f"spatial axis). Received: {name}={value!r}"
            )
        values = tuple(int(v) for v in values)
    if any(v < minimum for v in values):
        raise ValueError(
            f"Every entry of `{name}` must be >= {minimum}. Received: {name}={value!r}"
        )
    return values


def standardize_level_strides(strides, n_levels, spatial_dims, name="strides"):
    """Per-level, per-axis down-sampling factors.

    Args:
        strides: an int (every level, every axis), a tuple of `spatial_dims`
            ints (every level), or a list of `n_levels` ints/tuples.
        n_levels: the number of down-sampling steps.
        spatial_dims: 2 or 3.
        name: the argument name, for the error message.

    Returns:
        A list of `n_levels` tuples of `spatial_dims` ints.

    Examples:
        >>> standardize_level_strides((2, 2, 1), 2, 3)
        [(2, 2, 1), (2, 2, 1)]
        >>> standardize_level_strides([2, (2, 2, 1)], 2, 3)
        [(2, 2, 2), (2, 2, 1)]
    """
    if _is_int(strides):
        return [standardize_tuple(strides, spatial_dims, name)] * n_levels
    try:
        items = list(strides)
    except TypeError:
        items = None
    if items is not None and len(items) == spatial_dims and all(_is_int(s) for s in items):
        # A flat tuple of `spatial_dims` ints is read as per-axis strides shared
        # by every level (the common thick-slice case), even if it could also
        # be one int per level.
        return [standardize_tuple(items, spatial_dims, name)] * n_levels
    if items is None or len(items) != n_levels:
        raise ValueError(
            f"`{name}` must be an int, a tuple of {spatial_dims} ints, or a list "
            f"of {n_levels} of those (one per level). Received: {name}={strides!r}"
        )
    return [standardize_tuple(s, spatial_dims, f"{name}[{i}]") for i, s in enumerate(items)]


def spatial_divisor(level_strides, spatial_dims):
    """The per-axis product of the down-sampling factors of every level."""
    divisor = [1] * spatial_dims
    for stride in level_strides:
        divisor = [d * s for d, s in zip(divisor, stride)]
    return tuple(divisor)


def check_input_size(input_size, spatial_dims, name="input_size"):
    """Returns `input_size` as a tuple of ints or Nones (any size on that axis)."""
    if input_size is None:
        return (None,) * spatial_dims
    try:
        values = tuple(input_size)
    except TypeError:
        values = None
    if values is None or len(values) != spatial_dims or not all(
        v is None or (_is_int(v) and v > 0) for v in values
    ):
        raise ValueError(
            f"`{name}` must be None or a tuple of {spatial_dims} positive ints "
            f"(or None for any size on an axis). Received: {name}={input_size!r}"
        )
    return tuple(None if v is None else int(v) for v in values)


def check_divisible(size, divisor, name):
    """Raises ValueError if a known spatial size is not a multiple of `divisor`."""
    bad = [
        (axis, s, d)
        for axis, (s, d) in enumerate(zip(size, divisor))
        if s is not None and s % d != 0
    ]
    if bad:
        raise ValueError(
            f"`{name}` must be a multiple of the model's spatial_divisor "
            f"{tuple(divisor)} on every axis. Received: {name}={tuple(size)}. "
            "Pad the input (medresae.pad_to_multiple) or change the size."
        )
