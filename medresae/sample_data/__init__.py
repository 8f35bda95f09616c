"""Small real volumes shipped inside medresae, for tests, tutorials and the demo.

See LICENSE.txt in this folder for their origin and licence (BSD-3-Clause,
Copyright 2017 Harvard Medical School).
"""

import os

SAMPLES = {
    "brain_mr": "brain_mr.nii.gz",
    "brain_mr_heldout": "brain_mr_heldout.nii.gz",
    "chest_ct": "chest_ct.nii.gz",
}


def sample_path(name):
    """The path of a shipped sample volume.

    Args:
        name: 'brain_mr' (clinical brain MRI crop, 128x128x16, 0.78x0.78x6.5 mm),
            'brain_mr_heldout' (another region of the same scan, 104x128x16, no
            voxel in common with 'brain_mr': the demo denoises it)
            or 'chest_ct' (chest CT crop in HU, 128x128x16, 0.57x0.57x5 mm).

    Returns:
        The absolute path of the .nii.gz file.

    Example:

    >>> sample_path("brain_mr").endswith("brain_mr.nii.gz")
    True
    """
    if name not in SAMPLES:
        raise ValueError(
            f"Unknown sample volume: {name!r}. Expected one of {', '.join(map(repr, SAMPLES))}."
        )
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), SAMPLES[name])
