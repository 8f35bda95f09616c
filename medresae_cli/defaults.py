"""medresae's shared defaults (`medresae/_defaults.py`), read without importing
medresae: importing the package imports Keras and its backend, which `--help`
and argument errors must not wait for."""

import importlib.util
import os


def library_module(name):
    """medresae's module `name` (one that imports no Keras), run without running the package."""
    package = importlib.util.find_spec("medresae")  # finds the package without running it
    path = os.path.join(package.submodule_search_locations[0], f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"medresae_cli._library{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_DEFAULTS = library_module("_defaults")
BACKENDS = _DEFAULTS.BACKENDS
TRAINING_NOISE = _DEFAULTS.TRAINING_NOISE
ADAPT_STEPS = _DEFAULTS.ADAPT_STEPS
CT_BODY_HU = _DEFAULTS.CT_BODY_HU
SSIM_WINDOWS = _DEFAULTS.SSIM_WINDOWS
