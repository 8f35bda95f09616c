"""Seeded noise models on numpy arrays: Gaussian, Rician, noncentral chi, low-dose CT.

Every function takes `rng`: None (fresh entropy), an int seed, or a
`numpy.random.Generator`; the same seed gives the same output. Outputs are
float32 arrays of the input's shape. Gaussian, Rician and noncentral chi work
elementwise, so any shape works (2D, 3D, with or without a channel axis); the
CT model works on 2D slices.

`NoiseSpec` is the one-string form used on the command line and in configs:
`MODEL:LEVEL[-HIGH][:OPTION[,OPTION...]]`, e.g. `"rician:0.05"`,
`"gaussian:0.01-0.1"`, `"chi:0.05:coils=8"`, `"gaussian:12:abs"`,
`"ct:5e3-5e4:electronic=5"`.
"""

import dataclasses
import math
import numbers
import re

import numpy as np

from medresae._arrays import check_finite_array
from medresae._validation import check_choice, check_positive_int, check_positive_number

NOISE_MODELS = ("gaussian", "rician", "chi", "ct")
CT_UNITS = ("hu", "normalized")

_SPEC_EXAMPLES = (
    "'rician:0.05', 'gaussian:0.01-0.1', 'gaussian:12:abs', "
    "'chi:0.05:coils=8', 'ct:5e3-5e4:electronic=5'"
)


def _rng(rng):
    """Returns a `numpy.random.Generator` for None, an int seed or a Generator."""
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, bool):
        # default_rng(True) would silently seed with 1.
        raise ValueError(
            f"`rng` must be None, an int seed or a numpy.random.Generator. Received: rng={rng!r}"
        )
    try:
        return np.random.default_rng(rng)
    except (TypeError, ValueError):
        raise ValueError(
            f"`rng` must be None, an int seed >= 0 or a numpy.random.Generator. "
            f"Received: rng={rng!r}"
        ) from None


def robust_max(x, percentile=99.5):
    """The `percentile`-th percentile of `x`: a maximum that ignores a few outliers.

    Relative noise levels are fractions of this value, so a handful of hot
    voxels (or a metal implant) does not inflate the noise.

    Args:
        x: array of any shape, finite values only.
        percentile: a number in [0, 100].

    Returns:
        A Python float.

    Raises:
        ValueError: if `x` is empty or holds NaN/inf, or `percentile` is out
            of range.

    Example:

    >>> robust_max(np.arange(1001.0))
    995.0
    """
    x = check_finite_array(x)
    ok = isinstance(percentile, numbers.Real) and not isinstance(percentile, bool)
    if not ok or not 0 <= percentile <= 100:
        raise ValueError(
            f"`percentile` must be a number in [0, 100]. Received: percentile={percentile!r}"
        )
    return float(np.percentile(x, percentile))


def estimate_noise_sigma(x, mask=None):
    """Estimates the standard deviation of white noise in a 2D or 3D image.

    Immerkaer's Laplacian-difference operator (Immerkaer 1996) is applied to
    each 2D slice along the last axis; it cancels smooth image content, and
    the median absolute response over the voxels inside `mask` (away from
    its edges) gives sigma robustly. Restricting to a mask matters for MRI:
    Rician noise in the dark background has a smaller spread than in tissue,
    and scikit-image's `estimate_sigma` has no mask.

    Args:
        x: a 2D or 3D array (slices along the last axis).
        mask: optional boolean array of `x.shape`: where to measure; default
            everywhere.

    Returns:
        sigma as a float, in the units of `x`.

    Raises:
        ValueError: NaN/inf in `x`, a bad `mask`, or fewer than 100 usable
            voxels.

    Example:

    >>> x = np.random.default_rng(0).normal(100.0, 5.0, (64, 64, 4))
    >>> abs(estimate_noise_sigma(x) - 5.0) < 0.2
    True
    """
    from scipy import ndimage

    x = check_finite_array(x).astype(np.float64)
    if x.ndim not in (2, 3):
        raise ValueError(f"`x` must be a 2D or 3D image. Received: x.shape={x.shape}")
    if mask is None:
        mask = np.ones(x.shape, bool)
    mask = np.asarray(mask)
    if mask.shape != x.shape:
        raise ValueError(f"`mask` must have x's shape {x.shape}. Received: mask.shape={mask.shape}")
    kernel = np.array([[1.0, -2.0, 1.0], [-2.0, 4.0, -2.0], [1.0, -2.0, 1.0]])
    if x.ndim == 2:
        x, mask = x[..., None], mask[..., None]
    response = np.stack([ndimage.convolve(x[..., k], kernel, mode="reflect") for k in range(x.shape[-1])], -1)
    # Away from the mask's edge and the slice border, where the operator sees structure.
    inner = np.stack([ndimage.binary_erosion(mask[..., k] != 0, iterations=2, border_value=0)
                      for k in range(x.shape[-1])], -1)
    values = np.abs(response[inner])
    if values.size < 100:
        raise ValueError(
            f"Too few voxels to estimate the noise ({values.size} inside the mask, away from its edges); "
            "pass a larger mask or the noise sigma itself."
        )
    # sqrt(36) = 6 is the operator's gain on white noise; 1.4826 turns a MAD into sigma.
    return float(1.4826 * np.median(values) / 6.0)


