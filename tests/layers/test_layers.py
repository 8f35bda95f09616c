"""medresae.layers on the active backend, in 2D and 3D."""

import keras
import numpy as np
import pytest
from helpers import assert_config_round_trip, random_batch, run_layer_test

from medresae.layers import ConvNormAct, Downsample, ResidualBlock, Upsample, VariationalSampling
from medresae.layers.conv_norm_act import run_chain

SPATIAL = {2: (8, 6), 3: (8, 6, 4)}


def _shape(spatial_dims, channels, batch=2):
    return (batch, *SPATIAL[spatial_dims], channels)


def _check_layer(layer, input_shape, expected_shape, tmp_path):
    run_layer_test(layer, input_shape, expected_shape, tmp_path)


@pytest.mark.parametrize("spatial_dims", [2, 3])
@pytest.mark.parametrize("variant", ["basic", "bottleneck", "preactivation", "act_before_add"])
def test_residual_block_variants(variant, spatial_dims, tmp_path):
    block = ResidualBlock(4, variant=variant, spatial_dims=spatial_dims)
    out_channels = 16 if variant == "bottleneck" else 4
    # 4 input channels: identity shortcut except for the bottleneck's expansion.
    _check_layer(block, _shape(spatial_dims, 4), _shape(spatial_dims, out_channels), tmp_path)
    assert (block.shortcut is None) == (variant != "bottleneck")


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(norm="group", groups=2, activation="leaky_relu"),
        dict(norm="instance", activation="silu"),
        dict(norm="none", activation="gelu", use_bias=False),
        dict(variant="preactivation", norm="group", groups=2),
    ],
    ids=["group-leaky", "instance-silu", "none-gelu", "preact-group"],
)
def test_residual_block_norms_and_activations(kwargs, tmp_path):
    block = ResidualBlock(4, spatial_dims=3, **kwargs)
    _check_layer(block, _shape(3, 2), _shape(3, 4), tmp_path)
    assert block.shortcut is not None  # 2 -> 4 channels needs a projection


def test_residual_block_anisotropic_strides_and_kernel(tmp_path):
    block = ResidualBlock(6, spatial_dims=3, strides=(2, 2, 1), kernel_size=(3, 3, 1))
    _check_layer(block, (2, 8, 6, 3, 6), (2, 4, 3, 3, 6), tmp_path)
    assert block.shortcut is not None  # a stride needs a projection
    conv = block.branch[0]
    assert tuple(conv.kernel_size) == (3, 3, 1) and tuple(conv.strides) == (2, 2, 1)


def test_bottleneck_matches_resnet50_block_layout():
    block = ResidualBlock(64, variant="bottleneck", spatial_dims=2)
    block.build((None, 56, 56, 64))
    kernels = [tuple(w.shape) for w in block.weights if w.path.endswith("kernel")]
    # 1x1 64 -> 64, 3x3 64 -> 64, 1x1 64 -> 256, projection 1x1 64 -> 256
    assert sorted(kernels) == sorted([(1, 1, 64, 64), (3, 3, 64, 64), (1, 1, 64, 256), (1, 1, 64, 256)])


