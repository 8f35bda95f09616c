"""medresae.transforms on real MONAI pipelines."""

import numpy as np
import pytest
from monai.transforms import Compose, RandWeightedCropd

from medresae.transforms import ForegroundWeightd, InvertibleScaleIntensityd, N2VMaskd, RandAddNoised


def _image(shape=(1, 24, 20, 6), seed=0):
    return np.random.default_rng(seed).uniform(0.2, 1.0, size=shape).astype("float32")


def test_rand_add_noised_random_level_in_range_and_seeded():
    t = RandAddNoised("target", "gaussian:0.05-0.2", output_keys="image")
    t.set_random_state(1)
    clean = np.zeros((1, 64, 64, 8), "float32")
    levels, outs = [], []
    for _ in range(5):
        out = t({"target": clean})
        levels.append(out["noise_level"])
        outs.append(out["image"])
        assert out["image"].shape == clean.shape and out["image"].dtype == np.float32
        # absolute sigma in model units (data scaled so the robust max is 1)
        assert np.std(out["image"]) == pytest.approx(out["noise_level"], rel=0.05)
    assert all(0.05 <= lv <= 0.2 for lv in levels) and len(set(levels)) == 5
    t.set_random_state(1)
    np.testing.assert_array_equal(t({"target": clean})["image"], outs[0])
    np.testing.assert_array_equal(out["target"], clean)  # the clean target is untouched


def test_rand_add_noised_rician_keeps_background_positive():
    t = RandAddNoised("image", "rician:0.1")
    t.set_random_state(0)
    out = t({"image": np.zeros((1, 32, 32, 4), "float32")})
    assert out["image"].min() >= 0.0
    assert out["image"].mean() == pytest.approx(0.1 * np.sqrt(np.pi / 2), rel=0.05)


def test_rand_add_noised_ct_uses_window_parameters():
    hu = np.full((1, 48, 48, 2), -1000.0, "float32")
    hu[:, 8:40, 8:40] = 0.0
    scale = InvertibleScaleIntensityd("image", method="window")
    d = scale({"image": hu})
    t = RandAddNoised("image", "ct:2e4", output_keys="noisy")
    t.set_random_state(0)
    out = t(dict(d, spacing=(0.7, 0.7, 5.0)))
    back = scale.inverse({"image": out["noisy"], "intensity": out["intensity"]})["image"]
    water = back[0, 16:32, 16:32]
    assert abs(float(water.mean())) < 15.0 and 2.0 < float(water.std()) < 300.0


def test_n2v_mask_replaces_only_masked_voxels_by_neighbours():
    x = _image((2, 32, 32, 4))
    t = N2VMaskd("image", ratio=0.01, radius=(2, 2, 0))
    t.set_random_state(0)
    out = t({"image": x})
    mask = out["mask"][0].astype(bool)
    assert out["mask"].shape == (1, 32, 32, 4)
    assert 0 < mask.sum() <= round(0.01 * 32 * 32 * 4)
    np.testing.assert_array_equal(out["target"], x)
    np.testing.assert_array_equal(out["image"][:, ~mask], x[:, ~mask])
    assert np.all(out["image"][:, mask] != x[:, mask])  # replaced, not kept
    # every replacement value comes from the same slice (radius 0 on z)
    for c in range(2):
        for i, j, k in np.argwhere(mask)[:20]:
            window = x[c, max(i - 2, 0): i + 3, max(j - 2, 0): j + 3, k]
            assert out["image"][c, i, j, k] in window


def test_n2v2_median_replacement_is_the_median_of_the_neighbourhood_without_the_voxel():
    x = _image((2, 16, 16, 4), seed=3)
    t = N2VMaskd("image", ratio=0.02, radius=(1, 1, 0), replacement="median")
    t.set_random_state(0)
    out = t({"image": x})
    mask = out["mask"][0].astype(bool)
    assert mask.sum() > 0
    np.testing.assert_array_equal(out["image"][:, ~mask], x[:, ~mask])
    for c in range(2):
        for i, j, k in np.argwhere(mask):
            window = x[c, max(i - 1, 0): i + 2, max(j - 1, 0): j + 2, k].ravel().tolist()
            window.remove(x[c, i, j, k])
            assert out["image"][c, i, j, k] == pytest.approx(np.median(window))


