"""Property tests (hypothesis): tiled inference is exact for the identity, noise is shaped and seeded.

Few examples per property and no deadline, so every backend runs them in
seconds; no example database is written (database=None).
"""

import keras
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from medresae.inference import denoise
from medresae.noise import NOISE_MODELS, NoiseSpec, add_noise, gaussian, low_dose_ct, noncentral_chi, rician

FAST = settings(max_examples=20, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

_MODELS = {}


def keras_identity(spatial_dims, channels):
    """One Keras identity model per (dims, channels), reused across examples."""
    key = (spatial_dims, channels)
    if key not in _MODELS:
        inputs = keras.Input((None,) * spatial_dims + (channels,))
        _MODELS[key] = keras.Model(inputs, keras.layers.Identity()(inputs))
    return _MODELS[key]


class DivisorIdentity:
    """A callable identity that declares a `spatial_divisor`, so `denoise` pads and crops."""

    def __init__(self, divisor):
        self.spatial_divisor = tuple(divisor)

    def __call__(self, batch):
        assert all(s % d == 0 for s, d in zip(batch.shape[1:-1], self.spatial_divisor)), batch.shape
        return batch


def _volume(shape, seed):
    return np.random.default_rng(seed).uniform(-100.0, 1000.0, shape).astype("float32")


def _assert_identity(out, volume):
    assert out.shape == volume.shape and out.dtype == np.float32
    # 1e-5 of the range; of the largest magnitude where the range is (near) zero, since
    # blending several passes in float32 may move a value by an ulp of itself.
    scale = max(float(np.ptp(volume)), float(np.abs(volume).max()), 1.0)
    np.testing.assert_allclose(out, volume, rtol=0, atol=1e-5 * scale)


# ---------------------------------------------------------------- tiled inference


@st.composite
def tiling(draw, spatial_dims, max_side=16):
    sizes = tuple(draw(st.integers(1, max_side)) for _ in range(spatial_dims))
    tile = tuple(draw(st.integers(1, max_side)) for _ in range(spatial_dims))
    return dict(
        sizes=sizes,
        tile=tile,
        channels=draw(st.integers(1, 2)),
        overlap=draw(st.sampled_from([0.0, 0.25, 0.5, 0.75, 0.9])),
        tta=draw(st.booleans()),
        normalize=draw(st.sampled_from([None, "percentile"])),
        batch_size=draw(st.integers(1, 5)),
        seed=draw(st.integers(0, 2**16)),
    )


@FAST
@given(case=tiling(3))
def test_tiled_identity_keras_model_3d_returns_its_input(case):
    volume = _volume(case["sizes"] + (case["channels"],), case["seed"])
    assume(case["normalize"] is None or np.ptp(volume) > 0)
    out = denoise(keras_identity(3, case["channels"]), volume, tile=case["tile"], overlap=case["overlap"],
                  batch_size=case["batch_size"], tta=case["tta"], normalize=case["normalize"], progress=False)
    _assert_identity(out, volume)


@FAST
@given(case=tiling(2, max_side=24), slices=st.integers(0, 3))
def test_tiled_identity_keras_model_2d_returns_its_input(case, slices):
    # slices=0: a 2D image (X, Y, C); else a volume denoised slice by slice.
    shape = case["sizes"] + ((slices,) if slices else ()) + (case["channels"],)
    volume = _volume(shape, case["seed"])
    assume(case["normalize"] is None or np.ptp(volume) > 0)
    out = denoise(keras_identity(2, case["channels"]), volume, tile=case["tile"], overlap=case["overlap"],
                  batch_size=case["batch_size"], tta=case["tta"], normalize=case["normalize"], progress=False)
    _assert_identity(out, volume)


@FAST
@given(
    spatial_dims=st.sampled_from([2, 3]),
    data=st.data(),
    overlap=st.sampled_from([0.0, 0.3, 0.6, 0.8]),
    tta=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_tiled_identity_with_a_spatial_divisor_pads_and_crops_back(spatial_dims, data, overlap, tta, seed):
    divisor = tuple(data.draw(st.sampled_from([1, 2, 4])) for _ in range(spatial_dims))
    # Sizes from the divisor up (smaller ones are refused), tiles as multiples of it.
    sizes = tuple(data.draw(st.integers(d, 20)) for d in divisor)
    tile = tuple(d * data.draw(st.integers(1, 5)) for d in divisor)
    volume = _volume(sizes + (1,), seed)
    out = denoise(DivisorIdentity(divisor), volume, tile=tile, overlap=overlap, tta=tta, normalize=None,
                  progress=False)
    _assert_identity(out, volume)


# ---------------------------------------------------------------- noise

REAL_DTYPES = ["float16", "float32", "float64", "int16", "uint8", "int32", "bool"]


@st.composite
def images(draw, min_dims=1, max_dims=4, max_side=6):
    """Arrays of the real dtypes the noise functions accept, with values an image could hold."""
    dtype = np.dtype(draw(st.sampled_from(REAL_DTYPES)))
    shape = draw(hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=1, max_side=max_side))
    if dtype.kind == "f":
        elements = st.floats(-1000, 1000, width=min(dtype.itemsize * 8, 32))
    elif dtype.kind == "b":
        elements = st.booleans()
    else:
        info = np.iinfo(dtype)
        elements = st.integers(max(info.min, -1000), min(info.max, 1000))
    return draw(hnp.arrays(dtype, shape, elements=elements))


def _assert_seeded(make, shape):
    """`make(seed)` keeps `shape`, returns finite float32, and is a function of the seed."""
    a, b, c = make(7), make(7), make(8)
    assert a.shape == shape and a.dtype == np.float32 and np.all(np.isfinite(a))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@FAST
@given(x=images(), sigma=st.floats(0.1, 100.0), coils=st.integers(1, 8),
       which=st.sampled_from(["gaussian", "rician", "chi"]))
def test_mri_noise_keeps_shape_returns_float32_and_is_seeded(x, sigma, coils, which):
    make = {
        "gaussian": lambda seed: gaussian(x, sigma, rng=seed),
        "rician": lambda seed: rician(x, sigma, rng=seed),
        "chi": lambda seed: noncentral_chi(x, sigma, coils=coils, rng=seed),
    }[which]
    _assert_seeded(make, x.shape)
    if which != "gaussian":
        assert make(0).min() >= 0  # magnitudes


@settings(FAST, max_examples=10)
@given(
    shape=st.one_of(
        st.tuples(st.integers(4, 12), st.integers(4, 12)),
        st.tuples(st.integers(4, 10), st.integers(4, 10), st.integers(1, 3)),
    ),
    dtype=st.sampled_from(["float32", "float64", "int16"]),
    i0=st.floats(1e3, 1e6),
    electronic=st.sampled_from([0.0, 5.0]),
    seed=st.integers(0, 2**16),
)
def test_low_dose_ct_keeps_shape_returns_float32_and_is_seeded(shape, dtype, i0, electronic, seed):
    hu = np.random.default_rng(seed).uniform(-1000, 2000, shape).astype(dtype)
    _assert_seeded(lambda s: low_dose_ct(hu, i0, electronic_sigma=electronic, rng=s), shape)


@st.composite
def spec_texts(draw):
    model = draw(st.sampled_from(NOISE_MODELS))
    if model == "ct":
        low = draw(st.sampled_from([2e3, 1e4, 5e4]))
    else:
        low = draw(st.sampled_from([0.01, 0.05, 0.2] if draw(st.booleans()) else [1.0, 12.0]))
    text = f"{model}:{low:g}"
    if draw(st.booleans()):
        text += f"-{low * draw(st.sampled_from([1.5, 4.0])):g}"
    options = []
    if model != "ct" and low >= 1:
        options.append("abs")
    if model == "chi" and draw(st.booleans()):
        options.append(f"coils={draw(st.integers(1, 8))}")
    if model == "ct" and draw(st.booleans()):
        options.append(f"electronic={draw(st.sampled_from([1, 5.5]))}")
    return text + (":" + ",".join(draw(st.permutations(options))) if options else "")


@settings(FAST, max_examples=25)
@given(text=spec_texts(), data=st.data())
def test_noise_spec_strings_round_trip_keep_shape_and_are_seeded(text, data):
    spec = NoiseSpec.parse(text)
    assert NoiseSpec.parse(str(spec)) == spec
    if spec.model == "ct":  # slices of HU
        x = data.draw(hnp.arrays("float32", st.tuples(st.integers(4, 10), st.integers(4, 10)),
                                 elements=st.floats(-1000, 2000, width=32)))
    else:
        x = data.draw(images(max_side=5))
    # A relative level of an all-zero array is zero noise: the array comes back as it is; so is one of
    # an array of values near float32's smallest (1e-38), whose noise underflows to zero.
    assume(not spec.relative or np.max(np.abs(np.asarray(x, dtype=np.float64))) > 1e-30)
    _assert_seeded(lambda seed: spec.apply(x, rng=seed), x.shape)
    level = spec.sample_level(0)
    assert spec.low <= level <= spec.high
    _assert_seeded(lambda seed: add_noise(x, spec.model, level, relative=spec.relative, coils=spec.coils,
                                          rng=seed), x.shape)


@pytest.mark.parametrize("model", ["gaussian", "rician", "chi"])
def test_relative_noise_of_an_all_zero_array_is_zero(model):
    # The documented exception to "different seeds differ" above.
    x = np.zeros((4, 4), "float32")
    np.testing.assert_array_equal(add_noise(x, model, 0.1, rng=1), add_noise(x, model, 0.1, rng=2))
