"""medresae: 2D/3D residual autoencoders that denoise MRI and CT volumes.

One model definition runs on TensorFlow, JAX and PyTorch through Keras 3;
pick the backend with the ``KERAS_BACKEND`` environment variable before
importing medresae. When nothing names one and TensorFlow (Keras' default)
is not installed, importing medresae sets ``KERAS_BACKEND`` to JAX or PyTorch,
whichever is installed (see ``medresae info``). Importing medresae registers
its layers and models with Keras, so ``keras.saving.load_model`` can read
medresae ``.keras`` files.
"""

import sys as _sys

from medresae._backend_choice import choose_backend as _choose_backend

if "keras" not in _sys.modules:
    _choose_backend(apply=True)

from medresae import layers, models  # noqa: E402  (Keras is imported after the backend is chosen)
from medresae._version import __version__  # noqa: E402
from medresae.models import ResNet, ResNetAE, ResNetVAE, ResUNet  # noqa: E402
from medresae.padding import crop_to_shape, pad_to_multiple, predict_padded  # noqa: E402

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
