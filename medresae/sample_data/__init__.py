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

    Examples:
        >>> sample_path("brain_mr").endswith("brain_mr.nii.gz")
        True
    """
    if name not in SAMPLES:
        raise ValueError(
            f"Unknown sample volume: {name!r}. Expected one of {', '.join(map(repr, SAMPLES))}."
        )
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), SAMPLES[name])


def phantom_volume(size=128):
    """A synthetic 3D phantom: Shepp-Logan slices, scaled towards both ends
    of the stack, values 0 to 1000 (for benchmarks that need no real scan).

    Args:
        size: edge of the cubic volume in voxels.

    Returns:
        A float32 array of shape (size, size, size).

    Examples:
        >>> v = phantom_volume(32)
        >>> v.shape, v.dtype.name, 0.0 <= float(v.min()) and float(v.max()) <= 1000.0
        ((32, 32, 32), 'float32', True)
    """
    import numpy as np
    from skimage.data import shepp_logan_phantom
    from skimage.transform import resize

    base = resize(shepp_logan_phantom(), (size, size), anti_aliasing=True)
    z = np.linspace(-1, 1, size)
    return (np.stack([base * max(0.0, 1 - abs(t) ** 2) for t in z], axis=-1) * 1000.0).astype(np.float32)
