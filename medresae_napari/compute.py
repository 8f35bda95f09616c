"""What the napari widget computes, without napari or Qt: a layer's array in, the denoised array out.

napari shows a 3D layer as ``(Z, Y, X)``: the slider runs over its first
axis, so that is the axis a scan was acquired in slices along. medresae's
models take ``(X, Y, Z, channels)`` with the slice axis last (the ``ct``
preset keeps full resolution along it), so the first axis is moved last,
and back again for the result.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import keras
import numpy as np
from numpy.typing import ArrayLike

from medresae.guard import GuardReport, check_denoised
from medresae.inference import denoise
from medresae.mean_restoration import default_sigma_mm, restore_local_mean

# progress(phase, done, total): phase is "adapting" or "denoising".
ProgressCallback = Callable[[str, int, int], None]


@dataclasses.dataclass(frozen=True)
class LayerResult:
    """What `denoise_layer_data` returns.

    Attributes:
        data: the model's output, float32, the layer's shape and axis order.
        report: the do-no-harm check of the output against the input
            (`medresae.guard.check_denoised`), or None where the input is too
            small or too uniform to measure its noise.
        adapt_info: `medresae.adaptation.adapt`'s info dict, or None without
            adaptation.
    """

    data: np.ndarray
    report: GuardReport | None
    adapt_info: dict | None

    @property
    def harmful(self) -> bool:
        """True when the check found a band changed by much more than the noise."""
        return self.report is not None and not self.report.ok


class _AdaptProgress(keras.callbacks.Callback):
    """Reports each adaptation batch to a `ProgressCallback`."""

    def __init__(self, progress):
        super().__init__()
        self._progress = progress
        self._done = 0

    def on_train_batch_end(self, batch, logs=None):
        self._done += 1
        total = self.params.get("epochs", 1) * (self.params.get("steps") or 1)
        self._progress("adapting", self._done, total)


def denoise_layer_data(data: ArrayLike, model: keras.Model, *, tile: int | Sequence[int] | None = None,
                       overlap: float = 0.25, batch_size: int | None = None, tta: bool = False, adapt_steps: int = 0,
                       voxel_sizes: Sequence[float] | None = None,
                       progress: ProgressCallback | None = None) -> LayerResult:
    """Denoises a napari image layer's 3D array with a medresae model.

    Args:
        data: the layer's array, ``(Z, Y, X)`` with the slice axis first (any
            real dtype; a dask array is read whole).
        model: a 3D medresae denoiser (`medresae.saving.load_denoiser`); with
            `adapt_steps` its weights are fine-tuned in place.
        tile: tile size in the model's axis order (Y, X, Z), or None for the
            default of `medresae.inference.denoise`.
        overlap: tile overlap fraction in [0, 1).
        batch_size: tiles per model call, or None for the default of
            `medresae.inference.denoise`.
        tta: average over flips (test-time augmentation).
        adapt_steps: fine-tune the model on this scan for this many steps
            first (`medresae.adaptation.adapt`); 0 does not. The scan is
            then denoised before and after, and the adapted output is kept
            inside the foreground only
            (`medresae.adaptation.keep_original_outside_foreground`).
        voxel_sizes: the layer's voxel sizes in mm, (Z, Y, X) like its
            `scale`; None takes 1 mm. A CT model's output gets the
            layer's local mean back over 5 mm, as `medresae denoise` does
            (`medresae.mean_restoration`).
        progress: called as ``progress(phase, done, total)`` while it runs.

    Returns:
        A `LayerResult`.

    Raises:
        ValueError: `data` is not 3D or not real numbers, or it does not fit
            the model (see `medresae.inference.denoise`).

    Examples:
        >>> from medresae.presets import load_preset
        >>> rng = np.random.default_rng(0)
        >>> noisy = rng.normal(100, 5, (16, 48, 48)).astype("float32")  # (Z, Y, X)
        >>> result = denoise_layer_data(noisy, load_preset("brain-mr"))
        >>> result.data.shape, result.data.dtype.name
        ((16, 48, 48), 'float32')
    """
    data = np.asarray(data)
    if data.ndim != 3:
        raise ValueError(f"the layer must be 3D (Z, Y, X); it has {data.ndim} dimensions {tuple(data.shape)}")
    if data.dtype.kind not in "iuf":
        raise ValueError(f"the layer must hold real numbers; it holds {data.dtype}")
    volume = np.moveaxis(data, 0, -1)[..., None]
    spacing = (1.0,) * 3 if voxel_sizes is None else tuple(float(v) for v in voxel_sizes)
    if len(spacing) != 3 or min(spacing) <= 0:
        raise ValueError(f"the layer's scale must hold 3 positive voxel sizes (Z, Y, X); it is {spacing}")
    spacing = (*spacing[1:], spacing[0])  # the model's axis order (Y, X, Z)
    metadata = getattr(model, "metadata", None) or {}

    def report(done, total):
        progress("denoising", done, total)

    def run(model):
        return denoise(model, volume, tile=tile, overlap=overlap, batch_size=batch_size, tta=tta,
                       normalize=metadata.get("normalize", "percentile"),
                       progress=report if progress is not None else False)

    adapt_info = None
    if adapt_steps:
        from medresae.adaptation import adapt, keep_original_outside_foreground

        original = run(model)
        callbacks = [_AdaptProgress(progress)] if progress is not None else []
        model, adapt_info = adapt(model, volume[..., 0], steps=adapt_steps, verbose=0, callbacks=callbacks)
        # Adaptation trains and checks on the foreground only; outside it the original output stays.
        output = keep_original_outside_foreground(run(model), original) if adapt_info["kept"] == "adapted" \
            else original
    else:
        output = run(model)
    if output.shape[-1] != 1:
        raise ValueError(f"the model returns {output.shape[-1]} channels; the widget takes single-channel denoisers")
    restore_mm = default_sigma_mm(model)
    if restore_mm:
        output = restore_local_mean(volume, output, spacing, sigma_mm=restore_mm)
    try:
        check = check_denoised(volume, output, modality=metadata.get("modality", "mr"))
    except ValueError:  # too small or too uniform to measure its noise
        check = None
    return LayerResult(np.moveaxis(output[..., 0], -1, 0), check, adapt_info)
