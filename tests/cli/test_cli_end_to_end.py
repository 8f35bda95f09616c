"""`medresae train` -> `denoise` -> `evaluate` on real NIfTI files, on this backend."""

import json
import os
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest
from conftest import BACKEND
from helpers import REPO

import medresae_cli
from medresae.noise import rician
from medresae.sample_data import sample_path

TRAIN = ["--patch", "24,24,4", "--filters", "4,8", "--blocks", "1", "--batch-size", "4", "--lr", "3e-3",
         "--noise", "rician:0.05-0.12", "--validation", "0"]


def _crop(src, dst, crop, noise=None, seed=0):
    img = nib.load(src)
    data = np.asarray(img.dataobj, dtype=np.float32)
    sub = img.slicer[crop]
    array = data[crop]
    if noise:
        array = rician(array, noise * np.percentile(array, 99.5), rng=seed)
    header = sub.header.copy()
    header.set_data_dtype(np.float32)
    nib.save(nib.Nifti1Image(array, sub.affine, header), str(dst))
    return str(dst)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A folder of clean crops from the shipped brain MRI, a run trained on it,
    and a held-out noisy crop from the disjoint shipped crop."""
    root = tmp_path_factory.mktemp("e2e")
    clean_dir = root / "clean"
    clean_dir.mkdir()
    brain = sample_path("brain_mr")
    _crop(brain, clean_dir / "a.nii.gz", (slice(0, 64), slice(0, 64), slice(0, 8)))
    _crop(brain, clean_dir / "b.nii.gz", (slice(64, 128), slice(40, 104), slice(6, 14)))
    held = sample_path("brain_mr_heldout")
    clean = _crop(held, root / "clean.nii.gz", (slice(20, 68), slice(40, 88), slice(4, 12)))
    noisy = _crop(held, root / "noisy.nii.gz", (slice(20, 68), slice(40, 88), slice(4, 12)), noise=0.1, seed=3)
    run = root / "run"
    code = medresae_cli.main(["train", "--clean", str(clean_dir), "--out", str(run), "--epochs", "4",
                              "--steps-per-epoch", "15", *TRAIN])
    assert code == 0
    return dict(root=root, clean_dir=clean_dir, run=run, clean=clean, noisy=noisy, model=str(run / "model.keras"))


def test_train_writes_run_folder(trained):
    run = trained["run"]
    for name in ("model.keras", "last.keras", "history.csv", "training.png", "state.json"):
        assert (run / name).stat().st_size > 0, name
    rows = (run / "history.csv").read_text().strip().splitlines()
    assert rows[0].startswith("epoch") and len(rows) == 5
    assert not [f for f in os.listdir(run) if f.startswith(".")]  # no temporary files left


def test_denoise_then_evaluate_gains_psnr_and_keeps_geometry(trained, capsys):
    out = trained["root"] / "denoised.nii.gz"
    assert medresae_cli.main(["denoise", trained["noisy"], "-o", str(out), "--model", trained["model"]]) == 0
    src, res = nib.load(trained["noisy"]), nib.load(str(out))
    np.testing.assert_array_equal(res.affine, src.affine)
    np.testing.assert_array_equal(res.header.get_sform(), src.header.get_sform())
    assert res.shape == src.shape
    report = trained["root"] / "scores.json"
    code = medresae_cli.main(["evaluate", "--reference", trained["clean"], trained["noisy"], str(out),
                              "--json", str(report)])
    assert code == 0
    table = capsys.readouterr().out
    assert "PSNR" in table and "denoised.nii.gz" in table
    scores = json.loads(report.read_text())["scores"]
    gain = scores[str(out)]["psnr"] - scores[trained["noisy"]]["psnr"]
    assert gain > 0.3, scores
    # The Gaussian window: the same PSNR, another SSIM, and the report says which.
    gaussian = trained["root"] / "scores-gaussian.json"
    assert medresae_cli.main(["evaluate", "--reference", trained["clean"], str(out), "--json", str(gaussian),
                              "--ssim-window", "gaussian"]) == 0
    assert "SSIM window: gaussian" in capsys.readouterr().out
    report = json.loads(gaussian.read_text())
    assert report["ssim_window"] == "gaussian"
    assert report["scores"][str(out)]["psnr"] == scores[str(out)]["psnr"]
    assert report["scores"][str(out)]["ssim"] != scores[str(out)]["ssim"]


def test_denoise_folder_of_nifti_with_tta_and_input_dtype(trained):
    out_dir = trained["root"] / "out_folder"
    code = medresae_cli.main(["denoise", str(trained["clean_dir"]), "-o", str(out_dir), "--model",
                              trained["model"], "--tta", "--tile", "32,32,4", "--overlap", "0.25"])
    assert code == 0
    assert sorted(os.listdir(out_dir)) == ["a.nii.gz", "b.nii.gz"]


def test_resume_continues_to_the_planned_epochs(trained, tmp_path):
    run = tmp_path / "run"
    args = ["train", "--clean", str(trained["clean_dir"]), "--out", str(run), "--steps-per-epoch", "2", *TRAIN]
    assert medresae_cli.main([*args, "--epochs", "1"]) == 0
    assert medresae_cli.main([*args, "--epochs", "1"]) == 2  # refuses to clobber a run
    assert medresae_cli.main([*args, "--epochs", "2", "--resume"]) == 0
    rows = (run / "history.csv").read_text().strip().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["0", "1"]
    assert json.loads((run / "state.json").read_text())["epoch"] == 2


def test_model_trained_here_denoises_the_same_on_another_backend(trained, tmp_path):
    other = {"tensorflow": "torch", "torch": "jax", "jax": "tensorflow"}[BACKEND]
    here, there = tmp_path / "here.nii.gz", tmp_path / "there.nii.gz"
    assert medresae_cli.main(["denoise", trained["noisy"], "-o", str(here), "--model", trained["model"]]) == 0
    result = subprocess.run(
        [sys.executable, "-c", "import sys, medresae_cli; sys.exit(medresae_cli.main(sys.argv[1:]))",
         "denoise", trained["noisy"], "-o", str(there), "--model", trained["model"]],
        env=dict(os.environ, KERAS_BACKEND=other), cwd=REPO, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    a, b = nib.load(str(here)).get_fdata(), nib.load(str(there)).get_fdata()
    assert np.max(np.abs(a - b)) <= 1e-4 * (a.max() - a.min())


# Bad inputs (one-line errors, nothing written) and Ctrl-C during denoise: tests/cli/test_bad_inputs.py.
