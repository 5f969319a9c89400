"""CFNS's perceptual losses: feature, style (Gram matrices) and total
variation; and colour, tone and shift losses of our own (the pixels' colour
histogram, the brightness in the input's order, the output of a moved crop)."""
import chainer
import chainer.functions as F
import numpy

import net


def gram_matrix(features):
    """F F^T / (ch * h * w) per image, as CFNS."""
    b, ch, h, w = features.shape
    flat = F.reshape(features, (b, ch, h * w))
    return F.matmul(flat, flat, transb=True) / (ch * h * w)


def total_variation(y):
    """CFNS master's total variation: squared neighbour differences per channel.

    CFNS convolves with (3, 3, 2, 1) and (3, 3, 1, 2) kernels whose output
    channel c sees only input channel c ([1, -1] on the diagonal), so each
    channel's differences are squared on their own (CFNS commit 528f8fb,
    "Fix total variation calculation"; before it RGB was summed first).
    """
    dh = y[:, :, 1:, :] - y[:, :, :-1, :]
    dw = y[:, :, :, 1:] - y[:, :, :, :-1]
    return F.sum(dh * dh) + F.sum(dw * dw)


def interior(images, margin):
    """``images`` (N, C, H, W) without ``margin`` pixels along each edge."""
    if not margin:
        return images
    return images[:, :, margin:-margin, margin:-margin]


def shift_loss(transform, x, y, shift, lambda_shift, margin):
    """lambda_shift * MSE between ``y = transform(x)`` and the output of the
    crop moved by ``shift`` = (dy, dx) pixels, on the pixels both show.

    The net halves the picture twice, so only a move by a multiple of
    net.STRIDE pixels moves its output along with the scene; a move by 1-3
    pixels, as in every camera pan, can repaint the strokes, and that is
    what a warping error measures on video. The moved crop is ``x`` from
    (dy, dx) on, net.STRIDE pixels smaller (the net takes multiples of it);
    its edges are not ``x``'s, so ``margin`` pixels along them are left out.
    """
    dy, dx = shift
    n, ch, h, w = x.shape
    window = (slice(None), slice(None), slice(dy, dy + h - net.STRIDE),
              slice(dx, dx + w - net.STRIDE))
    moved = transform(x[window])
    return lambda_shift * F.mean_squared_error(interior(y[window], margin),
                                               interior(moved, margin))


def style_grams(vgg, style):
    """Gram matrices of a batch of images (N, 3, H, W), constants: the
    painting's, fixed for training, or each crop's target's."""
    return [gram_matrix(f).array for f in vgg(style)]


CONTENT_LAYER = 2  # relu3_3, CFNS's content feature


def balanced_layer_weights(grams):
    """Weights that make every style layer count as much as the first.

    A Gram matrix's entries shrink layer by layer: with HED's VGG16 the mean
    square of candy's is 5620, 84, 0.34 and 0.0002 from relu1_2 to relu4_3,
    so with equal weights the style loss is relu1_2's alone, statistics of
    5-pixel patches (stripes and tints), and nothing of the painting's larger
    shapes. Layer l is weighted by (mean square of the first Gram) / (mean
    square of Gram l), of the style image's own Gram matrices.
    """
    squares = [float((g.astype(numpy.float64) ** 2).mean()) for g in grams]
    return [squares[0] / square if square > 0 else 1.0 for square in squares]


def content_features(vgg, x):
    """relu3_3 of ``x``, a constant: no graph, and no layer past it."""
    with chainer.no_backprop_mode():
        return vgg(x, n_features=CONTENT_LAYER + 1)[CONTENT_LAYER].array


def content_loss(features, wanted, weight):
    """``weight`` * MSE between relu3_3 of ``features`` (the output's VGG16
    features, as a list) and ``wanted`` (:func:`content_features`)."""
    return weight * F.mean_squared_error(features[CONTENT_LAYER], wanted)


