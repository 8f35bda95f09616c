"""medresae.models on the active backend, in 2D and 3D."""

import keras
import numpy as np
import pytest
from helpers import random_batch, run_layer_test

import medresae
from medresae.models import ResNet, ResNetAE, ResNetVAE, ResUNet

# Parameter counts of the references, built with their own code:
# farrell236/ResNetAE's ResNetAE() (TensorFlow, defaults) and
# keras.applications.ResNet50(weights=None).
RESNET_AE_REFERENCE_PARAMS = 11_378_619
RESNET50_REFERENCE_PARAMS = 25_636_712

SMALL_AE = dict(in_channels=2, n_blocks=1, filters=(4, 8, 16), z_dim=4)


def _check_model(model, x, tmp_path, expected_shape=None, target=None, **train_kwargs):
    clone = type(model).from_config(model.get_config())
    assert clone.count_params() == model.count_params()
    run_layer_test(model, x.shape, expected_shape or x.shape, tmp_path, x=x, target=x if target is None else target,
                   **train_kwargs)


@pytest.mark.parametrize(
    "spatial_dims, size, strides",
    [(2, (12, 20), 2), (3, (8, 12, 5), (2, 2, 1))],
    ids=["2d", "3d-anisotropic"],
)
def test_resnet_ae_fully_convolutional(spatial_dims, size, strides, tmp_path):
    model = ResNetAE(
        spatial_dims=spatial_dims, input_size=None, bottleneck_dim=None, strides=strides,
        output_activation=None, **SMALL_AE,
    )
    assert model.spatial_divisor == ((4, 4) if spatial_dims == 2 else (4, 4, 1))
    _check_model(model, random_batch((2, *size, 2)), tmp_path)


@pytest.mark.parametrize("spatial_dims, size", [(2, (16, 8)), (3, (8, 8, 4))])
def test_resnet_ae_dense_bottleneck_non_square(spatial_dims, size, tmp_path):
    model = ResNetAE(
        spatial_dims=spatial_dims, input_size=size, bottleneck_dim=6, multires_skips=False, **SMALL_AE
    )
    x = np.random.default_rng(0).uniform(size=(2, *size, 2)).astype("float32")
    _check_model(model, x, tmp_path)
    assert model.get_layer("bottleneck").units == 6
    y = model.predict(x, verbose=0)
    assert 0.0 <= y.min() and y.max() <= 1.0  # sigmoid output, as in the reference


def test_resnet_ae_reference_defaults_match_reference_parameter_count():
    model = ResNetAE()
    assert model.input_shape == (None, 256, 256, 3)
    assert model.output_shape == (None, 256, 256, 3)
    assert model.count_params() == RESNET_AE_REFERENCE_PARAMS
    blocks = [layer for layer in model.layers if isinstance(layer, medresae.layers.ResidualBlock)]
    assert len(blocks) == 2 * 4 * 8


@pytest.mark.parametrize("spatial_dims, size", [(2, (8, 12)), (3, (8, 4, 4))])
@pytest.mark.parametrize("bottleneck_dim", [None, 8], ids=["conv-latent", "dense-latent"])
def test_resnet_vae(spatial_dims, size, bottleneck_dim, tmp_path):
    model = ResNetVAE(
        spatial_dims=spatial_dims, input_size=size, bottleneck_dim=bottleneck_dim, beta=1e-3,
        seed=1, **SMALL_AE,
    )
    x = np.random.default_rng(0).uniform(size=(2, *size, 2)).astype("float32")
    _check_model(model, x, tmp_path)
    # deterministic at inference: the decoder reads mu
    np.testing.assert_allclose(model.predict(x, verbose=0), model.predict(x, verbose=0))
    model(x, training=True)
    assert len(model.losses) == 1
    assert float(keras.ops.convert_to_numpy(model.losses[0])) >= 0.0


def test_resnet_vae_without_kl_weight_adds_no_loss():
    model = ResNetVAE(spatial_dims=2, input_size=(8, 8), bottleneck_dim=None, beta=0.0, **SMALL_AE)
    model(random_batch((1, 8, 8, 2)), training=True)
    assert model.losses == []


