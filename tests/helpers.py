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


def run_layer_test(obj, input_shape, expected_shape, tmp_path, x=None, target=None, **train_kwargs):
    """The contract every medresae layer and model keeps (as Keras' run_layer_test):

    - a config round trip, and serialisation under the 'medresae>' package;
    - a symbolic call (on `keras.Input`) with the expected output shape;
    - an eager prediction of the expected shape (and, for layers,
      `compute_output_shape`);
    - a `.keras` save/load that predicts the same;
    - a mixed-precision copy (`dtype='mixed_bfloat16'`, which every CPU kernel has) whose every
      sub-layer takes that policy and computes in bfloat16;
    - a few training steps that lower the loss.
    """
    is_model = isinstance(obj, keras.Model)
    config = assert_config_round_trip(obj).get_config()
    serialised = keras.saving.serialize_keras_object(obj)
    assert serialised["registered_name"] == f"medresae>{type(obj).__name__}"
    symbolic = obj(keras.Input(input_shape[1:]))
    assert tuple(symbolic.shape) == (None, *expected_shape[1:])
    model = obj if is_model else wrap_layer(type(obj).from_config(config), input_shape)
    x = random_batch(input_shape) if x is None else x
    y = model.predict(x, verbose=0)
    assert y.shape == tuple(expected_shape)
    if not is_model:
        assert tuple(obj.compute_output_shape(input_shape)) == tuple(expected_shape)
    assert_save_load_same(model, x, str(tmp_path / "contract.keras"))
    mixed = type(obj).from_config({**config, "dtype": "mixed_bfloat16"})
    try:
        out = mixed(x)
    except NotImplementedError as err:  # torch has no bfloat16 CPU kernel for 3D average pooling
        assert keras.backend.backend() == "torch" and "BFloat16" in str(err), err
    else:
        assert keras.backend.standardize_dtype(out.dtype) == "bfloat16"
    policies = {layer.dtype_policy.name for layer in mixed._flatten_layers()
                if not isinstance(layer, keras.layers.InputLayer)}
    assert policies <= {"mixed_bfloat16"} | ({"float32"} if is_model else set()), policies
    target = random_batch(expected_shape, seed=1) if target is None else target
    assert_training_lowers_loss(model, x, target, **train_kwargs)
    return model


def run_python(code, backend, timeout=600, extra_env=None):
    """Runs `code` in a fresh interpreter on `backend`; returns the CompletedProcess."""
    env = dict(os.environ, KERAS_BACKEND=backend, PYTHONWARNINGS="ignore")
    env.update(extra_env or {})
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=timeout, cwd=REPO
    )
