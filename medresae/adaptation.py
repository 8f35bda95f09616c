"""Self-supervised adaptation of a trained denoiser to one noisy scan.

A preset was trained on other scanners, contrasts and noise levels. Before
denoising a scan, `adapt` fine-tunes the model on that scan alone, with no
clean data, by Recorrupted-to-Recorrupted training (Pang et al. 2021): each
noisy patch `y` becomes the input `y + alpha z` and the target
`y - z / alpha`, `z` noise with the scan's own covariance (measured inside
the foreground, or given). Their noises are then independent, so the loss is
the supervised loss plus a constant, and the model keeps seeing whole inputs
as it did when it was trained with clean targets. Blind-spot masking
(Noise2Void, `PatchDataset(kind='noise2void')`) is the other way to train
without clean data, but fine-tuning a supervised residual model with it
lowered PSNR by 5 dB in our tests, since that model relies on the voxel it
denoises. MRI magnitude noise is independent from voxel to voxel, so `z` is
white. CT noise is correlated within a slice (filtered back-projection): its
autocovariance is measured on the scan minus the model's output where that
output is flat, and `z` is drawn with it (`medresae.noise.colour`); with
white `z`, part of the noise stays in the target and adaptation learns to
keep it.

Two guards keep a good model from getting worse: batch norms stay in
inference mode (Keras' rule for fine-tuning), and the model is scored on
fixed recorrupted check batches before training and after each round; the
best weights seen are kept, and the original ones unless a round beats them
by more than twice the check loss's own noise (the standard error of the
paired per-batch differences). On these batches
the loss is the supervised loss plus a constant, so the comparison needs no
clean data. For MRI the targets are built from the scan minus its Rician
noise floor (estimated from the model's own output): the raw magnitude is
biased upwards, most in the background, and a model adapted to it puts that
bias back into its output.
"""

import os
import tempfile
from collections.abc import Sequence

import keras
import numpy as np
from numpy.typing import ArrayLike
from scipy import ndimage

from medresae._arrays import check_finite_array
from medresae._defaults import ADAPT_STEPS
from medresae._seeding import python_random_seeded
from medresae._validation import check_positive_int, check_positive_number
from medresae.data import PatchDataset, foreground_threshold
from medresae.intensity import IntensityNormalizer
from medresae.io import Volume, is_nifti_path
from medresae.metrics import foreground_mask
from medresae.noise import rician_mean
from medresae.noise.colour import colouring_kernel, estimate_noise_autocovariance
from medresae.transforms import EstimateNoiseSigmad, ForegroundWeightd

DEFAULT_STEPS = ADAPT_STEPS
DEFAULT_PATCH = (48, 48, 8)
# Lags over which CT noise correlation is measured and reproduced: in-plane
# (filtered back-projection spreads it over a few voxels) and to the next slices.
CT_NOISE_RADIUS = (6, 6, 1)


def _patch_for(model, shape):
    """The model's training patch, shrunk to fit `shape` and its divisor."""
    metadata = getattr(model, "metadata", None) or {}
    patch = list(metadata.get("patch_size") or DEFAULT_PATCH)[: len(shape)]
    divisor = getattr(model, "spatial_divisor", (1,) * len(shape))
    out = []
    for size, extent, div in zip(patch, shape, divisor):
        size = min(int(size), int(extent))
        size -= size % div
        if size < div:
            raise ValueError(
                f"The scan is too small to adapt the model: {extent} voxels on an axis where the model needs a "
                f"multiple of {div}. Received: shape={tuple(shape)}"
            )
        out.append(size)
    return tuple(out)


def _as_nifti_path(volume, folder):
    """A NIfTI path holding `volume` (a path, a `Volume` or an array)."""
    import nibabel as nib

    path = getattr(volume, "path", volume)
    if isinstance(path, (str, os.PathLike)) and is_nifti_path(path) and os.path.isfile(path):
        return os.fspath(path)
    array = getattr(volume, "array", volume)
    array = check_finite_array(np.asarray(array, np.float32), "volume")
    if array.ndim == 4:
        if array.shape[-1] != 1:
            raise ValueError(f"`volume` must have one channel to adapt. Received: shape={array.shape}")
        array = array[..., 0]
    if array.ndim != 3:
        raise ValueError(f"`volume` must be a 3D scan (X, Y, Z). Received: shape={array.shape}")
    affine = getattr(volume, "affine", None)
    target = os.path.join(folder, "scan.nii")
    nib.save(nib.Nifti1Image(array, np.eye(4) if affine is None else affine), target)
    return target


