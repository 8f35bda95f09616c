"""Test setup shared by every test module.

One pytest process covers one Keras backend (``KERAS_BACKEND``); the whole
suite runs once per backend (see tests/all_backends.py).
"""

import atexit
import os
import shutil
import tempfile

# Keras writes ~/.keras/keras.json on first import: keep it out of $HOME, in a folder removed at exit.
if "KERAS_HOME" not in os.environ:
    os.environ["KERAS_HOME"] = tempfile.mkdtemp(prefix="medresae-keras-home-")
    atexit.register(shutil.rmtree, os.environ["KERAS_HOME"], ignore_errors=True)

try:
    # torch before tensorflow avoids a crash when both load in one process;
    # one thread avoids torch's CPU threads fighting the other core.
    import torch

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover - torch is part of the test extra
    pass

import keras  # noqa: E402
import pytest  # noqa: E402

BACKEND = keras.backend.backend()


@pytest.fixture(autouse=True)
def _seeded():
    keras.utils.set_random_seed(0)
    yield


@pytest.fixture
def backend():
    return BACKEND
