"""Training/validation splits by volume."""

import numpy as np


def split_by_volume(volumes, validation_fraction=0.2, seed=0):
    """Splits a list of volumes (or volume pairs) into training and validation.

    The split is by volume, never by patch, so no part of a validation scan is
    ever trained on.

    Args:
        volumes: list of paths or of path tuples.
        validation_fraction: fraction of volumes for validation (at least one).
        seed: seed of the shuffle.

    Returns:
        `(train, validation)` lists.

    Examples:
        >>> split_by_volume(["a", "b", "c", "d", "e"], 0.2, seed=0)
        (['e', 'd', 'a', 'b'], ['c'])
    """
    volumes = list(volumes)
    if not 0.0 < validation_fraction < 1.0:
        raise ValueError(
            f"`validation_fraction` must be in (0, 1). Received: validation_fraction={validation_fraction!r}"
        )
    if len(volumes) < 2:
        raise ValueError(
            "A validation split by volume needs at least 2 volumes. "
            f"Received: {len(volumes)} volume(s); pass validation_fraction=None to train without one."
        )
    order = np.random.default_rng(seed).permutation(len(volumes))
    n_val = max(1, int(round(validation_fraction * len(volumes))))
    n_val = min(n_val, len(volumes) - 1)
    val = [volumes[i] for i in order[:n_val]]
    train = [volumes[i] for i in order[n_val:]]
    return train, val
