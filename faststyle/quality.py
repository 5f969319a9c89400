"""How much of the scene and how much of the style a stylized frame holds.

Steadiness alone rewards a picture that lost both (a flat grey frame never
pops), so stability.py shows these two next to it:

structure kept   Pearson correlation of the Sobel gradient magnitudes of the
                 grey source and the grey output, both Gaussian-blurred with
                 sigma 2 px per 256 px of width first (so that brush strokes
                 finer than the scene's shapes do not count as lost shapes):
                 1 = the scene's edges are all there, 0 = a pattern of its own.
style distance   CFNS's style loss without its weight: the sum over relu1_2,
                 relu2_2, relu3_3 and relu4_3 of VGG16 of the mean squared
                 difference of the Gram matrices (F F^T / (c h w)) of the
                 output and of the style image resized to the output's size.
palette distance the 2-Wasserstein (Frechet) distance between Gaussians
                 fitted to the CIELAB colours of the output's pixels and of
                 the painting's, in Lab units (like CIE76's Delta E, where
                 about 2.3 is just noticeable): 0 = the painting's colours and their
                 spread, large = other colours or a narrower palette. The
                 style distance above is nearly all relu1_2 of the HED
                 features, which are tuned to edges: a monochrome output
                 can score well on it. This one sees colour alone.
"""
import chainer
import cv2
import numpy
from PIL import Image

from faststyle import losses

# Blur: sigma 2 px for a 256 px wide frame, in proportion for others.
BLUR_SIGMA_PER_PIXEL = 2.0 / 256


def edge_strength(rgb):
    """Sobel gradient magnitude of the blurred grey image, float64 (H, W)."""
    grey = cv2.cvtColor(numpy.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
    sigma = BLUR_SIGMA_PER_PIXEL * rgb.shape[1]
    grey = cv2.GaussianBlur(grey.astype(numpy.float64), (0, 0), sigma)
    return numpy.hypot(cv2.Sobel(grey, cv2.CV_64F, 1, 0), cv2.Sobel(grey, cv2.CV_64F, 0, 1))


def structure_kept(source, output):
    """Correlation of the edges of two RGB uint8 frames of one size, in
    [-1, 1]; 0 when either has no edges at all (a flat frame keeps nothing)."""
    if source.shape != output.shape:
        raise ValueError('frames of different sizes: {} and {}'.format(
            source.shape, output.shape))
    a, b = edge_strength(source).ravel(), edge_strength(output).ravel()
    a, b = a - a.mean(), b - b.mean()
    norm = numpy.sqrt(numpy.dot(a, a) * numpy.dot(b, b))
    # A flat frame's edge strengths are rounding noise around 0.
    if norm <= 1e-9 * a.size:
        return 0.0
    return float(numpy.dot(a, b) / norm)


def gram_distances(features, style_grams):
    """MSE(gram(f), style gram) per layer, for one image's features (each
    (1, ch, h, w)) and the style's Gram matrices (1, ch, ch)."""
    distances = []
    for f, gram in zip(features, style_grams):
        g = losses.gram_matrix(f)
        distances.append(float(chainer.functions.mean_squared_error(
            g, chainer.functions.broadcast_to(gram, g.shape)).array))
    return distances


def lab_colours(rgb):
    """The pixels of an RGB uint8 image as CIELAB colours, float64 (N, 3)."""
    unit = numpy.ascontiguousarray(rgb, dtype=numpy.float32).reshape(-1, 1, 3) / 255
    return cv2.cvtColor(unit, cv2.COLOR_RGB2Lab).reshape(-1, 3).astype(numpy.float64)


def colour_gaussian(rgb):
    """Mean (3,) and covariance (3, 3) of an RGB image's Lab colours."""
    lab = lab_colours(rgb)
    return lab.mean(axis=0), numpy.cov(lab, rowvar=False, bias=True)


def _sqrt_psd(matrix):
    """Square root of a symmetric positive semi-definite matrix."""
    values, vectors = numpy.linalg.eigh(matrix)
    return (vectors * numpy.sqrt(numpy.clip(values, 0, None))) @ vectors.T


def palette_distance(rgb, palette):
    """Frechet distance of the Lab colour Gaussians of ``rgb`` and of
    ``palette`` (a :func:`colour_gaussian` pair, or an RGB image)."""
    mean_a, cov_a = colour_gaussian(rgb)
    mean_b, cov_b = colour_gaussian(palette) if isinstance(palette, numpy.ndarray) else palette
    root_a = _sqrt_psd(cov_a)
    cross = _sqrt_psd(root_a @ cov_b @ root_a)
    squared = (numpy.sum((mean_a - mean_b) ** 2)
               + numpy.trace(cov_a) + numpy.trace(cov_b) - 2 * numpy.trace(cross))
    return float(numpy.sqrt(max(squared, 0.0)))


class StyleDistance:
    """The style distance of RGB uint8 frames (H, W, 3) to one style image
    (call it), and their palette distance (:meth:`palette`).

    ``style`` is an RGB uint8 image (H, W, 3), resized (bilinear, as CFNS
    resizes its style image) to each frame's size, or to ``fixed_size``
    (width, height) for every frame; its Gram matrices are computed once
    per size.
    """

    def __init__(self, vgg, style, device, fixed_size=None):
        self.vgg = vgg
        self.style = Image.fromarray(numpy.ascontiguousarray(style))
        self.device = device
        self.fixed_size = fixed_size
        self._grams = {}
        self.colours = colour_gaussian(numpy.asarray(self.style))

    def grams(self, size):
        """The style's Gram matrices at ``size`` (width, height)."""
        if size not in self._grams:
            resized = numpy.asarray(self.style.resize(size, Image.BILINEAR),
                                    dtype=numpy.float32)
            batch = self.device.send(numpy.ascontiguousarray(resized.transpose(2, 0, 1)[None]))
            with chainer.using_config('train', False), chainer.no_backprop_mode():
                self._grams[size] = losses.style_grams(self.vgg, batch)
        return self._grams[size]

    def palette(self, frame):
        """The :func:`palette_distance` of a frame to the style image."""
        return palette_distance(frame, self.colours)

    def per_layer(self, frame):
        """The style distance of a frame, one figure per VGG16 layer
        (relu1_2, relu2_2, relu3_3, relu4_3)."""
        size = self.fixed_size or (frame.shape[1], frame.shape[0])
        x = numpy.ascontiguousarray(frame.transpose(2, 0, 1)[None], dtype=numpy.float32)
        with chainer.using_config('train', False), chainer.no_backprop_mode():
            return gram_distances(self.vgg(self.device.send(x)), self.grams(size))

    def __call__(self, frame):
        return sum(self.per_layer(frame))