def perceptual_losses(vgg, x, y, grams, lambda_feat, lambda_style, lambda_tv,
                      layer_weights=None, features_y=None):
    """The three CFNS loss terms for content ``x`` and output ``y``.

    ``grams`` come from :func:`style_grams` for one image and are broadcast to
    the batch, which equals CFNS's tiling of the style image. ``layer_weights``
    (one per Gram matrix, default all 1 as CFNS) scale the style layers.
    ``features_y``: ``vgg(y)`` where the caller has it already (it is the
    costliest part of a step), else computed here.
    """
    if features_y is None:
        features_y = vgg(y)
    loss_feat = content_loss(features_y, content_features(vgg, x), lambda_feat)
    loss_style = style_loss(features_y, grams, lambda_style, layer_weights)
    loss_tv = lambda_tv * total_variation(y)
    return loss_feat, loss_style, loss_tv


def target_features(vgg, target):
    """VGG16's features of the targets (N, 3, H, W), every style layer,
    constants: computed once for both target losses."""
    with chainer.no_backprop_mode():
        return [f.array for f in vgg(target)]


def target_loss(features_y, features_target, lambda_target):
    """The content loss of the output with its target
    (scripts/style_targets.py: the crop optimised against the losses;
    scripts/teacher_targets.py: another net's picture of it) for the crop,
    weighted ``lambda_target``; ``features_y`` is ``vgg(output)``, shared
    with :func:`perceptual_losses`, ``features_target``
    :func:`target_features`.

    The features, not the pixels: the target's strokes are one optimum of
    many, and the features ask for their shapes and colours without
    punishing every stroke a pixel or two away from where the target has it.
    """
    return content_loss(features_y, features_target[CONTENT_LAYER], lambda_target)


def target_pixel_loss(y, target, lambda_target):
    """The mean squared error of the output ``y``'s pixels (0-255) with its
    ``target``'s, weighted ``lambda_target``: for targets that are a
    function of the crop (scripts/teacher_targets.py), whose strokes and
    colours a net can learn where they are, not only their kind."""
    return lambda_target * F.mean_squared_error(y, target)


def target_style_loss(features_y, features_target, lambda_target_style, layer_weights=None):
    """The style loss of the output (``features_y``: ``vgg(output)``) against
    the Gram matrices of its own target (``features_target``:
    :func:`target_features`), each crop's, weighted
    ``lambda_target_style``. A net pulled towards targets by a mean squared
    error alone paints their average where it cannot tell their strokes
    apart, a paler picture; their Gram matrices ask for the strokes' kind,
    contrast and colours wherever they lie. ``layer_weights`` as for the
    painting's style loss."""
    grams = [gram_matrix(f).array for f in features_target]
    return style_loss(features_y, grams, lambda_target_style, layer_weights)


def style_loss(features, grams, lambda_style, layer_weights=None):
    """lambda_style * the weighted sum over layers of the mean squared
    difference between the Gram matrices of ``features`` (a batch) and
    ``grams`` (one image's, broadcast to the batch, or one per image)."""
    loss = 0
    for f, gram, weight in zip(features, grams, layer_weights or [1.0] * len(grams)):
        g = gram_matrix(f)
        loss += lambda_style * weight * F.mean_squared_error(g, F.broadcast_to(gram, g.shape))
    return loss


def shrink(images, factor):
    """``images`` (N, C, H, W) reduced to 1/``factor`` of their size by the
    mean of each factor x factor block (what an area resize does), edge rows
    and columns that fill no whole block left out."""
    return F.average_pooling_2d(images, factor)


def coarse_style_loss(vgg, y, coarse_grams, factor, lambda_coarse, layer_weights=None):
    """The style loss of outputs ``y`` reduced by ``factor`` against
    ``coarse_grams``, the Gram matrices of the painting reduced alike.

    The Gram matrices of the output at its own size are statistics of
    patches no wider than the deepest layer's receptive field, mostly
    relu1_2's 5 pixels with HED's weights: a net can match them with fine
    specks of the painting's colours, and the trained nets did, while the
    painting's larger shapes (udnie's planes, mosaic's cells) stayed out of
    the picture. Reduced, the same layers see shapes ``factor`` times
    larger (the multi-scale Gram loss of texture synthesis).
    """
    return style_loss(vgg(shrink(y, factor)), coarse_grams, lambda_coarse, layer_weights)


# The colour axes the histograms are compared along: red, green, blue,
# brightness and two opponent axes (red-green, yellow-blue).
COLOUR_AXES = numpy.array([
    [1, 0, 0], [0, 1, 0], [0, 0, 1],
    [1 / 3 ** 0.5] * 3,
    [1 / 2 ** 0.5, -1 / 2 ** 0.5, 0],
    [1 / 6 ** 0.5, 1 / 6 ** 0.5, -2 / 6 ** 0.5]], dtype=numpy.float32)
