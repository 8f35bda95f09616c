"""Down-sampling by a strided convolution or by pooling."""

from collections.abc import Sequence
from typing import Any, Literal

import keras

from medresae._validation import check_choice, check_positive_int, check_spatial_dims, standardize_tuple
from medresae.layers import _spatial
from medresae.layers.conv_norm_act import ChainLayer, ConvNormAct

MODES = ("conv", "max", "avg")


@keras.saving.register_keras_serializable(package="medresae")
class Downsample(ChainLayer):
    """Reduces the spatial size by `strides` per axis and sets the channels to `filters`.

    - ``'conv'``: a strided convolution (kernel = `kernel_size`, default the
      strides themselves, as in ResNetAE) -> norm -> activation.
    - ``'max'`` / ``'avg'``: pooling by `strides`, then a 1x1 conv -> norm ->
      activation to reach `filters`.

    Args:
        filters: output channels.
        strides: int or per-axis tuple (e.g. (2, 2, 1) keeps thick slices).
        spatial_dims: 2 or 3.
        mode: 'conv', 'max' or 'avg'.
        kernel_size: kernel of the strided convolution (default: `strides`).
        norm, groups, activation, use_bias: as in `ConvNormAct`.

    Input shape:
        `(batch, *spatial, channels)`.

    Output shape:
        `(batch, *ceil(spatial / strides), filters)`.

    Examples:
        >>> tuple(Downsample(32, strides=(2, 2, 1), spatial_dims=3)(
        ...     np.zeros((1, 8, 8, 4, 16), "float32")).shape)
        (1, 4, 4, 4, 32)
    """

    def __init__(
        self,
        filters: int,
        strides: int | Sequence[int] = 2,
        spatial_dims: int = 2,
        mode: Literal["conv", "max", "avg"] = "conv",
        kernel_size: int | Sequence[int] | None = None,
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
        self.kernel_size = (
            None if kernel_size is None
            else standardize_tuple(kernel_size, self.spatial_dims, "kernel_size")
        )
        self.norm = norm
        self.groups = groups
        self.activation = activation
        self.use_bias = bool(use_bias)
        common = dict(
            spatial_dims=self.spatial_dims, norm=norm, groups=groups,
            activation=activation, use_bias=use_bias, dtype=self.dtype_policy,
        )
        if self.mode == "conv":
            self.pool = None
            self.proj = ConvNormAct(
                self.filters, self.kernel_size or self.strides, strides=self.strides,
                name="conv", **common,
            )
        else:
            pool_cls = (_spatial.max_pool if self.mode == "max" else _spatial.avg_pool)(
                self.spatial_dims
            )
            self.pool = pool_cls(pool_size=self.strides, strides=self.strides, padding="same", name="pool",
                                dtype=self.dtype_policy)
            self.proj = ConvNormAct(self.filters, 1, name="proj", **common)

    def chain(self):
        return [self.pool, self.proj]

    def compute_output_shape(self, input_shape):
        return (*_spatial.subsampled_shape(input_shape, self.strides)[:-1], self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters, strides=self.strides, spatial_dims=self.spatial_dims,
            mode=self.mode, kernel_size=self.kernel_size, norm=self.norm,
            groups=self.groups, activation=self.activation, use_bias=self.use_bias,
        )
        return config
