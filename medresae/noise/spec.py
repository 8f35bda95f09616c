"""`NoiseSpec` strings and `add_noise`, which dispatches to a model by name."""

import dataclasses
import re
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

from medresae._arrays import check_finite_array
from medresae._validation import check_choice, check_positive_int, check_positive_number
from medresae.noise._common import _rng, robust_max
from medresae.noise.ct import MIN_PHOTONS, low_dose_ct
from medresae.noise.mri import MAX_COILS, gaussian, noncentral_chi, rician

NOISE_MODELS = ("gaussian", "rician", "chi", "ct")

_SPEC_EXAMPLES = (
    "'rician:0.05', 'gaussian:0.01-0.1', 'gaussian:12:abs', "
    "'chi:0.05:coils=8', 'ct:5e3-5e4:electronic=5'"
)


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

    Examples:
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

    Examples:
        >>> spec = NoiseSpec.parse("chi:0.02-0.08:coils=8")
        >>> spec.coils, str(spec)
        (8, 'chi:0.02-0.08:coils=8')
        >>> noisy = spec.apply(np.ones((16, 16)), rng=0)
    """

    model: Literal["gaussian", "rician", "chi", "ct"]
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
        if self.model == "chi" and coils > MAX_COILS:
            raise ValueError(f"`coils` must be at most {MAX_COILS}. Received: coils={coils!r}")
        if self.model == "ct" and low < MIN_PHOTONS:
            raise ValueError(
                f"a 'ct' level is incident photons per ray and must be at least {MIN_PHOTONS:g} "
                f"(clinical doses are about 1e4 to 1e6). Received: low={low!r}"
            )
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)
        object.__setattr__(self, "coils", coils)
        object.__setattr__(self, "electronic_sigma", electronic)

    @classmethod
    def parse(cls, text: str) -> "NoiseSpec":
        """Parses `MODEL:LEVEL[-HIGH][:OPTION[,OPTION...]]` into a NoiseSpec.

        Args:
            text: e.g. 'rician:0.05', 'gaussian:0.01-0.1', 'chi:0.05:coils=8',
                'gaussian:12:abs', 'ct:1e4', 'ct:5e3-5e4:electronic=5'.

        Returns:
            A `NoiseSpec`.

        Raises:
            ValueError: on malformed text, an unknown model or option, or
                bad values; the message quotes `text` and shows valid specs.

        Examples:
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

    def __str__(self) -> str:
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

    def sample_level(self, rng: int | np.random.Generator | None) -> float:
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

    def apply(self, x: ArrayLike, rng: int | np.random.Generator | None = None, level: float | None = None,
              **ct_kwargs: Any) -> np.ndarray:
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
