"""CFNS's perceptual losses: feature, style (Gram matrices) and total variation."""
import chainer
import chainer.functions as F


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


def style_grams(vgg, style):
    """Gram matrices of a style image batch (1, 3, H, W), fixed for training."""
    return [gram_matrix(f).array for f in vgg(style)]


CONTENT_LAYER = 2  # relu3_3, CFNS's content feature


def perceptual_losses(vgg, x, y, grams, lambda_feat, lambda_style, lambda_tv):
    """The three CFNS loss terms for content ``x`` and output ``y``.

    ``grams`` come from :func:`style_grams` for one image and are broadcast to
    the batch, which equals CFNS's tiling of the style image.
    """
    # The content target is a constant: no graph, and no layer past relu3_3.
    with chainer.no_backprop_mode():
        content = vgg(x, n_features=CONTENT_LAYER + 1)[CONTENT_LAYER].array
    features_y = vgg(y)
    loss_feat = lambda_feat * F.mean_squared_error(features_y[CONTENT_LAYER], content)
    loss_style = 0
    for f_y, gram in zip(features_y, grams):
        g_y = gram_matrix(f_y)
        loss_style += lambda_style * F.mean_squared_error(
            g_y, F.broadcast_to(gram, g_y.shape))
    loss_tv = lambda_tv * total_variation(y)
    return loss_feat, loss_style, loss_tv
