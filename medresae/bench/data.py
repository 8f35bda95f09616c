"""Loader speed (`medresae bench data`): patches per second from cached volumes."""

import time

from medresae._defaults import TRAINING_NOISE
from medresae.data import PatchDataset


def loader_throughput(volumes, patch_size=(64, 64, 64), batch_size=8, batches=20, noise=TRAINING_NOISE,
                      kind="synthetic", modality="mr", seed=0):
    """Patches per second that a `PatchDataset` delivers from cached volumes.

    Loading and caching are excluded (they happen once); the figure is what
    `model.fit` sees per epoch, on one thread.

    Returns:
        A dict with 'patches_per_second', 'seconds_per_batch', 'patch_size',
        'batch_size' and 'cache_seconds'.
    """
    start = time.perf_counter()
    ds = PatchDataset(kind, volumes, patch_size, batch_size=batch_size, noise=noise, modality=modality,
                      steps_per_epoch=batches, seed=seed)
    cache_seconds = time.perf_counter() - start
    ds[0]  # warm-up
    start = time.perf_counter()
    for i in range(batches):
        ds[i]
    seconds = time.perf_counter() - start
    return dict(
        patches_per_second=batches * batch_size / seconds,
        seconds_per_batch=seconds / batches,
        patch_size=tuple(patch_size),
        batch_size=batch_size,
        cache_seconds=cache_seconds,
    )