def gaussian(x, sigma, rng=None):
    """Additive white Gaussian noise: `x + N(0, sigma^2)`.

    Args:
        x: array of any shape.
        sigma: noise standard deviation in the units of `x` (>= 0).
        rng: None, an int seed or a `numpy.random.Generator`.

    Returns:
        float32 array of `x.shape`.

    Raises:
        ValueError: if `x` holds NaN/inf, `sigma` is negative or not finite,
            or `rng` is not a seed or Generator.

    Example:

    >>> gaussian(np.zeros((4, 4)), sigma=0.1, rng=0).shape
    (4, 4)
    """
    x = check_finite_array(x).astype(np.float32)
    sigma = check_positive_number(sigma, "sigma", allow_zero=True)
    rng = _rng(rng)
    return x + np.float32(sigma) * rng.standard_normal(x.shape, dtype=np.float32)


def noncentral_chi(x, sigma, coils=4, rng=None):
    """Root-sum-of-squares magnitude of `coils` noisy complex channels.

    This is the noise of a multi-coil MRI magnitude image combined with
    root-sum-of-squares. The noise-free signal is split evenly as
    `x / sqrt(coils)` into the real part of every channel, so the combined
    noise-free magnitude is still `x`; each real and imaginary part gets
    independent `N(0, sigma^2)` noise. With `coils=1` this is exactly
    `rician` (same draws for the same seed).

    Args:
        x: array of any shape (the noise-free magnitude, >= 0 in practice).
        sigma: per-channel noise standard deviation (>= 0).
        coils: number of channels L (int >= 1).
        rng: None, an int seed or a `numpy.random.Generator`.

    Returns:
        float32 array of `x.shape`, >= 0.

    Raises:
        ValueError: if `x` holds NaN/inf, `sigma` < 0, `coils` < 1 or `rng`
            is not a seed or Generator.

    Example:

    >>> m = noncentral_chi(np.zeros((64, 64)), sigma=1.0, coils=8, rng=0)
    >>> bool(m.min() >= 0)
    True
    """
    x = check_finite_array(x).astype(np.float32)
    sigma = np.float32(check_positive_number(sigma, "sigma", allow_zero=True))
    coils = check_positive_int(coils, "coils")
    rng = _rng(rng)
    signal = x / np.float32(math.sqrt(coils))
    # Accumulating coil by coil keeps memory at a few copies of `x` whatever
    # `coils` is (a (2, L, *shape) draw would not fit for large volumes).
    total = np.zeros(x.shape, dtype=np.float32)
    for _ in range(coils):
        real = signal + sigma * rng.standard_normal(x.shape, dtype=np.float32)
        imag = sigma * rng.standard_normal(x.shape, dtype=np.float32)
        total += real * real + imag * imag
    return np.sqrt(total)


def rician(x, sigma, rng=None):
    """Rician noise of an MRI magnitude image: `|x + n1 + i n2|`, n ~ N(0, sigma^2).

    Args:
        x: array of any shape (the noise-free magnitude).
        sigma: standard deviation of the real and of the imaginary noise (>= 0).
        rng: None, an int seed or a `numpy.random.Generator`.

    Returns:
        float32 array of `x.shape`, >= 0.

    Raises:
        ValueError: if `x` holds NaN/inf, `sigma` < 0, or `rng` is not a seed
            or Generator.

    Example:

    >>> rician(np.ones((8, 8, 8)), sigma=0.05, rng=0).dtype
    dtype('float32')
    """
    return noncentral_chi(x, sigma, coils=1, rng=rng)