def adapt(model: keras.Model, volume: str | os.PathLike | Volume | ArrayLike, steps: int = DEFAULT_STEPS,
          learning_rate: float = 3e-4, batch_size: int = 4, alpha: float = 0.5, noise_sigma: float | None = None,
          checks: int = 5, validation_batches: int = 8, check_alpha: float | None = None, seed: int = 0,
          verbose: str | int = "auto",
          callbacks: Sequence[keras.callbacks.Callback] = ()) -> tuple[keras.Model, dict[str, float | str]]:
    """Fine-tunes `model` on one noisy scan, without clean data (in place).

    Args:
        model: a trained 3D medresae denoiser (e.g. from `load_preset`); its
            weights are updated in place. Its `metadata` gives the intensity
            scaling ('window' means CT) and the training patch size.
        volume: the noisy scan: a NIfTI path, a `medresae.io.Volume` or a
            (X, Y, Z) array.
        steps: optimisation steps (batches of random patches).
        learning_rate: Adam learning rate.
        batch_size: patches per step.
        alpha: recorruption strength in (0, 1].
        noise_sigma: the scan's noise sigma in its own units; None measures
            it inside the foreground, on the flat voxels the model's own
            output shows (MR: `medresae.noise.estimate_noise_sigma` with a
            `reference`; CT: the spread of the scan minus that output, with
            the noise's correlation, which is measured for CT either way).
        checks: how many times (evenly over the steps) the model is scored
            on fixed recorrupted check batches; the best weights seen are
            kept, and the original ones unless a round beats them by more
            than twice the standard error of the paired per-batch check
            losses.
        validation_batches: check batches drawn once from the scan.
        check_alpha: recorruption strength of the check batches; None uses
            `alpha`. Their loss ranks models at the input's noise level,
            `sqrt(1 + check_alpha**2)` times the scan's, so a smaller value
            ranks them closer to the scan they will denoise, at the price of
            noisier targets (a larger standard error, so fewer rounds pass).
        seed: seeds patch sampling, the recorruption and the optimiser.
        verbose: Keras' progress bar setting ('auto', 0, 1, 2).
        callbacks: more Keras callbacks for the fine-tuning (`model.fit`),
            e.g. to report progress: `steps` batches in all.

    Returns:
        `(model, info)`: the model (adapted, or unchanged when no round beat
        the original on the check batches by more than their noise) and a dict with the noise sigma
        used (in the scan's units and normalised), the check loss before and
        at its best, and `kept`: 'adapted' or 'original'.

    Examples:
        >>> from medresae.inference import denoise
        >>> from medresae.io import load_volume
        >>> from medresae.presets import load_preset
        >>> model = load_preset("brain-mr")
        >>> model, info = adapt(model, "noisy_scan.nii.gz", steps=100)  # doctest: +SKIP
        >>> denoised = denoise(model, load_volume("noisy_scan.nii.gz").array)  # doctest: +SKIP
    """
    steps = check_positive_int(steps, "steps")
    checks = check_positive_int(checks, "checks")
    validation_batches = check_positive_int(validation_batches, "validation_batches")
    batch_size = check_positive_int(batch_size, "batch_size")
    learning_rate = check_positive_number(learning_rate, "learning_rate")
    for name, value in (("alpha", alpha), ("check_alpha", check_alpha)):
        if value is not None and not 0 < value <= 1:
            raise ValueError(f"`{name}` must be in (0, 1]. Received: {name}={value!r}")
    rank = len(model.inputs[0].shape)
    if rank != 5:
        raise ValueError(f"`adapt` takes a 3D model (input rank 5). Received: a model with input rank {rank}")
    metadata = getattr(model, "metadata", None) or {}
    modality = "ct" if metadata.get("normalize") == "window" else "mr"
    with tempfile.TemporaryDirectory(prefix="medresae-adapt-") as folder:
        path = _as_nifti_path(volume, folder)
        shape, array = _canonical(path)
        patch = _patch_for(model, shape)
        normalizer = IntensityNormalizer("window" if modality == "ct" else "percentile").fit(array)
        sigma_normalized = None
        if noise_sigma is not None:
            noise_sigma = check_positive_number(noise_sigma, "noise_sigma")
            sigma_normalized = noise_sigma / normalizer.scale()
        rounds = min(checks, steps)

        image, scan, signal = _model_output(model, path)
        kernel = None
        if modality == "ct":
            # CT noise is correlated: the recorruption noise must share its correlation.
            measured, kernel = _measured_ct_noise(image, scan, signal, normalizer)
            sigma_normalized = measured if sigma_normalized is None else sigma_normalized
        elif sigma_normalized is None:
            sigma_normalized = _measured_sigma(image, scan, signal, normalizer, modality)
        noise_sigma = sigma_normalized * normalizer.scale()

        def recorrupted(volumes, steps_per_epoch, strength=alpha, **kwargs):
            # Flips would turn the patch's own noise but not the kernel's correlation.
            return PatchDataset("recorrupted", volumes, patch, batch_size=batch_size, modality=modality,
                                steps_per_epoch=steps_per_epoch, recorrupt_alpha=strength, recorrupt_kernel=kernel,
                                augment="flips" if kernel is None else "none", **kwargs)

        volumes = [path]
        if modality == "mr":
            volumes = [(path, *_rician_targets(image, scan, signal, noise_sigma, folder))]
        data = recorrupted(volumes, max(1, steps // rounds), noise_sigma=sigma_normalized, seed=seed)
        # Fixed recorrupted batches from the same scan: their loss is the
        # supervised loss plus a constant, so comparing models on them ranks
        # them by their error against the unknown clean scan.
        check = recorrupted(volumes, validation_batches, alpha if check_alpha is None else check_alpha,
                            noise_sigma=sigma_normalized, fixed=True, seed=seed + 1)
        keep_best = _KeepBest(check)
        frozen = _freeze_batch_norm(model)
        try:
            with python_random_seeded(seed):
                model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="mse")
                keep_best.start(model)
                model.fit(data, epochs=rounds, verbose=verbose, callbacks=[keep_best, *callbacks])
        finally:
            for layer in frozen:
                layer.trainable = True
    return model, {
        "noise_sigma": float(noise_sigma),
        "noise_sigma_normalized": float(sigma_normalized),
        "check_loss_start": keep_best.initial,
        "check_loss_best": keep_best.best,
        "kept": "adapted" if keep_best.best < keep_best.initial else "original",
    }


def keep_original_outside_foreground(adapted: ArrayLike, original: ArrayLike, edge: float = 1.0) -> np.ndarray:
    """The adapted model's output inside the scan's foreground, the original model's outside.

    `adapt` draws its training and check patches from the foreground (head
    or body), so outside it the adapted weights are neither trained nor
    checked. There, in the air around a head CT, adaptation left more noise
    than the preset (RMS error 47 against 32 HU on a chest CT at 1e4
    photons) and lowered whole-volume PSNR while it raised it inside. The
    foreground is `medresae.metrics.foreground_mask` of the original output
    (no clean image is needed); the two outputs are blended across its edge
    over a Gaussian of `edge` voxels, so no seam appears.

    Args:
        adapted: the adapted model's output, (X, Y, Z) or (X, Y, Z, 1).
        original: the original model's output on the same scan, same shape.
        edge: width (sigma, in voxels) of the blend at the foreground's
            edge; 0 switches at the edge.

    Returns:
        A float32 array of `adapted`'s shape.

    Examples:
        >>> original = np.zeros((24, 24, 6), np.float32); original[4:20, 4:20, :] = 100.0
        >>> adapted = original + 5.0  # differs inside and out
        >>> out = keep_original_outside_foreground(adapted, original)
        >>> round(float(out[12, 12, 3]), 3), round(float(out[0, 0, 0]), 3)
        (105.0, 0.0)
    """
    adapted = np.asarray(adapted, np.float32)
    original = np.asarray(original, np.float32)
    if adapted.shape != original.shape:
        raise ValueError(f"`adapted` and `original` must have the same shape. Received: {adapted.shape} and "
                         f"{original.shape}")
    if edge < 0:
        raise ValueError(f"`edge` must be >= 0. Received: edge={edge!r}")
    weight = foreground_mask(original).astype(np.float32)
    if edge:
        weight = ndimage.gaussian_filter(weight, edge)
    if weight.ndim < adapted.ndim:
        weight = weight[..., None]
    return weight * adapted + (1.0 - weight) * original


def _model_output(model, path):
    """The scan's NIfTI image, its voxels and the model's output on them (MR: not below zero, as magnitudes)."""
    import nibabel as nib

    from medresae.inference import denoise

    image = nib.load(path)
    scan = np.asarray(image.dataobj, np.float32).reshape(image.shape[:3])
    normalize = (getattr(model, "metadata", None) or {}).get("normalize", "percentile")
    signal = denoise(model, scan[..., None], normalize=normalize, progress=False)[..., 0]
    return image, scan, signal if normalize == "window" else np.maximum(signal, 0.0)


def _canonical_normalised(image, scan, signal, normalizer):
    """The scan and the model's output, channel-first, normalised, in the voxel order PatchDataset
    sees (RAS): noise is measured slice by slice along the last axis, as patches are cut."""
    import nibabel as nib

    both = nib.as_closest_canonical(nib.Nifti1Image(np.stack([scan, signal], -1), image.affine))
    return tuple(normalizer.transform(np.asarray(both.dataobj, np.float32)[None, ..., k]) for k in (0, 1))


def _measured_sigma(image, scan, signal, normalizer, modality):
    """The scan's noise sigma in normalised units, measured inside the foreground that patches are drawn from.

    The model's output marks the flat, bright voxels where the measurement
    sees neither edges nor the narrower noise of dark magnitude voxels
    (`estimate_noise_sigma`'s `reference`): with edges in the count, sigma
    came out up to 1.3 times too high at low noise on scans the presets
    never saw, and recorrupted pairs built with too much noise teach the
    model to blur.
    """
    scan, signal = _canonical_normalised(image, scan, signal, normalizer)
    data = ForegroundWeightd("image", threshold=foreground_threshold(modality))({"image": scan, "reference": signal})
    return EstimateNoiseSigmad("image", reference_key="reference")(data)["noise_sigma"]


def _measured_ct_noise(image, scan, signal, normalizer):
    """The CT scan's noise sigma (normalised) and colouring kernel, measured
    on the scan minus the model's output where that output is flat, inside
    the body."""
    scan, signal = _canonical_normalised(image, scan, signal, normalizer)
    body = ForegroundWeightd("image", threshold=foreground_threshold("ct"))({"image": scan})["weight"][0] >= 1.0
    if body.sum() < 1000:
        body = None
    covariance = estimate_noise_autocovariance(scan[0], signal[0], body, radius=CT_NOISE_RADIUS)
    return float(np.sqrt(covariance[tuple(n // 2 for n in covariance.shape)])), colouring_kernel(covariance)


def _rician_targets(image, scan, signal, sigma, folder):
    """Writes the scan minus its Rician noise floor and its local noise scale; returns both paths.

    A magnitude image's mean is not its signal: Rician noise lifts it by
    about 1.25 sigma where there is no signal and by less in tissue. A target
    built from the raw scan teaches the model to put that floor back, which
    the preset had learned to remove, and the check batches would reward it.
    The floor is `rician_mean(s, sigma) - s`, with the signal `s` taken from
    the model's own output on the scan; the corrected copy keeps the scan's
    noise voxel for voxel, as recorrupted pairs need. Where the signal is
    low the noise is also narrower (0.66 sigma with no signal), so the
    recorruption noise is scaled to the local Rician spread.
    """
    import nibabel as nib

    mean = rician_mean(signal, sigma)
    spread = np.sqrt(np.maximum(np.square(signal) + 2.0 * sigma**2 - np.square(mean), 0.0)) / sigma
    paths = []
    for name, array in (("without-noise-floor", scan - (mean - signal)), ("noise-scale", spread)):
        paths.append(os.path.join(folder, f"scan-{name}.nii"))
        nib.save(nib.Nifti1Image(array.astype(np.float32), image.affine), paths[-1])
    return paths


def _freeze_batch_norm(model):
    """Puts batch norms in inference mode (Keras' rule for fine-tuning); returns them."""
    frozen = [layer for layer in model._flatten_layers(include_self=False)
              if isinstance(layer, keras.layers.BatchNormalization) and layer.trainable]
    for layer in frozen:
        layer.trainable = False
    return frozen


class _KeepBest(keras.callbacks.Callback):
    """Scores the model on fixed check batches before training and after each
    round, and leaves it with the best weights seen (possibly the original).

    A round's weights count as better than the original only when their
    check loss is lower by more than `z` standard errors of the paired
    per-batch differences: the check loss is itself noisy, and a change
    smaller than its noise is no evidence that the model got better.
    """

    def __init__(self, check, z=2.0):
        super().__init__()
        self.check = check
        self.z = z

    def _losses(self, model):
        losses = []
        for i in range(len(self.check)):
            x, y, *weight = self.check[i]
            error = np.square(np.asarray(model.predict_on_batch(x), np.float64) - y)
            losses.append(np.average(error, weights=np.broadcast_to(weight[0], error.shape) if weight else None))
        return np.array(losses)

    def start(self, model):
        self.original = self._losses(model)
        self.initial = self.best = float(self.original.mean())
        self.best_weights = model.get_weights()

    def on_epoch_end(self, epoch, logs=None):
        losses = self._losses(self.model)
        gain = self.original - losses
        noise = gain.std(ddof=1) / np.sqrt(gain.size) if gain.size > 1 else 0.0
        if losses.mean() < self.best and gain.mean() > self.z * noise:
            self.best, self.best_weights = float(losses.mean()), self.model.get_weights()

    def on_train_end(self, logs=None):
        self.model.set_weights(self.best_weights)


def _canonical(path):
    """Shape and voxels after the RAS re-orientation `PatchDataset` applies."""
    import nibabel as nib

    image = nib.as_closest_canonical(nib.load(path))
    return image.shape[:3], np.asarray(image.dataobj, np.float32)
