#!/bin/sh
# benchmarks/gpu_check.py on a GPU machine that has numpy, CuPy, OpenCV and
# Pillow but no Chainer and no internet (docs/gpu.md).
#
#   sh benchmarks/gpu_check.sh wheel   # here, with internet: builds .whl/chainer-7.8.1-*.whl
#   sh benchmarks/gpu_check.sh         # there, with .whl/ carried: installs it, runs the check
#
# scripts/with_chainer.sh does the building and the installing.
set -e
cd "$(dirname "$0")/.."
if [ "$1" = wheel ]; then
    exec sh scripts/with_chainer.sh wheel
fi
exec sh scripts/with_chainer.sh "${PYTHON:-python3}" -m benchmarks.gpu_check "$@"
