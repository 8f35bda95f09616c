"""ResNetVAE: ResNetAE with a variational bottleneck."""

from collections.abc import Sequence
from typing import Any, Literal

import keras

from medresae._validation import check_positive_number
from medresae.layers import _spatial
from medresae.layers.variational_sampling import VariationalSampling
from medresae.models import _resnet_ae_parts as parts
from medresae.models._functional import FunctionalModel
from medresae.models.resnet_ae import ResNetAE


@keras.saving.register_keras_serializable(package="medresae")
class ResNetVAE(ResNetAE):
    """ResNetAE with a variational bottleneck (farrell236/ResNetAE's ResNetVAE).

    The encoder predicts a mean and a log-variance: two dense layers of
    `bottleneck_dim` (reference), or two 1x1 convolutions of `z_dim`
    channels when `bottleneck_dim=None` (fully convolutional). In training,
    `z = mu + exp(log_var / 2) * eps` with a seeded Keras RNG and
    `beta * KL(q(z|x) || N(0, 1))` is added to the model's losses
    (`add_loss`); at inference the decoder reads `mu`, so predictions are
    deterministic. The model has one output, the reconstruction, so
    `model.fit(x, x)` trains it.

    Args:
        beta: weight of the KL term.
        seed: seed of the sampling RNG.
        **others: as in `ResNetAE`.

    Examples:
        >>> vae = ResNetVAE(spatial_dims=2, in_channels=1, input_size=(32, 32),
        ...                 n_blocks=1, filters=(8, 16, 32), z_dim=8, bottleneck_dim=16,
        ...                 beta=0.1, seed=0)
        >>> vae.predict(np.zeros((2, 32, 32, 1), "float32"), verbose=0).shape
        (2, 32, 32, 1)
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
        beta: float = 1.0,
        seed: int | None = None,
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
        check_positive_number(beta, "beta", allow_zero=True)
        FunctionalModel.__init__(self, dict(args, beta=beta, seed=seed), **kwargs)

    def _bottleneck(self, h, config, checked):
        """Mean and log-variance, then a sample (the mean at inference)."""
        if config["bottleneck_dim"] is not None:
            h = keras.layers.Flatten(name="flatten")(h)
            mu = keras.layers.Dense(config["bottleneck_dim"], name="mu")(h)
            log_var = keras.layers.Dense(config["bottleneck_dim"], name="log_var")(h)
        else:
            conv = _spatial.conv(config["spatial_dims"])
            mu = conv(config["z_dim"], 1, name="mu")(h)
            log_var = conv(config["z_dim"], 1, name="log_var")(h)
        z = VariationalSampling(beta=config["beta"], seed=config["seed"], name="sampling")(mu, log_var)
        if config["bottleneck_dim"] is None:
            return z
        return parts.dense_to_latent(z, checked["latent_size"], config["z_dim"], name="unbottleneck")
