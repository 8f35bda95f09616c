"""medresae.losses on the active backend."""

import keras
import numpy as np
import pytest
from helpers import random_batch

from medresae.losses import get_loss, masked_l1, masked_mse, mse_ssim, ssim_loss


def _value(x):
    return float(keras.ops.convert_to_numpy(x))


def test_masked_losses_only_count_masked_voxels():
    target = random_batch((2, 8, 8, 4, 1))
    mask = np.zeros_like(target)
    mask[:, 2, 3, 1] = 1.0
    y_true = np.concatenate([target, mask], axis=-1)
    pred = target.copy()
    pred[mask == 0] += 5.0  # errors outside the mask are ignored
    pred[:, 2, 3, 1] += 0.5
    assert _value(masked_mse(y_true, pred)) == pytest.approx(0.25, rel=1e-5)
    assert _value(masked_l1(y_true, pred)) == pytest.approx(0.5, rel=1e-5)


def test_masked_losses_take_one_mask_per_channel():
    target = random_batch((2, 8, 8, 4, 2))
    mask = np.zeros_like(target)
    mask[:, 1, 1, 1, 0] = 1.0  # channel 0 masked here
    mask[:, 5, 5, 2, 1] = 1.0  # channel 1 masked elsewhere
    pred = target + 5.0  # errors outside each channel's own mask are ignored
    pred[:, 1, 1, 1, 0] = target[:, 1, 1, 1, 0] + 0.5
    pred[:, 5, 5, 2, 1] = target[:, 5, 5, 2, 1] - 1.5
    y_true = np.concatenate([target, mask], axis=-1)
    assert _value(masked_mse(y_true, pred)) == pytest.approx((0.25 + 2.25) / 2, rel=1e-5)
    assert _value(masked_l1(y_true, pred)) == pytest.approx((0.5 + 1.5) / 2, rel=1e-5)


@pytest.mark.parametrize("shape", [(2, 16, 16, 1), (2, 12, 12, 3, 1)])
def test_ssim_loss_is_zero_for_equal_and_grows_with_noise(shape):
    x = np.random.default_rng(0).uniform(size=shape).astype("float32")
    assert _value(ssim_loss(x, x)) == pytest.approx(0.0, abs=1e-5)
    small = _value(ssim_loss(x, x + 0.05 * random_batch(shape)))
    large = _value(ssim_loss(x, x + 0.3 * random_batch(shape)))
    assert 0 < small < large
    assert _value(mse_ssim(x, x)) == pytest.approx(0.0, abs=1e-5)


def test_get_loss():
    assert get_loss("mse") == "mse" and get_loss("mse", masked=True) is masked_mse
    with pytest.raises(ValueError, match="'huber'"):
        get_loss("huber")
    with pytest.raises(ValueError, match="loss='ssim'"):
        get_loss("ssim", masked=True)
