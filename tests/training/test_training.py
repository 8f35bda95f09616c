"""medresae.training: repeatable runs, run-folder contents."""

import os

import keras
import numpy as np
from helpers import random_batch

from medresae.sample_data import sample_path
from medresae.training import build_denoiser, fit_run, train_denoiser

SMALL = dict(patch_size=(16, 16, 4), filters=(4, 8), n_blocks=1, epochs=1, steps_per_epoch=2, batch_size=2,
             validation_fraction=None, verbose=0)


def test_same_seed_gives_identical_weights_on_one_backend(tmp_path):
    weights = []
    for i in range(2):
        model, _ = train_denoiser("synthetic", [sample_path("brain_mr")], str(tmp_path / f"run{i}"), seed=5, **SMALL)
        weights.append([np.asarray(w) for w in model.get_weights()])
    for a, b in zip(*weights):
        np.testing.assert_array_equal(a, b)
    other, _ = train_denoiser("synthetic", [sample_path("brain_mr")], str(tmp_path / "run2"), seed=6, **SMALL)
    assert any(not np.array_equal(a, np.asarray(b)) for a, b in zip(weights[0], other.get_weights()))


def test_training_leaves_the_process_random_state_and_dtype_policy_alone(tmp_path):
    import random

    random.seed(11)
    np.random.seed(11)
    expected = (random.random(), np.random.random())
    random.seed(11)
    np.random.seed(11)
    policy = keras.config.dtype_policy().name
    train_denoiser("synthetic", [sample_path("brain_mr")], str(tmp_path / "run"), seed=5, **SMALL)
    assert (random.random(), np.random.random()) == expected
    assert keras.config.dtype_policy().name == policy


def test_mixed_precision_is_the_model_own_policy_and_survives_saving(tmp_path):
    model, _ = train_denoiser("synthetic", [sample_path("brain_mr")], str(tmp_path / "run"),
                              mixed_precision="float16", **SMALL)
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)  # float16 gradients need it
    assert keras.config.dtype_policy().name == "float32"
    reloaded = keras.saving.load_model(tmp_path / "run" / "model.keras")
    for m in (model, reloaded):
        assert m.get_layer("head").dtype_policy.name == "mixed_float16"
    plain = reloaded.with_dtype("float32")
    assert {layer.dtype_policy.name for layer in plain._flatten_layers()} == {"float32"}
    from medresae.saving import load_denoiser

    for_inference = load_denoiser(path=str(tmp_path / "run" / "model.keras"))
    assert {layer.dtype_policy.name for layer in for_inference._flatten_layers()} == {"float32"}
    assert load_denoiser(path=str(tmp_path / "run" / "model.keras"), dtype=None).get_layer("head").dtype_policy.name \
        == "mixed_float16"
    x = random_batch((1, 16, 16, 4, 1))
    np.testing.assert_allclose(plain.predict(x, verbose=0), reloaded.predict(x, verbose=0).astype("float32"),
                               atol=5e-3)


def test_metadata_records_the_recipe(tmp_path):
    model, _ = train_denoiser("synthetic", [sample_path("chest_ct")], str(tmp_path / "ct"), modality="ct",
                              noise="ct:1e4-1e5", **SMALL)
    assert model.metadata["normalize"] == "window" and model.metadata["noise"][0].startswith("ct:")
    assert model.spatial_divisor == (2, 2, 1)  # thin patches keep the slice axis


def test_n2v2_trains_a_model_without_top_skip_or_residual(tmp_path):
    model, _ = train_denoiser("noise2void", [sample_path("brain_mr")], str(tmp_path / "n2v2"), n2v_variant="n2v2",
                              **SMALL)
    names = {layer.name for layer in model.layers}
    assert "skip0" not in names and "residual" not in names  # two levels: skip0 was the only skip
    assert model.get_config()["top_skip"] is False and model.get_config()["residual"] is False
    assert model.metadata["n2v_variant"] == "n2v2"
    reloaded = keras.saving.load_model(str(tmp_path / "n2v2" / "model.keras"), compile=False)
    x = random_batch((1, 16, 16, 4, 1))
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)
    classic, _ = train_denoiser("noise2void", [sample_path("brain_mr")], str(tmp_path / "n2v"), **SMALL)
    assert {"skip0", "residual"} <= {layer.name for layer in classic.layers}


