"""medresae._validation: standard-library argument checks."""

import pytest

from medresae._validation import (
    check_divisible,
    check_positive_number,
    spatial_divisor,
    standardize_level_strides,
    standardize_tuple,
)


def test_standardize_tuple():
    assert standardize_tuple(3, 2, "k") == (3, 3)
    assert standardize_tuple([3, 3, 1], 3, "k") == (3, 3, 1)
    for bad in ((3, 3), (3, 0, 3), "3", 2.0, True):
        with pytest.raises(ValueError, match="`k`"):
            standardize_tuple(bad, 3, "k")


def test_level_strides_and_divisor():
    strides = standardize_level_strides([2, (2, 2, 1), (1, 2, 2)], 3, 3)
    assert strides == [(2, 2, 2), (2, 2, 1), (1, 2, 2)]
    assert spatial_divisor(strides, 3) == (4, 8, 4)
    assert standardize_level_strides((2, 2, 1), 3, 3) == [(2, 2, 1)] * 3
    assert standardize_level_strides([2, 1], 2, 3) == [(2, 2, 2), (1, 1, 1)]
    with pytest.raises(ValueError, match="strides"):
        standardize_level_strides([2, 2], 3, 3)


def test_check_divisible_and_numbers():
    check_divisible((8, None, 4), (4, 4, 2), "size")
    with pytest.raises(ValueError, match=r"size=\(8, 6, 4\)"):
        check_divisible((8, 6, 4), (4, 4, 2), "size")
    with pytest.raises(ValueError, match="beta=nan"):
        check_positive_number(float("nan"), "beta")
