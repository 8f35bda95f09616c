"""pad_to_multiple / crop_to_shape / predict_padded."""

import numpy as np
import pytest
from helpers import random_batch

from medresae import crop_to_shape, pad_to_multiple, predict_padded
from medresae.models import ResUNet


@pytest.mark.parametrize("shape, divisor, padded", [
    ((1, 37, 50, 23, 1), (4, 4, 2), (1, 40, 52, 24, 1)),
    ((2, 7, 9, 3), 4, (2, 8, 12, 3)),
    ((1, 8, 8, 1, 1), (4, 4, 4), (1, 8, 8, 4, 1)),
])
def test_pad_then_crop_is_identity(shape, divisor, padded):
    x = random_batch(shape)
    y, original = pad_to_multiple(x, divisor)
    assert y.shape == padded and original == shape
    np.testing.assert_array_equal(crop_to_shape(y, original), x)


def test_already_multiple_is_returned_unchanged():
    x = random_batch((1, 8, 8, 1))
    y, _ = pad_to_multiple(x, 4)
    assert y is x


def test_bad_arguments():
    with pytest.raises(ValueError, match="x.shape"):
        pad_to_multiple(np.zeros((8, 8, 8)), (2, 2, 2))
    with pytest.raises(ValueError, match="'wrap'"):
        pad_to_multiple(np.zeros((1, 8, 8, 1)), 2, mode="wrap")


def test_predict_padded_returns_input_size():
    model = ResUNet(spatial_dims=2, filters=(4, 8, 8), n_blocks=1)
    y = predict_padded(model, random_batch((2, 13, 21, 1)))
    assert y.shape == (2, 13, 21, 1)
