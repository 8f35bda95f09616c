"""Strict JSON for the reports medresae writes."""

import json
import math

import numpy as np


def _strict(value):
    if isinstance(value, dict):
        return {str(k): _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v) for v in value]
    if isinstance(value, np.ndarray):
        return _strict(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def dumps(value, indent=2):
    """`json.dumps` that any strict parser reads: NaN and infinities become null
    (e.g. the PSNR of an image identical to its reference), NumPy numbers and
    arrays become plain numbers and lists.

    Examples:
        >>> dumps({"psnr": float("inf"), "n": np.int64(3)}, indent=None)
        '{"psnr": null, "n": 3}'
    """
    return json.dumps(_strict(value), indent=indent, allow_nan=False)
