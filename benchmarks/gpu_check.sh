#!/usr/bin/env bash
# medresae's GPU check on a bare GPU machine that has torch and/or JAX but not medresae's other packages.
#
# Here (a machine with network access), fetch the wheels it needs:
#     ../shared/tools/gpu_wheels.sh .whl     (keras, namex, optree, monai, nibabel, pydicom, PyWavelets)
#     pip download --no-deps --only-binary=:all: --python-version 3.12 -d .whl pynrrd
# There, from the repository root:
#     bash benchmarks/gpu_check.sh [WHEEL_DIR] [OUT]     (defaults .whl and $OUT or ./gpu-check)
# It installs the wheels into a private folder (nothing system-wide), then prints one table
# (benchmarks/gpu_check.py). About 5 minutes on an H200.
set -euo pipefail
cd "$(dirname "$0")/.."
wheels=${1:-.whl}
out=${2:-${OUT:-gpu-check}}
site=$(mktemp -d -t medresae-site-XXXXXX)
trap 'rm -rf "$site"' EXIT
if ! python3 -c "import keras" 2>/dev/null; then
    python3 -m pip install -q --no-index --no-deps --target "$site" "$wheels"/*.whl
fi
export PYTHONPATH="$site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
python3 -m medresae info
python3 benchmarks/gpu_check.py "$out"
