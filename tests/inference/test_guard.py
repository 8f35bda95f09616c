"""medresae.guard: a denoiser that removed more than noise is caught, per intensity band."""

import nibabel as nib
import numpy as np
import pytest

import medresae_cli
from medresae.guard import DEFAULT_LIMIT, check_denoised
from medresae.noise import rician
from medresae.sample_data import sample_path


def _brain():
    return np.asarray(nib.load(sample_path("brain_mr_heldout")).dataobj, np.float32)


def test_noise_only_removal_passes_and_structure_removal_fails():
    clean = _brain()
    sigma = 0.05 * float(np.percentile(clean, 99.5))
    noisy = rician(clean, sigma, rng=0)
    good = check_denoised(noisy, clean)
    assert good.ok and all(r < DEFAULT_LIMIT for r in good.ratios.values()), good.ratios
    assert 0.5 * sigma < good.sigma < 2.0 * sigma
    # A "denoiser" that flattens the bright tissue changes it by far more than the noise.
    flattened = clean.copy()
    bright = clean > np.percentile(clean, 80)
    flattened[bright] = np.median(clean[bright]) * 0.6
    bad = check_denoised(noisy, flattened)
    assert not bad.ok and "bright tissue" in bad.harmed
    assert "bright tissue" in bad.message() and "not trained" in bad.message()


def test_ct_bands_are_air_soft_tissue_and_bone():
    ct = np.asarray(nib.load(sample_path("chest_ct")).dataobj, np.float32)
    noisy = ct + np.random.default_rng(0).normal(0, 20, ct.shape).astype(np.float32)
    report = check_denoised(noisy, ct, modality="ct")
    assert set(report.ratios) <= {"air", "soft tissue", "bone"} and report.ok
    blurred_bone = np.where(ct > 300, ct - 400, ct)
    assert "bone" in check_denoised(noisy, blurred_bone, modality="ct").harmed


def test_non_finite_output_counts_as_harm():
    noisy = _brain()
    out = noisy.copy()
    out[out > np.percentile(out, 70)] = np.nan
    assert not check_denoised(noisy, out).ok


def test_bad_arguments():
    with pytest.raises(ValueError, match="one shape"):
        check_denoised(np.zeros((8, 8, 8)), np.zeros((8, 8, 4)))
    with pytest.raises(ValueError, match="modality"):
        check_denoised(np.zeros((8, 8, 8)), np.zeros((8, 8, 8)), modality="pet")


def test_cli_writes_the_input_when_the_model_harms_the_scan(tmp_path, capsys):
    from medresae.models import ResUNet

    # A non-residual model with all weights zero returns a constant: it removes the whole anatomy.
    model = ResUNet(spatial_dims=3, filters=(4, 8), n_blocks=1, strides=(2, 2, 1), residual=False)
    model.set_weights([np.zeros_like(w) for w in model.get_weights()])
    model.metadata = {"normalize": "percentile", "modality": "mr"}
    model.save(str(tmp_path / "harmful.keras"))
    brain = _brain()[:64, :64, :8]
    noisy = rician(brain, 0.05 * float(np.percentile(brain, 99.5)), rng=0)
    src = tmp_path / "in.nii.gz"
    nib.save(nib.Nifti1Image(noisy, np.diag([0.8, 0.8, 6.5, 1.0])), str(src))
    guarded, kept = tmp_path / "guarded.nii.gz", tmp_path / "kept.nii.gz"
    args = ["denoise", str(src), "--model", str(tmp_path / "harmful.keras")]
    assert medresae_cli.main(args + ["-o", str(guarded)]) == 0
    err = capsys.readouterr().err
    guard_lines = [line for line in err.splitlines() if "wrote the input unchanged" in line]
    assert len(guard_lines) == 1 and str(src) in guard_lines[0] and guard_lines[0].startswith("medresae: warning:")
    np.testing.assert_allclose(nib.load(str(guarded)).get_fdata(), noisy, rtol=1e-6, atol=1e-4)
    assert medresae_cli.main(args + ["-o", str(kept), "--no-guard"]) == 0
    assert "kept the output (--no-guard)" in capsys.readouterr().err
    assert not np.allclose(nib.load(str(kept)).get_fdata(), noisy, atol=1e-3)
