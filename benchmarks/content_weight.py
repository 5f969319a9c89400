"""Which content weight keeps the scene: images optimised from noise.

    python -m benchmarks.content_weight --vgg vgg16.model --content photo.jpg \\
        --style sample_images/candy.jpg [--weights 1 4 10 30 100] [--style_size N] \\
        [--lambda_style 5] [--balance_style_layers] [--lambda_coarse_style W] [--out grid.png]

A feed-forward net builds its picture from nothing, as an optimisation that
starts from noise does, so the balance of the losses at which such an
optimisation shows the scene in the style is the balance a net can learn.
For each --lambda_feat (content on relu3_3, as train.py; style weight
--lambda_style, CFNS's 5, its layers weighted equally as CFNS's or balanced
as train.py's --balance_style_layers; total variation 1e-6), Adam (rate 4)
optimises an image from uniform noise for --steps steps against train.py's
losses (--lambda_colour and --lambda_tone add its colour and tone losses,
the input being the photo; --lambda_coarse_style its coarse style loss, the
image and the painting reduced --coarse_shrink times), and the table gives
the structure kept, the style distance and the palette distance of the result
(faststyle/quality.py). --style_size sets the painting's size apart from
the image's (train.py's --style_size). --out writes the results side by
side, in the order of --weights.
"""
import argparse

from faststyle import chainer_compat  # noqa: F401  (before Chainer: numpy 2, Py 3.12+)

import chainer
import numpy
from PIL import Image

from faststyle import cli
from faststyle import dataset
from faststyle import images
from faststyle import losses
from faststyle import quality
from faststyle.optimise import optimise_image
import vgg16


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                     formatter_class=cli.HelpFormatter)
    parser.add_argument('--vgg', default='vgg16.model', help='VGG16 weights (CFNS layout)')
    parser.add_argument('--content', required=True, help='a photo')
    parser.add_argument('--style', required=True, help='the style image')
    parser.add_argument('--size', type=int, default=192,
                        help='height of the optimised image')
    parser.add_argument('--style_size', type=int, default=None,
                        help='the style image is resized to style_size x style_size '
                             "(default: --size, as train.py's --style_size defaults "
                             'to --image_size)')
    parser.add_argument('--weights', type=float, nargs='+', default=[1, 4, 10, 30, 100],
                        help='content weights (--lambda_feat) to try')
    parser.add_argument('--lambda_colour', type=float, default=0.0,
                        help="weight of train.py's colour loss")
    parser.add_argument('--lambda_tone', type=float, default=0.0,
                        help="weight of train.py's tone loss")
    cli.add_flag(parser, '--balance_style_layers', action='store_true',
                 help="weight the style layers as train.py's --balance_style_layers")
    parser.add_argument('--lambda_style', type=float, default=5.0,
                        help="weight of the style loss (train.py's --lambda_style)")
    parser.add_argument('--lambda_coarse_style', type=float, default=0.0,
                        help="weight of train.py's coarse style loss (0: off)")
    parser.add_argument('--coarse_shrink', type=int, default=4,
                        help="the factor the coarse style loss reduces by (train.py's "
                             '--coarse_shrink)')
    parser.add_argument('--steps', type=int, default=150, help='Adam steps')
    parser.add_argument('--out', help='write the results side by side to this image')
    args = parser.parse_args(argv)

    vgg = vgg16.load_vgg(args.vgg)
    photo = images.open_rgb(args.content)
    width = int(round(photo.width * args.size / photo.height / 4)) * 4
    content = numpy.asarray(photo.resize((width, args.size), Image.BILINEAR))
    painting = numpy.asarray(images.open_rgb(args.style))
    style_distance = quality.StyleDistance(vgg, painting, chainer.get_device('@numpy'))
    style_size = args.style_size or args.size
    grams = style_distance.grams((style_size, style_size))
    painting_at_style_size = dataset.load_style(args.style, style_size)
    histogram = losses.ColourHistogram(painting_at_style_size)
    layer_weights = losses.balanced_layer_weights(grams) if args.balance_style_layers else None
    coarse_grams = (losses.style_grams(vgg, losses.shrink(painting_at_style_size,
                                                          args.coarse_shrink))
                    if args.lambda_coarse_style else None)
    print('{} ({}x{}) from noise, {} Adam steps, style weight {:g}{}{}, tv 1e-6, colour {:g}, '
          'tone {:g}, style at {} px, VGG16 {}{}'.format(
        args.content, width, args.size, args.steps, args.lambda_style,
        ' (layers balanced)' if layer_weights else '',
        ', at 1/{} size {:g}'.format(args.coarse_shrink, args.lambda_coarse_style)
        if args.lambda_coarse_style else '', args.lambda_colour, args.lambda_tone,
        style_size, args.vgg,
        ' (RANDOM stand-in: says nothing)' if vgg.is_stand_in else ''))
    print('{:>12} {:>10} {:>15} {:>8}'.format('lambda_feat', 'structure', 'style distance',
                                             'palette'))
    results = []
    for weight in args.weights:
        result = optimise_image(vgg, content, grams, weight, args.lambda_style, 1e-6,
                                args.steps, histogram=histogram,
                                lambda_colour=args.lambda_colour,
                                lambda_tone=args.lambda_tone, layer_weights=layer_weights,
                                coarse_grams=coarse_grams, coarse_shrink=args.coarse_shrink,
                                lambda_coarse=args.lambda_coarse_style)
        results.append(result)
        print('{:>12g} {:>10.2f} {:>15.0f} {:>8.1f}'.format(
            weight, quality.structure_kept(content, result), style_distance(result),
            quality.palette_distance(result, painting)), flush=True)
    if args.out:
        Image.fromarray(numpy.concatenate(results, axis=1)).save(args.out)
        print('wrote', args.out)


if __name__ == '__main__':
    main()
