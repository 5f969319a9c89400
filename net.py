"""The transform net of chainer-fast-neuralstyle (CFNS), in both layouts.

``deconv``  CFNS master: strided-convolution encoder, five residual blocks,
            transposed-convolution decoder, ``bn(elu(conv(x)))``.
``resize``  CFNS ``resize-conv`` branch: the decoder upsamples (unpooling)
            and then convolves, ``relu(bn(conv(x)))``; no checkerboard.

Parameter names and shapes are CFNS's, so a ``.model`` written by CFNS loads
here and ours load there. The layout is read from the shape of ``d1/W``.

The residual blocks' convolutions may sample their input at a wider spacing
(``dilation``, one rate per block; CFNS's is 1 everywhere): the same weights
then look further, which widens the window each output pixel is painted
from (``python -m benchmarks.receptive_field``). The shapes cannot tell, so
a net with other rates records them in its file (``res_dilation``); CFNS
would load such a file but compute the net at rate 1.

BatchNormalization statistics (``stats``):
  in training (``chainer.config.train``) the batch statistics, as CFNS;
  at generation either ``'instance'``: each image's own statistics (what CFNS's
  generate.py computes, since it ran the net in training mode with batch 1,
  but per image so frames in one batch never share them), or
  ``'running'``: the averages accumulated during training.
"""
import operator
import sys

from faststyle import chainer_compat  # noqa: F401  (before Chainer: numpy 2, Py 3.12+)

import chainer
import chainer.functions as F
import chainer.links as L
import numpy

from faststyle import conv
from faststyle import npz
from faststyle.errors import InputError

ARCHS = ('deconv', 'resize')
# Both layouts halve the picture twice: their outputs are the same picture
# moved along only when the input moves by a multiple of this many pixels.
STRIDE = 4
STATS = ('instance', 'running')
# Chainer 7.8.1's CUDA col2im kernel (deconvolution, unpooling, a
# convolution's input gradient) computes its index into the column buffer in
# 32-bit ints, so a buffer of this many elements or more is read out of
# bounds: 'an illegal memory access' on an H200 stylizing 1280x720 frames 8
# to a pass with the deconv net (docs/gpu.md). The CPU is not affected.
COL2IM_LIMIT = 2 ** 31
RESIDUAL_BLOCKS = 5
CFNS_DILATION = (1,) * RESIDUAL_BLOCKS
# The blocks work on a quarter of the picture's width: at rate 8 their
# taps are 32 input pixels apart.
MAX_DILATION = 8
DILATION_KEY = 'res_dilation'
# Earlier builds called 'instance' (each image's own statistics) 'image';
# that name still works.
OLD_STATS_NAMES = {'image': 'instance'}


def stats_name(text):
    """The BatchNorm statistics choice (``--stats``, ``stats=``) under its
    current name: ``'image'``, its name in earlier builds, becomes
    ``'instance'``; anything else is returned as it is (to be checked
    against STATS by :func:`check_stats`). Also an argparse ``type``."""
    return OLD_STATS_NAMES.get(text, text)


def check_stats(stats):
    """``stats`` under its current name; InputError unless it is one of STATS."""
    stats = stats_name(stats)
    if stats not in STATS:
        raise InputError('stats must be one of {}, not {!r}'.format(STATS, stats))
    return stats


def per_image_normalization(x, bn):
    """BatchNormalization with each image's own mean and variance.

    Equal to ``bn(x)`` in training mode for a batch of one (CFNS's
    generate.py), but never mixes images of a batch. Running averages are
    left untouched.

    A float16 ``x`` (``--fp16``) is normalized in float32, as Chainer's own
    BatchNormalization does in mixed16 mode: squares of activations above
    256 overflow float16, and ``bn.gamma`` stays float32.
    """
    if x.dtype == numpy.float16:
        return F.cast(per_image_normalization(F.cast(x, numpy.float32), bn),
                      numpy.float16)
    mean = F.mean(x, axis=(2, 3), keepdims=True)
    centred = x - F.broadcast_to(mean, x.shape)
    var = F.mean(centred * centred, axis=(2, 3), keepdims=True)
    normalized = centred / F.broadcast_to(F.sqrt(var + bn.eps), x.shape)
    gamma = F.broadcast_to(F.reshape(bn.gamma, (1, -1, 1, 1)), x.shape)
    beta = F.broadcast_to(F.reshape(bn.beta, (1, -1, 1, 1)), x.shape)
    return normalized * gamma + beta


