"""`medresae simulate`: seeded synthetic noise, NIfTI in and out."""

import nibabel as nib
import numpy as np
import pytest

import medresae_cli
from medresae.noise import simulate_volume


def _write(path, data, zooms=(0.8, 0.8, 5.0)):
    nib.save(nib.Nifti1Image(data.astype("float32"), np.diag([*zooms, 1.0])), str(path))
    return str(path)


def test_simulate_rician_is_seeded_and_keeps_geometry(tmp_path):
    clean = np.full((24, 20, 4), 20.0)
    clean[4:20, 4:16] = 100.0  # robust maximum 100: sigma 5 at 5 %
    src = _write(tmp_path / "clean.nii.gz", clean)
    a, b, c = (tmp_path / f"{n}.nii.gz" for n in "abc")
    for out, seed in ((a, "1"), (b, "1"), (c, "2")):
        assert medresae_cli.main(["simulate", src, "-o", str(out), "--noise", "rician:0.05", "--seed", seed]) == 0
    np.testing.assert_array_equal(nib.load(str(a)).get_fdata(), nib.load(str(b)).get_fdata())
    assert not np.array_equal(nib.load(str(a)).get_fdata(), nib.load(str(c)).get_fdata())
    np.testing.assert_array_equal(nib.load(str(a)).affine, nib.load(src).affine)
    noise = (nib.load(str(a)).get_fdata() - clean)[4:20, 4:16]
    assert noise.std() == pytest.approx(5.0, rel=0.15)


def test_simulate_low_dose_ct_per_slice(tmp_path, capsys):
    clean = np.full((32, 32, 3), -1000.0)
    clean[8:24, 8:24] = 40.0  # a water-like block in air
    src = _write(tmp_path / "ct.nii.gz", clean)
    out = tmp_path / "low.nii.gz"
    assert medresae_cli.main(["simulate", src, "-o", str(out), "--noise", "ct:1e4"]) == 0
    noisy = nib.load(str(out)).get_fdata()
    assert noisy.shape == clean.shape
    assert 0 < np.std(noisy - clean) < 200
    assert "ct noise" in capsys.readouterr().out
    # Slice by slice equals the whole-volume call with the same seed.
    whole, level = simulate_volume(clean.astype("float32"), "ct:1e4", (0.8, 0.8, 5.0), seed=0, progress=False)
    assert level == 1e4 and whole.shape == clean.shape


def test_simulate_bad_spec_and_existing_output(tmp_path, capsys):
    src = _write(tmp_path / "clean.nii.gz", np.ones((16, 16, 2)))
    out = tmp_path / "out.nii.gz"
    assert medresae_cli.main(["simulate", src, "-o", str(out), "--noise", "speckle:3"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--noise 'speckle:3'" in err and "\n" not in err
    out.write_bytes(b"keep me")
    assert medresae_cli.main(["simulate", src, "-o", str(out), "--noise", "gaussian:0.1"]) == 2
    assert out.read_bytes() == b"keep me"
    assert medresae_cli.main(["simulate", src, "-o", src, "--noise", "gaussian:0.1", "--overwrite"]) == 2
