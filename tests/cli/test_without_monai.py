"""Without the `monai` extra (so without PyTorch): denoise, evaluate, simulate and export work; training says
which extra to install, in one line."""

import json

import pytest
from conftest import BACKEND
from helpers import run_python

from medresae.sample_data import sample_path

# Every import of torch or monai (and of their submodules) fails as it does when they are not installed.
RUNNER = """
import contextlib, io, json, sys

class NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "monai"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, NotInstalled())
import medresae_cli

results = {}
for argv in COMMANDS:
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        status = medresae_cli.main(argv)
    results[argv[0]] = [status, err.getvalue().strip().splitlines()[-1:]]
results["loaded"] = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "monai"))
print("RESULTS " + json.dumps(results))
"""


@pytest.mark.skipif(BACKEND != "tensorflow", reason="import hygiene is backend-independent: checked once, on "
                    "TensorFlow (the torch backend needs PyTorch by definition)")
def test_inference_commands_run_without_monai_or_torch(tmp_path):
    scan = sample_path("brain_mr_heldout")
    noisy, denoised = str(tmp_path / "noisy.nii.gz"), str(tmp_path / "denoised.nrrd")
    commands = [
        ["simulate", scan, "-o", noisy, "--noise", "rician:0.05", "--seed", "0"],
        ["denoise", noisy, "-o", denoised, "--preset", "brain-mr"],
        ["evaluate", "--reference", scan, noisy, denoised, "--json", str(tmp_path / "scores.json")],
        ["train", "--clean", scan, "--out", str(tmp_path / "run"), "--epochs", "1", "--steps-per-epoch", "1"],
    ]
    commands.insert(3, ["export", "--preset", "brain-mr", "-o", str(tmp_path / "saved")])
    result = run_python(RUNNER.replace("COMMANDS", repr(commands)), BACKEND)
    assert result.returncode == 0 and "RESULTS " in result.stdout, result.stderr[-3000:]
    results = json.loads(result.stdout.split("RESULTS ", 1)[1])
    assert results.pop("loaded") == []
    train_status, train_message = results.pop("train")
    for name, (status, message) in results.items():
        assert status == 0, (name, message)
    scores = json.loads((tmp_path / "scores.json").read_text())["scores"]
    assert scores[denoised]["psnr_mask"] > scores[noisy]["psnr_mask"] + 3
    assert train_status == 2
    assert train_message == ["medresae: error: medresae train needs MONAI and PyTorch, which are not installed; "
                             "pip install 'medresae[monai]'"]
    assert not (tmp_path / "run").exists()
