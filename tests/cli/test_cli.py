"""The `medresae` command: info, --version, --backend."""

import subprocess
import sys

import pytest
from conftest import BACKEND
from helpers import REPO, run_python

import medresae
import medresae_cli


def _medresae(*args, env_backend=BACKEND):
    return run_python(
        f"import sys, medresae_cli; sys.exit(medresae_cli.main({list(args)!r}))", env_backend
    )


def test_version_flag():
    result = _medresae("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"medresae {medresae.__version__}"


def test_info_reports_versions_backend_and_devices():
    result = _medresae("info")
    assert result.returncode == 0, result.stderr[-2000:]
    lines = dict(line.split(None, 1) for line in result.stdout.strip().splitlines())
    assert lines["medresae"] == medresae.__version__
    assert lines["backend"].startswith(BACKEND + " ")
    assert "cpu" in lines["devices"].lower()


def test_backend_option_sets_keras_backend_before_import():
    other = {"tensorflow": "torch", "jax": "torch", "torch": "jax"}[BACKEND]
    result = _medresae("info", "--backend", other)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"backend   {other} " in result.stdout


def test_python_dash_m_restarts_when_backend_differs():
    other = {"tensorflow": "torch", "jax": "torch", "torch": "jax"}[BACKEND]
    result = subprocess.run(
        [sys.executable, "-m", "medresae", "--backend", other, "info"],
        capture_output=True, text=True, cwd=REPO, timeout=300,
        env=dict(__import__("os").environ, KERAS_BACKEND=BACKEND),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"backend   {other} " in result.stdout


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--backend", "numpy", "info"], "--backend 'numpy' is not a Keras backend"),
        (["info", "--backend=mxnet"], "--backend 'mxnet'"),
    ],
)
def test_unknown_backend_is_a_one_line_error(argv, message, capsys):
    assert medresae_cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_requested_backend_reads_last_option():
    assert medresae_cli.requested_backend(["--backend", "jax", "info", "--backend=torch"]) == "torch"
    assert medresae_cli.requested_backend(["info"]) is None


def test_help_for_every_subcommand():
    from medresae_cli.parser import build_parser

    parser = build_parser()
    with pytest.raises(SystemExit) as info:
        parser.parse_args(["info", "--help"])
    assert info.value.code == 0