def _check_hu_range(hu_range):
    try:
        low, high = (float(v) for v in hu_range)
        ok = math.isfinite(low) and math.isfinite(high) and low < high
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(
            "`hu_range` must be two finite numbers (low, high) with low < high. "
            f"Received: hu_range={hu_range!r}"
        )
    return low, high


def _ct_slice(hu, i0, electronic_sigma, voxel_size_mm, mu_water, n_angles, rng):
    """Low-dose noise for one 2D slice in HU (float64 in, float64 out)."""
    from skimage.transform import iradon, radon

    size = max(hu.shape)
    if n_angles is None:
        # pi/2 views per detector bin is the parallel-beam angular Nyquist
        # rate: fewer views would alias the noise into streaks; more only
        # cost time. 64x64 -> 101 views, 512x512 -> 805 (clinical scanners
        # take ~1000 per turn).
        n_angles = max(1, math.ceil(math.pi / 2 * size))
    theta = np.linspace(0.0, 180.0, n_angles, endpoint=False)
    mu = np.clip(mu_water * (1.0 + hu / 1000.0), 0.0, None)
    p = radon(mu, theta, circle=False) * voxel_size_mm
    counts = rng.poisson(i0 * np.exp(-p)).astype(np.float64)
    if electronic_sigma > 0:
        counts += rng.normal(0.0, electronic_sigma, counts.shape)
    # A ray with no photons left has no finite log; real scanners clamp too.
    counts = np.clip(counts, 1.0, None)
    p_noisy = -np.log(counts / i0)
    # Reconstruct the noise only, so the clean image itself carries no FBP
    # blur or streaks: the output is exactly `hu` plus CT-textured noise.
    noise = iradon(p_noisy - p, theta, circle=False, filter_name="ramp", output_size=size)
    noise /= voxel_size_mm
    # radon centres the slice at index shape//2 and iradon puts that centre
    # at output_size//2, so this crop lines the noise up with the slice.
    r0, c0 = size // 2 - hu.shape[0] // 2, size // 2 - hu.shape[1] // 2
    noise = noise[r0 : r0 + hu.shape[0], c0 : c0 + hu.shape[1]]
    return hu + 1000.0 * noise / mu_water


