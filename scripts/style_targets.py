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
The settings go into -o/settings.json: a rerun with other settings is
refused (a folder of mixed targets would teach two pictures), and train.py
refuses targets made for another --image_size or --scale_crops. An image
that cannot be decoded is skipped, as train.py skips it.
"""
import os

from faststyle import chainer_compat  # noqa: F401  (before Chainer: numpy 2, Py 3.12+)

from faststyle import cli
from faststyle import crops
from faststyle import dataset
from faststyle import losses
from faststyle import vgg16_weights
from faststyle.optimise import optimise_image
import vgg16


def parse_args(argv=None):
    p = cli.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--style_image', '-s', required=True, help='the painting')
    crops.add_target_flags(p)
    p.add_argument('--vgg', default='vgg16.model', help='VGG16 loss network (CFNS layout)')
    p.add_argument('--vgg_preprocessing', choices=vgg16_weights.PREPROCESSING,
                   help="VGG16 input, as train.py's (default: what --vgg records, else "
                        "'cfns')")
    p.add_argument('--style_size', type=int, default=None,
                   help='the painting resized to style_size x style_size (default: '
                        '--image_size, as train.py)')
    p.add_argument('--lambda_feat', type=float, default=None,
                   help="weight of the content loss (relu3_3) (default: train.py's: 30 "
                        'with a VGG16 from vgg16.py --hed, else 1.0)')
    p.add_argument('--lambda_style', type=float, default=5.0, help='weight of the style loss')
    p.add_argument('--lambda_tv', type=float, default=1e-6,
                   help='weight of the total-variation loss')
    p.add_argument('--lambda_colour', type=float, default=0.0,
                   help="weight of train.py's colour loss")
    p.add_argument('--lambda_tone', type=float, default=0.0,
                   help="weight of train.py's tone loss")
    p.add_argument('--steps', type=int, default=150, help='Adam steps per crop (rate 4)')
    args = p.parse_args(argv)
    if args.style_size is not None and args.style_size < 16:
        p.error('--style_size must be at least 16')
    if args.steps < 1:
        p.error('--steps must be at least 1')
    if args.lambda_feat is None:
        args.lambda_feat = vgg16_weights.default_content_weight(args.vgg)
    args.style_size = args.style_size or args.image_size
    return args


def settings_of(args):
    """What makes a target: recorded in the folder, compared on a rerun."""
    return {'style_image_sha256': crops.painting_digest(args.style_image),
            'vgg': os.path.basename(args.vgg),
            **{name: getattr(args, name) for name in (
                'vgg_preprocessing', 'image_size', 'scale_crops', 'style_size', 'lambda_feat',
                'lambda_style', 'lambda_tv', 'lambda_colour', 'lambda_tone', 'steps')}}


def main(argv=None):
    return cli.run_cli(run, argv)


def run(argv):
    args = parse_args(argv)
    dataset.open_user_image(args.style_image, 'style image')

    def make_painter():
        vgg = vgg16.load_vgg(args.vgg, args.vgg_preprocessing)
        painting = dataset.load_style(args.style_image, args.style_size)
        grams = losses.style_grams(vgg, painting)
        histogram = losses.ColourHistogram(painting)
        return lambda crop: optimise_image(
            vgg, crop, grams, args.lambda_feat, args.lambda_style, args.lambda_tv, args.steps,
            histogram=histogram, lambda_colour=args.lambda_colour, lambda_tone=args.lambda_tone,
            from_content=True)

    written = crops.write_targets(args.dataset, args.out, args.image_size, args.scale_crops,
                                  args.shard, settings_of(args), make_painter,
                                  show_progress=not args.no_progress)
    print('wrote {} targets under {}'.format(written, args.out))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
