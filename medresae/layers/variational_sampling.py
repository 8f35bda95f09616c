"""The reparameterisation trick with a KL penalty, for variational autoencoders."""

from typing import Any

import keras
from keras import ops

from medresae._validation import check_positive_number


@keras.saving.register_keras_serializable(package="medresae")
class VariationalSampling(keras.layers.Layer):
    """Samples ``z = mu + exp(log_var / 2) * eps`` in training and adds ``beta * KL``.

    The KL divergence between N(mu, exp(log_var)) and N(0, 1) is summed over
    the latent axes and averaged over the batch, multiplied by `beta`, and
    added with `add_loss`, so `model.fit` minimises it with the
    reconstruction loss. At inference (`training=False`) the layer returns
    `mu`: predictions are deterministic.

    Args:
        beta: weight of the KL term (1.0 is the classic VAE; 0 disables it).
        seed: int seed of the layer's `keras.random.SeedGenerator`, so that
            training runs repeat on one backend.

    Call arguments:
        mu: the mean, any shape `(batch, ...)`.
        log_var: the log-variance, same shape as `mu`.
        training: sample (True) or return `mu` (False/None).

    Examples:
        >>> layer = VariationalSampling(beta=0.5, seed=1)
        >>> mu = np.zeros((2, 4), "float32")
        >>> tuple(layer(mu, mu, training=False).shape)
        (2, 4)
    """

    def __init__(self, beta: float = 1.0, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.beta = check_positive_number(beta, "beta", allow_zero=True)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, mu, log_var, training=None):
        if self.beta > 0:
            kl = -0.5 * (1.0 + log_var - ops.square(mu) - ops.exp(log_var))
            kl = ops.sum(ops.reshape(kl, (ops.shape(kl)[0], -1)), axis=-1)
            self.add_loss(self.beta * ops.mean(kl))
        if not training:
            return mu
        eps = keras.random.normal(ops.shape(mu), dtype=mu.dtype, seed=self.seed_generator)
        return mu + ops.exp(0.5 * log_var) * eps

    def compute_output_shape(self, mu_shape, log_var_shape=None):
        return mu_shape

    def get_config(self):
        config = super().get_config()
        config.update(beta=self.beta, seed=self.seed)
        return config
