"""Run the whole test suite once per Keras backend; fail if any backend fails.

Usage: python tests/all_backends.py [--backends tensorflow,jax,torch] [--allow-empty] [PYTEST ARGS...]

Keras picks its backend once per process, so each backend gets its own
pytest process with KERAS_BACKEND set (and a private KERAS_HOME). pytest's
exit code 5 ("no tests collected") counts as a failure unless
--allow-empty is given: an empty run must never look like a pass.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

BACKENDS = ("tensorflow", "jax", "torch")
NO_TESTS_COLLECTED = 5


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--allow-empty", action="store_true", help="treat 'no tests collected' as a pass")
    args, pytest_args = parser.parse_known_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = sorted(set(backends) - set(BACKENDS))
    if unknown:
        parser.error(f"unknown backend(s) {unknown}; choose from {', '.join(BACKENDS)}")
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    results = {}
    for backend in backends:
        env = dict(os.environ, KERAS_BACKEND=backend, KERAS_HOME=tempfile.mkdtemp(prefix="keras-home-"))
        print(f"\n===== KERAS_BACKEND={backend} =====", flush=True)
        start = time.time()
        code = subprocess.call([sys.executable, "-m", "pytest", *pytest_args], env=env, cwd=repo)
        if code == NO_TESTS_COLLECTED and not args.allow_empty:
            print(f"[{backend}] pytest collected no tests: counted as a failure", flush=True)
        ok = code == 0 or (code == NO_TESTS_COLLECTED and args.allow_empty)
        results[backend] = (ok, code, time.time() - start)
    print("\n===== summary =====")
    for backend, (ok, code, seconds) in results.items():
        print(f"{backend:<11} {'passed' if ok else 'FAILED'} (pytest exit {code}, {seconds:.0f} s)")
    return 0 if all(ok for ok, _, _ in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