def check_dilation(dilation):
    """``dilation`` (RESIDUAL_BLOCKS rates) as a tuple of ints; InputError
    unless each is in 1..MAX_DILATION."""
    rates = tuple(operator.index(rate) for rate in dilation)  # 1.5 is refused, not floored
    if len(rates) != RESIDUAL_BLOCKS or not all(1 <= rate <= MAX_DILATION for rate in rates):
        raise InputError('the residual dilation must be {} rates in 1..{}, not {}'.format(
            RESIDUAL_BLOCKS, MAX_DILATION, dilation_text(dilation)))
    return rates


def dilation_text(rates):
    """The rates as --res_dilation takes them: '1 2 4 2 1'."""
    return ' '.join(str(rate) for rate in rates)


class ResidualBlock(chainer.Chain):

    def __init__(self, channels=128, ksize=3):
        super().__init__()
        # CFNS passed wscale=sqrt(2) (Chainer 1), i.e. He initialization.
        w = chainer.initializers.HeNormal()
        with self.init_scope():
            # FastStyleNet.set_dilation sets their rates (and padding).
            self.c1 = L.Convolution2D(channels, channels, ksize, 1, 1, initialW=w)
            self.c2 = L.Convolution2D(channels, channels, ksize, 1, 1, initialW=w)
            self.b1 = L.BatchNormalization(channels)
            self.b2 = L.BatchNormalization(channels)


