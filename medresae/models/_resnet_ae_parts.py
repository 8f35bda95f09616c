"""Encoder and decoder of ResNetAE / ResNetVAE (Hou 2019, farrell236/ResNetAE).

The reference, for 2D and strides of 2, is: a 3x3 stem of ``filters[0]``
filters; per level i, `n_blocks` residual blocks of ``filters[i]`` filters,
a multi-resolution skip (a conv whose kernel and stride are the remaining
down-sampling factor, to ``filters[-1]`` filters) and a 2x2 stride-2 conv to
``filters[i + 1]`` filters (the reference doubles them: 8, 16, ..., 128); the skips are summed with the deepest
map and a 3x3 conv gives `z_dim` channels. The decoder mirrors it with
transposed convolutions and skips from its first feature map. Strides here
are per level and per axis, so thick-slice volumes can keep their slices.
"""

import math

import keras

from medresae._validation import (
    check_divisible,
    check_input_size,
    check_positive_int,
    check_spatial_dims,
    standardize_level_strides,
)
from medresae._validation import spatial_divisor as _divisor
from medresae.layers import _spatial
from medresae.layers._factories import check_activation, check_norm
from medresae.layers.conv_norm_act import ConvNormAct
from medresae.layers.downsample import Downsample
from medresae.layers.residual_block import ResidualBlock
from medresae.layers.upsample import Upsample


def widths_from_legacy(filters, kwargs):
    """`filters` from the `base_filters` and `n_levels` of models saved by earlier
    medresae versions (popped from `kwargs`): the base, doubled per level."""
    base, n_levels = kwargs.pop("base_filters", None), kwargs.pop("n_levels", None)
    if base is None and n_levels is None:
        return filters
    base = 8 if base is None else base
    n_levels = 4 if n_levels is None else n_levels
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (base, n_levels)):
        raise ValueError(f"`base_filters` and `n_levels` must be positive ints (or pass `filters`). "
                         f"Received: base_filters={base!r}, n_levels={n_levels!r}")
    return tuple(base * 2**i for i in range(n_levels + 1))


def validate_ae_args(args):
    """Checks the constructor arguments shared by ResNetAE and ResNetVAE.

    Returns a dict with the validated values plus `level_strides`,
    `spatial_divisor`, `input_size` and `latent_size`.
    """
    spatial_dims = check_spatial_dims(args["spatial_dims"])
    filters = args["filters"]
    if isinstance(filters, (int, str)) or not isinstance(filters, (list, tuple)) or len(filters) < 2:
        raise ValueError(
            "`filters` must be a list of at least 2 ints: the width of each level, from the input's to the "
            f"latent's (one more than the down-samplings). Received: filters={filters!r}"
        )
    widths = [check_positive_int(f, f"filters[{i}]") for i, f in enumerate(filters)]
    n_levels = len(widths) - 1
    level_strides = standardize_level_strides(args["strides"], n_levels, spatial_dims)
    divisor = _divisor(level_strides, spatial_dims)
    input_size = check_input_size(args["input_size"], spatial_dims)
    bottleneck_dim = args["bottleneck_dim"]
    if bottleneck_dim is not None:
        check_positive_int(bottleneck_dim, "bottleneck_dim")
        if any(s is None for s in input_size):
            raise ValueError(
                "A dense bottleneck needs a fixed input size: pass `input_size` "
                "or set bottleneck_dim=None for a fully convolutional model. "
                f"Received: bottleneck_dim={bottleneck_dim}, input_size={args['input_size']!r}"
            )
    check_divisible(input_size, divisor, "input_size")
    check_norm(args["norm"], args["groups"], widths)
    check_activation(args["activation"])
    check_activation(args["output_activation"], "output_activation")
    check_positive_int(args["in_channels"], "in_channels")
    if args["out_channels"] is not None:
        check_positive_int(args["out_channels"], "out_channels")
    check_positive_int(args["n_blocks"], "n_blocks")
    check_positive_int(args["z_dim"], "z_dim")
    latent_size = tuple(None if s is None else s // d for s, d in zip(input_size, divisor))
    return dict(
        widths=widths,
        level_strides=level_strides,
        spatial_divisor=divisor,
        input_size=input_size,
        latent_size=latent_size,
    )


def _product(strides):
    return tuple(math.prod(axis) for axis in zip(*strides))


def encode(x, args, widths, level_strides, prefix="encoder"):
    """The ResNetAE encoder; returns the `z_dim`-channel latent map."""
    sd, n_levels = args["spatial_dims"], len(widths) - 1
    common = dict(spatial_dims=sd, norm=args["norm"], groups=args["groups"], activation=args["activation"])
    max_filters = widths[-1]
    x = ConvNormAct(widths[0], 3, name=f"{prefix}_stem", **common)(x)
    skips = []
    for i in range(n_levels):
        for j in range(args["n_blocks"]):
            x = ResidualBlock(
                widths[i], variant="act_before_add", name=f"{prefix}_level{i}_block{j}", **common
            )(x)
        down = Downsample(
            widths[i + 1], strides=level_strides[i], mode="conv", name=f"{prefix}_down{i}", **common
        )
        if args["multires_skips"]:
            factor = _product(level_strides[i:])
            skips.append(
                ConvNormAct(max_filters, factor, strides=factor, name=f"{prefix}_skip{i}", **common)(x)
            )
        x = down(x)
    if skips:
        x = keras.layers.Add(name=f"{prefix}_skip_sum")([x, *skips])
    return _spatial.conv(sd)(args["z_dim"], 3, padding="same", name=f"{prefix}_out")(x)


def decode(z, args, widths, level_strides, out_channels, prefix="decoder"):
    """The ResNetAE decoder; returns the image with `out_channels` channels."""
    sd, n_levels = args["spatial_dims"], len(widths) - 1
    common = dict(spatial_dims=sd, norm=args["norm"], groups=args["groups"], activation=args["activation"])
    x = z_top = ConvNormAct(widths[-1], 3, name=f"{prefix}_stem", **common)(z)
    for i in range(n_levels):
        filters = widths[n_levels - 1 - i]
        encoder_level = n_levels - 1 - i
        x = Upsample(
            filters, strides=level_strides[encoder_level], mode="transpose", name=f"{prefix}_up{i}", **common
        )(x)
        for j in range(args["n_blocks"]):
            x = ResidualBlock(
                filters, variant="act_before_add", name=f"{prefix}_level{i}_block{j}", **common
            )(x)
        if args["multires_skips"]:
            factor = _product(level_strides[encoder_level:])
            skip = ConvNormAct(
                filters, factor, strides=factor, transpose=True, name=f"{prefix}_skip{i}", **common
            )(z_top)
            x = keras.layers.Add(name=f"{prefix}_skip_add{i}")([x, skip])
    x = _spatial.conv(sd)(out_channels, 3, padding="same", name=f"{prefix}_out")(x)
    if args["output_activation"] not in (None, "linear"):
        x = keras.layers.Activation(args["output_activation"], name="output_activation")(x)
    return x


def dense_to_latent(h, latent_size, z_dim, name):
    """Dense layer to a flat vector that reshapes to the latent map."""
    h = keras.layers.Dense(math.prod(latent_size) * z_dim, name=name)(h)
    return keras.layers.Reshape((*latent_size, z_dim), name=f"{name}_reshape")(h)
