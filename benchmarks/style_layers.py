"""Where a style distance lives: stability.py's style distance per VGG16 layer.

    python -m benchmarks.style_layers --style sample_images/candy.jpg \\
        --vgg vgg16.model --vgg vgg16_imagenet.model FRAMES [FRAMES ...] [--max_frames 12] \\
        [--shrink 1 2 4]

FRAMES is an image or a folder of frames (its first --max_frames, in name
order). For each and each --vgg, the mean over the frames of stability.py's
style distance to --style (the painting resized to each frame,
faststyle/quality.py), split by layer, relu1_2 to relu4_3, with the total,
which is stability.py's style_dist (or texture_dist, for --texture_vgg).
A distance that is nearly all relu1_2 is one of colours, and a colour
grade of the scene can score well on it; relu2_2 and relu3_3 hold the
painting's strokes and textures.

With --shrink K each frame is first reduced to 1/K of its size (area
average) and the painting resized to that: the same layers then see
K times larger shapes of the frame. A net whose fine strokes come near the
painting but whose large shapes do not is near at 1 and far at 4.
"""
import os
import sys

from faststyle import chainer_compat  # noqa: F401  (before Chainer: numpy 2, Py 3.12+)

import chainer
import numpy

from faststyle import cli
from faststyle import folders
from faststyle import images
from faststyle import quality
from faststyle.errors import InputError
import vgg16

LAYERS = ('relu1_2', 'relu2_2', 'relu3_3', 'relu4_3')


def frame_paths(path, max_frames):
    """The image at ``path``, or the first ``max_frames`` of a folder (0: all)."""
    if os.path.isdir(path):
        paths = folders.list_files(path, images.IMAGE_EXTENSIONS)
        if not paths:
            raise InputError('{}: no image files'.format(path))
        return paths[:max_frames] if max_frames else paths
    if not os.path.isfile(path):
        raise InputError('{}: no such file or folder'.format(path))
    return [path]


def shrunk(rgb, factor):
    """``rgb`` reduced to 1/``factor`` of its width and height (area average)."""
    return images.resize(rgb, images.scaled_size(rgb.shape[1], rgb.shape[0], 1 / factor))


def mean_per_layer(distance, paths, factor=1):
    """The mean over the frames at ``paths``, each shrunk by ``factor``, of
    ``distance.per_layer``."""
    return numpy.mean([distance.per_layer(shrunk(numpy.asarray(images.open_rgb(p)), factor))
                       for p in paths], axis=0)


def main(argv=None):
    parser = cli.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('frames', nargs='+', help='images or folders of frames')
    parser.add_argument('--style', required=True, metavar='PAINTING',
                        help='the painting')
    parser.add_argument('--vgg', action='append', required=True,
                        help='VGG16 weights (CFNS layout; see vgg16.py); repeat for more')
    cli.add_flag(parser, '--max_frames', type=int, default=12,
                 help='the first N frames of a folder (0: all)')
    parser.add_argument('--shrink', type=int, nargs='+', default=[1], metavar='K',
                        help='measure each frame reduced to 1/K of its size, for each K '
                             '(default: 1, as stability.py)')
    args = parser.parse_args(argv)
    if args.max_frames < 0:
        parser.error('--max_frames must be >= 0')
    if min(args.shrink) < 1:
        parser.error('--shrink must be >= 1')

    def body(_):
        painting = numpy.asarray(images.open_rgb(args.style))
        device = chainer.get_device('@numpy')
        inputs = [(path, frame_paths(path, args.max_frames)) for path in args.frames]
        print('{:<40} {:<24} {:>6} {:>10}'.format('frames', 'vgg', 'shrink', 'total')
              + ''.join(' {:>10}'.format(layer) for layer in LAYERS))
        for vgg_path in args.vgg:
            distance = quality.StyleDistance(vgg16.load_vgg(vgg_path), painting, device)
            for path, paths in inputs:
                for factor in args.shrink:
                    layers = mean_per_layer(distance, paths, factor)
                    print('{:<40} {:<24} {:>6} {:>10.4g}'.format(
                        path, os.path.basename(vgg_path), factor, layers.sum())
                        + ''.join(' {:>10.4g}'.format(v) for v in layers))
    return cli.run_cli(body)


if __name__ == '__main__':
    sys.exit(main())
