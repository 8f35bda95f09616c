"""Recorrupted-to-Recorrupted training pairs from one noisy image (Pang et al. 2021)."""

from collections.abc import Sequence

import numpy as np
from monai.transforms import MapTransform, RandomizableTransform
from numpy.typing import ArrayLike

from medresae.noise.colour import coloured_noise
from medresae.transforms._arrays import generator_from, to_numpy


class RecorruptedPairsd(RandomizableTransform, MapTransform):
    """Turns a noisy patch `y` into the pair `(y + alpha z, y - z / alpha)`.

    With `z` drawn from the noise's own distribution (white Gaussian of the
    noise's sigma), the input and the target have independent noise, and the
    mean squared error between a model's output on the input and the target
    equals, in expectation, its error against the clean image plus a
    constant: supervised training without clean data, with the model seeing
    the whole input (unlike blind-spot masking, which a model trained with
    clean targets cannot take without losing what it learned). It assumes
    white noise unless given the noise's correlation (`kernel`): with white
    `z`, correlated noise (CT) leaves part of it in the target.

    Args:
        keys: the noisy image key (one key); it is replaced by the input.
        alpha: recorruption strength in (0, 1]; the input then carries
            `sqrt(1 + alpha^2)` times the noise.
        sigma: noise sigma in the image's units; None reads it from
            `sigma_key` (see `EstimateNoiseSigmad`).
        sigma_key: where to read sigma when `sigma` is None.
        target_key: where the target goes.
        base_key: optional key of a copy of the image to build the target
            from, `base - z / alpha`: e.g. the scan with its Rician noise
            floor taken out (`medresae.adaptation`), so that the target's
            mean is the signal and not the biased magnitude. It must carry
            the same noise as the image, voxel for voxel.
        scale_key: optional key of a map that scales `z` voxel by voxel:
            the local noise spread relative to `sigma`. Where the noise is
            not Gaussian of one sigma (the dark background of a magnitude
            image, whose Rician spread is 0.66 sigma), a `z` of the wrong
            spread leaves the input and target noises correlated, and the
            model learns to put noise back.
        kernel: optional colouring kernel (`medresae.noise.colour`), of the
            image's spatial rank: `z` is drawn with the correlation it
            gives, e.g. the scan's own noise correlation measured with
            `noise_autocovariance` (CT). None draws white noise.

    Examples:
        >>> t = RecorruptedPairsd("image", sigma=0.05)
        >>> t = t.set_random_state(0)
        >>> out = t({"image": np.zeros((1, 16, 16, 4), "float32")})
        >>> sorted(out), out["target"].shape
        (['image', 'target'], (1, 16, 16, 4))
    """

    def __init__(self, keys: str | Sequence[str], alpha: float = 0.5, sigma: float | None = None,
                 sigma_key: str = "noise_sigma", target_key: str = "target", base_key: str | None = None,
                 scale_key: str | None = None, kernel: ArrayLike | None = None,
                 allow_missing_keys: bool = False) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        RandomizableTransform.__init__(self, 1.0)
        if len(self.keys) != 1:
            raise ValueError(f"RecorruptedPairsd takes one key. Received: keys={self.keys}")
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"`alpha` must be in (0, 1]. Received: alpha={alpha!r}")
        if sigma is not None and not sigma > 0:
            raise ValueError(f"`sigma` must be > 0 or None. Received: sigma={sigma!r}")
        self.alpha = float(alpha)
        self.sigma = sigma
        self.sigma_key = sigma_key
        self.target_key = target_key
        self.base_key = base_key
        self.scale_key = scale_key
        self.kernel = None if kernel is None else np.asarray(kernel, np.float64)
        if self.kernel is not None and not (np.isfinite(self.kernel).all() and np.any(self.kernel)):
            raise ValueError("`kernel` must be finite and not all zeros.")

    def __call__(self, data):
        d = dict(data)
        sigma = self.sigma if self.sigma is not None else d.get(self.sigma_key)
        if sigma is None:
            raise ValueError(
                f"RecorruptedPairsd needs the noise sigma: pass sigma= or run EstimateNoiseSigmad first "
                f"(no {self.sigma_key!r} in the data)."
            )
        y = to_numpy(d[self.keys[0]]).astype(np.float32)
        rng = generator_from(self.R)
        if self.kernel is None:
            z = rng.normal(0.0, float(sigma), y.shape).astype(np.float32)
        else:
            if self.kernel.ndim != y.ndim - 1:
                raise ValueError(f"`kernel` must have the image's {y.ndim - 1} spatial axes. "
                                 f"Received: kernel.shape={self.kernel.shape}")
            z = float(sigma) * np.stack([coloured_noise(y.shape[1:], self.kernel, rng) for _ in range(y.shape[0])])
        if self.scale_key is not None:
            z *= to_numpy(d[self.scale_key]).astype(np.float32)
        d[self.keys[0]] = y + self.alpha * z
        base = y if self.base_key is None else to_numpy(d[self.base_key]).astype(np.float32)
        d[self.target_key] = base - z / self.alpha
        return d
