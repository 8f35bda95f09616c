"""Up-sampling by a transposed convolution or by resize-then-convolve."""

from collections.abc import Sequence
from typing import Any, Literal

import keras

from medresae._validation import check_choice, check_positive_int, check_spatial_dims, standardize_tuple
from medresae.layers import _spatial
from medresae.layers.conv_norm_act import ChainLayer, ConvNormAct

MODES = ("transpose", "resize")


@keras.saving.register_keras_serializable(package="medresae")
class Upsample(ChainLayer):
    """Enlarges the spatial size by `strides` per axis and sets the channels to `filters`.

    - ``'transpose'``: a transposed convolution with strides `strides` (kernel
      `kernel_size`, default the strides themselves, as in ResNetAE) -> norm ->
      activation.
    - ``'resize'``: nearest-neighbour (or, in 2D, bilinear) resize by
      `strides`, then a 3x3 conv -> norm -> activation. Avoids the
      checkerboard artefacts of transposed convolutions.

    Args:
        filters: output channels.
        strides: int or per-axis tuple.
        spatial_dims: 2 or 3.
        mode: 'transpose' or 'resize'.
        kernel_size: kernel of the convolution (default: `strides` for
            'transpose', 3 for 'resize').
        interpolation: 'nearest' ('bilinear' also allowed in 2D) for 'resize'.
        norm, groups, activation, use_bias: as in `ConvNormAct`.

    Input shape:
        `(batch, *spatial, channels)`.

    Output shape:
        `(batch, *spatial * strides, filters)`.

    Examples:
        >>> tuple(Upsample(8, strides=(2, 2, 1), spatial_dims=3, mode="resize")(
        ...     np.zeros((1, 4, 4, 4, 16), "float32")).shape)
        (1, 8, 8, 4, 8)
    """

    def __init__(
        self,
        filters: int,
        strides: int | Sequence[int] = 2,
        spatial_dims: int = 2,
        mode: Literal["transpose", "resize"] = "transpose",
        kernel_size: int | Sequence[int] | None = None,
        interpolation: Literal["nearest", "bilinear"] = "nearest",
        norm: Literal["batch", "group", "instance", "none"] = "batch",
        groups: int = 8,
        activation: str | None = "relu",
        use_bias: bool = True,
        **kwargs: Any,
    ) -> None:
        # Layers saved before version 0.4 call the down/up-sampling `strides`.
        strides = kwargs.pop("factor", strides)
        super().__init__(**kwargs)
        self.spatial_dims = check_spatial_dims(spatial_dims)
        self.filters = check_positive_int(filters, "filters")
        self.strides = standardize_tuple(strides, self.spatial_dims, "strides")
        self.mode = check_choice(mode, "mode", MODES)
        allowed = ("nearest", "bilinear") if self.spatial_dims == 2 else ("nearest",)
        self.interpolation = check_choice(interpolation, "interpolation", allowed)
        default_kernel = self.strides if self.mode == "transpose" else 3
        self.kernel_size = standardize_tuple(
            default_kernel if kernel_size is None else kernel_size, self.spatial_dims, "kernel_size"
        )
        self.norm = norm
        self.groups = groups
        self.activation = activation
        self.use_bias = bool(use_bias)
        common = dict(
            spatial_dims=self.spatial_dims, norm=norm, groups=groups,
            activation=activation, use_bias=use_bias, dtype=self.dtype_policy,
        )
        if self.mode == "transpose":
            self.resize = None
            self.conv = ConvNormAct(
                self.filters, self.kernel_size, strides=self.strides, transpose=True,
                name="conv", **common,
            )
        else:
            resize_kwargs = {"interpolation": self.interpolation} if self.spatial_dims == 2 else {}
            self.resize = _spatial.upsampling(self.spatial_dims)(self.strides, name="resize", dtype=self.dtype_policy,
                                                                      **resize_kwargs)
            self.conv = ConvNormAct(self.filters, self.kernel_size, name="conv", **common)

    def chain(self):
        return [self.resize, self.conv]

    def compute_output_shape(self, input_shape):
        spatial = [None if n is None else n * f for n, f in zip(input_shape[1:-1], self.strides)]
        return (input_shape[0], *spatial, self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters, strides=self.strides, spatial_dims=self.spatial_dims,
            mode=self.mode, kernel_size=self.kernel_size, interpolation=self.interpolation,
            norm=self.norm, groups=self.groups, activation=self.activation,
            use_bias=self.use_bias,
        )
        return config
