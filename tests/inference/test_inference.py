"""denoise (tiled inference with Gaussian blending), gaussian_importance_map, tile_starts."""

import doctest

import keras
import numpy as np
import pytest
from helpers import random_batch

from medresae import inference
from medresae.inference import denoise, gaussian_importance_map, tile_starts
from medresae.intensity import IntensityNormalizer
from medresae.models import ResUNet


def identity_model(spatial_dims=3, channels=1):
    return keras.Sequential([keras.Input((None,) * spatial_dims + (channels,)), keras.layers.Identity()])


def conv_model(spatial_dims, kernel_size=3, out_channels=1, seed=0):
    conv = {2: keras.layers.Conv2D, 3: keras.layers.Conv3D}[spatial_dims]
    inputs = keras.Input((None,) * spatial_dims + (1,))
    init = keras.initializers.GlorotUniform(seed)
    outputs = conv(out_channels, kernel_size, padding="same", kernel_initializer=init)(inputs)
    return keras.Model(inputs, outputs)


def mri_like(shape, seed=0):
    # Positive, MRI-like intensities in arbitrary units.
    return (np.abs(random_batch(shape, seed)) * 300.0 + 50.0).astype("float32")


def assert_one_line_error(match, fn, *args, **kwargs):
    with pytest.raises(ValueError, match=match) as info:
        fn(*args, **kwargs)
    assert "\n" not in str(info.value), str(info.value)


def batch_shape_recorder():
    """A list, and an identity "model" function that appends each batch's shape to it."""
    seen = []

    def record(batch):
        seen.append(batch.shape)
        return batch * 1.0

    return seen, record


