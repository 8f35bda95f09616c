"""medresae: 2D/3D residual autoencoders that denoise MRI and CT volumes.

One model definition runs on TensorFlow, JAX and PyTorch through Keras 3;
pick the backend with the ``KERAS_BACKEND`` environment variable before
importing medresae. Importing medresae registers its layers and models with
Keras, so ``keras.saving.load_model`` can read medresae ``.keras`` files.
"""

from medresae import layers, models
from medresae._version import __version__
from medresae.models import ResNet, ResNetAE, ResNetVAE, ResUNet
from medresae.padding import crop_to_shape, pad_to_multiple, predict_padded

__all__ = [
    "__version__",
    "layers",
    "models",
    "ResNet",
    "ResNetAE",
    "ResNetVAE",
    "ResUNet",
    "crop_to_shape",
    "pad_to_multiple",
    "predict_padded",
]
