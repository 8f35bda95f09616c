"""Loader speed (`medresae bench data`): patches per second from cached volumes."""

import os
import time
from collections.abc import Sequence
from typing import Literal

from medresae._defaults import TRAINING_NOISE
from medresae.data import PatchDataset
from medresae.noise import NoiseSpec


def loader_throughput(volumes: Sequence[str | os.PathLike | Sequence[str | os.PathLike]],
                      patch_size: Sequence[int] = (64, 64, 64), batch_size: int = 8, batches: int = 20,
                      noise: (str | NoiseSpec | list[str | NoiseSpec] | tuple[str | NoiseSpec, ...]
                              | None) = TRAINING_NOISE,
                      kind: Literal["synthetic", "pairs", "noise2noise", "noise2void", "recorrupted"] = "synthetic",
                      modality: Literal["mr", "ct"] = "mr", seed: int = 0) -> dict[str, float | tuple[int, ...]]:
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
