"""ResUNet: the residual U-Net denoiser, 2D or 3D, anisotropic, fully convolutional."""

from collections.abc import Sequence
from typing import Any, Literal

import keras

from medresae._validation import (
    check_choice,
    check_divisible,
    check_input_size,
    check_positive_int,
    check_spatial_dims,
    spatial_divisor,
    standardize_level_strides,
    standardize_tuple,
)
from medresae.layers import _spatial
from medresae.layers._factories import check_activation, check_norm
from medresae.layers.conv_norm_act import ConvNormAct
from medresae.layers.downsample import MODES as DOWNSAMPLE_MODES
from medresae.layers.downsample import Downsample
from medresae.layers.residual_block import VARIANTS, ResidualBlock
from medresae.layers.upsample import MODES as UPSAMPLE_MODES
from medresae.layers.upsample import Upsample
from medresae.models._functional import FunctionalModel


def _per_level(value, n_levels, name):
    if isinstance(value, int) and not isinstance(value, bool):
        return [check_positive_int(value, name)] * n_levels
    values = list(value) if isinstance(value, (list, tuple)) else None
    if values is None or len(values) != n_levels:
        raise ValueError(
            f"`{name}` must be an int or a list of {n_levels} ints (one per level). "
            f"Received: {name}={value!r}"
        )
    return [check_positive_int(v, f"{name}[{i}]") for i, v in enumerate(values)]


