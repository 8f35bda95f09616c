"""Training data: MONAI pipelines over NIfTI volumes -> channels-last Keras batches.

This is the one place where MONAI's channel-first arrays become the
channels-last batches every Keras backend trains on. Five kinds of data:

- ``'synthetic'``: clean volumes; noise is added on the fly (a random level
  per patch), the target is the clean patch.
- ``'pairs'``: (noisy, clean) volume pairs.
- ``'noise2noise'``: (noisy, noisy) repeats of the same object; the target
  is the other repeat (Lehtinen et al. 2018).
- ``'noise2void'``: noisy volumes alone; blind-spot masking, and the target
  holds the unmasked patch and the mask (see `PatchDataset`).
- ``'recorrupted'``: noisy volumes alone; each patch `y` gives the pair
  `(y + alpha z, y - z / alpha)` with `z` white noise of the volume's
  measured sigma (Recorrupted-to-Recorrupted, Pang et al. 2021). A
  (noisy, base[, noise scale]) tuple builds the target from the base,
  `base - z / alpha` (a copy of the scan with its noise floor taken out),
  and scales `z` voxel by voxel by the noise scale map (the local noise
  spread relative to sigma): see `RecorruptedPairsd`.
"""

import copy
import itertools
import math
import os
import threading
from collections.abc import Sequence
from typing import Literal

import keras
import numpy as np
from monai.data import CacheDataset
from monai.transforms import (
    Compose,
    EnsureChannelFirstd,
    EnsureTyped,
    Orientationd,
    RandAdjustContrastd,
    RandBiasFieldd,
    RandFlipd,
    RandRotate90d,
    RandSpatialCropSamplesd,
    RandWeightedCropd,
)

from medresae._defaults import CT_BODY_HU, TRAINING_NOISE
from medresae._monai import load_image_quietly
from medresae._validation import check_choice, check_positive_int
from medresae._volume_checks import CheckVolumed, check_paths, find_input_error
from medresae.errors import InputFileError, first_line
from medresae.intensity import CT_WINDOW
from medresae.noise import NoiseSpec
from medresae.splits import split_by_volume  # noqa: F401 - still importable from here
from medresae.transforms import (
    EstimateNoiseSigmad,
    ForegroundWeightd,
    InvertibleScaleIntensityd,
    N2VMaskd,
    RandAddNoised,
    RandResolutionCropd,
    RecorruptedPairsd,
)

KINDS = ("synthetic", "pairs", "noise2noise", "noise2void", "recorrupted")
WEIGHTINGS = ("none", "noise", "amplitude")
NOISE_POWER_FLOOR = 1e-6
# 'flips': random flips and in-plane 90-degree turns (the voxel grid as scanned);
# 'resolution': any axis order, flips, in-plane zoom and simulated thick slices
# (RandResolutionCropd), plus gamma and bias-field changes of clean MR data.
AUGMENTATIONS = ("none", "flips", "resolution")
MODALITIES = ("mr", "ct")
_CT_FOREGROUND_HU = CT_BODY_HU


def foreground_threshold(modality: str) -> float | None:
    """`ForegroundWeightd`'s threshold on normalised intensities for `modality`:
    soft tissue in the CT window, or None (a fraction of the robust maximum) for MR."""
    if modality == "ct":
        return (_CT_FOREGROUND_HU - CT_WINDOW[0]) / (CT_WINDOW[1] - CT_WINDOW[0])
    return None


