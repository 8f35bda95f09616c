"""A .keras file saved on this backend predicts the same on the other two."""

import importlib.util
import json

import keras
import numpy as np
import pytest
from conftest import BACKEND
from helpers import random_batch, run_python

from medresae.models import ResNetAE, ResNetVAE, ResUNet

# Each pass loads on one other backend, the reverse of the ring in
# test_cli_end_to_end (tensorflow->torch->jax->tensorflow): over the three
# passes the two tests cover all six directions, each backend's start-up paid once.
OTHERS = [{"tensorflow": "jax", "jax": "torch", "torch": "tensorflow"}[BACKEND]]

LOAD_AND_PREDICT = """
import json, sys, numpy as np
try:
    import torch; torch.set_num_threads(1)
except ImportError:
    pass
import keras, medresae
cases = json.load(open({cases!r}))
for case in cases:
    model = keras.saving.load_model(case["model"], compile=False)
    x = np.load(case["x"])
    np.save(case["out"], np.asarray(model.predict(x, verbose=0)))
print("ok", keras.backend.backend())
"""


def _models():
    return {
        "resnet_ae": (
            ResNetAE(spatial_dims=2, in_channels=1, input_size=(16, 12), n_blocks=1, filters=(4, 8, 16),
                     z_dim=4, bottleneck_dim=8),
            (2, 16, 12, 1),
        ),
        "resnet_ae_3d": (
            ResNetAE(spatial_dims=3, in_channels=1, input_size=None, n_blocks=1, filters=(4, 8, 16),
                     z_dim=4, bottleneck_dim=None, strides=(2, 2, 1),
                     output_activation=None),
            (1, 8, 12, 3, 1),
        ),
        "resnet_vae": (
            ResNetVAE(spatial_dims=2, in_channels=1, input_size=(8, 8), n_blocks=1, filters=(4, 8, 16),
                      z_dim=4, bottleneck_dim=4, seed=0),
            (2, 8, 8, 1),
        ),
        "res_unet_3d": (
            ResUNet(spatial_dims=3, filters=(4, 8), n_blocks=1, strides=(2, 2, 1), norm="group", groups=2),
            (1, 8, 6, 3, 1),
        ),
    }


@pytest.mark.parametrize("other", OTHERS)
def test_keras_file_predicts_the_same_on_other_backend(other, tmp_path):
    if importlib.util.find_spec({"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}[other]) is None:
        pytest.skip(f"{other} is not installed")
    cases, expected = [], {}
    for name, (model, shape) in _models().items():
        x = random_batch(shape, seed=len(name))
        # A training step moves batch-norm statistics off their initial values.
        model.compile(optimizer="adam", loss="mse")
        model.train_on_batch(x, x)
        path = tmp_path / f"{name}.keras"
        model.save(path)
        np.save(tmp_path / f"{name}_x.npy", x)
        expected[name] = model.predict(x, verbose=0)
        cases.append(dict(model=str(path), x=str(tmp_path / f"{name}_x.npy"),
                          out=str(tmp_path / f"{name}_{other}.npy")))
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    result = run_python(LOAD_AND_PREDICT.format(cases=str(tmp_path / "cases.json")), other)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"ok {other}" in result.stdout
    for name in expected:
        got = np.load(tmp_path / f"{name}_{other}.npy")
        np.testing.assert_allclose(got, expected[name], atol=1e-4, rtol=0, err_msg=f"{name}: {BACKEND} -> {other}")
    assert keras.backend.backend() == BACKEND
