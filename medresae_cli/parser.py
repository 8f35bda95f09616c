"""The argument parser of the `medresae` command.

Each subcommand module has an `add_parser(sub, parent)` that declares its
arguments and a `run(args)` that imports medresae only when it runs, so
building the parser (and answering ``--help``) imports no backend. Every
subcommand takes `--backend` too, so it can be written anywhere on the
command line.
"""

import argparse
import importlib.metadata
import platform

from medresae_cli import bench, demo, denoise, evaluate, export, simulate, train
from medresae_cli.defaults import BACKENDS

_SUBCOMMANDS = (demo, train, denoise, evaluate, simulate, export, bench)


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one `medresae: error: ...` line, like every other error."""

    def error(self, message):
        self.exit(2, f"medresae: error: {message}; see '{self.prog} --help'\n")


def _version():
    try:
        return importlib.metadata.version("medresae")
    except importlib.metadata.PackageNotFoundError:  # a source tree on sys.path, not installed
        from medresae._version import __version__

        return __version__


def _backend_parent():
    parent = OneLineParser(add_help=False)
    parent.add_argument(
        "--backend",
        choices=BACKENDS,
        help="Keras backend to use (sets KERAS_BACKEND before keras is imported).",
    )
    return parent


def build_parser():
    """The argument parser of the `medresae` command."""
    parent = _backend_parent()
    parser = OneLineParser(
        prog="medresae",
        description="Denoise MRI and CT volumes with 2D/3D residual autoencoders "
        "(Keras 3 on TensorFlow, JAX or PyTorch).",
        parents=[parent],
    )
    parser.add_argument("--version", action="version", version=f"medresae {_version()}")
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


def _backend_reason():
    import medresae_cli

    return medresae_cli.backend_reason or "chosen before medresae was imported"


def run_info(args):
    """`medresae info`: versions, backend and devices."""
    import keras
    import numpy

    backend = keras.backend.backend()
    rows = [
        ("medresae", _version()),
        ("python", platform.python_version()),
        ("keras", keras.__version__),
        ("numpy", numpy.__version__),
        ("backend", f"{backend} {_backend_version(backend)} ({_backend_reason()})"),
        ("devices", ", ".join(_devices(backend))),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    return 0