class _Repeat(keras.utils.PyDataset):
    """Two identical (x, x) batches per epoch."""

    def __init__(self, x):
        super().__init__()
        self.x = x

    def __len__(self):
        return 2

    def __getitem__(self, index):
        return self.x, self.x


def test_fit_run_trains_any_keras_model(tmp_path):
    model = build_denoiser("resnetae", spatial_dims=2, filters=(4, 8))
    trained, history = fit_run(model, _Repeat(random_batch((4, 16, 16, 1))), str(tmp_path / "ae"), epochs=2,
                               verbose=0)
    assert len(history["loss"]) == 2
    assert (tmp_path / "ae" / "training.png").stat().st_size > 0


def test_plot_history_leaves_the_matplotlib_backend_alone(tmp_path):
    import matplotlib

    from medresae.training import plot_history

    before = matplotlib.get_backend()
    csv_path = tmp_path / "history.csv"
    csv_path.write_text("epoch,loss,val_loss\n0,0.5,0.6\n1,0.25,NA\n")
    assert open(plot_history(str(csv_path), str(tmp_path / "h.png")), "rb").read(4) == b"\x89PNG"
    assert matplotlib.get_backend() == before


def test_resume_after_a_kill_between_checkpoint_and_state_trains_only_missing_epochs(tmp_path):
    import json

    run = tmp_path / "run"
    data = _Repeat(random_batch((2, 8, 8, 1)))
    fit_run(build_denoiser("resunet", spatial_dims=2, filters=(4, 8)), data, str(run), epochs=2, verbose=0)
    # As if killed after last.keras (epoch 2) was written but before state.json and the log caught up,
    # with a torn last log line and a temporary file left behind.
    state = json.loads((run / "state.json").read_text())
    (run / "state.json").write_text(json.dumps(dict(state, epoch=1, iterations=2)))
    lines = (run / "history.csv").read_text().splitlines()
    (run / "history.csv").write_text("\n".join(lines[:2]) + "\n1,0.0")
    (run / ".last.keras.0123456789ab.tmp.keras").write_bytes(b"half")
    model, history = fit_run(build_denoiser("resunet", spatial_dims=2, filters=(4, 8)), data, str(run), epochs=3,
                             resume=True, verbose=0)
    assert len(history["loss"]) == 1  # epoch 3 only: the checkpoint already held epoch 2
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 6
    rows = (run / "history.csv").read_text().strip().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["0", "2"]
    assert not [f for f in os.listdir(run) if f.startswith(".")]


def test_init_fine_tunes_a_given_model(tmp_path):
    import pytest

    from medresae.errors import InputFileError

    first, _ = train_denoiser("synthetic", [sample_path("brain_mr")], str(tmp_path / "first"), seed=1, **SMALL)
    tuned, _ = train_denoiser("synthetic", [sample_path("brain_mr")], str(tmp_path / "tuned"), seed=2,
                              init=str(tmp_path / "first" / "model.keras"), learning_rate=1e-9, **SMALL)
    # the architecture and (with a vanishing learning rate) the trained weights come from the given model;
    # batch-norm statistics move on with the new data
    assert tuned.count_params() == first.count_params() and tuned.metadata["init"] == "model.keras"
    for a, b in zip(first.trainable_weights, tuned.trainable_weights):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5)
    with pytest.raises(InputFileError, match="2D model cannot train on 3D"):
        two_d = build_denoiser("resunet", spatial_dims=2, filters=(4, 8))
        two_d.save(str(tmp_path / "2d.keras"))
        train_denoiser("synthetic", [sample_path("brain_mr")], str(tmp_path / "bad"),
                       init=str(tmp_path / "2d.keras"), **SMALL)
    with pytest.raises(InputFileError, match="no such model file"):
        train_denoiser("synthetic", [sample_path("brain_mr")], str(tmp_path / "bad2"),
                       init=str(tmp_path / "missing.keras"), **SMALL)


def _two_channel(path):
    """A real scan as two channels of very different ranges (a 4D NIfTI: X, Y, Z, channels)."""
    import nibabel as nib

    image = nib.load(sample_path("brain_mr"))
    clean = np.asarray(image.dataobj, np.float32)
    rng = np.random.default_rng(0)
    channels = [clean + rng.normal(0, 20, clean.shape), 0.01 * clean + rng.normal(0, 0.2, clean.shape)]
    nib.save(nib.Nifti1Image(np.stack(channels, -1).astype(np.float32), image.affine), path)
    return path


