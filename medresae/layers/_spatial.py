"""2D/3D class lookups, so that `spatial_dims` is the only dimension switch."""

from keras import layers

from medresae._validation import check_spatial_dims

_CONV = {2: layers.Conv2D, 3: layers.Conv3D}
_CONV_TRANSPOSE = {2: layers.Conv2DTranspose, 3: layers.Conv3DTranspose}
_MAX_POOL = {2: layers.MaxPooling2D, 3: layers.MaxPooling3D}
_AVG_POOL = {2: layers.AveragePooling2D, 3: layers.AveragePooling3D}
_UPSAMPLING = {2: layers.UpSampling2D, 3: layers.UpSampling3D}
_ZERO_PADDING = {2: layers.ZeroPadding2D, 3: layers.ZeroPadding3D}
_GLOBAL_AVG_POOL = {2: layers.GlobalAveragePooling2D, 3: layers.GlobalAveragePooling3D}
_GLOBAL_MAX_POOL = {2: layers.GlobalMaxPooling2D, 3: layers.GlobalMaxPooling3D}


def conv(spatial_dims):
    """Conv2D or Conv3D."""
    return _CONV[check_spatial_dims(spatial_dims)]


def conv_transpose(spatial_dims):
    """Conv2DTranspose or Conv3DTranspose."""
    return _CONV_TRANSPOSE[check_spatial_dims(spatial_dims)]


def max_pool(spatial_dims):
    """MaxPooling2D or MaxPooling3D."""
    return _MAX_POOL[check_spatial_dims(spatial_dims)]


def avg_pool(spatial_dims):
    """AveragePooling2D or AveragePooling3D."""
    return _AVG_POOL[check_spatial_dims(spatial_dims)]


def upsampling(spatial_dims):
    """UpSampling2D or UpSampling3D."""
    return _UPSAMPLING[check_spatial_dims(spatial_dims)]


def zero_padding(spatial_dims):
    """ZeroPadding2D or ZeroPadding3D."""
    return _ZERO_PADDING[check_spatial_dims(spatial_dims)]


def global_pool(spatial_dims, kind):
    """GlobalAveragePooling or GlobalMaxPooling in 2D or 3D (`kind` 'avg' | 'max')."""
    table = _GLOBAL_AVG_POOL if kind == "avg" else _GLOBAL_MAX_POOL
    return table[check_spatial_dims(spatial_dims)]


def subsample(x, strides):
    """Every `strides`-th voxel along each spatial axis of a channels_last batch.

    A strided 1x1 convolution equals this followed by the same convolution at
    stride 1, and residual blocks compute it that way: on x86 CPUs torch's
    oneDNN kernel for the backward pass of a strided 1x1 convolution on
    channels-last input with fewer channels than its vector block (8 with
    AVX2, 16 with AVX-512) writes outside its buffer, which aborts or hangs
    training (uxlfoundation/oneDNN#6035, torch 2.13).
    """
    if all(s == 1 for s in strides):
        return x
    return x[(slice(None), *(slice(None, None, s) for s in strides), slice(None))]


def subsampled_shape(shape, strides):
    """The shape `subsample` gives for an input of `shape`, as any "same"-padded stride does (None stays None)."""
    spatial = [None if n is None else -(-n // s) for n, s in zip(shape[1:-1], strides)]
    return (shape[0], *spatial, shape[-1])
