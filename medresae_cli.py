"""Entry point of the `medresae` command.

Keras reads ``KERAS_BACKEND`` once, when it is first imported, and importing
``medresae`` imports Keras. This module therefore lives outside the
``medresae`` package: it reads ``--backend`` from the command line, sets
``KERAS_BACKEND``, and only then imports ``medresae.cli``.
"""

import importlib.util
import os
import sys

BACKENDS = ("tensorflow", "jax", "torch")
_EXTRAS = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}


def requested_backend(argv):
    """The value of the last `--backend NAME` / `--backend=NAME` in `argv`."""
    backend = None
    for i, arg in enumerate(argv):
        if arg == "--":
            break
        if arg == "--backend" and i + 1 < len(argv):
            backend = argv[i + 1]
        elif arg.startswith("--backend="):
            backend = arg.split("=", 1)[1]
    return backend


def _backend_error(backend):
    if backend not in BACKENDS:
        return (
            f"--backend {backend!r} is not a Keras backend medresae supports; "
            f"choose one of {', '.join(BACKENDS)}."
        )
    if importlib.util.find_spec(_EXTRAS[backend]) is None:
        return (
            f"--backend {backend}: the {backend} package is not installed; "
            f"install it with: pip install 'medresae[{backend}]'"
        )
    return None


def main(argv=None):
    """Runs the `medresae` command; returns its exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    backend = flag = requested_backend(argv)
    if backend is None:
        backend = os.environ.get("KERAS_BACKEND")
        if backend is not None and _backend_error(backend):
            print(f"medresae: error: KERAS_BACKEND={backend}: {_backend_error(backend)}", file=sys.stderr)
            return 2
    else:
        error = _backend_error(backend)
        if error:
            print(f"medresae: error: {error}", file=sys.stderr)
            return 2
        if "keras" in sys.modules:
            import keras

            if keras.backend.backend() != backend:
                # `python -m medresae` loaded keras before we could pick the
                # backend: start again with KERAS_BACKEND set.
                os.environ["KERAS_BACKEND"] = backend
                os.execv(sys.executable, [sys.executable, "-m", "medresae", *argv])
        os.environ["KERAS_BACKEND"] = backend
    try:
        from medresae.cli import main as cli_main
    except ImportError as err:
        # Keras imports its backend on import: a backend that find_spec sees
        # but that cannot be imported (a broken install, a missing jaxlib or
        # CUDA library) surfaces here.
        message = _import_error(flag, err)
        if message is None:
            raise
        print(f"medresae: error: {message}", file=sys.stderr)
        return 2
    return cli_main(argv)


def _import_error(flag_backend, err):
    """A one-line message for an ImportError caused by the Keras backend, else None."""
    import importlib

    if flag_backend is not None:
        name, where = flag_backend, f"--backend {flag_backend}"
    elif os.environ.get("KERAS_BACKEND") in BACKENDS:
        name = os.environ["KERAS_BACKEND"]
        where = f"KERAS_BACKEND={name}"
    else:
        return None
    module = _EXTRAS[name]
    try:
        importlib.import_module(module)
    except Exception as backend_err:  # noqa: BLE001 - any failure to import the backend
        reason = " ".join(str(backend_err).split())[:200]
        reason = f"{type(backend_err).__name__}: {reason}" if reason else type(backend_err).__name__
        return (
            f"{where}: the {module} package cannot be imported ({reason}); install or repair it with: "
            f"pip install 'medresae[{name}]', or pick another backend with --backend"
        )
    return None


if __name__ == "__main__":
    sys.exit(main())
