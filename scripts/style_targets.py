"""Per-crop style targets: each training crop optimised against the losses.

    python -m scripts.style_targets -s sample_images/candy.jpg -d content128 -o targets/candy128 \\
        --vgg vgg16_imagenet.model --image_size 128 --style_size 192 \\
        --lambda_feat 0.01 --lambda_style 0.002 --lambda_colour 2 --lambda_tone 1

A feed-forward net trained on the losses alone falls far short of their
optimum in the steps a CPU can give it (docs/training.md): the optimum of
one crop is a clear picture of the scene in the painting's strokes, the
net's a grade of it. This writes that optimum for every crop of a dataset,
cut as train.py cuts it (--image_size, --scale_crops), the image optimised
with Adam from the crop itself (Gatys et al.'s start) against train.py's
content, style, total-variation, colour and tone losses at the weights
given; train.py --targets DIR then also pulls the net's output of each crop
towards its target (--lambda_target).

Each target is written whole (under -o, at the crop's path in the dataset,
as .png) and a rerun skips the ones that exist, so the command can be
stopped and run again; --shard I/N shares the crops between processes.
"""
import os

from faststyle import chainer_compat  # noqa: F401  (before Chainer: numpy 2, Py 3.12+)

import numpy
from PIL import Image

from faststyle import cli
from faststyle import dataset
from faststyle import images
from faststyle import losses
from faststyle import tempfiles
from faststyle.errors import InputError
from faststyle.optimise import optimise_image
import vgg16


def parse_args(argv=None):
    p = cli.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--style_image', '-s', required=True, help='the painting')
    p.add_argument('--dataset', '-d', required=True, help="train.py's dataset directory")
    p.add_argument('--out', '-o', required=True, help='directory to write the targets to')
    p.add_argument('--vgg', default='vgg16.model', help='VGG16 loss network (CFNS layout)')
    p.add_argument('--image_size', type=int, default=256, help="train.py's crop size")
    cli.add_flag(p, '--scale_crops', action='store_true',
                 help="scale each image to the crop size first (train.py's --scale_crops)")
    p.add_argument('--style_size', type=int, default=None,
                   help='the painting resized to style_size x style_size (default: '
                        '--image_size, as train.py)')
    p.add_argument('--lambda_feat', type=float, default=1.0,
                   help='weight of the content loss (relu3_3)')
    p.add_argument('--lambda_style', type=float, default=5.0, help='weight of the style loss')
    p.add_argument('--lambda_tv', type=float, default=1e-6,
                   help='weight of the total-variation loss')
    p.add_argument('--lambda_colour', type=float, default=0.0,
                   help="weight of train.py's colour loss")
    p.add_argument('--lambda_tone', type=float, default=0.0,
                   help="weight of train.py's tone loss")
    p.add_argument('--steps', type=int, default=150, help='Adam steps per crop (rate 4)')
    p.add_argument('--shard', default='0/1', metavar='I/N',
                   help='only crops I, I+N, I+2N, ... of the sorted dataset')
    cli.add_flag(p, '--no_progress', action='store_true', help='no progress bar')
    args = p.parse_args(argv)
    try:
        args.shard = tuple(int(part) for part in args.shard.split('/'))
        index, count = args.shard
    except ValueError:
        p.error('--shard must look like I/N, e.g. 0/2, not {!r}'.format(args.shard))
    if not 0 <= index < count:
        p.error('--shard {}/{}: need 0 <= I < N'.format(index, count))
    if args.image_size < 16 or args.image_size % 4:
        p.error('--image_size must be a multiple of 4 and at least 16')
    if args.style_size is not None and args.style_size < 16:
        p.error('--style_size must be at least 16')
    if args.steps < 1:
        p.error('--steps must be at least 1')
    return args


def main(argv=None):
    return cli.run_cli(run, argv)


def run(argv):
    args = parse_args(argv)
    paths = dataset.list_images(args.dataset)
    if not paths:
        raise InputError('no images under {}'.format(args.dataset))
    index, count = args.shard
    todo = [p for p in paths[index::count]
            if not os.path.exists(dataset.target_path(args.out, args.dataset, p))]
    print('{} of the {} crops of this shard to optimise, {} done before'.format(
        len(todo), len(paths[index::count]), len(paths[index::count]) - len(todo)), flush=True)
    if not todo:
        return 0
    vgg = vgg16.load_vgg(args.vgg)
    painting = dataset.load_style(args.style_image, args.style_size or args.image_size)
    grams = losses.style_grams(vgg, painting)
    histogram = losses.ColourHistogram(painting)
    with cli.progress_bar(len(todo), 'targets', enabled=not args.no_progress) as bar:
        for path in todo:
            crop = numpy.asarray(dataset.crop_square(images.open_rgb(path), args.image_size,
                                                     args.scale_crops))
            target = optimise_image(vgg, crop, grams, args.lambda_feat, args.lambda_style,
                                    args.lambda_tv, args.steps, histogram=histogram,
                                    lambda_colour=args.lambda_colour,
                                    lambda_tone=args.lambda_tone, from_content=True)
            out = dataset.target_path(args.out, args.dataset, path)
            os.makedirs(os.path.dirname(out), exist_ok=True)
            tempfiles.atomic_write(out, lambda f: Image.fromarray(target).save(f, 'PNG'))
            bar.update(1)
    print('wrote {} targets under {}'.format(len(todo), args.out))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