BRIGHTNESS = 3  # the row of COLOUR_AXES that the tone loss compares


class ColourHistogram:
    """A loss that pulls an image's colours to a painting's colour histogram.

    The Gram matrices of an edge-tuned loss network can be matched by a
    picture in one or two of the painting's colours. This loss is the sliced
    optimal-transport distance of the pixel colours: along each of
    COLOUR_AXES, the mean squared difference (0-255 units) between the
    image's sorted values and the painting's at the same quantiles. Moving
    a pixel's colour changes the loss; moving the pixel does not.

    ``style``: the painting, (1, 3, H, W) RGB 0-255 on the training device.
    """

    def __init__(self, style):
        xp = chainer.backend.get_array_module(style)
        self.axes = xp.asarray(COLOUR_AXES)
        values = self.axes @ style.reshape(3, -1).astype(numpy.float32)
        self.sorted_values = xp.sort(values, axis=1)
        self._quantiles = {}

    def quantiles(self, count):
        """The painting's values at ``count`` evenly spaced quantiles, (axes, count)."""
        if count not in self._quantiles:
            xp = chainer.backend.get_array_module(self.sorted_values)
            known = self.sorted_values.shape[1]
            # Quantile i of count sits at (i + 0.5) / count of the way.
            at = (xp.arange(count, dtype=numpy.float32) + 0.5) * (known / count) - 0.5
            low = xp.clip(xp.floor(at).astype(numpy.int64), 0, known - 1)
            high = xp.clip(low + 1, 0, known - 1)
            part = xp.clip(at - low, 0, 1).astype(numpy.float32)[None]
            self._quantiles[count] = ((1 - part) * self.sorted_values[:, low]
                                      + part * self.sorted_values[:, high])
        return self._quantiles[count]

    def __call__(self, y):
        """The loss of images ``y`` (N, 3, H, W), RGB 0-255, a Variable."""
        xp = chainer.backend.get_array_module(y)
        n, ch, h, w = y.shape
        values = F.matmul(xp.broadcast_to(self.axes, (n,) + self.axes.shape),
                          F.reshape(y, (n, ch, h * w)))
        # Each pixel's target is the painting's value at the pixel's rank:
        # the gradient of the sorted difference, without sorting in the graph.
        rank = xp.argsort(xp.argsort(values.array, axis=2), axis=2)
        target = xp.take_along_axis(
            xp.broadcast_to(self.quantiles(h * w), values.shape), rank, axis=2)
        return F.mean_squared_error(values, target)

    def tones(self, x, y):
        """The tone loss of outputs ``y`` (a Variable) for inputs ``x``, both
        (N, 3, H, W) RGB 0-255: each output pixel's brightness against the
        painting's brightness at the rank of its input pixel's brightness,
        pixels of equal input brightness sharing the mean of their quantiles
        (the input's levels mapped onto the painting's by histogram matching).

        The colour histogram alone lets a net put the painting's darks
        anywhere, and on real frames it put them in the flat parts (sky,
        road) as dark blots; this keeps the scene's lights and darks where
        they are, in the painting's tones. Colour is left to the other
        losses."""
        xp = chainer.backend.get_array_module(y)
        n, ch, h, w = y.shape
        axis = self.axes[BRIGHTNESS]
        brightness = F.matmul(xp.broadcast_to(axis, (n, 1, ch)),
                              F.reshape(y, (n, ch, h * w)))
        quantiles = self.quantiles(h * w)[BRIGHTNESS]
        targets = xp.empty((n, 1, h * w), dtype=numpy.float32)
        for image, input_brightness in enumerate(axis @ x.reshape(n, ch, h * w)):
            order = xp.argsort(input_brightness)
            levels = input_brightness[order]
            new_level = xp.concatenate([xp.ones(1, dtype=bool), levels[1:] != levels[:-1]])
            level = xp.cumsum(new_level) - 1
            mean_quantile = (xp.bincount(level, weights=quantiles)
                             / xp.bincount(level)).astype(numpy.float32)
            targets[image, 0, order] = mean_quantile[level]
        return F.mean_squared_error(brightness, targets)