def test_n2v_per_channel_masks_each_channel_at_its_own_voxels():
    x = _image((3, 32, 32, 4), seed=4)
    t = N2VMaskd("image", ratio=0.01, per_channel=True)
    t.set_random_state(0)
    out = t({"image": x})
    assert out["mask"].shape == (3, 32, 32, 4)
    masks = out["mask"].astype(bool)
    for c in range(3):
        np.testing.assert_array_equal(out["image"][c, ~masks[c]], x[c, ~masks[c]])
        assert 0 < masks[c].sum() <= round(0.01 * 32 * 32 * 4)
    assert not np.array_equal(masks[0], masks[1])  # different voxels per channel


def test_n2v_mask_rejects_bad_arguments():
    with pytest.raises(ValueError, match="ratio=0.7"):
        N2VMaskd("image", ratio=0.7)
    with pytest.raises(ValueError, match="radius"):
        N2VMaskd("image", radius=0)({"image": _image()})
    with pytest.raises(ValueError, match="replacement"):
        N2VMaskd("image", replacement="mean")


def test_invertible_scale_shares_parameters_and_inverts_exactly():
    noisy = _image() * 1000.0
    clean = noisy * 0.9
    t = InvertibleScaleIntensityd(["image", "target"], ref_key="image")
    out = t({"image": noisy, "target": clean})
    assert np.percentile(out["image"], 99.5) == pytest.approx(1.0, abs=1e-5)
    low, high = out["intensity"]["low"], out["intensity"]["high"]
    np.testing.assert_allclose(out["target"], (clean - low) / (high - low), rtol=1e-5, atol=1e-6)
    back = t.inverse(out)
    np.testing.assert_allclose(back["image"], noisy, rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(back["target"], clean, rtol=1e-5, atol=1e-3)


def test_foreground_weight_steers_monai_weighted_crops_into_tissue():
    x = np.zeros((1, 64, 64, 4), "float32")
    x[:, 40:60, 40:60] = 1.0
    pipeline = Compose([
        ForegroundWeightd("image", background=0.001),
        RandWeightedCropd(["image"], w_key="weight", spatial_size=(8, 8, 4), num_samples=20),
    ])
    pipeline.set_random_state(0)
    patches = pipeline({"image": x})
    inside = np.mean([float(np.asarray(p["image"]).mean()) > 0 for p in patches])
    assert inside >= 0.9


def test_rand_add_noised_draws_one_of_several_specs():
    t = RandAddNoised("image", ["rician:0.05", "chi:0.05:coils=8"], output_keys="noisy")
    t.set_random_state(0)
    models = {t({"image": np.zeros((1, 8, 8, 2), "float32")})["noise_model"] for _ in range(20)}
    assert models == {"rician", "chi"}


def test_recorrupted_pairs_split_fresh_noise_between_input_and_target():
    from medresae.transforms import RecorruptedPairsd

    y = np.random.default_rng(1).uniform(size=(1, 32, 32, 8)).astype("float32")
    t = RecorruptedPairsd("image", alpha=0.5, sigma=0.1)
    t.set_random_state(0)
    out = t({"image": y})
    z_input = (out["image"] - y) / 0.5
    z_target = (y - out["target"]) * 0.5
    np.testing.assert_allclose(z_input, z_target, atol=1e-5)  # the same z, opposite roles
    assert z_input.std() == pytest.approx(0.1, rel=0.05) and abs(z_input.mean()) < 0.01
    t.set_random_state(0)
    np.testing.assert_array_equal(t({"image": y})["image"], out["image"])  # seeded
    with pytest.raises(ValueError, match="sigma"):
        RecorruptedPairsd("image")({"image": y})
    with pytest.raises(ValueError, match="alpha"):
        RecorruptedPairsd("image", alpha=0.0)


def test_recorrupted_pairs_take_a_base_and_a_noise_scale_map():
    from medresae.transforms import RecorruptedPairsd

    rng = np.random.default_rng(1)
    y = rng.uniform(size=(1, 32, 32, 8)).astype("float32")
    base = y - 0.2
    scale = np.ones_like(y)
    scale[..., :4] = 0.5
    t = RecorruptedPairsd("image", alpha=0.5, sigma=0.1, base_key="base", scale_key="scale")
    t.set_random_state(0)
    out = t({"image": y, "base": base, "scale": scale})
    z_input = (out["image"] - y) / 0.5
    np.testing.assert_allclose(z_input, (base - out["target"]) * 0.5, atol=1e-5)  # target built on the base
    assert z_input[..., 4:].std() == pytest.approx(0.1, rel=0.05)
    assert z_input[..., :4].std() == pytest.approx(0.05, rel=0.05)  # scaled voxel by voxel


def test_recorrupted_pairs_draw_noise_with_the_kernel_correlation():
    from medresae.noise.colour import noise_autocovariance
    from medresae.transforms import RecorruptedPairsd

    kernel = np.zeros((3, 3, 1))
    kernel[1, 1, 0] = kernel[2, 1, 0] = np.sqrt(0.5)  # neighbours along x share half their noise
    y = np.random.default_rng(1).uniform(size=(1, 64, 64, 8)).astype("float32")
    t = RecorruptedPairsd("image", alpha=0.5, sigma=0.1, kernel=kernel)
    t.set_random_state(0)
    out = t({"image": y})
    z = (out["image"] - y) / 0.5
    np.testing.assert_allclose(z, (y - out["target"]) * 0.5, atol=1e-5)  # one z, opposite roles
    c = noise_autocovariance(z[0], radius=(1, 1, 0))
    assert np.sqrt(c[1, 1, 0]) == pytest.approx(0.1, rel=0.05)
    assert c[2, 1, 0] / c[1, 1, 0] == pytest.approx(0.5, abs=0.05) and abs(c[1, 2, 0] / c[1, 1, 0]) < 0.05
    with pytest.raises(ValueError, match="spatial axes"):
        RecorruptedPairsd("image", sigma=0.1, kernel=np.ones((3, 3)))({"image": y})
    with pytest.raises(ValueError, match="kernel"):
        RecorruptedPairsd("image", sigma=0.1, kernel=np.zeros((3, 3, 1)))


def test_estimate_noise_sigma_measures_inside_the_weight_map():
    from medresae.noise import rician
    from medresae.transforms import EstimateNoiseSigmad

    clean = np.zeros((1, 48, 48, 8), "float32")
    clean[:, 8:40, 8:40] = 1.0
    noisy = rician(clean, 0.05, rng=0)
    d = ForegroundWeightd("image", threshold=0.5)({"image": noisy})
    measured = EstimateNoiseSigmad("image")(d)["noise_sigma"]
    assert measured == pytest.approx(0.05, rel=0.1)
    # Everywhere, the dark Rician background pulls the estimate down.
    assert EstimateNoiseSigmad("image", mask_key=None)({"image": noisy})["noise_sigma"] < measured


def test_resolution_crop_averages_thick_slices_exactly():
    # A ramp along z: a thick slice of k voxels is the mean of those k voxels.
    from medresae.transforms.rand_resolution_cropd import _resample_axis

    ramp = np.arange(12, dtype="float32")[None]
    np.testing.assert_allclose(_resample_axis(ramp, 1, 0.0, 3.0, 4), [[1.0, 4.0, 7.0, 10.0]])
    # non-integer widths integrate fractions of voxels
    np.testing.assert_allclose(_resample_axis(ramp, 1, 0.0, 1.5, 2), [[(0 + 0.5 * 1) / 1.5, (0.5 * 1 + 2) / 1.5]],
                               rtol=1e-6)
    # past the edges the edge voxel repeats
    np.testing.assert_allclose(_resample_axis(ramp, 1, -2.0, 2.0, 1), [[0.0]])
    # a finer grid interpolates linearly between voxel centres
    np.testing.assert_allclose(_resample_axis(ramp, 1, 2.0, 0.5, 4), [[1.75, 2.25, 2.75, 3.25]])


def test_resolution_crop_keeps_pairs_aligned_and_varies_the_grid():
    from medresae.transforms import RandResolutionCropd

    rng = np.random.default_rng(0)
    clean = rng.uniform(size=(1, 40, 36, 30)).astype("float32")
    t = RandResolutionCropd(["image", "target"], (12, 12, 12), w_key=None, thickness_mm=(3.0, 5.0))
    t.set_random_state(3)
    shapes_seen, means = set(), []
    for _ in range(30):
        out = t({"image": 2.0 * clean, "target": clean, "spacing": (1.0, 1.0, 1.0)})
        assert out["image"].shape == out["target"].shape == (1, 12, 12, 12)
        # one geometry for every key: the pair stays a pair
        np.testing.assert_allclose(out["image"], 2.0 * out["target"], rtol=1e-5)
        # averaging white noise over thicker voxels lowers its variance
        means.append(float(out["target"].std()))
        shapes_seen.add(round(means[-1], 2))
    assert len(shapes_seen) > 5
    assert min(means) < 0.8 * max(means)
    t.set_random_state(3)
    again = t({"image": 2.0 * clean, "target": clean, "spacing": (1.0, 1.0, 1.0)})
    t.set_random_state(3)
    np.testing.assert_array_equal(t({"image": 2.0 * clean, "target": clean,
                                     "spacing": (1.0, 1.0, 1.0)})["target"], again["target"])


def test_resolution_crop_permutes_axes_and_takes_volumes_smaller_than_the_patch():
    from medresae.transforms import RandResolutionCropd

    # A volume that varies along x only: after permutation the variation shows on any axis.
    x = np.broadcast_to(np.linspace(0, 1, 20, dtype="float32")[:, None, None], (20, 20, 6))[None].copy()
    t = RandResolutionCropd("image", (8, 8, 8), w_key=None, zoom_range=(1.0, 1.0), thick_prob=0.0)
    t.set_random_state(0)
    varying = set()
    for _ in range(20):
        out = t({"image": x, "spacing": (1.0, 1.0, 5.0)})["image"][0]
        assert out.shape == (8, 8, 8)
        varying.add(int(np.argmax([np.ptp(out.mean(axis=tuple(a for a in range(3) if a != i))) for i in range(3)])))
    assert varying == {0, 1, 2}


def test_resolution_crop_with_a_slice_axis_keeps_it_and_only_thickens_it():
    from medresae.transforms import RandResolutionCropd

    # Varies along z only, each slice a different value: z must stay the output's z axis,
    # and a thickened slice is the mean of whole source slices.
    z = np.arange(24, dtype="float32")
    x = np.broadcast_to(z[None, None, :], (32, 32, 24))[None].copy()
    t = RandResolutionCropd("image", (8, 8, 4), w_key=None, slice_axis=2, thick_prob=1.0, thickness_mm=(4.0, 4.0))
    t.set_random_state(0)
    for _ in range(10):
        out = t({"image": x, "spacing": (0.5, 0.5, 1.0)})["image"][0]
        assert out.shape == (8, 8, 4)
        assert np.ptp(out, axis=(0, 1)).max() < 1e-4  # constant in plane
        steps = np.abs(np.diff(out[0, 0]))
        np.testing.assert_allclose(steps, 4.0, atol=1e-4)  # 4 mm slices of 1 mm source slices
    with pytest.raises(ValueError, match="slice_axis"):
        RandResolutionCropd("image", (8, 8, 4), slice_axis=3)


def test_resolution_crop_centres_fall_in_the_weight_map():
    from medresae.transforms import RandResolutionCropd

    x = np.zeros((1, 64, 64, 64), "float32")
    x[:, 40:60, 40:60, 40:60] = 1.0
    t = RandResolutionCropd("image", (8, 8, 8), zoom_range=(1.0, 1.0), thick_prob=0.0)
    t.set_random_state(0)
    inside = [t({"image": x, "weight": x.copy()})["image"].mean() > 0 for _ in range(20)]
    assert sum(inside) >= 19


def test_invertible_scale_channel_wise_fits_each_channel():
    x = np.concatenate([_image((1, 16, 16, 4), seed=5) * 1000.0, _image((1, 16, 16, 4), seed=6)], axis=0)
    t = InvertibleScaleIntensityd("image", channel_wise=True)
    out = t({"image": x})
    for c in range(2):
        assert np.percentile(out["image"][c], 99.5) == pytest.approx(1.0, abs=1e-5)
    assert out["intensity"]["channel_axis"] == 0 and len(out["intensity"]["high"]) == 2
    np.testing.assert_allclose(t.inverse(out)["image"], x, rtol=1e-5)
