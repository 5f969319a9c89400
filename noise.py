"""The noise-stability loss of "Stabilizing neural style-transfer for video".

One fixed sparse noise image N: zero everywhere except ``count`` pixels whose
three channels are each uniform in [-noise_range, noise_range]. Training adds

    L_pop = lambda_noise * MSE(net(x), net(x + N))

so the net learns to ignore the small input changes that make strokes appear
and vanish ("pop") between video frames.
"""
import sys

import numpy

import chainer.functions as F

from faststyle.errors import InputError

# The note's figure: 1000 noisy pixels for a 512x512 image.
REFERENCE_COUNT = 1000
REFERENCE_SIZE = 512


def default_noise_count(height, width=None):
    """1000 pixels at 512x512, scaled with the image area (at least 1)."""
    width = height if width is None else width
    return max(1, int(round(REFERENCE_COUNT * height * width / REFERENCE_SIZE ** 2)))


def sparse_noise(height, width, count, noise_range, rng):
    """A (3, height, width) float32 image: zero except ``count`` distinct pixels
    whose three channels are each uniform in [-noise_range, noise_range].

    The one noise generator: training's fixed image (:func:`make_noise`) and
    stability.py's popping figure (a fresh draw per frame) both use it.
    """
    n_pixels = height * width
    if not 0 < count <= n_pixels:
        raise InputError('noise count must be in 1..{} for {}x{} images, not {}'.format(
            n_pixels, width, height, count))
    image = numpy.zeros((3, n_pixels), dtype=numpy.float32)
    pixels = rng.choice(n_pixels, size=count, replace=False)
    image[:, pixels] = rng.uniform(-noise_range, noise_range, size=(3, count))
    return image.reshape(3, height, width)


def make_noise(batchsize, image_size, count, noise_range, seed):
    """A (batchsize, 3, size, size) float32 noise batch, the same for every image.

    The draw depends only on ``seed``, so a resumed run and every process of a
    distributed run use the same image.
    """
    image = sparse_noise(image_size, image_size, count, noise_range,
                         numpy.random.RandomState(seed))
    return numpy.broadcast_to(image, (batchsize,) + image.shape).copy()


def pop_loss(model, x, y, noise, lambda_noise, region=None):
    """lambda_noise * MSE(y, model(x + noise)), with ``y = model(x)`` given;
    ``region`` (a function of an image batch) picks the pixels compared.

    Reusing ``y`` makes the loss cost one extra forward and backward pass of
    the transform net and nothing else.
    """
    y_noisy = model(x + noise)
    if region is not None:
        y, y_noisy = region(y), region(y_noisy)
    return lambda_noise * F.mean_squared_error(y, y_noisy)


USED_BY = """noise.py is a module, not a command. The commands that use it:

  python train.py -d DATASET/ -s style.jpg --lambda_noise 1000   # train with L_pop
      (--noise_range, --noise_count, --noise_seed, --noise_per_batch)
  python stability.py clip.mp4 -m models/style.model   # its popping figure
      (a fresh draw per frame; --noise_count, --noise_range, --noise_seed)

Each takes --help."""


if __name__ == '__main__':
    from faststyle import cli
    sys.exit(cli.module_main(__doc__, USED_BY))
