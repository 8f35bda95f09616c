"""The `medresae` command: argument parsing, backend choice and one-line errors.

Keras reads ``KERAS_BACKEND`` once, when it is first imported, and importing
``medresae`` imports Keras. The command line therefore lives outside the
``medresae`` package: this package parses the arguments (so ``--help`` and
argument errors answer without importing a backend), sets
``KERAS_BACKEND`` from ``--backend``, and only then runs the subcommand,
whose module imports medresae.

Every failure a user can act on ends as one ``medresae: error: ...`` line
and exit status 2; Ctrl-C exits 130 and SIGTERM 143, after the commands'
own cleanup (temporary files are removed, no output is half-written).
"""

import importlib.util
import os
import signal
import sys
import threading

from medresae_cli.defaults import BACKENDS, library_module

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


# Which backend this process runs and why, for `medresae info`.
backend_reason = None


def _default_backend():
    """(backend, reason) when no --backend was given: KERAS_BACKEND, keras.json, or an installed one."""
    library = sys.modules.get("medresae._backend_choice")
    if library is not None and library.applied:  # `python -m medresae`: the package chose on import
        return library.applied
    choice = library_module("_backend_choice")
    return choice.choose_backend(apply="keras" not in sys.modules)


def main(argv=None):
    """Runs the `medresae` command; returns its exit status."""
    global backend_reason
    argv = list(sys.argv[1:] if argv is None else argv)
    backend = flag = requested_backend(argv)
    if backend is None:
        backend, backend_reason = _default_backend()
        if backend is None:
            print(f"medresae: error: {backend_reason}", file=sys.stderr)
            return 2
        if backend_reason == "KERAS_BACKEND" and _backend_error(backend):
            print(f"medresae: error: KERAS_BACKEND={backend}: {_backend_error(backend)}", file=sys.stderr)
            return 2
    else:
        backend_reason = "--backend"
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
    if backend == "tensorflow":
        # TensorFlow leaves its oneDNN kernels off by default on some CPUs (an AVX2 AMD EPYC): 3D convolutions
        # then take a slower path, and a 128^3 brain-mr denoise took 32 s there against 21 s with them.
        # Read once, when TensorFlow is imported; a value the user set is kept.
        os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    from medresae_cli.parser import build_parser

    try:
        args = build_parser().parse_args(argv)
    except SystemExit as done:  # --help, --version, or a one-line argument error
        return done.code if isinstance(done.code, int) else 0 if done.code is None else 2
    try:
        import medresae  # noqa: F401  (imports Keras and its backend)
    except ImportError as err:
        # Keras imports its backend on import: a backend that find_spec sees
        # but that cannot be imported (a broken install, a missing jaxlib or
        # CUDA library) surfaces here.
        message = _import_error(flag, err)
        if message is None:
            raise
        print(f"medresae: error: {message}", file=sys.stderr)
        return 2
    return run(args)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the process is, so every cleanup that runs for
    Ctrl-C (temporary files, interrupted training checkpoints) runs for it too."""


def _raise_terminated(signum, frame):
    raise Terminated()


def run(args):
    """Runs the parsed subcommand; returns its exit status (one line on failure)."""
    # Signal handlers can only be set from the main thread (a caller may run main() elsewhere).
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if in_main_thread else None
    try:
        return args.func(args)
    except Terminated:
        print("medresae: terminated (SIGTERM); nothing was half-written", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print("medresae: interrupted; nothing was half-written", file=sys.stderr)
        return 130
    except ImportError as err:
        missing = (err.name or "").split(".")[0]
        if missing not in ("monai", "torch"):
            raise
        # An install without the `monai` extra: denoising and evaluating work, training does not.
        message = " ".join(str(err).split()) if "medresae[monai]" in str(err) else (
            f"{_what(args)} needs MONAI and PyTorch, which are not installed; pip install 'medresae[monai]'")
        print(f"medresae: error: {message}", file=sys.stderr)
        return 2
    except (ValueError, OSError) as err:
        # InputFileError and argument errors are one-line messages meant for users.
        from medresae.errors import first_line

        print(f"medresae: error: {first_line(err)}", file=sys.stderr)
        return 2
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _what(args):
    """'medresae train', 'medresae denoise --adapt', ...: what the user asked for, for messages."""
    words = ["medresae", getattr(args, "command", None) or getattr(args.func, "__module__", "").rsplit(".", 1)[-1]]
    if getattr(args, "adapt", False):
        words.append("--adapt")
    return " ".join(w for w in words if w)


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
        reason = " ".join(str(backend_err).split())
        if len(reason) > 300:
            reason = reason[: reason.rfind(" ", 0, 300)] + " ..."
        reason = f"{type(backend_err).__name__}: {reason}" if reason else type(backend_err).__name__
        return (
            f"{where}: the {module} package cannot be imported ({reason}); install or repair it with: "
            f"pip install 'medresae[{name}]', or pick another backend with --backend"
        )
    return None


if __name__ == "__main__":
    sys.exit(main())
