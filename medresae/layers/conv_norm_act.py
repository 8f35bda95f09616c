"""Convolution -> normalisation -> activation, the unit every model repeats."""

from collections.abc import Sequence
from typing import Any, Literal

import keras

from medresae._validation import check_choice, check_positive_int, check_spatial_dims, standardize_tuple
from medresae.layers import _spatial
from medresae.layers._factories import check_activation, check_norm, make_activation, make_norm


def build_chain(chain, input_shape):
    """Builds `chain` (layers or None) in order; returns the output shape."""
    shape = tuple(input_shape)
    for layer in chain:
        if layer is None:
            continue
        if not layer.built:
            layer.build(shape)
        shape = tuple(layer.compute_output_shape(shape))
    return shape


def run_chain(chain, x, training=None):
    """Applies `chain` (layers or None) in order, passing `training` to norms."""
    for layer in chain:
        if layer is None:
            continue
        if isinstance(layer, (keras.layers.BatchNormalization,)):
            x = layer(x, training=training)
        else:
            x = layer(x)
    return x


class ChainLayer(keras.layers.Layer):
    """A layer that runs its sub-layers one after the other: the shared base of
    `ConvNormAct`, `Downsample` and `Upsample`. Subclasses create the
    sub-layers in `__init__` and return them, in order, from `chain()`
    (None entries are skipped)."""

    def chain(self):
        raise NotImplementedError(f"{type(self).__name__} must implement chain().")

    def build(self, input_shape):
        build_chain(self.chain(), input_shape)
        self.built = True

    def call(self, inputs, training=None):
        return run_chain(self.chain(), inputs, training)


@keras.saving.register_keras_serializable(package="medresae")
class ConvNormAct(ChainLayer):
    """A convolution (or transposed convolution), a normalisation and an activation.

    Args:
        filters: number of output channels.
        kernel_size: int or tuple of `spatial_dims` ints (anisotropic kernels).
        strides: int or tuple of `spatial_dims` ints.
        spatial_dims: 2 for images, 3 for volumes.
        norm: 'batch', 'group', 'instance' or 'none'.
        groups: number of groups for `norm='group'`; must divide `filters`.
        activation: an activation name (e.g. 'relu', 'leaky_relu' with slope
            0.2, 'silu') or None.
        transpose: use a transposed convolution (learned up-sampling).
        padding: 'same' or 'valid'.
        use_bias: add a bias to the convolution.
        norm_epsilon: epsilon of the normalisation layer.
        norm_momentum: momentum of batch normalisation.
        kernel_initializer: initializer of the convolution kernel.

    Input shape:
        `(batch, *spatial, channels)` with `spatial_dims` spatial axes.

    Output shape:
        `(batch, *spatial_out, filters)`.

    Examples:
        >>> layer = ConvNormAct(16, kernel_size=(3, 3, 1), spatial_dims=3)
        >>> tuple(layer(np.zeros((1, 8, 8, 4, 1), "float32")).shape)
        (1, 8, 8, 4, 16)
    """

    def __init__(
        self,
        filters: int,
        kernel_size: int | Sequence[int] = 3,
        strides: int | Sequence[int] = 1,
        spatial_dims: int = 2,
        norm: Literal["batch", "group", "instance", "none"] = "batch",
        groups: int = 8,
        activation: str | None = "relu",
        transpose: bool = False,
        padding: Literal["same", "valid"] = "same",
        use_bias: bool = True,
        norm_epsilon: float = 1e-3,
        norm_momentum: float = 0.99,
        kernel_initializer: str | keras.initializers.Initializer = "glorot_uniform",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.spatial_dims = check_spatial_dims(spatial_dims)
        self.filters = check_positive_int(filters, "filters")
        self.kernel_size = standardize_tuple(kernel_size, self.spatial_dims, "kernel_size")
        self.strides = standardize_tuple(strides, self.spatial_dims, "strides")
        self.norm = check_norm(norm, groups, [self.filters])
        self.groups = groups
        self.activation = check_activation(activation)
        self.transpose = bool(transpose)
        self.padding = check_choice(padding, "padding", ("same", "valid"))
        self.use_bias = bool(use_bias)
        self.norm_epsilon = norm_epsilon
        self.norm_momentum = norm_momentum
        self.kernel_initializer = kernel_initializer

        conv_cls = (_spatial.conv_transpose if self.transpose else _spatial.conv)(self.spatial_dims)
        self.conv = conv_cls(
            self.filters,
            self.kernel_size,
            strides=self.strides,
            padding=self.padding,
            use_bias=self.use_bias,
            kernel_initializer=kernel_initializer,
            name="conv",
            dtype=self.dtype_policy,
        )
        # Sub-layers take this layer's dtype policy, whatever policy is in force when it is built.
        self.norm_layer = make_norm(norm, groups, norm_epsilon, norm_momentum, name="norm", dtype=self.dtype_policy)
        self.act = make_activation(self.activation, name="act", dtype=self.dtype_policy)

    def chain(self):
        return [self.conv, self.norm_layer, self.act]

    def compute_output_shape(self, input_shape):
        return self.conv.compute_output_shape(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters,
            kernel_size=self.kernel_size,
            strides=self.strides,
            spatial_dims=self.spatial_dims,
            norm=self.norm,
            groups=self.groups,
            activation=self.activation,
            transpose=self.transpose,
            padding=self.padding,
            use_bias=self.use_bias,
            norm_epsilon=self.norm_epsilon,
            norm_momentum=self.norm_momentum,
            kernel_initializer=keras.initializers.serialize(
                keras.initializers.get(self.kernel_initializer)
            ),
        )
        return config
