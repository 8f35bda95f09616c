"""ResNetAE: the residual autoencoder of Hou (2019), in 2D or 3D."""

from collections.abc import Sequence
from typing import Any, Literal

import keras

from medresae.models import _resnet_ae_parts as parts
from medresae.models._functional import FunctionalModel


@keras.saving.register_keras_serializable(package="medresae")
class ResNetAE(FunctionalModel):
    """Residual autoencoder with multi-resolution skips (farrell236/ResNetAE).

    The defaults are the reference's (input 256x256x3, 8 residual blocks per
    level, 4 levels, `z_dim` 128, dense bottleneck of 128, multi-resolution
    skips, sigmoid output); with them this is the same network, layer for
    layer and parameter for parameter. Generalised to 3D, non-square
    inputs, any channel count, per-level anisotropic strides, and to a
    fully convolutional model (`bottleneck_dim=None`, any input size that
    is a multiple of `spatial_divisor`).

    Args:
        spatial_dims: 2 or 3.
        in_channels: channels of the input.
        input_size: spatial size (tuple of `spatial_dims` ints); required by
            the dense bottleneck. None (or None entries) for any size.
        n_blocks: residual blocks per level.
        filters: the width of each level, from the input's to the
            latent's; its length is one more than the number of
            down-samplings (the reference: 8, 16, 32, 64, 128). Models saved
            by earlier versions give `base_filters` and `n_levels` instead
            (the base, doubled per level); both are still read.
        z_dim: channels of the latent map.
        bottleneck_dim: size of the dense (vector) bottleneck, or None for
            a fully convolutional autoencoder.
        multires_skips: add the multi-resolution skips (the reference's
            green path).
        strides: per-level down-sampling: an int, a per-axis tuple such as
            (2, 2, 1) for thick slices, or one of those per level.
        out_channels: output channels (default: `in_channels`).
        norm: 'batch', 'group', 'instance' or 'none'.
        groups: groups of group norm.
        activation: activation of the hidden layers ('leaky_relu' = slope 0.2).
        output_activation: 'sigmoid' (reference, for data in [0, 1]), None
            for unbounded outputs, or another activation name.

    Input shape:
        `(batch, *input_size, in_channels)`.

    Output shape:
        `(batch, *input_size, out_channels)`.

    Examples:
        >>> model = ResNetAE(spatial_dims=3, in_channels=1, input_size=None,
        ...                  n_blocks=1, filters=(8, 16, 32), z_dim=8, bottleneck_dim=None,
        ...                  strides=(2, 2, 1), output_activation=None)
        >>> model.spatial_divisor
        (4, 4, 1)
        >>> model.predict(np.zeros((1, 16, 12, 5, 1), "float32"), verbose=0).shape
        (1, 16, 12, 5, 1)
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 3,
        input_size: Sequence[int | None] | None = (256, 256),
        n_blocks: int = 8,
        filters: list[int] | tuple[int, ...] = (8, 16, 32, 64, 128),
        z_dim: int = 128,
        bottleneck_dim: int | None = 128,
        multires_skips: bool = True,
        strides: int | Sequence[int] | Sequence[int | Sequence[int]] = 2,
        out_channels: int | None = None,
        norm: Literal["batch", "group", "instance", "none"] = "batch",
        groups: int = 8,
        activation: str | None = "leaky_relu",
        output_activation: str | None = "sigmoid",
        **kwargs: Any,
    ) -> None:
        filters = parts.widths_from_legacy(filters, kwargs)
        args = dict(
            spatial_dims=spatial_dims, in_channels=in_channels, input_size=input_size,
            n_blocks=n_blocks, filters=filters,
            z_dim=z_dim, bottleneck_dim=bottleneck_dim, multires_skips=bool(multires_skips), strides=strides,
            out_channels=out_channels, norm=norm, groups=groups, activation=activation,
            output_activation=output_activation,
        )
        super().__init__(args, **kwargs)

    def _graph(self, **config):
        checked = parts.validate_ae_args(config)
        inputs = keras.Input((*checked["input_size"], config["in_channels"]), name="image")
        widths, strides = checked["widths"], checked["level_strides"]
        z = parts.encode(inputs, config, widths, strides)
        z = self._bottleneck(z, config, checked)
        outputs = parts.decode(z, config, widths, strides, config["out_channels"] or config["in_channels"])
        return inputs, outputs, checked["spatial_divisor"]

    def _bottleneck(self, z, config, checked):
        """The latent map after the dense bottleneck (if any)."""
        if config["bottleneck_dim"] is None:
            return z
        h = keras.layers.Flatten(name="flatten")(z)
        h = keras.layers.Dense(config["bottleneck_dim"], name="bottleneck")(h)
        return parts.dense_to_latent(h, checked["latent_size"], config["z_dim"], name="unbottleneck")