class ShapeRecorder(keras.layers.Layer):
    """The identity; remembers every concrete batch shape it is traced or run with."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.shapes = []

    def call(self, x):
        # Symbolic build-time shapes hold None (or JAX symbolic dimensions).
        if all(isinstance(s, int) for s in x.shape):
            self.shapes.append(tuple(x.shape))
        return x

    def compute_output_shape(self, input_shape):
        return input_shape


# ---------------------------------------------------------------- identity


@pytest.mark.parametrize("tile, overlap, tta, normalize", [
    (None, 0.5, False, "percentile"),
    (8, 0.5, False, "percentile"),
    ((16, 8, 4), 0.25, True, "window"),
    (8, 0.0, False, None),
    ((8, 16, 16), 0.75, True, None),
])
def test_identity_model_returns_the_input(tile, overlap, tta, normalize):
    volume = mri_like((23, 17, 9, 1))
    out = denoise(identity_model(), volume, tile=tile, overlap=overlap, tta=tta, normalize=normalize,
                  progress=False)
    assert out.shape == volume.shape and out.dtype == np.float32
    np.testing.assert_allclose(out, volume, atol=1e-5 * np.ptp(volume))


def test_identity_2d_and_integer_ct_input():
    image = mri_like((19, 13, 2), seed=1)
    out = denoise(identity_model(2, channels=2), image, tile=8, tta=True, progress=False)
    np.testing.assert_allclose(out, image, atol=1e-5 * np.ptp(image))
    ct = np.random.default_rng(2).integers(-1024, 2000, size=(11, 10, 5, 1)).astype("int16")
    out = denoise(identity_model(), ct, tile=8, normalize="window", progress=False)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, ct, atol=1e-5 * np.ptp(ct))


def test_pointwise_model_tiled_equals_whole_volume():
    # A 1x1x1 convolution has no context, so tiling must not change anything.
    model = conv_model(3, kernel_size=1, out_channels=2)
    volume = mri_like((21, 18, 7, 1))
    whole = denoise(model, volume, tile=(24, 18, 7), normalize=None, progress=False)
    tiled = denoise(model, volume, tile=8, overlap=0.5, normalize=None, progress=False)
    assert whole.shape == (21, 18, 7, 2)
    np.testing.assert_allclose(tiled, whole, rtol=1e-5, atol=1e-4)


def test_small_receptive_field_tiled_close_to_whole_volume():
    # A 3x3x3 convolution differs only at tile borders, where the Gaussian
    # weights are small: blending keeps the tiled result close.
    model = conv_model(3, kernel_size=3)
    volume = mri_like((24, 24, 8, 1))
    whole = denoise(model, volume, tile=(24, 24, 8), progress=False)
    tiled = denoise(model, volume, tile=(16, 16, 8), overlap=0.5, progress=False)
    error = np.abs(tiled - whole).max() / np.ptp(whole)
    assert error < 0.02, error


def test_given_normalizer_sets_the_units():
    # The model adds 0.1 in model units = 0.1 * (high - low) in input units.
    volume = mri_like((9, 8, 5, 1))
    norm = IntensityNormalizer("window", lower=0.0, upper=1000.0).fit(volume)
    out = denoise(lambda batch: batch + 0.1, volume, normalizer=norm, progress=False)
    np.testing.assert_allclose(out, volume + 100.0, rtol=1e-5, atol=1e-3)
    unfitted = IntensityNormalizer("percentile")
    out = denoise(identity_model(), volume, normalizer=unfitted, progress=False)
    assert not unfitted.fitted  # a fitted copy was used
    np.testing.assert_allclose(out, volume, atol=1e-5 * np.ptp(volume))


def test_channel_wise_scales_each_channel_on_its_own():
    # The model clips at 1 in model units: only voxels above the robust maximum of their scaling change.
    clip = keras.Sequential([keras.Input((None, None, None, 2)), keras.layers.ReLU(max_value=1.0)])
    volume = np.concatenate([mri_like((12, 10, 6, 1), seed=1), 0.001 * mri_like((12, 10, 6, 1), seed=2)], -1)
    pooled = denoise(clip, volume, progress=False)
    per_channel = denoise(clip, volume, progress=False, channel_wise=True)
    np.testing.assert_allclose(pooled[..., 1], volume[..., 1], rtol=1e-5)  # far below the pooled maximum
    for c in range(2):
        top = np.percentile(volume[..., c], 99.5)
        assert per_channel[..., c].max() == pytest.approx(top, rel=1e-4)
        assert top < volume[..., c].max()
    # A model trained channel-wise says so in its metadata; denoise follows it.
    clip.metadata = {"channel_wise": True}
    np.testing.assert_array_equal(denoise(clip, volume, progress=False), per_channel)


# ---------------------------------------------------------------- models


def test_res_unet_on_an_odd_volume():
    model = ResUNet(spatial_dims=3, filters=(4, 8), n_blocks=1, strides=(2, 2, 1), residual=False)
    volume = mri_like((20, 18, 7, 1))
    out = denoise(model, volume, tile=(8, 8, 4), overlap=0.5, tta=True, batch_size=3, progress=False)
    assert out.shape == volume.shape and np.all(np.isfinite(out))
    whole = denoise(model, volume, progress=False)
    assert whole.shape == volume.shape and np.all(np.isfinite(whole))


def test_fixed_input_size_model_uses_its_size_as_tile():
    model = ResUNet(spatial_dims=3, filters=(4, 8), n_blocks=1, strides=(2, 2, 1), input_size=(8, 8, 8))
    volume = mri_like((13, 9, 5, 1))  # smaller than the tile on the last axis
    out = denoise(model, volume, progress=False)  # residual model with a zero head: the identity
    np.testing.assert_allclose(out, volume, atol=1e-4 * np.ptp(volume))
    assert_one_line_error("`tile` must equal the model's fixed input size", denoise, model, volume, tile=4)


def test_2d_model_on_a_volume_goes_slice_by_slice():
    model = conv_model(2)
    volume = mri_like((14, 11, 6, 1))
    out = denoise(model, volume, normalize=None, progress=False)
    slices = np.moveaxis(volume, 2, 0)  # (Z, X, Y, 1): each slice predicted whole
    expected = np.moveaxis(model.predict(slices, verbose=0), 0, 2)
    assert out.shape == volume.shape
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-3)

    # Tiled slices, with flips along the two in-plane axes only.
    recorder = keras.Sequential([keras.Input((None, None, 1)), ShapeRecorder()])
    recorder.layers[0].shapes.clear()  # drop the shapes Keras built the model with
    out = denoise(recorder, volume, tile=(8, 8, 1), overlap=0.5, tta=True, batch_size=4, progress=False)
    np.testing.assert_allclose(out, volume, atol=1e-5 * np.ptp(volume))
    assert set(recorder.layers[0].shapes) == {(4, 8, 8, 1)}


@pytest.mark.parametrize("slice_axis", [0, 1, -3])
def test_2d_model_on_a_volume_along_another_axis(slice_axis):
    model = conv_model(2)
    volume = mri_like((9, 12, 7, 1))
    out = denoise(model, volume, normalize=None, slice_axis=slice_axis, progress=False)
    axis = slice_axis % 3  # negative values count spatial axes, not the channel axis
    slices = np.moveaxis(volume, axis, 0)  # each slice across that axis, predicted whole
    expected = np.moveaxis(model.predict(slices, verbose=0), 0, axis)
    assert out.shape == volume.shape and out.flags["C_CONTIGUOUS"]
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-3)
    # The last axis is the default.
    np.testing.assert_allclose(denoise(model, volume, normalize=None, slice_axis=2, progress=False),
                               denoise(model, volume, normalize=None, progress=False))
    assert_one_line_error("`slice_axis` must be 0, 1, 2", denoise, model, volume, slice_axis=3)
    assert_one_line_error("`slice_axis` applies to a 2D model on a 3D volume", denoise, conv_model(3), volume,
                          slice_axis=0)


def test_model_sees_one_batch_shape_only():
    seen, record = batch_shape_recorder()
    volume = mri_like((23, 17, 9, 1))
    denoise(record, volume, tile=8, overlap=0.5, batch_size=6, tta=True, progress=False)
    assert set(seen) == {(6, 8, 8, 8, 1)}
    # Starts 0,4,8,12,15 x 0,4,8,9 x 0,1 = 40 tiles, x 4 passes = 160: 27 calls of 6 (the last padded).
    assert len(seen) == 27

    # Through Keras: the layer is traced (JAX, TensorFlow) or run (torch) with one shape.
    model = keras.Sequential([keras.Input((None, None, None, 1)), ShapeRecorder()])
    model.layers[0].shapes.clear()  # drop the shapes Keras built the model with
    denoise(model, volume, tile=8, overlap=0.5, batch_size=4, progress=False)
    assert set(model.layers[0].shapes) == {(4, 8, 8, 8, 1)}
    # Fewer tiles than batch_size: the batch shrinks instead of computing zeros.
    seen.clear()
    denoise(record, volume[:8, :8, :8], tile=8, batch_size=4, progress=False)
    assert seen == [(1, 8, 8, 8, 1)]


def test_default_tiles_cover_a_volume_with_the_fewest_model_voxels():
    seen, record = batch_shape_recorder()

    # A 128^3 volume fits one tile: one call, no voxel computed twice.
    volume = mri_like((128, 128, 128, 1))
    out = denoise(record, volume, progress=False)
    assert seen == [(1, 128, 128, 128, 1)]
    np.testing.assert_allclose(out, volume, rtol=1e-5)

    # A larger one: tiles within the tile budget, calls within the call budget,
    # the tiles spread evenly over the calls.
    seen.clear()
    volume = mri_like((300, 40, 200, 1))
    denoise(record, volume, tta=True, progress=False)
    (shape,) = set(seen)
    batch, *tile, _ = shape
    assert np.prod(tile) <= inference.DEFAULT_TILE_VOXELS[3]
    assert batch * np.prod(tile) <= inference.DEFAULT_CALL_VOXELS[3]
    assert min(tile) >= min(inference.DEFAULT_MIN_TILE, 40)
    from medresae.tiling import choose_tile, plan_tiles

    assert tuple(tile) == choose_tile((300, 40, 200), (1, 1, 1), 0.25, inference.DEFAULT_TILE_VOXELS[3],
                                      inference.DEFAULT_MIN_TILE)
    jobs = 4 * np.prod([len(s) for s in plan_tiles((300, 40, 200), tile, (1, 1, 1), 0.25).starts])
    assert len(seen) == -(-jobs // batch) and len(seen) * batch - jobs < len(seen)
    # An explicit batch size still wins.
    seen.clear()
    denoise(record, volume, batch_size=2, progress=False)
    assert {s[0] for s in seen} == {2}


@pytest.mark.parametrize("sizes, divisor, overlap, max_voxels, min_size", [
    ((50, 37, 23), (4, 4, 1), 0.25, 20_000, 16),
    ((61, 64, 9), (8, 8, 1), 0.5, 9_000, 12),
    ((90, 33), (2, 2), 0.0, 1_000, 8),
    ((29, 30, 31), (1, 2, 4), 0.25, 3_000, 4),
])
def test_choose_tile_is_the_cheapest_tile_within_the_budget(sizes, divisor, overlap, max_voxels, min_size):
    import itertools
    import math

    from medresae.tiling import choose_tile, plan_tiles

    def cost(tile):
        plan = plan_tiles(sizes, tile, divisor, overlap)
        return math.prod(len(s) for s in plan.starts) * math.prod(tile)

    def round_up(n, d):
        return -(-n // d) * d

    ranges = [range(min(round_up(s, d), round_up(min_size, d)), round_up(s, d) + 1, d)
              for s, d in zip(sizes, divisor)]
    allowed = [t for t in itertools.product(*ranges) if math.prod(t) <= max_voxels]
    tile = choose_tile(sizes, divisor, overlap, max_voxels, min_size)
    assert tile in allowed
    assert cost(tile) == min(cost(t) for t in allowed)


def test_choose_tile_keeps_fixed_axes_and_falls_back_to_the_smallest_tile():
    from medresae.tiling import balanced_batch, choose_tile

    assert choose_tile((100, 100, 7), (4, 4, 1), fixed=(None, None, 8))[2] == 8
    # No tile fits the budget: the smallest allowed one.
    assert choose_tile((200, 200, 200), (4, 4, 4), max_voxels=10, min_size=32) == (32, 32, 32)
    assert [balanced_batch(n, 4) for n in (1, 4, 5, 9, 12)] == [1, 4, 3, 3, 4]
    assert_one_line_error("`max_batch` must be an integer >= 1", balanced_batch, 3, 0)


def test_progress_bar(capsys):
    denoise(identity_model(), mri_like((8, 8, 8, 1)), tile=8, progress=True)
    assert "1/1" in capsys.readouterr().out


# ---------------------------------------------------------------- errors


def test_bad_inputs_raise_one_line_errors():
    model = ResUNet(spatial_dims=3, filters=(4, 8), n_blocks=1, strides=(2, 2, 1))
    volume = mri_like((8, 8, 4, 1))
    assert_one_line_error(r"`volume` must be .* Received: volume.shape=\(8,\)", denoise, model, np.zeros(8))
    assert_one_line_error(r"`volume` .* volume.shape=\(1, 8, 8, 4, 1\)", denoise, model, volume[None])
    assert_one_line_error(r"`volume` must have shape \(X, Y, Z, channels\)", denoise, model, volume[..., 0])
    two = np.concatenate([volume] * 2, -1)
    assert_one_line_error("`volume` has 2 channel.* expects 1", denoise, model, two)
    bad = volume.copy()
    bad[1, 2, 3, 0] = np.nan
    assert_one_line_error("`volume` must contain only finite values; it has 1 NaN", denoise, model, bad)
    multiple = r"`tile` must be a multiple of the model's spatial_divisor \(2, 2, 1\)"
    assert_one_line_error(multiple + r".* tile=\(1, 1, 1\)", denoise, model, volume, tile=1)
    assert_one_line_error(multiple + r".* tile=\(6, 5, 3\)", denoise, model, volume, tile=(6, 5, 3))
    assert_one_line_error("`tile` must be an int or a tuple of 3", denoise, model, volume, tile=(8, 8))
    for overlap in (-0.1, 1.0, "0.5", True):
        assert_one_line_error("`overlap` must be a number in", denoise, model, volume, overlap=overlap)
    assert_one_line_error("`batch_size` must be an integer >= 1", denoise, model, volume, batch_size=0)
    assert_one_line_error("`sigma_scale`", denoise, model, volume, sigma_scale=0)
    assert_one_line_error("Unknown `normalize`", denoise, model, volume, normalize="zscore")
    assert_one_line_error("Unknown `dtype`", denoise, model, volume, dtype="int8")
    assert_one_line_error("`normalizer` must be", denoise, model, volume, normalizer="percentile")
    assert_one_line_error("`model` must be a Keras model", denoise, 3, volume)
    assert_one_line_error("the model must return an image of the shape it is given", denoise, lambda b: b[:, :-1],
                          volume, progress=False)
    assert_one_line_error("`model` must return one array", denoise, lambda b: [b, b], volume, progress=False)


# ---------------------------------------------------------------- helpers


@pytest.mark.parametrize("tile", [(7,), (8, 5), (16, 9, 1)])
def test_gaussian_importance_map(tile):
    w = gaussian_importance_map(tile)
    assert w.shape == tile and w.dtype == np.float32
    assert w.max() == pytest.approx(1.0) and w.min() > 0
    np.testing.assert_allclose(w, np.flip(w), rtol=1e-6)  # symmetric about the centre
    centre = tuple(n // 2 for n in tile)
    assert w[centre] == w.max()
    # Wider sigma: flatter map.
    assert gaussian_importance_map(tile, 0.5).min() > w.min() or min(tile) == 1


@pytest.mark.parametrize("size, tile, step", [
    (10, 4, 3), (11, 4, 3), (8, 8, 4), (9, 1, 1), (100, 32, 16), (33, 32, 1),
])
def test_tile_starts_cover_every_index(size, tile, step):
    starts = tile_starts(size, tile, step)
    assert starts[0] == 0 and starts[-1] == size - tile
    assert starts == sorted(set(starts))
    assert all(b - a <= step for a, b in zip(starts, starts[1:]))
    covered = np.zeros(size, bool)
    for s in starts:
        covered[s:s + tile] = True
    assert covered.all()


def test_helper_errors():
    assert_one_line_error("`tile` must be <= `size`", tile_starts, 4, 8, 2)
    assert_one_line_error("`step` must be <= `tile`", tile_starts, 10, 4, 5)
    assert_one_line_error("`step` must be an integer >= 1", tile_starts, 10, 4, 0)
    assert_one_line_error("`tile` must be an int or a tuple", gaussian_importance_map, "8")
    assert_one_line_error("`sigma_scale`", gaussian_importance_map, 8, sigma_scale=-1)


def test_docstring_examples():
    result = doctest.testmod(inference, extraglobs={"np": np, "keras": keras}, verbose=False)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("overlap", [0.0, 0.25, 0.5])
@pytest.mark.parametrize("sizes, tile, divisor, slicewise", [
    ((37, 20, 9), (16, 16, 4), (4, 4, 1), False),
    ((30, 18, 5), (16, 8), (8, 8), True),
])
def test_tile_plan_covers_the_volume_and_blends_back_to_the_identity(sizes, tile, divisor, slicewise, overlap):
    from medresae.tiling import plan_tiles, sliding_window_predict

    plan = plan_tiles(sizes, tile, divisor, overlap, slicewise=slicewise)
    covered = np.zeros(plan.padded_sizes, int)
    for position in plan.positions():
        covered[plan.index(position)] += 1
    assert covered.min() >= 1
    assert all(s % d == 0 for s, d in zip(plan.padded_sizes, divisor))
    x = np.random.default_rng(1).random(sizes + (2,)).astype("float32")
    seen = []
    out = sliding_window_predict(lambda b: b[..., :1] * 2, x, plan, batch_size=3, flips=[(), (0,)],
                                 progress=False, check=lambda b, p: seen.append(b.shape))
    np.testing.assert_allclose(out, 2 * x[..., :1], atol=1e-5)
    assert seen == [(3, *tile, 2)]
