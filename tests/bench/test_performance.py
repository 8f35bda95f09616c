"""The slow-backend warning: raised exactly where a backend is on a slow path."""

import warnings

import pytest
from conftest import BACKEND

from medresae.performance import SlowBackendWarning, slow_path_message, warn_if_slow
from medresae.sample_data import sample_path
from medresae.training import train_denoiser


def test_only_3d_on_jax_without_an_accelerator_is_flagged():
    assert slow_path_message(2) is None
    message = slow_path_message(3)
    if BACKEND == "jax":  # the test machines have no GPU
        assert "tensorflow" in message.lower() and "\n" not in message
    else:
        assert message is None


def test_training_warns_and_names_the_faster_backend(tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train_denoiser("synthetic", [sample_path("brain_mr")], str(tmp_path / "run"), patch_size=(16, 16, 8),
                       filters=(4, 8), n_blocks=1, epochs=1, steps_per_epoch=1, batch_size=1,
                       validation_fraction=None, verbose=0)
    slow = [w for w in caught if issubclass(w.category, SlowBackendWarning)]
    assert len(slow) == (1 if BACKEND == "jax" else 0)
    if slow:
        assert "TensorFlow" in str(slow[0].message)


def test_warn_if_slow_returns_the_message():
    if BACKEND == "jax":
        with pytest.warns(SlowBackendWarning):
            assert warn_if_slow(3)
    else:
        assert warn_if_slow(3) is None