@keras.saving.register_keras_serializable(package="medresae")
class ResUNet(FunctionalModel):
    """Residual U-Net for denoising (residual blocks per level, encoder skips).

    A stem convolution, then per level `n_blocks` residual blocks; between
    levels a down-sampling by that level's stride (per axis, e.g. (2, 2, 1)
    to keep thick slices). The decoder up-samples, merges the encoder map of
    the same level (`skip='add'` or `'concat'`) and applies residual blocks.
    A 1x1 convolution predicts the noise and, with `residual=True`, the
    output is ``input - predicted noise`` (residual learning, as in DnCNN),
    so an untrained model starts near the identity.

    Args:
        spatial_dims: 2 or 3.
        in_channels: input channels.
        out_channels: output channels (default `in_channels`); must equal
            `in_channels` when `residual=True`.
        filters: filters per level; its length is the number of levels.
        n_blocks: residual blocks per level (int or one per level).
        strides: down-sampling between levels: int, per-axis tuple, or one
            of those per level transition (`len(filters) - 1` of them).
        kernel_size: kernel of the residual blocks (int or per-axis tuple).
        variant: residual block variant ('basic', 'bottleneck',
            'preactivation', 'act_before_add').
        skip: 'add' or 'concat' encoder -> decoder skips.
        top_skip: keep the skip at full resolution. Without it (N2V2, Hoeck
            et al. 2022) the decoder's last level sees only up-sampled
            features, which stops blind-spot training from learning
            checkerboard patterns; use it with `residual=False`.
        residual: predict the noise and subtract it from the input.
        norm: 'batch', 'group', 'instance' or 'none'.
        groups: groups of group norm.
        activation: activation name.
        downsample: 'conv' (strided), 'max' or 'avg'.
        upsample: 'transpose' or 'resize'.
        input_size: fixed spatial size, or None for any size that is a
            multiple of `spatial_divisor`.

    Input shape:
        `(batch, *spatial, in_channels)`, each spatial size a multiple of
        `spatial_divisor` (use `medresae.predict_padded` for any size).

    Output shape:
        `(batch, *spatial, out_channels)`.

    Examples:
        >>> model = ResUNet(spatial_dims=3, filters=(8, 16, 32), strides=(2, 2, 1))
        >>> model.spatial_divisor
        (4, 4, 1)
        >>> model.predict(np.zeros((1, 16, 8, 3, 1), "float32"), verbose=0).shape
        (1, 16, 8, 3, 1)
    """

    def __init__(
        self,
        spatial_dims: int = 3,
        in_channels: int = 1,
        out_channels: int | None = None,
        filters: Sequence[int] = (32, 64, 128),
        n_blocks: int | list[int] | tuple[int, ...] = 2,
        strides: int | Sequence[int] | Sequence[int | Sequence[int]] = 2,
        kernel_size: int | Sequence[int] = 3,
        variant: Literal["basic", "bottleneck", "preactivation", "act_before_add"] = "basic",
        skip: Literal["add", "concat"] = "add",
        residual: bool = True,
        top_skip: bool = True,
        norm: Literal["batch", "group", "instance", "none"] = "batch",
        groups: int = 8,
        activation: str | None = "relu",
        downsample: Literal["conv", "max", "avg"] = "conv",
        upsample: Literal["transpose", "resize"] = "transpose",
        input_size: Sequence[int | None] | None = None,
        **kwargs: Any,
    ) -> None:
        config = dict(
            spatial_dims=spatial_dims, in_channels=in_channels, out_channels=out_channels,
            filters=filters, n_blocks=n_blocks, strides=strides, kernel_size=kernel_size,
            variant=variant, skip=skip, residual=bool(residual), top_skip=bool(top_skip), norm=norm, groups=groups,
            activation=activation, downsample=downsample, upsample=upsample,
            input_size=input_size,
        )
        super().__init__(config, **kwargs)

    def _graph(self, spatial_dims, in_channels, out_channels, filters, n_blocks, strides, kernel_size, variant,
               skip, residual, norm, groups, activation, downsample, upsample, input_size, top_skip=True):
        sd = check_spatial_dims(spatial_dims)
        in_channels = check_positive_int(in_channels, "in_channels")
        out_channels = in_channels if out_channels is None else check_positive_int(out_channels, "out_channels")
        if isinstance(filters, int) or not filters:
            raise ValueError(
                f"`filters` must be a non-empty list of ints, one per level. Received: filters={filters!r}"
            )
        filters = [check_positive_int(f, f"filters[{i}]") for i, f in enumerate(filters)]
        n_levels = len(filters)
        blocks = _per_level(n_blocks, n_levels, "n_blocks")
        level_strides = standardize_level_strides(strides, n_levels - 1, sd) if n_levels > 1 else []
        kernel_size = standardize_tuple(kernel_size, sd, "kernel_size")
        check_choice(variant, "variant", VARIANTS)
        check_choice(skip, "skip", ("add", "concat"))
        check_norm(norm, groups, filters)
        check_activation(activation)
        check_choice(downsample, "downsample", DOWNSAMPLE_MODES)
        check_choice(upsample, "upsample", UPSAMPLE_MODES)
        if residual and out_channels != in_channels:
            raise ValueError(
                "Residual learning (output = input - noise) needs out_channels == in_channels. "
                f"Received: in_channels={in_channels}, out_channels={out_channels}; "
                "pass residual=False."
            )
        divisor = spatial_divisor(level_strides, sd)
        size = check_input_size(input_size, sd)
        check_divisible(size, divisor, "input_size")
        if variant == "bottleneck":
            # A bottleneck block outputs 4x its filters: keep level widths.
            filters = [max(f // 4, 1) for f in filters]
            widths = [f * 4 for f in filters]
        else:
            widths = filters

        common = dict(spatial_dims=sd, norm=norm, groups=groups, activation=activation)

        def stack(x, level, prefix):
            for j in range(blocks[level]):
                x = ResidualBlock(
                    filters[level], variant=variant, kernel_size=kernel_size,
                    name=f"{prefix}{level}_block{j}", **common,
                )(x)
            return x

        inputs = keras.Input((*size, in_channels), name="image")
        x = ConvNormAct(widths[0], kernel_size, name="stem", **common)(inputs)
        skips = []
        for level in range(n_levels):
            if level > 0:
                x = Downsample(
                    widths[level], strides=level_strides[level - 1], mode=downsample,
                    name=f"down{level}", **common,
                )(x)
            x = stack(x, level, "encoder")
            skips.append(x)
        for level in range(n_levels - 2, -1, -1):
            x = Upsample(
                widths[level], strides=level_strides[level], mode=upsample,
                name=f"up{level}", **common,
            )(x)
            if level > 0 or top_skip:
                merge = keras.layers.Add if skip == "add" else keras.layers.Concatenate
                x = merge(name=f"skip{level}")([x, skips[level]])
            x = stack(x, level, "decoder")
        # Zero-initialised head: a residual model starts as the identity in
        # training and inference mode alike, and learns the noise from there.
        noise = _spatial.conv(sd)(
            out_channels, 1, name="head", kernel_initializer="zeros" if residual else "glorot_uniform"
        )(x)
        outputs = keras.layers.Subtract(name="residual")([inputs, noise]) if residual else noise
        return inputs, outputs, divisor
