"""How much a net's style depends on seeing the image's edge.

    python -m benchmarks.edge_dependence --vgg vgg16.model --style sample_images/candy.jpg \\
        --crops sample_training/content128 -m models/candy_stab.model [-m ...] [--count 8]

A zero-padded convolution tells the net where the image ends. On a training
crop of 128 px almost every pixel is within the reach of an edge; in a video
frame almost none is. For each of --count crops (evenly spaced, by name), the net
is run as in training (each image's own statistics) twice: on the crop alone,
and on the crop mirrored once on every side (3x3 tiles of it and its
reflections, so the same pixels and the same per-channel statistics), of which
the middle tile is kept. Both are measured on the crop's interior (an eighth
of its side in from each edge): style distance and palette distance to the
painting (faststyle/quality.py). A net that paints the style everywhere gives
the same figures in both columns; one that learned to paint it near the edge
is worse in the middle of the tiling, which is what it does to most of a
video frame.

First, the reach of each net: how much its output moves, by distance from
one input pixel changed by 100 in a 256-px noise image (the largest change
in each ring 8 px wide; far away, what remains is the change of the image's
statistics).
"""
import argparse
import os

from faststyle import chainer_compat  # noqa: F401  (before Chainer: numpy 2, Py 3.12+)

import chainer
import numpy

from faststyle import cli
from faststyle import images
from faststyle import quality
from faststyle import stability_measures
import net
import vgg16


def stylize_alone_and_tiled(model, crop):
    """The net's output (RGB uint8) for ``crop`` (H, W, 3) alone and for the
    middle tile of the crop mirrored on every side, in training mode."""
    x = numpy.ascontiguousarray(crop.transpose(2, 0, 1)[None], dtype=numpy.float32)
    h, w = crop.shape[:2]
    tiled = numpy.pad(x, ((0, 0), (0, 0), (h, h), (w, w)), mode='symmetric')
    with chainer.using_config('train', True), chainer.no_backprop_mode():
        alone = model(x).array[0]
        middle = model(tiled).array[0][:, h:2 * h, w:2 * w]
    return [numpy.clip(y, 0, 255).transpose(1, 2, 0).astype(numpy.uint8)
            for y in (alone, middle)]


def reach(model, size=256, ring=8):
    """The largest output change in each ``ring``-px ring (Chebyshev distance)
    around one input pixel changed by 100, out to size / 2."""
    x = numpy.random.RandomState(0).uniform(0, 255, (1, 3, size, size)).astype(numpy.float32)
    moved = x.copy()
    centre = size // 2
    moved[:, :, centre, centre] += 100
    with chainer.using_config('train', True), chainer.no_backprop_mode():
        change = numpy.abs(model(x).array - model(moved).array).max(axis=(0, 1))
    rows, cols = numpy.mgrid[:size, :size]
    distance = numpy.maximum(abs(rows - centre), abs(cols - centre))
    return [float(change[(distance >= lo) & (distance < lo + ring)].max())
            for lo in range(0, centre, ring)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                     formatter_class=cli.HelpFormatter)
    parser.add_argument('--vgg', default='vgg16.model', help='VGG16 weights (CFNS layout)')
    parser.add_argument('--style', required=True, help='the style image')
    parser.add_argument('--crops', required=True,
                        help='a folder of training crops (all of one size)')
    parser.add_argument('-m', '--model', action='append', required=True,
                        help='a .model to measure (repeat for several)')
    parser.add_argument('--count', type=int, default=8, help='crops to use')
    args = parser.parse_args(argv)

    vgg = vgg16.load_vgg(args.vgg)
    painting = numpy.asarray(images.open_rgb(args.style))
    distance = quality.StyleDistance(vgg, painting, chainer.get_device('@numpy'))
    paths = stability_measures.frame_files(args.crops)
    paths = paths[::max(1, len(paths) // args.count)][:args.count]
    crops = [numpy.asarray(images.open_rgb(path)) for path in paths]
    print('{} crops of {} ({}x{}), measured {} px in from each edge{}'.format(
        len(crops), args.crops, crops[0].shape[1], crops[0].shape[0],
        crops[0].shape[0] // 8, ' (VGG16 is a RANDOM stand-in: says nothing)'
        if vgg.is_stand_in else ''))
    print('reach: largest output change at 0, 8, 16, ... px from a pixel changed by 100')
    models = [(os.path.basename(path), net.load_model(path)) for path in args.model]
    for name, model in models:
        print('{:<36} {}'.format(name, ' '.join('{:.2g}'.format(c) for c in reach(model)[:8])))
    print('{:<36} {:>13} {:>13} {:>9} {:>9}'.format(
        'model', 'style alone', 'style middle', 'pal alone', 'pal middle'))
    for name, model in models:
        figures = numpy.zeros(4)
        for crop in crops:
            margin = crop.shape[0] // 8
            for k, out in enumerate(stylize_alone_and_tiled(model, crop)):
                inside = numpy.ascontiguousarray(out[margin:-margin, margin:-margin])
                figures[k] += distance(inside) / len(crops)
                figures[2 + k] += distance.palette(inside) / len(crops)
        print('{:<36} {:>13.0f} {:>13.0f} {:>9.1f} {:>9.1f}'.format(
            name, *figures), flush=True)


if __name__ == '__main__':
    main()
