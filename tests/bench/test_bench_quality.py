"""`medresae bench quality` and the classical baselines, on small volumes."""

import json

import numpy as np
import pytest

import medresae_cli
from medresae import baselines
from medresae.bench.quality import markdown_table, run_quality_benchmark, write_report
from medresae.models import ResUNet


def _phantom(shape=(32, 32, 8)):
    x, y, z = np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij")
    # Smooth (no sharp edges), so that a Gaussian filter must help.
    head = np.exp(-4 * ((x / 0.8) ** 2 + (y / 0.7) ** 2 + (z / 1.5) ** 2))
    return (100.0 * head * (1.0 + 0.2 * np.sin(3 * x) * np.cos(2 * y))).astype(np.float32)


def test_report_scores_every_method_and_is_seeded(tmp_path):
    volumes = [("phantom", _phantom(), (1.0, 1.0, 3.0))]
    model = ResUNet(spatial_dims=3, filters=(4, 8), n_blocks=1, strides=(2, 2, 1))
    kwargs = dict(noise_specs=["rician:0.05", "gaussian:0.1"], models={"untrained": model},
                  methods=["gaussian", "nlmeans-skimage"], seed=3, progress=None)
    report = run_quality_benchmark(volumes, **kwargs)
    assert [c["noise"] for c in report["cases"]] == ["rician:0.05", "gaussian:0.1"]
    results = report["cases"][0]["results"]
    assert set(results) == {"noisy", "gaussian", "nlmeans-skimage", "untrained"}
    assert results["gaussian"]["psnr"] > results["noisy"]["psnr"]  # its width is tuned on the whole volume
    # an untrained residual model is the identity: nothing removed, nothing shifted
    assert results["untrained"]["psnr"] == pytest.approx(results["noisy"]["psnr"], abs=0.05)
    for method in ("gaussian", "nlmeans-skimage", "untrained"):
        assert {"tissue_mean_shift", "residual_clean_correlation", "seconds"} <= set(results[method])
    again = run_quality_benchmark(volumes, **kwargs)
    assert again["cases"][0]["results"]["noisy"] == results["noisy"]
    paths = write_report(report, str(tmp_path / "q"))
    assert "| phantom | rician:0.05 | gaussian |" in open(paths["md"]).read()
    assert json.load(open(paths["json"]))["seed"] == 3
    assert open(paths["png"], "rb").read(4) == b"\x89PNG"
    assert "nlmeans-skimage" in markdown_table(report)
    assert "SSIM: a uniform window" in markdown_table(report)
    gaussian = run_quality_benchmark(volumes, **dict(kwargs, methods=["gaussian"], ssim_window="gaussian"))
    assert gaussian["ssim_window"] == "gaussian" and "SSIM: a Gaussian window" in markdown_table(gaussian)
    same, other = gaussian["cases"][0]["results"]["gaussian"], results["gaussian"]
    assert same["psnr"] == other["psnr"] and same["ssim"] != other["ssim"]


def test_optional_baselines_are_listed_or_explained():
    names, notes = baselines.available()
    assert "gaussian" in names and "nlmeans-skimage" in names
    for optional in ("nlmeans-dipy", "bm4d"):
        assert optional in names or any(note.startswith(optional) for note in notes)


def test_cli_bench_quality_on_a_shipped_volume(tmp_path, capsys):
    code = medresae_cli.main(["bench", "quality", "--noise", "rician:0.05", "--methods", "gaussian",
                              "--out", str(tmp_path / "bq")])
    assert code == 0
    out = capsys.readouterr().out
    assert "brain_mr_heldout" in out and "chest_ct" in out
    assert (tmp_path / "bq" / "quality.md").exists()


def test_adapted_models_are_scored_and_left_unchanged():
    volumes = [("phantom", _phantom((32, 32, 8)), (1.0, 1.0, 3.0))]
    model = ResUNet(spatial_dims=3, filters=(4, 8), n_blocks=1, strides=(2, 2, 1))
    model.metadata = {"normalize": "percentile", "patch_size": [16, 16, 8]}
    before = [np.array(w) for w in model.get_weights()]
    report = run_quality_benchmark(volumes, noise_specs=["rician:0.05"], models={"m": model}, methods=["gaussian"],
                                   progress=None, adapt_steps=2, adapt_sigma="both")
    results = report["cases"][0]["results"]
    assert {"m", "m+adapt", "m+adapt(given sigma)"} <= set(results)
    assert np.isfinite(results["m+adapt"]["psnr_mask"]) and np.isfinite(results["m+adapt(given sigma)"]["psnr_mask"])
    # The sigma each adaptation used, against the added noise's, and what it kept: in the JSON and the table.
    given = results["m+adapt(given sigma)"]["adapt"]
    assert given["noise_sigma_ratio"] == pytest.approx(1.0) and given["kept"] in ("adapted", "original")
    measured = results["m+adapt"]["adapt"]
    assert measured["noise_sigma_ratio"] > 0 and "adapt" not in results["m"]
    assert f"m+adapt: sigma {measured['noise_sigma']:.4g} ({measured['noise_sigma_ratio']:.2f} times" in \
        markdown_table(report)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_adapt_sigma_is_checked():
    volumes = [("phantom", _phantom((32, 32, 8)), (1.0, 1.0, 3.0))]
    with pytest.raises(ValueError, match="adapt_sigma"):
        run_quality_benchmark(volumes, models={}, methods=["gaussian"], progress=None, adapt_sigma="true")


def test_cli_bench_quality_with_a_preset(tmp_path, capsys):
    code = medresae_cli.main(["bench", "quality", str(tmp_path / "missing.nii.gz"), "--preset", "brain-mr"])
    assert code == 2
    assert "missing.nii.gz" in capsys.readouterr().err
    code = medresae_cli.main(["bench", "quality", "--noise", "rician:0.05", "--methods", "gaussian", "--preset",
                              "brain-mr", "--out", str(tmp_path / "bq")])
    assert code == 0
    assert "| brain_mr_heldout | rician:0.05 | brain-mr |" in (tmp_path / "bq" / "quality.md").read_text()


def test_ct_models_get_the_local_mean_restoration_of_the_denoise_command():
    import nibabel as nib

    from medresae.presets import load_preset
    from medresae.sample_data import sample_path

    image = nib.load(sample_path("chest_ct"))
    clean = np.asarray(image.dataobj, np.float32)[:64, :64, :8]
    volumes = [("chest", clean, tuple(float(z) for z in image.header.get_zooms()[:3]))]
    models = {"ct": load_preset("ct"), "brain-mr": load_preset("brain-mr")}
    kwargs = dict(noise_specs=["ct:1e4"], models=models, methods=[], progress=None)
    default = run_quality_benchmark(volumes, **kwargs)["cases"][0]["results"]
    off = run_quality_benchmark(volumes, restore_mean=0, **kwargs)["cases"][0]["results"]
    assert default["ct"]["restore_mean_mm"] == 5.0 and "restore_mean_mm" not in off["ct"]
    assert "restore_mean_mm" not in default["brain-mr"]  # MRI models: off unless asked
    assert default["ct"]["psnr_mask"] != off["ct"]["psnr_mask"]
    assert default["brain-mr"]["psnr_mask"] == off["brain-mr"]["psnr_mask"]
    with pytest.raises(ValueError, match="restore_mean"):
        run_quality_benchmark(volumes, restore_mean=-1.0, **kwargs)
