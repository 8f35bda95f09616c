"""tests/all_backends.py: one pytest pass per backend, side by side, and empty runs count as failures."""

import os
import subprocess
import sys

import pytest
from conftest import BACKEND
from helpers import REPO

pytestmark = pytest.mark.skipif(BACKEND != "torch", reason="the runner is backend-independent: checked once")

RUNNER = os.path.join(REPO, "tests", "all_backends.py")


def _run(*args, env=None):
    result = subprocess.run([sys.executable, RUNNER, *args, "-q", "-p", "no:cacheprovider"], cwd=REPO,
                            capture_output=True, text=True, timeout=600, env=env)
    return result.returncode, result.stdout


def test_two_passes_side_by_side_each_print_their_whole_output(tmp_path):
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "KERAS_HOME"}
    code, out = _run("--backends", "tensorflow,torch", "--jobs", "2",
                     "tests/test_validation.py::test_standardize_tuple", env=dict(env, TMPDIR=str(temp)))
    assert code == 0, out[-3000:]
    assert not list(temp.iterdir())  # logs, Keras homes and pytest's folders are all removed
    assert "[tensorflow] started" in out and "[torch] started" in out
    for backend in ("tensorflow", "torch"):
        section = out.split(f"===== KERAS_BACKEND={backend} =====")[1].split("===== ")[0]
        assert "1 passed" in section, section
        assert f"{backend:<11} passed (pytest exit 0" in out


def test_a_run_that_collects_nothing_fails_unless_allowed():
    code, out = _run("--backends", "tensorflow,jax", "--jobs", "2", "tests/test_validation.py", "-k", "no_such_test")
    assert code == 1
    assert "[tensorflow] pytest collected no tests: counted as a failure" in out and "jax         FAILED" in out
    code, out = _run("--backends", "jax", "--allow-empty", "tests/test_validation.py", "-k", "no_such_test")
    assert code == 0 and "jax         passed (pytest exit 5" in out


def test_bad_options_are_refused():
    result = subprocess.run([sys.executable, RUNNER, "--jobs", "0"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 2 and "--jobs must be at least 1" in result.stderr
