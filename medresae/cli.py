"""The `medresae` command line (its entry point is `medresae_cli.main`).

Subcommands are added with `_add_*` functions; each takes `--backend` too,
so it can be written anywhere on the command line.
"""

import argparse
import platform
import sys

from medresae import _cli_bench, _cli_demo, _cli_denoise, _cli_evaluate, _cli_export, _cli_simulate, _cli_train
from medresae._version import __version__

_SUBCOMMANDS = (_cli_demo, _cli_train, _cli_denoise, _cli_evaluate, _cli_simulate, _cli_export, _cli_bench)


def _backend_parent():
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--backend",
        choices=("tensorflow", "jax", "torch"),
        help="Keras backend to use (sets KERAS_BACKEND before keras is imported).",
    )
    return parent


def build_parser():
    """The argument parser of the `medresae` command."""
    parent = _backend_parent()
    parser = argparse.ArgumentParser(
        prog="medresae",
        description="Denoise MRI and CT volumes with 2D/3D residual autoencoders "
        "(Keras 3 on TensorFlow, JAX or PyTorch).",
        parents=[parent],
    )
    parser.add_argument("--version", action="version", version=f"medresae {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    info = sub.add_parser(
        "info",
        parents=[parent],
        help="Show versions, the active backend and the devices it sees.",
        description="Print medresae's version, the active Keras backend and its "
        "version, and the devices (CPU/GPU) the backend sees.",
    )
    info.set_defaults(func=run_info)

    for module in _SUBCOMMANDS:
        module.add_parser(sub, parent)
    return parser


def _devices(backend):
    """Devices the backend sees, as 'kind:index (name)' strings."""
    if backend == "jax":
        import jax

        return [f"{d.platform}:{d.id} ({d.device_kind})" for d in jax.devices()]
    if backend == "tensorflow":
        import tensorflow as tf

        return [
            f"{d.device_type.lower()}:{d.name.rsplit(':', 1)[-1]}"
            for d in tf.config.list_logical_devices()
        ]
    if backend == "torch":
        import torch

        devices = ["cpu:0"]
        if torch.cuda.is_available():
            devices += [
                f"cuda:{i} ({torch.cuda.get_device_name(i)})" for i in range(torch.cuda.device_count())
            ]
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            devices.append("mps:0")
        return devices
    return ["cpu:0"]


def _backend_version(backend):
    module = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}.get(backend)
    if module is None:
        return "-"
    return getattr(__import__(module), "__version__", "unknown")


def run_info(args):
    """`medresae info`: versions, backend and devices."""
    import keras
    import numpy

    backend = keras.backend.backend()
    rows = [
        ("medresae", __version__),
        ("python", platform.python_version()),
        ("keras", keras.__version__),
        ("numpy", numpy.__version__),
        ("backend", f"{backend} {_backend_version(backend)}"),
        ("devices", ", ".join(_devices(backend))),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    return 0


def main(argv=None):
    """Parses `argv` and runs the chosen subcommand; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("medresae: interrupted; nothing was half-written", file=sys.stderr)
        return 130
    except (ValueError, OSError) as err:
        # InputFileError and argument errors are one-line messages meant for users.
        message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        print(f"medresae: error: {message}", file=sys.stderr)
        return 2
