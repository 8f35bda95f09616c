"""Add synthetic noise with a random level per sample (MONAI dictionary transform)."""

from collections.abc import Sequence

import numpy as np
from monai.transforms import MapTransform, RandomizableTransform

from medresae.noise import NoiseSpec, add_noise
from medresae.transforms._arrays import generator_from, to_numpy


class RandAddNoised(RandomizableTransform, MapTransform):
    """Adds noise from a `medresae.noise.NoiseSpec` to `keys`, writing `output_keys`.

    The level is drawn uniformly from the spec's range for every sample, so
    one model learns every level (noise-level blind). A relative level is a
    fraction of the whole volume's robust maximum, which is 1 after
    `InvertibleScaleIntensityd` (percentile method; for the CT window it is
    a fraction of the window width), never of the patch's own maximum. MONAI's own
    `RandRicianNoised` / `RandGaussianNoised` scale sigma by the image's
    standard deviation and have no noncentral-chi or low-dose CT model; this
    transform uses medresae.noise, where levels are fractions of the robust
    maximum (the 99.5th percentile) as in the MRI literature.

    Data are channel-first, as everywhere in MONAI. For 'ct', the slice axis
    is the last spatial axis; the HU mapping comes from the
    `InvertibleScaleIntensityd` parameters stored under `params_key`
    (window method), and the in-plane voxel size from `spacing_key`.

    Args:
        keys: keys of the clean images.
        spec: a `NoiseSpec` or its string form, e.g. 'rician:0.01-0.1', or a
            list of them: each sample then draws one spec at random (e.g.
            Rician and noncentral chi for a model of MRI magnitude noise).
        output_keys: where to write the noisy images (default: overwrite `keys`).
        prob: probability of adding noise (else the output is a copy).
        params_key: key of the intensity parameters (for 'ct').
        spacing_key: key of the voxel size in mm (for 'ct').

    Examples:
        >>> t = RandAddNoised("image", "gaussian:0.1", output_keys="noisy")
        >>> t = t.set_random_state(0)
        >>> out = t({"image": np.ones((1, 8, 8, 4), "float32")})
        >>> out["noisy"].shape
        (1, 8, 8, 4)
    """

    def __init__(self, keys: str | Sequence[str],
                 spec: str | NoiseSpec | list[str | NoiseSpec] | tuple[str | NoiseSpec, ...],
                 output_keys: str | Sequence[str] | None = None, prob: float = 1.0, params_key: str = "intensity",
                 spacing_key: str = "spacing", allow_missing_keys: bool = False) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        RandomizableTransform.__init__(self, prob)
        specs = spec if isinstance(spec, (list, tuple)) else [spec]
        if not specs:
            raise ValueError("`spec` needs at least one noise spec, e.g. 'rician:0.01-0.1'.")
        self.specs = [s if isinstance(s, NoiseSpec) else NoiseSpec.parse(s) for s in specs]
        self.spec = self.specs[0]
        output_keys = self.keys if output_keys is None else output_keys
        self.output_keys = (output_keys,) if isinstance(output_keys, str) else tuple(output_keys)
        if len(self.output_keys) != len(self.keys):
            raise ValueError(
                f"`output_keys` needs one key per input key. Received: keys={self.keys}, "
                f"output_keys={self.output_keys}"
            )
        self.params_key = params_key
        self.spacing_key = spacing_key

    def _ct_kwargs(self, d):
        kwargs = {}
        params = d.get(self.params_key)
        if params and params.get("method") == "window":
            kwargs.update(units="normalized", hu_range=(params["low"], params["high"]))
        spacing = d.get(self.spacing_key)
        if spacing is not None:
            kwargs["voxel_size_mm"] = float(spacing[0])
        return kwargs

    def _sigma(self, d, spec, level):
        """Sigma in model units. Data scaled by InvertibleScaleIntensityd have
        their robust maximum at 1, so a relative level is sigma itself; an
        absolute level (input units) is divided by the scale."""
        params = d.get(self.params_key)
        if spec.relative or not params:
            return level
        return level / (params["high"] - params["low"])

    def __call__(self, data):
        d = dict(data)
        # Every per-call choice stays local (not RandomizableTransform.randomize, which keeps it on
        # self): one transform may serve several loader threads.
        do_transform = self.R.rand() < self.prob
        rng = generator_from(self.R)
        spec = self.specs[int(rng.integers(len(self.specs)))]
        level = spec.sample_level(rng)
        for key, out_key in self.key_iterator(d, self.output_keys):
            x = to_numpy(d[key]).astype(np.float32, copy=False)
            if not do_transform:
                d[out_key] = x.copy()
                continue
            if spec.model == "ct":
                kwargs = self._ct_kwargs(d)
                noisy = np.stack([spec.apply(c, rng=rng, level=level, **kwargs) for c in x])
            else:
                noisy = add_noise(x, spec.model, self._sigma(d, spec, level), relative=False,
                                  coils=spec.coils, rng=rng)
            d[out_key] = noisy.astype(np.float32, copy=False)
        d["noise_level"] = level
        d["noise_model"] = spec.model
        return d