@pytest.mark.parametrize(
    "kwargs, size",
    [
        (dict(spatial_dims=2, skip="add"), (12, 20)),
        (dict(spatial_dims=2, skip="concat", variant="preactivation", upsample="resize", downsample="max"), (8, 12)),
        (dict(spatial_dims=3, strides=(2, 2, 1), norm="group", groups=2), (8, 12, 5)),
        (dict(spatial_dims=3, skip="concat", variant="bottleneck", residual=False), (4, 8, 4)),
        (dict(spatial_dims=3, top_skip=False, residual=False), (8, 8, 4)),
    ],
    ids=["2d-add", "2d-concat-preact", "3d-anisotropic-group", "3d-bottleneck", "3d-n2v2-no-top-skip"],
)
def test_res_unet(kwargs, size, tmp_path):
    model = ResUNet(in_channels=1, filters=(4, 8), n_blocks=1, **kwargs)
    x = random_batch((2, *size, 1))
    # A residual model starts as the identity (zero head): learn to halve instead.
    _check_model(model, x, tmp_path, target=0.5 * x)


def test_res_unet_residual_learning_outputs_input_minus_head():
    model = ResUNet(spatial_dims=2, filters=(4, 8), n_blocks=1)
    head = model.get_layer("head")
    head.kernel.assign(np.zeros(head.kernel.shape, "float32"))
    head.bias.assign(np.zeros(head.bias.shape, "float32"))
    x = random_batch((1, 8, 8, 1))
    np.testing.assert_allclose(model.predict(x, verbose=0), x, atol=1e-6)


def test_res_unet_multichannel_output_and_divisor():
    model = ResUNet(
        spatial_dims=3, in_channels=2, out_channels=3, residual=False, filters=(4, 8, 8),
        strides=[(2, 2, 1), 2], n_blocks=[1, 1, 1],
    )
    assert model.spatial_divisor == (4, 4, 2)
    assert model.predict(random_batch((1, 8, 4, 2, 2)), verbose=0).shape == (1, 8, 4, 2, 3)


def test_res_unet_any_size_through_padding_helper():
    model = ResUNet(spatial_dims=3, filters=(4, 8, 8), n_blocks=1, strides=(2, 2, 2))
    x = random_batch((1, 37, 50, 23, 1))
    y = medresae.predict_padded(model, x)
    assert y.shape == (1, 37, 50, 23, 1)
    with pytest.raises(ValueError, match="spatial_divisor"):
        model.predict(x, verbose=0)


@pytest.mark.parametrize("spatial_dims, size", [(2, (32, 24)), (3, (16, 16, 8))])
def test_resnet_classifier(spatial_dims, size, tmp_path):
    model = ResNet(
        depth=18, spatial_dims=spatial_dims, in_channels=1, num_classes=3, filters=(4, 8, 16, 32),
        stem_strides=2 if spatial_dims == 2 else (2, 2, 1),
    )
    x = random_batch((4, *size, 1))
    target = np.eye(3, dtype="float32")[[0, 2, 1, 0]]
    _check_model(
        model, x, tmp_path, expected_shape=(4, 3), target=target,
        loss="categorical_crossentropy", learning_rate=1e-3,
    )
    assert np.allclose(model.predict(x, verbose=0).sum(axis=-1), 1.0, atol=1e-5)


@pytest.mark.parametrize("depth, blocks", [(34, 16), (50, 16), (101, 33)])
def test_resnet_backbone_depths(depth, blocks):
    model = ResNet(depth=depth, spatial_dims=3, in_channels=1, include_top=False, pooling=None, filters=(2, 4, 8, 16))
    residual = [layer for layer in model.layers if isinstance(layer, medresae.layers.ResidualBlock)]
    assert len(residual) == blocks
    channels = 2 * 8 * (4 if depth >= 50 else 1)
    assert model.output_shape == (None, None, None, None, channels)


def test_resnet50_matches_keras_applications():
    ours = ResNet(depth=50, spatial_dims=2, input_size=(224, 224))
    reference = keras.applications.ResNet50(weights=None)
    assert ours.count_params() == reference.count_params() == RESNET50_REFERENCE_PARAMS
    assert sorted(tuple(w.shape) for w in ours.weights) == sorted(
        tuple(w.shape) for w in reference.weights
    )
    assert ours.output_shape == reference.output_shape


