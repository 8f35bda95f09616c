"""Array helpers for transforms: MONAI hands us numpy arrays or torch tensors."""

import numpy as np


def to_numpy(x):
    """A numpy view/copy of a numpy array, torch tensor or MONAI MetaTensor."""
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "detach"):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def generator_from(random_state):
    """A numpy Generator seeded from a MONAI transform's RandomState, so the
    transform stays reproducible under `set_random_state`."""
    return np.random.default_rng(int(random_state.randint(0, 2**31 - 1)))
