"""Backend-neutral Keras layers (keras and keras.ops only), 2D or 3D, channels_last."""

from medresae.layers.conv_norm_act import ConvNormAct
from medresae.layers.downsample import Downsample
from medresae.layers.residual_block import ResidualBlock
from medresae.layers.upsample import Upsample
from medresae.layers.variational_sampling import VariationalSampling

__all__ = ["ConvNormAct", "Downsample", "ResidualBlock", "Upsample", "VariationalSampling"]
