"""How far the transform net looks: the input pixels one output pixel depends on.

    python -m benchmarks.receptive_field [-m A.model ...] [--frame FRAME.png]

The net paints a shape from what it sees around each pixel, so no shape it
paints is wider than that window except by following the scene (a flat sky
painted flat). This prints, for each layout (deconv, resize, and those
of the models given, with train.py --res_dilation's rates):

  receptive field   the width of the box of input pixels that can change
                    the centre output pixel: where the gradient of that pixel
                    is not zero, measured on a net of random weights with
                    BatchNorm's running statistics (convolutions only)
  of 640 / 1280     that width as a share of a 360p and a 720p frame's width

and, for each model given with -m, on FRAME as generate.py runs the net
(per-image statistics, without generate.py's padding), of the gradient's
magnitude of the
frame's centre pixel (summed over its three colours): the side of the
square around it that holds half, and the share inside the receptive
field. Per-image statistics make every pixel count a little (each layer's
mean and variance), which moves the picture's tone, not its shapes.
"""
import sys

from faststyle import chainer_compat  # noqa: F401  (before Chainer: numpy 2, Py 3.12+)

import chainer
import numpy

from faststyle import cli
from faststyle import dataset
from faststyle import images
import net

# The input side for CFNS's layouts: larger than their 110-px window, a
# multiple of 4. Wider rates get a wider input (input_side).
SIDE = 256


def gradient_of_centre_pixel(model, x):
    """|d (sum of the centre output pixel's colours) / d x|, summed over the
    colours: (H, W), for the input ``x`` (1, 3, H, W) float32."""
    x = chainer.Variable(x)
    with chainer.using_config('train', False):
        y = model(x)
    h, w = y.shape[2:]
    chainer.functions.sum(y[0, :, h // 2, w // 2]).backward()
    return numpy.abs(x.grad[0]).sum(axis=0)


def nonzero_extent(gradient):
    """(height, width) of the smallest box holding every non-zero entry of
    ``gradient`` (H, W)."""
    rows, cols = numpy.nonzero(gradient)
    return int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)


def receptive_field(arch, dilation=net.CFNS_DILATION, seed=0):
    """The receptive field of the layout ``arch`` with the residual rates
    ``dilation``, in pixels (module docstring)."""
    # Chainer's default initializers draw from numpy's global generator:
    # seeded for a repeatable net, and put back as it was.
    saved = numpy.random.get_state()
    try:
        numpy.random.seed(seed)
        model = net.FastStyleNet(arch, stats='running', dilation=dilation)
    finally:
        numpy.random.set_state(saved)
    # Small values: random weights without normalization grow the input
    # layer by layer, and a saturated tanh has no gradient.
    side = input_side(dilation)
    x = numpy.random.RandomState(seed).uniform(0, 1e-3, (1, 3, side, side)).astype(numpy.float32)
    height, width = nonzero_extent(gradient_of_centre_pixel(model, x))
    if max(height, width) >= side:
        raise RuntimeError('the window filled the {}-px input: measure on a larger one'.format(
            side))
    return max(height, width)


def input_side(dilation):
    """An input wider than the window the rates can give: SIDE plus, for each
    residual convolution (two a block), the 4 * 2 * (rate - 1) input pixels
    a rate above 1 adds to a 3x3 kernel's reach on the quarter-size map."""
    return SIDE + sum(2 * 4 * 2 * (rate - 1) for rate in dilation)


def layout_name(arch, dilation):
    """'resize', or 'resize 1 2 4 2 1' for residual rates other than CFNS's."""
    return arch if dilation == net.CFNS_DILATION else '{} {}'.format(
        arch, net.dilation_text(dilation))


def mass_side(gradient, share):
    """The side of the smallest square around the centre that holds ``share``
    of ``gradient``'s sum."""
    h, w = gradient.shape
    total = gradient.sum()
    for radius in range(max(h, w)):
        if window(gradient, 2 * radius + 1).sum() >= share * total:
            return 2 * radius + 1
    return max(h, w)


def window(gradient, side):
    """The square of ``side`` pixels around the centre of ``gradient``."""
    h, w = gradient.shape
    top, left = max(0, h // 2 - side // 2), max(0, w // 2 - side // 2)
    return gradient[top:top + side, left:left + side]


def main(argv=None):
    p = cli.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('-m', '--model', action='append', default=[],
                   help='a .model whose practical reach to measure on --frame')
    p.add_argument('--frame', default='footage/street/0010.png',
                   help='the frame the models are measured on (generate.py\'s size)')
    args = p.parse_args(argv)

    def body(_):
        models = [(path, net.load_model(path)) for path in args.model]
        frame = images.read_rgb_array(args.frame) if models else None
        print('{:<20} {:>16} {:>8} {:>8}'.format('layout', 'receptive field', 'of 640',
                                                  'of 1280'))
        # The CFNS layouts, and those of the models given (--res_dilation's rates).
        layouts = [(arch, net.CFNS_DILATION) for arch in net.ARCHS] + [
            (model.arch, model.dilation) for _, model in models]
        fields = {}
        for layout in layouts:
            if layout not in fields:
                fields[layout] = side = receptive_field(*layout)
                print('{:<20} {:>13} px {:>7.0%} {:>8.0%}'.format(
                    layout_name(*layout), side, side / 640, side / 1280))
        if not models:
            return
        h, w = frame.shape[0] // 4 * 4, frame.shape[1] // 4 * 4
        x = dataset.to_chw(frame[:h, :w])[None]
        print('{} ({}x{}), the centre pixel\'s gradient: the square holding half of it, '
              'the share inside the receptive field'.format(args.frame, w, h))
        for path, model in models:
            gradient = gradient_of_centre_pixel(model, x)
            inside = window(gradient, fields[model.arch, model.dilation]).sum() / gradient.sum()
            print('{:<40} {:>5} px {:>7.0%}'.format(path, mass_side(gradient, 0.5), inside))
    return cli.run_cli(body)


if __name__ == '__main__':
    sys.exit(main())
