"""Images optimised against the training losses (Gatys et al.'s method).

A feed-forward net is trained to approximate this optimum for every input;
the optimum itself shows what the losses ask for (benchmarks/content_weight.py
starts it from noise) and is a per-crop target a net can be taught directly
(scripts/style_targets.py starts it from the crop).
"""
import chainer
import numpy

from faststyle import losses


def optimise_image(vgg, content, style_grams, lambda_feat, lambda_style, lambda_tv,
                   steps, seed=0, histogram=None, lambda_colour=0.0, lambda_tone=0.0,
                   layer_weights=None, coarse_grams=None, coarse_shrink=4,
                   lambda_coarse=0.0, from_content=False, rate=4.0):
    """An RGB uint8 image (HxWx3) optimised with Adam (``rate``) for ``steps``
    steps against train.py's losses for the photo ``content`` (HxWx3 uint8):
    content on relu3_3 at ``lambda_feat``, style at ``lambda_style``, total
    variation at ``lambda_tv``.

    It starts from uniform noise drawn from ``seed``, or from the photo
    itself with ``from_content``. ``histogram`` (a losses.ColourHistogram
    of the painting) for the colour and tone losses; ``layer_weights`` scale
    the style layers (train.py's --balance_style_layers); ``coarse_grams``
    (the painting reduced ``coarse_shrink`` times) for the coarse style loss.
    """
    target = content.transpose(2, 0, 1)[None].astype(numpy.float32)
    content_target = losses.content_features(vgg, target)
    coarse_layer_weights = (losses.balanced_layer_weights(coarse_grams)
                            if lambda_coarse and layer_weights else None)
    start = (target.copy() if from_content else
             numpy.random.RandomState(seed).uniform(0, 255, target.shape).astype(numpy.float32))
    image = chainer.Link()
    with image.init_scope():
        image.pixels = chainer.Parameter(start)
    optimizer = chainer.optimizers.Adam(alpha=rate)
    optimizer.setup(image)
    for _ in range(steps):
        y = image.pixels
        features = vgg(y)
        loss = losses.content_loss(features, content_target, lambda_feat)
        loss += losses.style_loss(features, style_grams, lambda_style, layer_weights)
        loss += lambda_tv * losses.total_variation(y)
        if lambda_coarse:
            loss += losses.coarse_style_loss(vgg, y, coarse_grams, coarse_shrink, lambda_coarse,
                                             coarse_layer_weights)
        if lambda_colour:
            loss += lambda_colour * histogram(y)
        if lambda_tone:
            loss += lambda_tone * histogram.tones(target, y)
        image.cleargrads()
        loss.backward()
        optimizer.update()
        image.pixels.array[...] = numpy.clip(image.pixels.array, 0, 255)
    return image.pixels.array[0].transpose(1, 2, 0).round().astype(numpy.uint8)