class FastStyleNet(chainer.Chain):
    """Johnson et al.'s transform net as CFNS builds it; ``arch`` picks the
    decoder, ``dilation`` the residual blocks' rates (module docstring)."""

    def __init__(self, arch='deconv', stats='instance', dilation=CFNS_DILATION):
        super().__init__()
        if arch not in ARCHS:
            raise ValueError('arch must be one of {}'.format(ARCHS))
        self.arch = arch
        self.stats = stats
        with self.init_scope():
            self.c1 = L.Convolution2D(3, 32, 9, stride=1, pad=4)
            self.c2 = L.Convolution2D(32, 64, 4, stride=2, pad=1)
            self.c3 = L.Convolution2D(64, 128, 4, stride=2, pad=1)
            self.r1 = ResidualBlock(128)
            self.r2 = ResidualBlock(128)
            self.r3 = ResidualBlock(128)
            self.r4 = ResidualBlock(128)
            self.r5 = ResidualBlock(128)
            if arch == 'deconv':
                self.d1 = L.Deconvolution2D(128, 64, 4, stride=2, pad=1)
                self.d2 = L.Deconvolution2D(64, 32, 4, stride=2, pad=1)
                self.d3 = L.Deconvolution2D(32, 3, 9, stride=1, pad=4)
            else:
                self.d1 = L.Convolution2D(128, 64, 3, stride=1, pad=1)
                self.d2 = L.Convolution2D(64, 32, 3, stride=1, pad=1)
                self.d3 = L.Convolution2D(32, 3, 9, stride=1, pad=4)
            self.b1 = L.BatchNormalization(32)
            self.b2 = L.BatchNormalization(64)
            self.b3 = L.BatchNormalization(128)
            self.b4 = L.BatchNormalization(64)
            self.b5 = L.BatchNormalization(32)
        self.set_dilation(dilation)

    def residual_blocks(self):
        return (self.r1, self.r2, self.r3, self.r4, self.r5)

    @property
    def dilation(self):
        """The residual blocks' rates, CFNS_DILATION for CFNS's net."""
        return tuple(block.c1.dilate[0] for block in self.residual_blocks())

    def set_dilation(self, dilation):
        """Sample the residual blocks' inputs at these rates from now on
        (the weights stay; a fine-tuning start). A rate other than CFNS's is
        saved with the net, as DILATION_KEY."""
        dilation = check_dilation(dilation)
        for block, rate in zip(self.residual_blocks(), dilation):
            for conv in (block.c1, block.c2):
                conv.dilate = conv.pad = (rate, rate)
        if DILATION_KEY in self._persistent:
            delattr(self, DILATION_KEY)
        if dilation != CFNS_DILATION:
            self.add_persistent(DILATION_KEY, numpy.array(dilation, dtype=numpy.int32))

    @property
    def stats(self):
        """The BatchNorm statistics used outside training: 'instance' or 'running'."""
        return self._stats

    @stats.setter
    def stats(self, value):
        self._stats = check_stats(value)

    def col2im_elements_per_pixel(self, backward=False):
        """Elements of the largest column buffer that col2im fills, per pixel
        of one output image: in a forward pass (``backward``: and in its
        backward pass). Chainer's CUDA col2im indexes that buffer with 32-bit
        ints (COL2IM_LIMIT).

        A deconvolution fills (out channels, kh, kw) per input pixel, 2x
        upsampling (channels, 2, 2), a convolution's input gradient (in
        channels, kh, kw) per output pixel. The encoder leaves a quarter of
        the height and width: c3, the residual blocks and the first decoder
        input hold 1/16 of the output's pixels, c2 and the second 1/4."""
        if self.arch == 'deconv':
            per_pixel = [numpy.prod(link.W.shape[1:]) / fraction
                         for link, fraction in ((self.d1, 16), (self.d2, 4), (self.d3, 1))]
        else:
            per_pixel = [self.c3.W.shape[0] * 2 * 2 / 16, self.d1.W.shape[0] * 2 * 2 / 4]
        if backward:  # c1's input is the data, which needs no gradient
            convolutions = [(self.c2, 4), (self.c3, 16)] + [
                (conv, 16) for block in (self.r1, self.r2, self.r3, self.r4, self.r5)
                for conv in (block.c1, block.c2)]
            if self.arch == 'resize':
                convolutions += [(self.d1, 4), (self.d2, 1), (self.d3, 1)]
            per_pixel += [numpy.prod(link.W.shape[1:]) / fraction
                          for link, fraction in convolutions]
        return max(per_pixel)

    def forward(self, x):
        """RGB in [0, 255], shape (N, 3, H, W) with H, W multiples of 4 -> same range."""
        return self.layers(ChainerOps(self.stats), x)

    def layers(self, ops, x):
        """The forward pass, written once for both of its interpreters: ``ops``
        is ChainerOps (computes it) or faststyle/onnx_graph.py's GraphBuilder
        (writes it as ONNX nodes), so the exported graph cannot drift from the
        net."""
        if self.arch == 'deconv':
            def layer(conv, bn, h):  # CFNS master
                return ops.normalize(bn, ops.elu(ops.conv(conv, h)))
        else:
            def layer(conv, bn, h):  # CFNS resize-conv branch
                return ops.relu(ops.normalize(bn, ops.conv(conv, h)))
        h = layer(self.c1, self.b1, x)
        h = layer(self.c2, self.b2, h)
        h = layer(self.c3, self.b3, h)
        for block in self.residual_blocks():
            r = ops.relu(ops.normalize(block.b1, ops.conv(block.c1, h)))
            h = ops.add(ops.normalize(block.b2, ops.conv(block.c2, r)), h)
        if self.arch == 'deconv':
            h = layer(self.d1, self.b4, h)
            h = layer(self.d2, self.b5, h)
        else:
            h = layer(self.d1, self.b4, ops.upsample(h))
            h = layer(self.d2, self.b5, ops.upsample(h))
        return ops.to_pixels(ops.conv(self.d3, h))


