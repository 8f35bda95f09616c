"""Residual blocks: basic, bottleneck, pre-activation and activation-before-add."""

from collections.abc import Sequence
from typing import Any, Literal

import keras

from medresae._validation import (
    check_choice,
    check_positive_int,
    check_spatial_dims,
    standardize_tuple,
)
from medresae.layers import _spatial
from medresae.layers._factories import check_activation, check_norm, make_activation, make_norm
from medresae.layers.conv_norm_act import build_chain, run_chain

VARIANTS = ("basic", "bottleneck", "preactivation", "act_before_add")


@keras.saving.register_keras_serializable(package="medresae")
class ResidualBlock(keras.layers.Layer):
    """A residual block in 2D or 3D, channels_last.

    Variants (``F`` = `filters`, ``k`` = `kernel_size`):

    - ``'basic'`` (He et al. 2015): conv k -> norm -> act -> conv k -> norm,
      add the shortcut, act. Output channels ``F``.
    - ``'bottleneck'`` (He et al. 2015, as in Keras' ResNet50): conv 1 ->
      norm -> act -> conv k -> norm -> act -> conv 1 (``expansion * F``) ->
      norm, add, act. The stride sits on the first 1x1 convolution, as in
      Keras' ResNet50. Output channels ``expansion * F``.
    - ``'preactivation'`` (He et al. 2016, "Identity mappings"): norm -> act
      -> conv k -> norm -> act -> conv k, add. A projection shortcut takes the
      pre-activated input. Output channels ``F``.
    - ``'act_before_add'`` (He et al. 2016, Fig. 4c; the ResNetAE block of
      Hou 2019): conv k -> norm -> act -> conv k -> norm -> act, add, nothing
      after the add. Output channels ``F``.

    The shortcut is the identity when the input already has the output
    channels and every stride is 1; otherwise a 1x1 projection convolution
    with the block's stride (followed by a norm, except for
    ``'preactivation'``).

    Args:
        filters: channels of the block (the inner width for 'bottleneck').
        variant: 'basic', 'bottleneck', 'preactivation' or 'act_before_add'.
        spatial_dims: 2 or 3.
        kernel_size: int or per-axis tuple (anisotropic kernels, e.g. (3, 3, 1)).
        strides: int or per-axis tuple; applied by the first convolution.
        norm: 'batch', 'group', 'instance' or 'none'.
        groups: groups for `norm='group'`; must divide every channel count.
        activation: activation name ('relu', 'leaky_relu' (slope 0.2),
            'silu', ...).
        expansion: output/inner channel ratio of 'bottleneck' (4 in ResNet-50).
        use_bias: add biases to the convolutions.
        norm_epsilon: epsilon of the normalisation layers.
        norm_momentum: momentum of batch normalisation.
        kernel_initializer: initializer of the convolution kernels.

    Input shape:
        `(batch, *spatial, channels)`.

    Output shape:
        `(batch, *spatial / strides, out_channels)` where `out_channels` is
        `filters`, or `expansion * filters` for 'bottleneck'.

    Raises:
        ValueError: for an unknown variant, norm or activation, filters <= 0,
            bad kernel sizes or strides, or groups that do not divide the
            channels.

    Examples:
        >>> block = ResidualBlock(16, variant="bottleneck", spatial_dims=3,
        ...                       strides=(2, 2, 1))
        >>> tuple(block(np.zeros((2, 8, 8, 4, 32), "float32")).shape)
        (2, 4, 4, 4, 64)
    """

    def __init__(
        self,
        filters: int,
        variant: Literal["basic", "bottleneck", "preactivation", "act_before_add"] = "basic",
        spatial_dims: int = 2,
        kernel_size: int | Sequence[int] = 3,
        strides: int | Sequence[int] = 1,
        norm: Literal["batch", "group", "instance", "none"] = "batch",
        groups: int = 8,
        activation: str | None = "relu",
        expansion: int = 4,
        use_bias: bool = True,
        norm_epsilon: float = 1e-3,
        norm_momentum: float = 0.99,
        kernel_initializer: str | keras.initializers.Initializer = "glorot_uniform",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.spatial_dims = check_spatial_dims(spatial_dims)
        self.filters = check_positive_int(filters, "filters")
        self.variant = check_choice(variant, "variant", VARIANTS)
        self.kernel_size = standardize_tuple(kernel_size, self.spatial_dims, "kernel_size")
        self.strides = standardize_tuple(strides, self.spatial_dims, "strides")
        self.expansion = check_positive_int(expansion, "expansion")
        self.out_channels = self.filters * (self.expansion if variant == "bottleneck" else 1)
        self.norm = check_norm(norm, groups, [self.filters, self.out_channels])
        self.groups = groups
        self.activation = check_activation(activation)
        self.use_bias = bool(use_bias)
        self.norm_epsilon = norm_epsilon
        self.norm_momentum = norm_momentum
        self.kernel_initializer = kernel_initializer
        self.shortcut = None
        self.shortcut_norm = None
        self.pre_norm = None
        self.pre_act = None
        self.branch = [layer for layer in self._make_branch() if layer is not None]
        self.out_act = (
            make_activation(self.activation, name="out_act", dtype=self.dtype_policy)
            if self.variant in ("basic", "bottleneck")
            else None
        )

    def _conv(self, filters, kernel_size, strides, name):
        return _spatial.conv(self.spatial_dims)(
            filters,
            kernel_size,
            strides=strides,
            padding="same",
            use_bias=self.use_bias,
            kernel_initializer=self.kernel_initializer,
            name=name,
            dtype=self.dtype_policy,
        )

    # Sub-layers take this layer's dtype policy, whatever policy is in force when it is built.
    def _norm(self, name):
        return make_norm(self.norm, self.groups, self.norm_epsilon, self.norm_momentum, name=name,
                         dtype=self.dtype_policy)

    def _act(self, name):
        return make_activation(self.activation, name=name, dtype=self.dtype_policy)

    def _make_branch(self):
        """The residual branch as an ordered list (None entries are skipped)."""
        f, k, s = self.filters, self.kernel_size, self.strides
        if self.variant == "basic":
            return [
                self._conv(f, k, s, "conv1"), self._norm("norm1"), self._act("act1"),
                self._conv(f, k, 1, "conv2"), self._norm("norm2"),
            ]
        if self.variant == "bottleneck":
            return [
                # conv1's stride is applied by `_spatial.subsample` before it (see there why).
                self._conv(f, 1, 1, "conv1"), self._norm("norm1"), self._act("act1"),
                self._conv(f, k, 1, "conv2"), self._norm("norm2"), self._act("act2"),
                self._conv(self.out_channels, 1, 1, "conv3"), self._norm("norm3"),
            ]
        if self.variant == "act_before_add":
            return [
                self._conv(f, k, s, "conv1"), self._norm("norm1"), self._act("act1"),
                self._conv(f, k, 1, "conv2"), self._norm("norm2"), self._act("act2"),
            ]
        # preactivation: the first norm/act live outside the branch because a
        # projection shortcut reads their output.
        self.pre_norm = self._norm("pre_norm")
        self.pre_act = self._act("pre_act")
        return [
            self._conv(f, k, s, "conv1"), self._norm("norm1"), self._act("act1"),
            self._conv(f, k, 1, "conv2"),
        ]

    def build(self, input_shape):
        in_channels = input_shape[-1]
        if in_channels is None:
            raise ValueError(
                "ResidualBlock needs a known channel count. "
                f"Received: input_shape={tuple(input_shape)}"
            )
        if self.variant == "preactivation":
            check_norm(self.norm, self.groups, [in_channels])
        if in_channels != self.out_channels or any(s != 1 for s in self.strides):
            # The stride is applied by `_spatial.subsample` before the 1x1 convolution.
            self.shortcut = self._conv(self.out_channels, 1, 1, "shortcut_conv")
            if self.variant != "preactivation":
                self.shortcut_norm = self._norm("shortcut_norm")
        build_chain([self.shortcut, self.shortcut_norm], _spatial.subsampled_shape(input_shape, self.strides))
        branch_input = build_chain([self.pre_norm, self.pre_act], input_shape)
        if self.variant == "bottleneck":
            branch_input = _spatial.subsampled_shape(branch_input, self.strides)
        build_chain(self.branch, branch_input)
        self.built = True

    def call(self, inputs, training=None):
        x = inputs
        if self.variant == "preactivation":
            x = run_chain([self.pre_norm, self.pre_act], x, training)
            shortcut = inputs if self.shortcut is None else self.shortcut(_spatial.subsample(x, self.strides))
        elif self.shortcut is None:
            shortcut = inputs
        else:
            shortcut = run_chain([self.shortcut, self.shortcut_norm], _spatial.subsample(inputs, self.strides),
                                 training)
        if self.variant == "bottleneck":
            x = _spatial.subsample(x, self.strides)
        x = run_chain(self.branch, x, training) + shortcut
        return run_chain([self.out_act], x)

    def compute_output_shape(self, input_shape):
        return (*_spatial.subsampled_shape(input_shape, self.strides)[:-1], self.out_channels)

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters,
            variant=self.variant,
            spatial_dims=self.spatial_dims,
            kernel_size=self.kernel_size,
            strides=self.strides,
            norm=self.norm,
            groups=self.groups,
            activation=self.activation,
            expansion=self.expansion,
            use_bias=self.use_bias,
            norm_epsilon=self.norm_epsilon,
            norm_momentum=self.norm_momentum,
            kernel_initializer=keras.initializers.serialize(
                keras.initializers.get(self.kernel_initializer)
            ),
        )
        return config