def low_dose_ct(
    x,
    i0,
    electronic_sigma=0.0,
    units="hu",
    voxel_size_mm=1.0,
    mu_water=0.0192,
    n_angles=None,
    axis=-1,
    hu_range=(-1024.0, 3071.0),
    rng=None,
):
    """Simulates a low-dose CT scan of each axial slice (parallel beam, FBP).

    Per slice: HU -> attenuation `mu = mu_water * (1 + HU/1000)` (>= 0),
    line integrals `p = radon(mu) * voxel_size_mm`, detected counts
    `Poisson(i0 * exp(-p)) + N(0, electronic_sigma^2)` (clipped to >= 1),
    noisy line integrals `-log(I / i0)`. Only the sinogram noise is
    reconstructed (ramp-filtered back-projection) and added to the slice, so
    the clean image is kept exactly and the noise has CT's correlated,
    attenuation-dependent texture: more noise behind dense or thick objects.
    Noise variance scales as `1 / i0`.

    Args:
        x: a 2D slice, or an array of 3 or more axes whose slices are taken
            along `axis`; the slice plane is the first two of the other axes
            and any further axis (e.g. channels) is looped over.
        i0: incident photons per ray (> 0); lower means noisier.
        electronic_sigma: standard deviation of the detector's electronic
            noise, in photon counts (>= 0).
        units: 'hu' (Hounsfield units) or 'normalized' ([0, 1] mapping
            linearly onto `hu_range`; converted to HU and back).
        voxel_size_mm: in-plane voxel size in mm (> 0).
        mu_water: linear attenuation of water in 1/mm (> 0); 0.0192 is
            about 70 keV.
        n_angles: number of projection angles over 180 degrees; default
            `ceil(pi/2 * max(slice shape))` (angular Nyquist rate). The noise
            falls as views are added, since `i0` is per ray and per view.
        axis: the slice axis (ignored for 2D input); default -1, the last
            axis as in NIfTI (x, y, z).
        hu_range: (low, high) HU of 0 and 1 when `units='normalized'`.
        rng: None, an int seed or a `numpy.random.Generator`.

    Returns:
        float32 array of `x.shape`, in the units of `x`.

    Raises:
        ValueError: on NaN/inf in `x`, a non-positive `i0`, `voxel_size_mm`
            or `mu_water`, a negative `electronic_sigma`, an unknown `units`,
            a bad `axis`, `n_angles` or `hu_range`.

    Example:

    >>> water = np.zeros((32, 32, 2))  # HU 0 everywhere
    >>> low_dose_ct(water, i0=1e4, rng=0).shape
    (32, 32, 2)
    """
    x = check_finite_array(x)
    i0 = check_positive_number(i0, "i0")
    electronic_sigma = check_positive_number(electronic_sigma, "electronic_sigma", allow_zero=True)
    check_choice(units, "units", CT_UNITS)
    voxel_size_mm = check_positive_number(voxel_size_mm, "voxel_size_mm")
    mu_water = check_positive_number(mu_water, "mu_water")
    if n_angles is not None:
        n_angles = check_positive_int(n_angles, "n_angles")
    hu_low, hu_high = _check_hu_range(hu_range)
    rng = _rng(rng)
    if x.ndim < 2:
        raise ValueError(f"`x` must have at least 2 axes (a slice). Received: x.shape={x.shape}")

    hu = x.astype(np.float64)
    if units == "normalized":
        hu = hu_low + hu * (hu_high - hu_low)

    if x.ndim == 2:
        out = _ct_slice(hu, i0, electronic_sigma, voxel_size_mm, mu_water, n_angles, rng)
    else:
        if isinstance(axis, bool) or not isinstance(axis, numbers.Integral) or not (
            -x.ndim <= axis < x.ndim
        ):
            raise ValueError(
                f"`axis` must be an int in [{-x.ndim}, {x.ndim - 1}] for x.shape={x.shape}. "
                f"Received: axis={axis!r}"
            )
        axis = int(axis) % x.ndim
        others = [a for a in range(x.ndim) if a != axis]
        order = others[:2] + [axis] + others[2:]
        moved = np.transpose(hu, order)
        plane = moved.shape[:2]
        stack = moved.reshape(plane + (-1,))
        result = np.empty_like(stack)
        for k in range(stack.shape[-1]):
            result[..., k] = _ct_slice(
                stack[..., k], i0, electronic_sigma, voxel_size_mm, mu_water, n_angles, rng
            )
        out = np.transpose(result.reshape(moved.shape), np.argsort(order))

    if units == "normalized":
        out = (out - hu_low) / (hu_high - hu_low)
    return out.astype(np.float32)


def add_noise(x, model="rician", level=0.05, relative=True, coils=4, rng=None, **ct_kwargs):
    """Adds noise of a named model at a given level.

    Args:
        x: array of any shape (see each model for its layout).
        model: one of `NOISE_MODELS`: 'gaussian', 'rician', 'chi'
            (noncentral chi, `coils` channels) or 'ct' (low-dose CT).
        level: > 0. For gaussian/rician/chi, the noise sigma, as a fraction
            of `robust_max(x)` when `relative` is True, else in the units of
            `x`. For 'ct', the incident photon count I0 per ray.
        relative: see `level`; ignored for 'ct'.
        coils: number of channels for 'chi'; ignored otherwise.
        rng: None, an int seed or a `numpy.random.Generator`.
        **ct_kwargs: passed to `low_dose_ct` (e.g. `units`, `axis`,
            `electronic_sigma`); only allowed for model 'ct'.

    Returns:
        float32 array of `x.shape`. With a relative level, an array whose
        `robust_max` and maximum magnitude are both 0 has no scale to be
        relative to and comes back unchanged.

    Raises:
        ValueError: on an unknown `model`, a non-positive `level`, NaN/inf
            in `x`, or `ct_kwargs` given for a model other than 'ct'.

    Example:

    >>> image = np.random.default_rng(0).random((32, 32))
    >>> noisy = add_noise(image, "rician", level=0.05, rng=0)
    >>> noisy.shape, noisy.dtype
    ((32, 32), dtype('float32'))
    """
    check_choice(model, "model", NOISE_MODELS)
    level = check_positive_number(level, "level")
    x = check_finite_array(x)
    if model == "ct":
        return low_dose_ct(x, i0=level, rng=rng, **ct_kwargs)
    if ct_kwargs:
        raise ValueError(
            f"Keyword arguments {sorted(ct_kwargs)} only apply to model='ct'. "
            f"Received: model={model!r}"
        )
    sigma = level
    if relative:
        scale = robust_max(x)
        if scale <= 0:
            # Mostly-background arrays (e.g. an empty crop) have a zero
            # percentile; their largest magnitude is the next best scale.
            scale = float(np.max(np.abs(x)))
        sigma = level * scale
    if model == "gaussian":
        return gaussian(x, sigma, rng=rng)
    if model == "rician":
        return rician(x, sigma, rng=rng)
    return noncentral_chi(x, sigma, coils=coils, rng=rng)


