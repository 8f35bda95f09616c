"""Presets shipped inside the package: load, denoise, bad names."""

import os

import nibabel as nib
import numpy as np
import pytest

import medresae_cli
from medresae.presets import PRESETS, load_preset, preset_names, preset_path


def test_unknown_preset_is_a_one_line_error(tmp_path, capsys):
    with pytest.raises(ValueError, match="'mri-brain'"):
        preset_path("mri-brain")
    src = tmp_path / "in.nii.gz"
    nib.save(nib.Nifti1Image(np.random.default_rng(0).uniform(size=(16, 16, 4)).astype("float32"), np.eye(4)),
             str(src))
    assert medresae_cli.main(["denoise", str(src), "-o", str(tmp_path / "o.nii.gz"), "--preset", "nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert "'nope'" in err and "\n" not in err
    assert not (tmp_path / "o.nii.gz").exists()


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_shipped_presets_load_and_denoise(name, tmp_path):
    if name not in preset_names():
        pytest.skip(f"preset {name} is not shipped yet")
    model = load_preset(name)
    assert model.metadata["normalize"] in ("percentile", "window")
    data = np.random.default_rng(0).uniform(size=(24, 20, 6)).astype("float32") * 1000.0
    src, out = tmp_path / "in.nii.gz", tmp_path / "out.nii.gz"
    nib.save(nib.Nifti1Image(data, np.diag([0.8, 0.8, 5.0, 1.0])), str(src))
    assert medresae_cli.main(["denoise", str(src), "-o", str(out), "--preset", name]) == 0
    result = nib.load(str(out))
    assert result.shape == data.shape and np.all(np.isfinite(result.get_fdata()))
    np.testing.assert_array_equal(result.affine, nib.load(str(src)).affine)  # as stored (float32)


# Outputs of each shipped preset on a fixed crop, recorded once (on TensorFlow);
# every backend must reproduce them. Regenerate after retraining a preset with
# MEDRESAE_REGENERATE_PRESET_REFERENCE=1 python -m pytest tests/inference/test_presets.py -k recorded
REFERENCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "preset_reference.npz")


def _reference_input(name):
    from medresae.sample_data import sample_path

    source = "chest_ct" if name == "ct" else "brain_mr_heldout"
    return np.asarray(nib.load(sample_path(source)).dataobj, np.float32)[32:80, 40:88, :8, None]


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_give_the_recorded_outputs_on_every_backend(name):
    from medresae.inference import denoise

    if name not in preset_names():
        pytest.skip(f"preset {name} is not shipped yet")
    model = load_preset(name)
    out = denoise(model, _reference_input(name), normalize=model.metadata["normalize"], progress=False)
    if os.environ.get("MEDRESAE_REGENERATE_PRESET_REFERENCE"):
        stored = dict(np.load(REFERENCE)) if os.path.exists(REFERENCE) else {}
        stored[name] = out
        os.makedirs(os.path.dirname(REFERENCE), exist_ok=True)
        np.savez_compressed(REFERENCE, **stored)
    expected = np.load(REFERENCE)[name]
    # 1e-4 of the intensity range (outputs are in the input's units).
    scale = float(np.ptp(expected))
    np.testing.assert_allclose(out / scale, expected / scale, atol=1e-4, rtol=0)