class ChainerOps:
    """The operations of FastStyleNet.layers, computed by Chainer."""

    def __init__(self, stats):
        self.stats = stats

    def conv(self, link, x):
        outsize = getattr(link, 'outsize', None) or (None, None)  # Deconvolution2D's
        transposed = not isinstance(link, L.Convolution2D)
        if (link.groups, outsize) != (1, (None, None)) or transposed and link.dilate != (1, 1):
            return link(x)  # what faststyle.conv does not compute; no layer here asks
        if not transposed:
            return conv.convolution_2d(x, link.W, link.b, link.stride, link.pad, link.dilate)
        return conv.deconvolution_2d(x, link.W, link.b, link.stride, link.pad)

    def normalize(self, bn, x):
        if chainer.config.train or self.stats == 'running':
            return bn(x)
        return per_image_normalization(x, bn)

    def elu(self, x):
        return F.elu(x)

    def relu(self, x):
        return F.relu(x)

    def add(self, x, y):
        return x + y

    def upsample(self, x):
        """Nearest-neighbour 2x upsampling, as CFNS's ``unpooling_2d(h, 2, 2)``."""
        return F.unpooling_2d(x, 2, 2, outsize=(x.shape[2] * 2, x.shape[3] * 2))

    def to_pixels(self, x):
        """tanh's (-1, 1) to CFNS's pixel range (0, 255)."""
        return (F.tanh(x) + 1) * 127.5


def to_float16(model):
    """Convolution weights and biases to float16 in place; BatchNormalization's
    parameters and statistics stay float32 (Chainer's mixed16 layout, which
    its batch_normalization functions accept with float16 inputs). For
    float16 inference: feed float16 frames. Returns ``model``."""
    for link in model.links():
        if isinstance(link, (L.Convolution2D, L.Deconvolution2D)):
            for param in link.params():
                param.array = param.array.astype(numpy.float16)
    return model


def detect_arch(arrays, source='model'):
    """Tell the layout of a CFNS model from the shape of ``d1/W``."""
    if 'd1/W' not in arrays:
        raise InputError('{}: not a fast-style model: {}'.format(source, what_file(arrays)))
    shape = tuple(arrays['d1/W'].shape)
    if shape == (128, 64, 4, 4):
        return 'deconv'
    if shape == (64, 128, 3, 3):
        return 'resize'
    raise InputError('{}: not a fast-style model (d1/W has shape {}, expected '
                     '(128, 64, 4, 4) or (64, 128, 3, 3))'.format(source, shape))


def what_file(arrays):
    """What an archive without a transform net's layers holds, in words."""
    names = list(arrays)
    # train.py's snapshot of the trainer, or an Adam state alone (CFNS's:
    # the moments m and v of each parameter).
    if any(name.startswith('updater/') for name in names) or (
            any(name.endswith('/m') for name in names) and
            any(name.endswith('/v') for name in names)):
        return ('it is a .state snapshot (training state, for train.py -r); give '
                'the .model saved next to it')
    if 'conv1_1/W' in arrays:
        return 'it holds the VGG16 loss network (vgg16.model), used only in training'
    return 'it has no d1/W layer ({} arrays, first {})'.format(
        len(names), ', '.join(sorted(names)[:3]) or 'none')


def recorded_dilation(arrays, source='model'):
    """The residual rates a model file records (CFNS_DILATION if none)."""
    if DILATION_KEY not in arrays:
        return CFNS_DILATION
    rates = arrays[DILATION_KEY]
    if rates.shape != (RESIDUAL_BLOCKS,) or rates.dtype != numpy.int32:
        raise InputError('{}: {} must hold {} int32 rates, not a {} array of shape {}'.format(
            source, DILATION_KEY, RESIDUAL_BLOCKS, rates.dtype, rates.shape))
    try:
        return check_dilation(rates)
    except InputError as e:
        raise InputError('{}: {}: {}'.format(source, DILATION_KEY, e))


def load_model(path, stats='instance', dilation=None):
    """Load a ``.model`` written by CFNS or by train.py, never unpickling;
    ``dilation``: run it at these residual rates instead of its own."""
    arrays = npz.open_npz(path)
    model = FastStyleNet(detect_arch(arrays, path), stats=stats,
                         dilation=recorded_dilation(arrays, path))
    npz.load_arrays(arrays, model, source=path)
    if dilation is not None:
        model.set_dilation(dilation)
    return model


USED_BY = """net.py is a module, not a command. The commands that use it:

  python train.py -d DATASET/ -s style.jpg -o style   # models/style.model
  python generate.py photo.jpg -m models/style.model -o out.jpg   # stylize
  python export_onnx.py models/style.model -o models/style.onnx  # export

Each takes --help."""


if __name__ == '__main__':
    from faststyle import cli
    sys.exit(cli.module_main(__doc__, USED_BY))