def _format_number(value):
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


_NUMBER = r"(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_LEVEL = re.compile(rf"^({_NUMBER})(?:-({_NUMBER}))?$")


@dataclasses.dataclass(frozen=True)
class NoiseSpec:
    """A noise model with a level or a range of levels, parsed from one string.

    Grammar: `MODEL:LEVEL[-HIGH][:OPTION[,OPTION...]]` with MODEL one of
    `NOISE_MODELS` and options `abs` (absolute sigma; gaussian, rician,
    chi), `coils=N` (chi) and `electronic=S` (ct). A range draws a level
    uniformly per call of `apply`.

    Attributes:
        model: one of `NOISE_MODELS`.
        low: smallest level (> 0); see `add_noise` for its meaning.
        high: largest level (>= low).
        relative: levels are fractions of `robust_max(x)` (not for 'ct').
        coils: channels of the 'chi' model.
        electronic_sigma: electronic noise of the 'ct' model, in counts.

    Options that do not apply to the model must keep their defaults, so
    `NoiseSpec.parse(str(spec)) == spec` for every spec.

    Example:

    >>> spec = NoiseSpec.parse("chi:0.02-0.08:coils=8")
    >>> spec.coils, str(spec)
    (8, 'chi:0.02-0.08:coils=8')
    >>> noisy = spec.apply(np.ones((16, 16)), rng=0)
    """

    model: str
    low: float
    high: float
    relative: bool = True
    coils: int = 4
    electronic_sigma: float = 0.0

    def __post_init__(self):
        check_choice(self.model, "model", NOISE_MODELS)
        low = check_positive_number(self.low, "low")
        high = check_positive_number(self.high, "high")
        if high < low:
            raise ValueError(f"`high` must be >= `low`. Received: low={low!r}, high={high!r}")
        if not isinstance(self.relative, bool):
            raise ValueError(f"`relative` must be True or False. Received: relative={self.relative!r}")
        coils = check_positive_int(self.coils, "coils")
        electronic = check_positive_number(
            self.electronic_sigma, "electronic_sigma", allow_zero=True
        )
        # An option the model ignores would vanish from str(spec); refusing
        # it keeps the string form complete and catches typos in configs.
        if self.model != "chi" and coils != 4:
            raise ValueError(f"`coils` only applies to model 'chi'. Received: coils={coils!r}")
        if self.model != "ct" and electronic != 0:
            raise ValueError(
                "`electronic_sigma` only applies to model 'ct'. "
                f"Received: electronic_sigma={electronic!r}"
            )
        if self.model == "ct" and not self.relative:
            raise ValueError(
                "`relative` does not apply to model 'ct' (its level is the photon "
                "count I0). Received: relative=False"
            )
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)
        object.__setattr__(self, "coils", coils)
        object.__setattr__(self, "electronic_sigma", electronic)

    @classmethod
    def parse(cls, text):
        """Parses `MODEL:LEVEL[-HIGH][:OPTION[,OPTION...]]` into a NoiseSpec.

        Args:
            text: e.g. 'rician:0.05', 'gaussian:0.01-0.1', 'chi:0.05:coils=8',
                'gaussian:12:abs', 'ct:1e4', 'ct:5e3-5e4:electronic=5'.

        Returns:
            A `NoiseSpec`.

        Raises:
            ValueError: on malformed text, an unknown model or option, or
                bad values; the message quotes `text` and shows valid specs.

        Example:

        >>> NoiseSpec.parse("gaussian:12:abs")
        NoiseSpec(model='gaussian', low=12.0, high=12.0, relative=False, coils=4, electronic_sigma=0.0)
        """

        def fail(reason):
            return ValueError(
                f"`text` is not a valid noise spec ({reason}). Expected "
                f"MODEL:LEVEL[-HIGH][:OPTION[,OPTION...]], e.g. {_SPEC_EXAMPLES}. "
                f"Received: text={text!r}"
            )

        if not isinstance(text, str):
            raise fail("not a string")
        parts = text.strip().split(":")
        if len(parts) not in (2, 3):
            raise fail("expected 2 or 3 ':'-separated parts")
        model, level = parts[0].strip().lower(), parts[1].strip()
        if model not in NOISE_MODELS:
            raise fail(f"unknown model {model!r}; expected one of {', '.join(NOISE_MODELS)}")
        match = _LEVEL.match(level)
        if not match:
            raise fail(f"bad level {level!r}; expected a number or LOW-HIGH")
        low = float(match.group(1))
        high = float(match.group(2)) if match.group(2) is not None else low
        fields = {}
        options = parts[2].split(",") if len(parts) == 3 else []
        allowed = {"gaussian": ("abs",), "rician": ("abs",), "chi": ("abs", "coils"),
                   "ct": ("electronic",)}[model]
        for option in options:
            key, _, value = (s.strip() for s in option.partition("="))
            if key not in allowed:
                shown = ", ".join(allowed)
                raise fail(f"unknown option {option.strip()!r} for {model}; allowed: {shown}")
            if key in fields:
                raise fail(f"option {key!r} given twice")
            try:
                if key == "abs":
                    if value or "=" in option:
                        raise ValueError
                    fields[key] = False
                elif key == "coils":
                    fields[key] = int(value)
                else:
                    fields[key] = float(value)
            except ValueError:
                raise fail(f"bad option {option.strip()!r}") from None
        try:
            return cls(
                model,
                low,
                high,
                relative=fields.get("abs", True),
                coils=fields.get("coils", 4),
                electronic_sigma=fields.get("electronic", 0.0),
            )
        except ValueError as error:
            raise fail(str(error).rstrip(".")) from None

    def __str__(self):
        text = f"{self.model}:{_format_number(self.low)}"
        if self.high != self.low:
            text += f"-{_format_number(self.high)}"
        options = []
        if not self.relative:
            options.append("abs")
        if self.coils != 4:
            options.append(f"coils={self.coils}")
        if self.electronic_sigma != 0:
            options.append(f"electronic={_format_number(self.electronic_sigma)}")
        return text + (":" + ",".join(options) if options else "")

    def sample_level(self, rng):
        """A level drawn uniformly from [low, high] (`low` when they are equal).

        Args:
            rng: None, an int seed or a `numpy.random.Generator`.

        Returns:
            A Python float.
        """
        rng = _rng(rng)
        if self.low == self.high:
            return self.low
        return float(rng.uniform(self.low, self.high))

    def apply(self, x, rng=None, level=None, **ct_kwargs):
        """Adds this spec's noise to `x` (see `add_noise`).

        Args:
            x: array of any shape.
            rng: None, an int seed or a `numpy.random.Generator`; it draws
                the level (for a range) and then the noise.
            level: use this level instead of drawing one.
            **ct_kwargs: passed to `low_dose_ct` for model 'ct' (except
                `electronic_sigma`, which comes from the spec).

        Returns:
            float32 array of `x.shape`.
        """
        rng = _rng(rng)
        if level is None:
            level = self.sample_level(rng)
        if "electronic_sigma" in ct_kwargs:
            raise ValueError(
                "`electronic_sigma` comes from the spec (option electronic=S). "
                f"Received: electronic_sigma={ct_kwargs['electronic_sigma']!r}"
            )
        if self.model == "ct":
            ct_kwargs["electronic_sigma"] = self.electronic_sigma
        return add_noise(
            x, self.model, level, relative=self.relative, coils=self.coils, rng=rng, **ct_kwargs
        )
