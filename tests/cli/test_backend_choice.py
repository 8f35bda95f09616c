"""The backend medresae picks when nothing names one: in fresh interpreters where some backends are hidden.

Hidden packages are unimportable and invisible to `importlib.util.find_spec`, as on a machine
where they are not installed (a GPU machine with only PyTorch or JAX). These tests
do not depend on the suite's backend, so they run in the TensorFlow pass only.
"""

import json
import os
import subprocess
import sys

import pytest
from conftest import BACKEND
from helpers import REPO

pytestmark = pytest.mark.skipif(BACKEND != "tensorflow", reason="backend-independent; runs in one pass")


def _run(code, hidden, tmp_path, environ=None):
    # None in sys.modules: `import` fails and `importlib.util.find_spec` answers None, as for a
    # package that is not installed.
    prelude = f"import sys\nsys.modules.update(dict.fromkeys({sorted(hidden)!r}))\n"
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    # A Keras home of its own: no keras.json from this machine.
    env.update(KERAS_HOME=str(tmp_path / "keras-home"), PYTHONWARNINGS="ignore", TF_CPP_MIN_LOG_LEVEL="3")
    env.update(environ or {})
    return subprocess.run([sys.executable, "-c", prelude + code], env=env, capture_output=True, text=True,
                          timeout=600, cwd=REPO)


def _backend_line(stdout):
    return next(line for line in stdout.splitlines() if line.startswith("backend"))


@pytest.mark.parametrize("hidden, expected", [({"tensorflow"}, "jax"), ({"tensorflow", "jax"}, "torch")])
def test_import_medresae_without_tensorflow_picks_an_installed_backend(tmp_path, hidden, expected):
    result = _run("import medresae, keras, os; print(keras.backend.backend(), os.environ['KERAS_BACKEND'])",
                  hidden, tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == [expected, expected]


def test_the_command_says_which_backend_it_picked_and_why(tmp_path):
    # `python -m medresae` (the package is imported first) and the console script's entry point.
    for code in ("import runpy; sys.argv = ['medresae', 'info']; runpy.run_module('medresae', run_name='__main__')",
                 "import medresae_cli; sys.exit(medresae_cli.main(['info']))"):
        result = _run(code, {"tensorflow"}, tmp_path)
        assert result.returncode == 0, result.stderr[-2000:]
        line = _backend_line(result.stdout)
        assert line.split()[1] == "jax" and "TensorFlow not installed" in line, line


def test_keras_json_that_names_a_missing_backend_is_not_kept(tmp_path):
    # Keras writes keras.json with "tensorflow" on its first import, whatever backend ran.
    home = tmp_path / "keras-home"
    home.mkdir()
    (home / "keras.json").write_text(json.dumps({"backend": "tensorflow"}))
    result = _run("import medresae_cli; sys.exit(medresae_cli.main(['info']))", {"tensorflow"}, tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert _backend_line(result.stdout).split()[1] == "jax"
    # One that names an installed backend is the user's choice.
    (home / "keras.json").write_text(json.dumps({"backend": "torch"}))
    result = _run("import medresae_cli; sys.exit(medresae_cli.main(['info']))", {"tensorflow"}, tmp_path)
    line = _backend_line(result.stdout)
    assert line.split()[1] == "torch" and "keras.json" in line, line


def test_a_named_backend_is_never_overridden(tmp_path):
    result = _run("import medresae, keras; print(keras.backend.backend())", set(), tmp_path,
                  environ={"KERAS_BACKEND": "torch"})
    assert result.stdout.split() == ["torch"], result.stderr[-2000:]
    result = _run("import medresae_cli; sys.exit(medresae_cli.main(['--backend', 'torch', 'info']))",
                  {"tensorflow"}, tmp_path)
    assert "(--backend)" in _backend_line(result.stdout)


def test_no_backend_installed_is_one_line(tmp_path):
    result = _run("import medresae_cli; sys.exit(medresae_cli.main(['info']))", {"tensorflow", "jax", "torch"},
                  tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "medresae: error: no backend installed (pip install 'medresae[tensorflow]', '[jax]' or '[torch]')"]


def test_the_command_turns_tensorflows_onednn_kernels_on_unless_told_otherwise(tmp_path):
    code = ("import medresae_cli, os; code = medresae_cli.main(['--backend', '{backend}', 'info']); "
            "print('ONEDNN', os.environ.get('TF_ENABLE_ONEDNN_OPTS')); sys.exit(code)")
    outcomes = {}
    for backend, environ in (("tensorflow", None), ("tensorflow", {"TF_ENABLE_ONEDNN_OPTS": "0"}), ("jax", None)):
        env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
        env.update(environ or {})
        result = subprocess.run([sys.executable, "-c", "import sys\n" + code.format(backend=backend)], env=env,
                                capture_output=True, text=True, timeout=600, cwd=REPO)
        assert result.returncode == 0, result.stderr[-2000:]
        outcomes[backend, bool(environ)] = next(line for line in result.stdout.splitlines()
                                                if line.startswith("ONEDNN")).split()[1]
    # Set before TensorFlow is imported; a user's own value is kept; other backends are left alone.
    assert outcomes == {("tensorflow", False): "1", ("tensorflow", True): "0", ("jax", False): "None"}