def test_models_summary_and_plot(tmp_path, capsys):
    models = [
        ResNetAE(spatial_dims=3, input_size=None, bottleneck_dim=None, **SMALL_AE),
        ResNetVAE(spatial_dims=2, input_size=(8, 8), bottleneck_dim=4, **SMALL_AE),
        ResUNet(spatial_dims=3, filters=(4, 8)),
        ResNet(depth=18, spatial_dims=2, filters=(4, 8, 16, 32), num_classes=2),
    ]
    for model in models:
        model.summary()
    assert capsys.readouterr().out.count("Total params") == 4
    pydot = pytest.importorskip("pydot")
    try:
        pydot.Dot.create(pydot.Dot())
    except Exception:  # graphviz's `dot` binary is not installed
        pytest.skip("graphviz is not installed")
    keras.utils.plot_model(models[2], to_file=str(tmp_path / "model.png"), show_shapes=True)
    assert (tmp_path / "model.png").stat().st_size > 0


@pytest.mark.parametrize(
    "factory, message",
    [
        (lambda: ResUNet(spatial_dims=4), "spatial_dims=4"),
        (lambda: ResUNet(filters=(4, 0)), "filters[1]=0"),
        (lambda: ResUNet(filters=()), "filters=()"),
        (lambda: ResUNet(in_channels=1, out_channels=2), "residual=False"),
        (lambda: ResUNet(norm="group", groups=3, filters=(4, 8)), "groups=3"),
        (lambda: ResUNet(skip="mul"), "'mul'"),
        (lambda: ResUNet(variant="dense"), "'dense'"),
        (lambda: ResUNet(activation="sparkle"), "'sparkle'"),
        (lambda: ResUNet(filters=(4, 8), input_size=(9, 8, 8)), "input_size=(9, 8, 8)"),
        (lambda: ResUNet(filters=(4, 8, 16), strides=[2, 2, 2, 2]), "strides"),
        (lambda: ResNetAE(input_size=(250, 256)), "(250, 256)"),
        (lambda: ResNetAE(input_size=None), "bottleneck_dim"),
        (lambda: ResNetAE(filters=(8,)), "filters=(8,)"),
        (lambda: ResNetAE(n_levels=0), "n_levels=0"),
        (lambda: ResNet(filters=(8, 16)), "filters=(8, 16)"),
        (lambda: ResNetAE(norm="layer"), "'layer'"),
        (lambda: ResNetVAE(beta=-1.0), "beta=-1.0"),
        (lambda: ResNet(depth=42), "42"),
        (lambda: ResNet(spatial_dims=1), "spatial_dims=1"),
        (lambda: ResNet(pooling="sum", include_top=False), "'sum'"),
    ],
)
def test_bad_model_arguments(factory, message):
    with pytest.raises(ValueError) as info:
        factory()
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_wrong_input_rank_and_size_raise_value_error():
    model = ResUNet(spatial_dims=3, filters=(4, 8), n_blocks=1)
    with pytest.raises(ValueError, match="rank 5"):
        model.predict(random_batch((1, 8, 8, 1)), verbose=0)
    with pytest.raises(ValueError, match=r"\(2, 2, 2\)"):
        model.predict(random_batch((1, 8, 8, 7, 1)), verbose=0)
    with pytest.raises(ValueError, match="rank 5"):
        model(random_batch((1, 8, 8, 1)))


def test_names_of_earlier_versions_build_the_same_models():
    # .keras files written by earlier versions store these names in their configs.
    from medresae.layers import Downsample, Upsample

    pairs = [
        (dict(spatial_dims=2, in_channels=1, input_size=None, bottleneck_dim=None, n_blocks=1, z_dim=4,
              base_filters=4, n_levels=2),
         dict(spatial_dims=2, in_channels=1, input_size=None, bottleneck_dim=None, n_blocks=1, z_dim=4,
              filters=(4, 8, 16))),
    ]
    for old, new in pairs:
        for cls in (ResNetAE, ResNetVAE):
            a, b = cls(**old), cls(**new)
            assert [w.shape for w in a.weights] == [w.shape for w in b.weights]
            assert list(a.get_config()["filters"]) == [4, 8, 16] and "n_levels" not in a.get_config()
    a = ResNet(depth=18, spatial_dims=2, in_channels=1, num_classes=2, width=4)
    b = ResNet(depth=18, spatial_dims=2, in_channels=1, num_classes=2, filters=(4, 8, 16, 32))
    assert [w.shape for w in a.weights] == [w.shape for w in b.weights]
    for cls in (Downsample, Upsample):
        layer = cls.from_config({"name": "x", "filters": 4, "factor": [2, 2, 1], "spatial_dims": 3})
        assert layer.strides == (2, 2, 1) and "factor" not in layer.get_config()
        assert keras.layers.deserialize(keras.layers.serialize(layer)).strides == (2, 2, 1)