class PatchDataset(keras.utils.PyDataset):
    """Random patches from NIfTI volumes as `(x, y)` channels-last batches for `model.fit`.

    Volumes are loaded, re-oriented to RAS, checked and normalised once and
    cached (MONAI `CacheDataset`); every batch then draws random patches
    (foreground-weighted with `RandWeightedCropd`, or uniform), augments
    them (flips, in-plane 90-degree rotations) and adds noise or masking.

    `y` is the clean (or second noisy) patch; for 'noise2void' it has twice
    the channels: the unmasked patch, then the blind-spot mask (use the
    masked loss of medresae.losses).

    Args:
        kind: 'synthetic', 'pairs', 'noise2noise', 'noise2void' or
            'recorrupted'.
        volumes: paths ('synthetic', 'noise2void', 'recorrupted') or (noisy, clean) /
            (noisy, noisy) path pairs; 'recorrupted' also takes (noisy, base)
            or (noisy, base, noise scale) tuples (see above).
        patch_size: (X, Y, Z) voxels, anisotropic allowed (e.g. (64, 64, 8)
            for 6.5 mm slices); a 2-tuple gives 2D slice patches.
        batch_size: patches per batch.
        noise: a `NoiseSpec` or string, or a list of them (one drawn per
            patch), for 'synthetic' (e.g.
            'rician:0.01-0.1', levels relative to the robust maximum).
        modality: 'mr' (percentile scaling) or 'ct' (HU window scaling).
        samples_per_volume: patches drawn per volume visit.
        steps_per_epoch: batches per epoch (default: every volume visited
            `samples_per_volume` times).
        foreground: foreground-weighted patch centres.
        augment: 'flips' (or True): random flips and in-plane 90-degree
            rotations; 'resolution': a random voxel grid per patch (axis
            order, flips, in-plane zoom, thick slices; see
            `RandResolutionCropd`; 2D patches are then slices of any
            orientation and thickness; for 'ct', axial slices stay axial and
            only get thicker) and, for 'synthetic' MR data, random
            gamma and bias fields before the noise, so a model does not learn
            one protocol's grid and contrast; 'none' (or False): as cut.
        n2v_ratio, n2v_radius: blind-spot masking for 'noise2void'.
        n2v_replacement: 'neighbour' (Noise2Void) or 'median' (N2V2): what
            a blind spot shows (see `medresae.transforms.N2VMaskd`).
        n2v_per_channel: mask different voxels in each channel (channels
            whose noise is independent); `y` then carries one mask per
            channel. Default: the same voxels in every channel.
        recorrupt_alpha: recorruption strength for 'recorrupted'.
        noise_sigma: for 'recorrupted', the noise sigma in normalised
            units; None measures it on each volume (`EstimateNoiseSigmad`).
        recorrupt_kernel: for 'recorrupted', the noise's colouring kernel
            (`medresae.noise.colour.colouring_kernel`, 3 axes) when it is
            correlated (CT); None: white. Flips and rotations would turn the
            patch's noise but not the kernel, so use `augment='none'` with it.
        weighting: 'none', or 'noise': each batch also carries per-patch
            sample weights `1 / mean((x - y)^2)` (shape (batch, 1, ...)), the inverse of the patch's
            noise power, so the MSE becomes the fraction of the input noise
            left and low noise levels count as much as high ones (a plain
            MSE is dominated by the noisiest patches); 'amplitude': weights
            `1 / sqrt(mean((x - y)^2))`, the inverse noise amplitude, half-way
            between the two on a log scale. For 'synthetic', 'pairs' and
            'noise2noise'.
        channel_wise: scale each channel of a multi-channel volume to
            [0, 1] on its own (channels with different ranges, e.g. several
            contrasts) rather than all channels with one range. Volumes may
            have channels: a 4D NIfTI file is (X, Y, Z, channels), and all
            volumes (and a pair's two files) must have the same count.
        fixed: draw the batches once and repeat them every epoch (for
            validation data: a stable validation loss).
        seed: seed of the patch sampling and the noise.
        workers, use_multiprocessing, max_queue_size: as in
            `keras.utils.PyDataset`.

    Examples:
        >>> from medresae.sample_data import sample_path
        >>> ds = PatchDataset("synthetic", [sample_path("brain_mr")], (32, 32, 8),
        ...                   batch_size=2, noise="rician:0.02-0.08")
        >>> x, y = ds[0]
        >>> x.shape, y.shape
        ((2, 32, 32, 8, 1), (2, 32, 32, 8, 1))
    """

    def __init__(
        self,
        kind: Literal["synthetic", "pairs", "noise2noise", "noise2void", "recorrupted"],
        volumes: Sequence[str | os.PathLike | Sequence[str | os.PathLike]],
        patch_size: Sequence[int],
        batch_size: int = 4,
        noise: str | NoiseSpec | list[str | NoiseSpec] | tuple[str | NoiseSpec, ...] | None = TRAINING_NOISE,
        modality: Literal["mr", "ct"] = "mr",
        samples_per_volume: int = 4,
        steps_per_epoch: int | None = None,
        foreground: bool = True,
        augment: bool | Literal["flips", "resolution", "none"] = True,
        n2v_ratio: float = 0.002,
        n2v_radius: int | Sequence[int] = 2,
        n2v_replacement: Literal["neighbour", "median"] = "neighbour",
        n2v_per_channel: bool = False,
        recorrupt_alpha: float = 0.5,
        noise_sigma: float | None = None,
        recorrupt_kernel: np.ndarray | None = None,
        weighting: Literal["none", "noise", "amplitude"] = "none",
        channel_wise: bool = False,
        fixed: bool = False,
        seed: int = 0,
        workers: int = 1,
        use_multiprocessing: bool = False,
        max_queue_size: int = 10,
    ) -> None:
        super().__init__(workers=workers, use_multiprocessing=use_multiprocessing, max_queue_size=max_queue_size)
        self.kind = check_choice(kind, "kind", KINDS)
        self.modality = check_choice(modality, "modality", MODALITIES)
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.samples_per_volume = check_positive_int(samples_per_volume, "samples_per_volume")
        patch = tuple(patch_size)
        if len(patch) not in (2, 3) or not all(isinstance(p, int) and p > 0 for p in patch):
            raise ValueError(
                f"`patch_size` must be 2 or 3 positive ints. Received: patch_size={patch_size!r}"
            )
        self.slices_2d = len(patch) == 2
        self.patch_size = patch + (1,) if self.slices_2d else patch
        specs = noise if isinstance(noise, (list, tuple)) else ([] if noise is None else [noise])
        self.noise_specs = [NoiseSpec.parse(s) if isinstance(s, str) else s for s in specs]
        self.noise = self.noise_specs[0] if self.noise_specs else None
        if self.kind == "synthetic" and self.noise is None:
            raise ValueError("kind='synthetic' needs a noise spec, e.g. noise='rician:0.01-0.1'.")
        volumes = list(volumes)
        if not volumes:
            raise ValueError("`volumes` is empty: pass at least one NIfTI file.")
        self.items, load_keys = self._items(volumes)
        check_paths(self.items, load_keys)
        self.foreground = bool(foreground)
        if isinstance(augment, bool):
            augment = "flips" if augment else "none"
        self.augment = check_choice(augment, "augment", AUGMENTATIONS)
        self.n2v_ratio = n2v_ratio
        self.n2v_radius = n2v_radius
        self.n2v_replacement = n2v_replacement
        self.n2v_per_channel = bool(n2v_per_channel)
        self.channel_wise = bool(channel_wise)
        self.recorrupt_alpha = recorrupt_alpha
        self.noise_sigma = noise_sigma
        self.recorrupt_kernel = recorrupt_kernel
        self.weighting = check_choice(weighting, "weighting", WEIGHTINGS)
        if self.weighting != "none" and self.kind not in ("synthetic", "pairs", "noise2noise"):
            raise ValueError(f"weighting={self.weighting!r} (--loss-weighting {self.weighting}) needs a clean or "
                             f"repeated target to measure the input noise against, and kind={self.kind!r} has none; "
                             f"use 'none'.")
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        # Loading and normalising run once (cached); the random chain runs per patch, in one
        # copy per loader thread: MONAI's random transforms keep per-call state on themselves.
        self._dataset = self._cache(Compose(self._deterministic(load_keys)), load_keys)
        self.channels = self._channel_count(load_keys)
        self._random_template = Compose(self._random(load_keys))
        self._chains = threading.local()
        self._chain_count = itertools.count()
        default_steps = math.ceil(len(self.items) * self.samples_per_volume / self.batch_size)
        self.steps_per_epoch = check_positive_int(steps_per_epoch or default_steps, "steps_per_epoch")
        self._fixed = [self._draw_batch() for _ in range(self.steps_per_epoch)] if fixed else None

    def _channel_count(self, keys):
        """The channel count shared by every loaded volume (an InputFileError naming the files otherwise)."""
        counts = {}
        for i, item in enumerate(self.items):
            loaded = self._dataset[i]
            for key in keys:
                if key != "noise_scale":
                    counts.setdefault(int(np.shape(loaded[key])[0]), item[key])
        if len(counts) > 1:
            files = "; ".join(f"{path}: {n}" for n, path in sorted(counts.items()))
            raise InputFileError(f"volumes must have one channel count; found {files} (channels per file)")
        return next(iter(counts))

    def _items(self, volumes):
        if self.kind == "recorrupted" and volumes and not isinstance(volumes[0], (str, os.PathLike)):
            # (noisy, base[, noise scale]): see RecorruptedPairsd.
            keys = ("image", "target", "noise_scale")[: len(volumes[0])]
            if len(keys) < 2 or any(isinstance(v, (str, os.PathLike)) or len(v) != len(keys) for v in volumes):
                raise ValueError(f"kind='recorrupted' takes paths, or (noisy, base) or (noisy, base, noise scale) "
                                 f"tuples of one length. Received: {volumes!r}")
            return [dict(zip(keys, map(os.fspath, v))) for v in volumes], keys
        if self.kind in ("synthetic", "noise2void", "recorrupted"):
            key = "target" if self.kind == "synthetic" else "image"
            items = []
            for v in volumes:
                if not isinstance(v, (str, os.PathLike)):
                    raise ValueError(f"kind={self.kind!r} takes one path per volume. Received: {v!r}")
                items.append({key: os.fspath(v)})
            return items, (key,)
        items = []
        for v in volumes:
            if isinstance(v, (str, os.PathLike)) or len(v) != 2:
                raise ValueError(
                    f"kind={self.kind!r} takes (noisy, {'clean' if self.kind == 'pairs' else 'noisy repeat'}) "
                    f"path pairs. Received: {v!r}"
                )
            items.append({"image": os.fspath(v[0]), "target": os.fspath(v[1])})
        return items, ("image", "target")

    def _deterministic(self, keys):
        ref = keys[0]
        # A noise scale map is relative (no units): it is cropped with the images, never rescaled.
        intensities = [key for key in keys if key != "noise_scale"]
        if self.modality == "ct":
            norm = InvertibleScaleIntensityd(intensities, ref_key=ref, method="window",
                                             channel_wise=self.channel_wise)
        else:
            norm = InvertibleScaleIntensityd(intensities, ref_key=ref, method="percentile",
                                             channel_wise=self.channel_wise)
        chain = [
            load_image_quietly(keys, reader="NibabelReader", image_only=True),
            # A 3D volume gets a channel axis; a 4D one (X, Y, Z, channels) has its channels moved first.
            EnsureChannelFirstd(keys, channel_dim=None),
            Orientationd(keys, axcodes="RAS", labels=(("L", "R"), ("P", "A"), ("I", "S"))),
            # A resampled patch can come from a smaller volume (finer sampling).
            CheckVolumed(keys, (4, 4, 4) if self.augment == "resolution" else self.patch_size,
                          may_be_constant=("noise_scale",)),
            # Plain numpy from here on: MONAI's metadata tracking costs more
            # than the crops themselves.
            EnsureTyped(keys, data_type="numpy", track_meta=False),
            norm,
            ForegroundWeightd(ref, threshold=foreground_threshold(self.modality)),
        ]
        if self.kind == "recorrupted" and self.noise_sigma is None:
            chain.append(EstimateNoiseSigmad(ref))
        return chain

    def _random(self, keys):
        keys = list(keys)
        if self.augment == "resolution":
            # CT is reconstructed in axial slices (the last axis after RAS): its noise texture
            # lies in that plane, so only in-plane axes are swapped and only slices thickened.
            chain = [RandResolutionCropd(keys, self.patch_size, w_key="weight" if self.foreground else None,
                                         num_samples=self.samples_per_volume,
                                         slice_axis=2 if self.modality == "ct" else None)]
            if self.kind == "synthetic" and self.modality == "mr":
                # Contrast and coil-sensitivity changes of the clean image, before its noise.
                chain += [RandAdjustContrastd("target", prob=0.3, gamma=(0.7, 1.5)),
                          RandBiasFieldd("target", prob=0.3, degree=3, coeff_range=(0.0, 0.2))]
            return chain + self._corruption()
        crop = (
            RandWeightedCropd(keys, w_key="weight", spatial_size=self.patch_size,
                              num_samples=self.samples_per_volume)
            if self.foreground
            else RandSpatialCropSamplesd(keys, roi_size=self.patch_size, num_samples=self.samples_per_volume,
                                         random_size=False)
        )
        chain = [crop]
        if self.augment == "flips":
            chain += [RandFlipd(keys, prob=0.5, spatial_axis=axis) for axis in range(3)]
            if self.patch_size[0] == self.patch_size[1]:
                # In-plane only: thick slices must stay on the last axis.
                chain.append(RandRotate90d(keys, prob=0.5, max_k=3, spatial_axes=(0, 1)))
        return chain + self._corruption()

    def _corruption(self):
        chain = []
        if self.kind == "synthetic":
            chain.append(RandAddNoised("target", self.noise_specs, output_keys="image"))
        elif self.kind == "noise2void":
            chain.append(N2VMaskd("image", ratio=self.n2v_ratio, radius=self.n2v_radius,
                                  replacement=self.n2v_replacement, per_channel=self.n2v_per_channel))
        elif self.kind == "recorrupted":
            chain.append(RecorruptedPairsd("image", alpha=self.recorrupt_alpha, sigma=self.noise_sigma,
                                           base_key="target" if "target" in self.items[0] else None,
                                           scale_key="noise_scale" if "noise_scale" in self.items[0] else None,
                                           kernel=self.recorrupt_kernel))
        return chain

    def _cache(self, transform, keys):
        try:
            return CacheDataset(self.items, transform=transform, cache_rate=1.0, num_workers=0,
                                copy_cache=False, progress=False)
        except Exception as exc:  # MONAI wraps transform errors in RuntimeError
            found = find_input_error(exc)
            if found is not None:
                raise InputFileError(str(found)) from None
            for item in self.items:
                try:
                    Compose(self._deterministic(keys))(dict(item))
                except Exception as item_exc:
                    found = find_input_error(item_exc)
                    if found is not None:
                        raise InputFileError(str(found)) from None
                    paths = ", ".join(item[k] for k in keys)
                    cause = item_exc.__cause__ or item_exc
                    raise InputFileError(f"{paths}: cannot be read as a NIfTI volume ({first_line(cause)})") from None
            raise

    def _draw_batch(self):
        patches = []
        while len(patches) < self.batch_size:
            index = int(self._rng.integers(len(self._dataset)))
            sample = self._random_chain()(self._dataset[index])
            patches.extend(sample if isinstance(sample, list) else [sample])
        patches = patches[: self.batch_size]
        x = np.stack([np.asarray(p["image"], np.float32) for p in patches])
        y = np.stack([np.asarray(p["target"], np.float32) for p in patches])
        if self.kind == "noise2void":
            y = np.concatenate([y, np.stack([p["mask"] for p in patches])], axis=1)
        # The one channel-first -> channels-last move in medresae.
        x, y = np.moveaxis(x, 1, -1), np.moveaxis(y, 1, -1)
        if self.slices_2d:
            x, y = x[:, :, :, 0, :], y[:, :, :, 0, :]
        x, y = np.ascontiguousarray(x), np.ascontiguousarray(y)
        if self.weighting != "none":
            noise_power = np.mean(np.square(x - y), axis=tuple(range(1, x.ndim)))
            # The floor (a noise of 0.1 % of the range) keeps a patch of clipped, noiseless
            # background from taking over the batch.
            weights = 1.0 / np.maximum(noise_power, NOISE_POWER_FLOOR)
            weights = (weights if self.weighting == "noise" else np.sqrt(weights)).astype(np.float32)
            # Shaped (batch, 1, ...) so that Keras broadcasts them over the voxels of each patch: a
            # (batch,) vector would be matched against the last spatial axis of the per-voxel loss.
            return x, y, weights.reshape((-1,) + (1,) * (x.ndim - 2))
        return x, y

    def _random_chain(self):
        """This thread's copy of the random transforms: the first is seeded with `seed`
        (one worker reproduces the same patches), the others with `seed + k`."""
        chain = getattr(self._chains, "chain", None)
        if chain is None:
            k = next(self._chain_count)
            chain = copy.deepcopy(self._random_template)
            chain.set_random_state(seed=self.seed + k)
            self._chains.chain = chain
        return chain

    def noise_sigmas(self) -> list[float]:
        """The noise sigma of each volume in normalised units, for 'recorrupted'.

        The given `noise_sigma`, or the value `EstimateNoiseSigmad` measured
        on each cached volume.
        """
        if self.kind != "recorrupted":
            raise ValueError(f"noise_sigmas() is for kind='recorrupted'. Received: kind={self.kind!r}")
        if self.noise_sigma is not None:
            return [float(self.noise_sigma)] * len(self.items)
        return [float(item["noise_sigma"]) for item in self._dataset._cache]

    def __len__(self) -> int:
        return self.steps_per_epoch

    def __getitem__(self, index: int) -> tuple[np.ndarray, ...]:
        if self._fixed is not None:
            return self._fixed[index]
        return self._draw_batch()
