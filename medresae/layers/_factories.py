"""Normalisation and activation layers chosen by name, validated up front."""

from keras import layers

from medresae._validation import check_choice, check_positive_int

NORMS = ("batch", "group", "instance", "none")
# leaky_relu uses slope 0.2 (the ResNetAE reference and most denoisers).
ACTIVATIONS = (
    "relu", "leaky_relu", "silu", "swish", "gelu", "elu", "selu", "mish",
    "tanh", "sigmoid", "softplus", "relu6", "softmax", "linear",
)
LEAKY_RELU_SLOPE = 0.2


def check_norm(norm, groups, channels, name="norm"):
    """Validates a norm name and, for group norm, that `groups` divides every
    channel count in `channels` (Keras only finds out at build time)."""
    check_choice(norm, name, NORMS)
    if norm == "group":
        groups = check_positive_int(groups, "groups")
        for c in channels:
            if c is not None and c % groups != 0:
                raise ValueError(
                    f"`groups` must divide the number of channels for group norm. "
                    f"Received: groups={groups} with {c} channels; choose a "
                    f"divisor of {c} or norm='instance'."
                )
    return norm


def check_activation(activation, name="activation"):
    """Validates an activation name (None means no activation)."""
    if activation is None:
        return None
    return check_choice(activation, name, ACTIVATIONS)


def make_norm(norm, groups=8, epsilon=1e-3, momentum=0.99, name=None, dtype=None):
    """A normalisation layer over the channel (last) axis, or None for 'none'."""
    if norm == "batch":
        return layers.BatchNormalization(epsilon=epsilon, momentum=momentum, name=name, dtype=dtype)
    if norm == "group":
        return layers.GroupNormalization(groups=groups, epsilon=epsilon, name=name, dtype=dtype)
    if norm == "instance":
        # groups=-1: one group per channel, i.e. instance normalisation.
        return layers.GroupNormalization(groups=-1, epsilon=epsilon, name=name, dtype=dtype)
    return None


def make_activation(activation, name=None, dtype=None):
    """An activation layer, or None for no activation."""
    if activation is None or activation == "linear":
        return None
    if activation == "leaky_relu":
        return layers.LeakyReLU(negative_slope=LEAKY_RELU_SLOPE, name=name, dtype=dtype)
    return layers.Activation(activation, name=name, dtype=dtype)