def test_noise2void_trains_on_multichannel_volumes_with_channel_wise_scaling_and_masks(tmp_path):
    from medresae.data import PatchDataset
    from medresae.inference import denoise

    path = _two_channel(str(tmp_path / "two.nii.gz"))
    pooled = PatchDataset("noise2void", [path], (32, 32, 4), batch_size=8, augment="none")
    own = PatchDataset("noise2void", [path], (32, 32, 4), batch_size=8, augment="none", channel_wise=True,
                       n2v_per_channel=True)
    (x_pooled, _), (x_own, y_own) = pooled[0], own[0]
    assert own.channels == 2 and x_own.shape[-1] == 2 and y_own.shape[-1] == 4  # 2 targets, 2 masks
    # One range for both channels leaves the small one near 0; its own range puts it on [0, 1] like the other.
    assert np.percentile(x_pooled[..., 1], 99) < 0.05
    assert 0.3 < np.percentile(x_own[..., 1], 99) / np.percentile(x_own[..., 0], 99) < 3
    masks = y_own[..., 2:]
    assert masks.sum() > 0 and not np.array_equal(masks[..., 0], masks[..., 1])  # different voxels per channel
    model, _ = train_denoiser("noise2void", [path], str(tmp_path / "run"), channel_wise=True, n2v_per_channel=True,
                              workers="auto", **SMALL)
    assert model.inputs[0].shape[-1] == 2 and model.outputs[0].shape[-1] == 2
    assert model.metadata["channel_wise"] is True and model.metadata["channels"] == 2
    assert model.metadata["n2v_per_channel"] is True
    import nibabel as nib

    volume = np.asarray(nib.load(path).dataobj, np.float32)[:48, :48]
    out = denoise(model, volume, progress=False)  # channel-wise scaling from the model's metadata
    assert out.shape == volume.shape and np.all(np.isfinite(out))
    assert abs(np.median(out[..., 1]) - np.median(volume[..., 1])) < 0.2 * np.ptp(volume[..., 1])


def test_volumes_with_different_channel_counts_are_named(tmp_path):
    import pytest

    from medresae.data import PatchDataset
    from medresae.errors import InputFileError
    from medresae.presets import preset_path

    path = _two_channel(str(tmp_path / "two.nii.gz"))
    with pytest.raises(InputFileError, match=r"one channel count; found .*brain_mr.nii.gz: 1; .*two.nii.gz: 2"):
        PatchDataset("noise2void", [path, sample_path("brain_mr")], (16, 16, 4))
    with pytest.raises(InputFileError, match=r"takes 1 channel\(s\) and the training volumes have 2"):
        train_denoiser("noise2void", [path], str(tmp_path / "run"), init=preset_path("brain-mr"), **SMALL)


def test_mixed_precision_auto_is_bfloat16_on_cpu_and_trains_like_float32(tmp_path):
    from medresae.performance import mixed_precision_policy

    assert mixed_precision_policy("auto") == "mixed_bfloat16"  # CPUs compute in bfloat16
    assert mixed_precision_policy("float16") == "mixed_float16"
    runs = {}
    for precision in (False, True, "float16"):
        keras.utils.set_random_seed(0)
        runs[precision] = train_denoiser("synthetic", [sample_path("brain_mr")], str(tmp_path / str(precision)),
                                         mixed_precision=precision, **dict(SMALL, epochs=2))
    bf16, _ = runs[True]
    assert bf16.get_layer("head").dtype_policy.name == "mixed_bfloat16"
    assert not isinstance(bf16.optimizer, keras.optimizers.LossScaleOptimizer)  # bfloat16 has float32's range
    # Same seed, same patches: each precision's losses follow float32's, and its model predicts what the
    # float32 copy of its own weights predicts, to its precision.
    reference = np.asarray(runs[False][1]["loss"])
    x = random_batch((2, 16, 16, 4, 1))
    for precision, atol in ((True, 3e-2), ("float16", 5e-3)):
        model, history = runs[precision]
        np.testing.assert_allclose(history["loss"], reference, rtol=0.1)
        np.testing.assert_allclose(model.predict(x, verbose=0).astype("float32"),
                                   model.with_dtype("float32").predict(x, verbose=0), atol=atol)
