"""Functional models built from medresae.layers, 2D or 3D, any channel count."""

from medresae.models.res_unet import ResUNet
from medresae.models.resnet import ResNet
from medresae.models.resnet_ae import ResNetAE
from medresae.models.resnet_vae import ResNetVAE

__all__ = ["ResNet", "ResNetAE", "ResNetVAE", "ResUNet"]
