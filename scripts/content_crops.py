"""Training content for the demo and the experiments: crops of free photos.

    python -m scripts.content_crops -o demo_output/content --size 128

CFNS trains on MSCOCO (80k photos), which cannot be downloaded here. The
photos come from what a registry package ships under a free licence, the
scikit-image wheel (`pip install --no-deps scikit-image`: only its data files
are read, nothing is imported), plus the two photos in sample_images/. Each
photo is cut at a few scales into square crops, so the net sees both wide
views and close-ups. The crops are written, not shipped: the same command
gives the same files. Credits: sample_images/CREDITS.md.

With --flat_copies each crop also gets a flattened copy (NAME_flat.png):
mean-shift filtered, so that it has the flat fills and clean edges of
animation and graphics, which these photos and textures lack.
"""
import argparse
import importlib.util
import itertools
import os
import sys

from faststyle import chainer_compat  # noqa: F401  (before Chainer: numpy 2, Py 3.12+)

import cv2
import numpy
from PIL import Image

from faststyle import cli
from faststyle import images
from faststyle.errors import InputError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# scikit-image data files: colour photos and textures, public domain or CC0.
SKIMAGE_PHOTOS = ('astronaut.png', 'chelsea.png', 'coffee.png', 'rocket.jpg',
                  'hubble_deep_field.jpg', 'brick.png', 'grass.png', 'gravel.png')
SHIPPED_PHOTOS = ('tubingen.jpg', 'amber.jpg')
# Each photo is scaled so that its short side is this many crop sizes.
SCALES = (1.0, 1.6, 2.5)
# Mean-shift window of the flattened copies: spatial radius in pixels and
# colour radius in 0-255 units (wider ones erase faces and windows).
FLAT_SPATIAL_RADIUS = 12
FLAT_COLOUR_RADIUS = 32


def skimage_data_directory():
    """skimage/data of the installed scikit-image, found without importing it."""
    spec = importlib.util.find_spec('skimage')
    if spec is None or not spec.submodule_search_locations:
        raise InputError('scikit-image is not installed: pip install --no-deps '
                         'scikit-image (only its photos are used)')
    return os.path.join(list(spec.submodule_search_locations)[0], 'data')


def photo_paths():
    data = skimage_data_directory()
    paths = [os.path.join(data, name) for name in SKIMAGE_PHOTOS]
    paths += [os.path.join(ROOT, 'sample_images', name) for name in SHIPPED_PHOTOS]
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise InputError('missing photo {}'.format(missing[0]))
    return paths


def crops(image, size, scales=SCALES):
    """Square ``size`` crops of ``image`` on a grid, at each scale of the short side."""
    for scale in scales:
        w, h = image.size
        factor = size * scale / min(w, h)
        scaled = image.resize((max(size, round(w * factor)), max(size, round(h * factor))),
                              Image.LANCZOS)
        w, h = scaled.size
        nx, ny = max(1, round(w / size)), max(1, round(h / size))
        for j in range(ny):
            for i in range(nx):
                left = (w - size) * i // max(1, nx - 1) if nx > 1 else (w - size) // 2
                top = (h - size) * j // max(1, ny - 1) if ny > 1 else (h - size) // 2
                yield scale, scaled.crop((left, top, left + size, top + size))


def flattened(crop):
    """``crop`` with its texture flattened and its edges kept (mean shift)."""
    bgr = numpy.ascontiguousarray(numpy.asarray(crop)[:, :, ::-1])
    flat = cv2.pyrMeanShiftFiltering(bgr, FLAT_SPATIAL_RADIUS, FLAT_COLOUR_RADIUS)
    return Image.fromarray(numpy.ascontiguousarray(flat[:, :, ::-1]))


def write_crops(directory, size, per_photo=None, flat_copies=False):
    """Write the crops as PNG files; return how many files.

    ``per_photo`` keeps only the first crops of each photo (tests and toy
    runs need a few images, not the whole set); None writes them all.
    ``flat_copies`` writes each crop's :func:`flattened` copy beside it.
    """
    os.makedirs(directory, exist_ok=True)
    count = 0
    for path in photo_paths():
        stem = os.path.splitext(os.path.basename(path))[0]
        every = crops(images.open_rgb(path), size)
        for k, (scale, crop) in enumerate(itertools.islice(every, per_photo)):
            name = os.path.join(directory, '{}_{:02d}'.format(stem, k))
            crop.save(name + '.png')
            count += 1
            if flat_copies:
                flattened(crop).save(name + '_flat.png')
                count += 1
    return count


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                formatter_class=cli.HelpFormatter)
    p.add_argument('-o', '--output', default='demo_output/content',
                   help='directory to write the crops to')
    p.add_argument('--size', type=int, default=256, help='crop size in pixels')
    p.add_argument('--flat_copies', action='store_true',
                   help='also write a flattened copy of each crop (NAME_flat.png: '
                        'flat fills and clean edges, as in animation)')
    args = p.parse_args(argv)
    if args.size < 16:
        p.error('--size must be at least 16')
    try:
        count = write_crops(args.output, args.size, flat_copies=args.flat_copies)
    except InputError as e:
        sys.exit('error: {}'.format(e))
    print('wrote {} images of {}x{} to {}'.format(count, args.size, args.size, args.output))


if __name__ == '__main__':
    main()
