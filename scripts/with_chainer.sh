#!/bin/sh
# A command with Chainer 7.8.1 importable, on a GPU machine that has numpy,
# CuPy, OpenCV and Pillow but no Chainer and no internet (docs/gpu.md).
#
#   sh scripts/with_chainer.sh wheel             # here, with internet: builds .whl/chainer-7.8.1-*.whl
#   sh scripts/with_chainer.sh python3 -m ...    # there, with .whl/ carried: installs it, runs the
#                                                # command in the repository's root
#
# Chainer 7.8.1 is pure Python; its sdist's setup.py needs pkg_resources, hence
# the setuptools < 81 constraint for the build. Installed with --no-deps into
# a folder put on PYTHONPATH, so the machine's own numpy and CuPy are used as
# they are, and every process the command starts (train.py's) finds it too.
set -e
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
WHEELS=${WHEELS:-.whl}

if [ "$1" = wheel ]; then
    mkdir -p "$WHEELS"
    PIP_CONSTRAINT="$PWD/constraints.txt" "$PYTHON" -m pip wheel -q --no-deps \
        -w "$WHEELS" chainer==7.8.1
    ls "$WHEELS"/chainer-7.8.1-*.whl
    exit 0
fi

if ! "$PYTHON" -c 'import chainer' 2>/dev/null; then
    SITE=${SITE:-/tmp/cfns-site}
    wheel=$(ls "$WHEELS"/chainer-7.8.1-*.whl 2>/dev/null | head -n 1)
    if [ -z "$wheel" ]; then
        echo "error: Chainer is not installed and there is no $WHEELS/chainer-7.8.1-*.whl;" \
             "build it where pip works: sh scripts/with_chainer.sh wheel" >&2
        exit 2
    fi
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --upgrade \
        --target "$SITE" "$wheel"
    PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
    export PYTHONPATH
fi
# CuPy newer than the 7.x Chainer 7.8.1 names is "experimental" to Chainer.
CHAINER_WARN_VERSION_MISMATCH=0 exec "$@"