@pytest.mark.parametrize("variant", ["basic", "bottleneck"])
def test_strided_block_with_few_channels_equals_strided_1x1_convolutions_and_trains(variant, tmp_path):
    # 4 input channels and odd sizes: the block applies its 1x1 convolutions' stride by subsampling
    # first; the result must be that of Keras' strided 1x1 convolutions ("same" padding), and training
    # must run (torch's oneDNN kernel for a strided 1x1 convolution's backward pass breaks here).
    x = random_batch((4, 9, 7, 4))
    block = ResidualBlock(4, variant=variant, spatial_dims=2, strides=2)
    _check_layer(block, x.shape, (4, 5, 4, block.out_channels), tmp_path)

    def strided(conv):
        reference = keras.layers.Conv2D(conv.filters, 1, strides=2, padding="same")
        reference.build(x.shape)
        reference.set_weights(conv.get_weights())
        return reference

    branch = block.branch if variant == "basic" else [strided(block.branch[0]), *block.branch[1:]]
    expected = run_chain([*branch], x) + run_chain([strided(block.shortcut), block.shortcut_norm], x)
    expected = run_chain([block.out_act], expected)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(block(x)), keras.ops.convert_to_numpy(expected),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_conv_norm_act(spatial_dims, tmp_path):
    layer = ConvNormAct(5, kernel_size=3, strides=2, spatial_dims=spatial_dims, norm="instance")
    expected = (2, *[-(-n // 2) for n in SPATIAL[spatial_dims]], 5)
    _check_layer(layer, _shape(spatial_dims, 3), expected, tmp_path)


@pytest.mark.parametrize("mode", ["conv", "max", "avg"])
def test_downsample(mode, tmp_path):
    layer = Downsample(6, strides=(2, 2, 1), spatial_dims=3, mode=mode)
    _check_layer(layer, _shape(3, 3), (2, 4, 3, 4, 6), tmp_path)


@pytest.mark.parametrize("spatial_dims", [2, 3])
@pytest.mark.parametrize("mode", ["transpose", "resize"])
def test_upsample(mode, spatial_dims, tmp_path):
    layer = Upsample(3, strides=2, spatial_dims=spatial_dims, mode=mode)
    expected = (2, *[2 * n for n in SPATIAL[spatial_dims]], 3)
    _check_layer(layer, _shape(spatial_dims, 4), expected, tmp_path)


def test_variational_sampling_is_seeded_deterministic_at_inference_and_adds_kl():
    layer = VariationalSampling(beta=0.5, seed=3)
    assert_config_round_trip(layer)
    mu = random_batch((4, 6))
    log_var = np.full((4, 6), -1.0, "float32")
    np.testing.assert_allclose(np.asarray(layer(mu, log_var, training=False)), mu)
    kl = 0.5 * np.mean(np.sum(-0.5 * (1.0 - 1.0 - mu**2 - np.exp(-1.0)), axis=-1))
    np.testing.assert_allclose(float(keras.ops.convert_to_numpy(layer.losses[-1])), kl, rtol=1e-5)
    a = np.asarray(VariationalSampling(seed=3)(mu, log_var, training=True))
    b = np.asarray(VariationalSampling(seed=3)(mu, log_var, training=True))
    np.testing.assert_allclose(a, b)
    assert not np.allclose(a, mu)


@pytest.mark.parametrize(
    "factory, message",
    [
        (lambda: ResidualBlock(4, spatial_dims=4), "spatial_dims=4"),
        (lambda: ResidualBlock(0), "filters=0"),
        (lambda: ResidualBlock(-3), "filters=-3"),
        (lambda: ResidualBlock(4, variant="wide"), "'wide'"),
        (lambda: ResidualBlock(4, norm="layer"), "'layer'"),
        (lambda: ResidualBlock(4, activation="sparkle"), "'sparkle'"),
        (lambda: ResidualBlock(6, norm="group", groups=4), "groups=4"),
        (lambda: ResidualBlock(4, spatial_dims=3, strides=(2, 2)), "strides"),
        (lambda: ResidualBlock(4, kernel_size=0), "kernel_size"),
        (lambda: ConvNormAct(4, padding="full"), "'full'"),
        (lambda: Downsample(4, mode="stride"), "'stride'"),
        (lambda: Upsample(4, spatial_dims=3, mode="resize", interpolation="bilinear"), "'bilinear'"),
        (lambda: VariationalSampling(beta=-1.0), "beta=-1.0"),
    ],
)
def test_bad_arguments_raise_value_error_naming_them(factory, message):
    with pytest.raises(ValueError, match=None) as info:
        factory()
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_group_norm_checks_input_channels_of_preactivation_block():
    block = ResidualBlock(4, variant="preactivation", norm="group", groups=4, spatial_dims=2)
    with pytest.raises(ValueError, match="6 channels"):
        block.build((None, 8, 8, 6))


def test_layers_serialise_under_medresae_package():
    block = ResidualBlock(4)
    assert keras.saving.get_registered_name(type(block)) == "medresae>ResidualBlock"
