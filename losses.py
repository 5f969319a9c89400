"""CFNS's perceptual losses: feature, style (Gram matrices) and total variation."""
import chainer.functions as F


def gram_matrix(features):
    """F F^T / (ch * h * w) per image, as CFNS."""
    b, ch, h, w = features.shape
    flat = F.reshape(features, (b, ch, h * w))
    return F.matmul(flat, flat, transb=True) / (ch * h * w)


def total_variation(y):
    """CFNS's total variation: squared neighbour differences of the channel sum.

    CFNS convolves with a (1, 3, 2, 1) kernel of [1, -1] per channel, so the
    vertical and horizontal differences are summed over RGB before squaring.
    """
    rgb_sum = F.sum(y, axis=1)
    dh = rgb_sum[:, 1:, :] - rgb_sum[:, :-1, :]
    dw = rgb_sum[:, :, 1:] - rgb_sum[:, :, :-1]
    return F.sum(dh * dh) + F.sum(dw * dw)


def style_grams(vgg, style):
    """Gram matrices of a style image batch (1, 3, H, W), fixed for training."""
    return [gram_matrix(f).array for f in vgg(style)]


def perceptual_losses(vgg, x, y, grams, lambda_feat, lambda_style, lambda_tv):
    """The three CFNS loss terms for content ``x`` and output ``y``.

    ``grams`` come from :func:`style_grams` for one image and are broadcast to
    the batch, which equals CFNS's tiling of the style image.
    """
    features_x = vgg(x)
    features_y = vgg(y)
    content = features_x[2].array  # relu3_3; no gradient through the target
    loss_feat = lambda_feat * F.mean_squared_error(features_y[2], content)
    loss_style = 0
    for f_y, gram in zip(features_y, grams):
        g_y = gram_matrix(f_y)
        loss_style += lambda_style * F.mean_squared_error(
            g_y, F.broadcast_to(gram, g_y.shape))
    loss_tv = lambda_tv * total_variation(y)
    return loss_feat, loss_style, loss_tv
