"""Run the whole test suite once per Keras backend; fail if any backend fails.

Usage: python tests/all_backends.py [--backends tensorflow,jax,torch] [--jobs N] [--allow-empty] [PYTEST ARGS...]

Keras picks its backend once per process, so each backend gets its own
pytest process with KERAS_BACKEND set (and a private KERAS_HOME and pytest
base temporary folder). Up to `--jobs` passes run at once (default: one per
CPU core, at most one per backend): much of a pass is single-threaded
(imports, subprocesses, small models), so two passes side by side finish
sooner than one after the other. With several at once, each pass's output is
printed whole when it ends. pytest's exit code 5 ("no tests collected")
counts as a failure unless --allow-empty is given: an empty run must never
look like a pass.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

BACKENDS = ("tensorflow", "jax", "torch")
NO_TESTS_COLLECTED = 5


def _command(backend, pytest_args, scratch):
    """The pytest command and environment of one backend's pass (its temporary folders under `scratch`)."""
    env = dict(os.environ, KERAS_BACKEND=backend, KERAS_HOME=tempfile.mkdtemp(prefix="keras-home-", dir=scratch))
    args = list(pytest_args)
    if not any(a == "--basetemp" or a.startswith("--basetemp=") for a in args):
        # Passes that run at once must not share (and clean up) pytest's numbered temporary folders.
        args.append(f"--basetemp={tempfile.mkdtemp(prefix=f'pytest-{backend}-', dir=scratch)}")
    return [sys.executable, "-m", "pytest", *args], env


def _run_one_at_a_time(backends, pytest_args, repo, scratch):
    results = {}
    for backend in backends:
        command, env = _command(backend, pytest_args, scratch)
        print(f"\n===== KERAS_BACKEND={backend} =====", flush=True)
        start = time.time()
        results[backend] = (subprocess.call(command, env=env, cwd=repo), time.time() - start)
    return results


def _run_side_by_side(backends, pytest_args, repo, jobs, scratch):
    waiting, running, results = list(backends), {}, {}
    while waiting or running:
        while waiting and len(running) < jobs:
            backend = waiting.pop(0)
            command, env = _command(backend, pytest_args, scratch)
            log = open(os.path.join(scratch, f"{backend}.log"), "w+")
            process = subprocess.Popen(command, env=env, cwd=repo, stdout=log, stderr=subprocess.STDOUT)
            running[backend] = (process, log, time.time())
            print(f"[{backend}] started", flush=True)
        for backend, (process, log, start) in list(running.items()):
            if process.poll() is None:
                continue
            del running[backend]
            results[backend] = (process.returncode, time.time() - start)
            log.seek(0)
            print(f"\n===== KERAS_BACKEND={backend} =====", flush=True)
            sys.stdout.write(log.read())
            sys.stdout.flush()
            log.close()
        time.sleep(0.5)
    return {backend: results[backend] for backend in backends}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--jobs", type=int, default=None,
                        help="backend passes to run at once (default: the CPU count, at most the backends)")
    parser.add_argument("--allow-empty", action="store_true", help="treat 'no tests collected' as a pass")
    args, pytest_args = parser.parse_known_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = sorted(set(backends) - set(BACKENDS))
    if unknown:
        parser.error(f"unknown backend(s) {unknown}; choose from {', '.join(BACKENDS)}")
    if args.jobs is not None and args.jobs < 1:
        parser.error(f"--jobs must be at least 1; got {args.jobs}")
    jobs = min(len(backends), args.jobs or os.cpu_count() or 1)
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    # Every pass's temporary folders (Keras home, pytest's base, logs) go when the run ends.
    with tempfile.TemporaryDirectory(prefix="medresae-tests-") as scratch:
        if jobs > 1:
            codes = _run_side_by_side(backends, pytest_args, repo, jobs, scratch)
        else:
            codes = _run_one_at_a_time(backends, pytest_args, repo, scratch)
    print("\n===== summary =====")
    failed = False
    for backend, (code, seconds) in codes.items():
        if code == NO_TESTS_COLLECTED and not args.allow_empty:
            print(f"[{backend}] pytest collected no tests: counted as a failure", flush=True)
        ok = code == 0 or (code == NO_TESTS_COLLECTED and args.allow_empty)
        failed |= not ok
        print(f"{backend:<11} {'passed' if ok else 'FAILED'} (pytest exit {code}, {seconds:.0f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
