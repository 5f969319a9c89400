#!/bin/sh
# Download the VGG16 Caffe weights (528 MB) and convert them to vgg16.model,
# the loss network train.py needs (as chainer-fast-neuralstyle's setup_model.sh).
set -e
cd "$(dirname "$0")"
CAFFEMODEL=VGG_ILSVRC_16_layers.caffemodel
URL=${VGG16_URL:-http://www.robots.ox.ac.uk/~vgg/software/very_deep/caffe/$CAFFEMODEL}
PYTHON=${PYTHON:-python}
[ -x .venv/bin/python ] && PYTHON=.venv/bin/python
if [ ! -f "$CAFFEMODEL" ]; then
    echo "downloading $URL"
    if command -v wget >/dev/null 2>&1; then
        wget -O "$CAFFEMODEL.part" "$URL"
    else
        curl -fL -o "$CAFFEMODEL.part" "$URL"
    fi
    mv "$CAFFEMODEL.part" "$CAFFEMODEL"
fi
"$PYTHON" vgg16.py --caffemodel "$CAFFEMODEL" -o vgg16.model
