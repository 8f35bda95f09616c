"""Pretrained denoisers shipped inside medresae.

Each preset is a small `.keras` file in this folder, trained on scans from
released packages (tools/build_corpus.py rebuilds them; docs/presets.md has
the sources, licences, exact commands, seeds and backend), with synthetic
noise and augmentation.

Examples:
    >>> model = load_preset("brain-mr")
    >>> model.metadata["normalize"]
    'percentile'
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import keras

PRESETS = {
    "brain-mr": {
        "file": "brain_mr.keras",
        "description": "MRI magnitude noise (Rician, 1-15 % of the robust maximum), one model for every "
        "level; trained on 12 MR scans (T1, b0/EPI; brain and abdomen; voxels of 0.8 to 6.5 mm) with random "
        "axis order, resolution, thick slices, gamma and bias fields",
    },
    "ct": {
        "file": "ct.keras",
        "description": "low-dose CT noise in HU (simulated on whole slices' sinograms, 5e3-2e5 photons per ray); "
        "trained on 7 chest and abdomen CTs (1-5 mm slices, with and without contrast) with random in-plane "
        "zoom, flips and thicker slices, its loss balanced over the dose levels",
    },
}


def preset_names():
    """The names of the presets that are shipped in this installation."""
    return [name for name in PRESETS if os.path.exists(preset_path(name, check=False))]


def preset_path(name, check=True):
    """The path of a preset's .keras file; ValueError for an unknown name."""
    if name not in PRESETS:
        raise ValueError(
            f"Unknown preset: {name!r}. Expected one of {', '.join(map(repr, PRESETS))}."
        )
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), PRESETS[name]["file"])
    if check and not os.path.exists(path):
        raise ValueError(f"Preset {name!r} is not shipped in this installation ({path} is missing).")
    return path


def load_preset(name: str) -> keras.Model:
    """Loads a preset as a Keras model (on the active backend)."""
    import keras

    import medresae  # noqa: F401  (registers medresae's layers)
    from medresae._seeding import python_random_seeded

    # Keras draws seeds for the layers it rebuilds from Python's `random`: not from the caller's.
    with python_random_seeded(0):
        return keras.saving.load_model(preset_path(name), compile=False)
