"""Small test helpers: real Keras models, real files, no mocks."""

import os
import subprocess
import sys

import keras
import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def random_batch(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype("float32")


def wrap_layer(layer, input_shape):
    """A functional model around one layer (batch axis left free)."""
    inputs = keras.Input(input_shape[1:])
    return keras.Model(inputs, layer(inputs))


def assert_config_round_trip(obj):
    config = obj.get_config()
    clone = type(obj).from_config(config)
    assert clone.get_config() == config
    return clone


def assert_save_load_same(model, x, path, atol=1e-5):
    """Saves `model` as .keras, loads it back and compares predictions."""
    expected = model.predict(x, verbose=0)
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), expected, atol=atol, rtol=1e-5)
    return loaded


def assert_training_lowers_loss(model, x, y, steps=4, learning_rate=1e-2, loss="mse"):
    """A few optimiser steps on one fixed batch lower the loss."""
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=loss)
    losses = [float(np.asarray(model.train_on_batch(x, y))) for _ in range(steps)]
    assert np.all(np.isfinite(losses)), losses
    assert losses[-1] < losses[0], losses
    return losses


def run_python(code, backend, timeout=600, extra_env=None):
    """Runs `code` in a fresh interpreter on `backend`; returns the CompletedProcess."""
    env = dict(os.environ, KERAS_BACKEND=backend, PYTHONWARNINGS="ignore")
    env.update(extra_env or {})
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=timeout, cwd=REPO
    )
