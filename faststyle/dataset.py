"""Training images: a directory read recursively, cropped the CFNS way (or scaled first)."""
import os
import zlib

import chainer
import numpy
from PIL import Image

from faststyle import images
from faststyle.crops import (check_target_settings, crop_square, list_images,
                             readable_images, target_paths)
from faststyle.errors import InputError


def to_chw(image):
    return numpy.asarray(image, dtype=numpy.float32).transpose(2, 0, 1).copy()


def open_user_image(path, what):
    if not os.path.exists(path):
        raise InputError('{} {} does not exist'.format(what, path))
    try:
        return images.open_rgb(path)
    except InputError as e:
        raise InputError('{}: {}'.format(what, e))


def load_style(path, size):
    """The style image as CFNS uses it: resized to size x size, (1, 3, H, W)."""
    image = open_user_image(path, 'style image')
    return to_chw(image.resize((size, size), Image.BILINEAR))[None]


# Previews are at least this large (the long side): a style cannot be judged
# on a 128-px crop.
PREVIEW_SIDE = 512


def load_preview(path, crop_size):
    """The whole picture at ``path`` for training previews, HxWx3 uint8:
    scaled so that its long side is max(PREVIEW_SIDE, ``crop_size``), each
    side a multiple of 4 (what the net takes without extra padding)."""
    image = open_user_image(path, 'preview image')
    scale = max(PREVIEW_SIDE, crop_size) / max(image.size)
    size = tuple(max(4, 4 * int(round(side * scale / 4))) for side in image.size)
    return numpy.asarray(image.resize(size, Image.BILINEAR))


# A short side above this many crop sizes makes CFNS's unscaled crop a small
# patch of the picture (a 720p frame at 128 px: a ninth of its height).
PATCH_RATIO = 3


def patch_note(sizes, crop_size):
    """A note suggesting --scale_crops when most images (``sizes``, from their
    headers) are so large that CFNS's unscaled crops are small patches; else ''."""
    large = sum(min(w, h) > PATCH_RATIO * crop_size for w, h in sizes)
    if 2 * large <= len(sizes):
        return ''
    return ('{} of the {} dataset images have a short side over {}x --image_size '
            '({} px), so each training crop is a small patch of its image (CFNS\'s '
            'rule: centre-cropped without scaling); --scale_crops scales each image '
            'to the crop size first'.format(large, len(sizes), PATCH_RATIO,
                                            PATCH_RATIO * crop_size))


class ReproducibleShuffle:
    """CFNS's epochs: a new permutation of the data each epoch, cut to whole batches.

    Each epoch's order is ``permutation(n_data)[:n_data - n_data % batchsize]``
    (CFNS takes ``n_data // batchsize`` batches of its permutation), drawn
    from the seed and the previous order. Snapshots hold the iterator's
    current order, so a resumed run draws the same later epochs as a run that
    was never stopped (a shared RandomState, which snapshots do not hold,
    would not).
    """

    def __init__(self, seed, n_data, batchsize):
        if n_data < batchsize:
            raise InputError('--batchsize {} is larger than the {} training '
                             'images'.format(batchsize, n_data))
        self.seed = seed % 2 ** 32
        self.n_data = n_data
        self.epoch_size = n_data - n_data % batchsize

    def __call__(self, current_order, current_position):
        digest = zlib.crc32(numpy.asarray(current_order, dtype=numpy.int64).tobytes())
        rng = numpy.random.RandomState([self.seed, digest])
        return rng.permutation(self.n_data)[:self.epoch_size]


class ImageDataset(chainer.dataset.DatasetMixin):
    """Square float32 RGB crops in [0, 255], (3, size, size), cut by
    :func:`crop_square` (``scale``: scaled to the crop size first).

    ``sizes``: each image's (width, height) from its header, when known.
    A file that passed the header check but fails to decode is replaced by
    the next readable one, so one bad file in 80k never stops training.
    With ``targets`` (a list, one image path per crop, each size x size:
    :func:`open_dataset` checks), each example is the pair (crop, its target).
    """

    def __init__(self, paths, size, scale=False, sizes=None, targets=None):
        if not paths:
            raise InputError('no readable images')
        self.paths = list(paths)
        self.size = size
        self.scale = scale
        self.sizes = sizes
        self.targets = targets
        self.failed = set()

    def __len__(self):
        return len(self.paths)

    def get_example(self, i):
        for k in range(len(self.paths)):
            j = (i + k) % len(self.paths)
            path = self.paths[j]
            if path in self.failed:
                continue
            try:
                crop = to_chw(crop_square(images.open_rgb(path), self.size, self.scale))
                if self.targets is None:
                    return crop
                return crop, to_chw(images.open_rgb(self.targets[j]))
            except Exception:
                self.failed.add(path)
                print('warning: skipping unreadable image {}{}'.format(
                    path, '' if self.targets is None else ' or its target'))
        raise InputError('none of the dataset images can be decoded')


def open_dataset(directory, size, scale=False, targets=None):
    """The dataset of ``directory`` and the list of files it skipped; with
    ``targets``, a directory holding each image's target at
    :func:`target_paths`, made for crops of ``size`` cut with ``scale``
    (:func:`check_target_settings`), pairs (crop, target)."""
    paths = list_images(directory)
    if not paths:
        raise InputError('no images ({}) under {}'.format(
            ', '.join(images.IMAGE_EXTENSIONS), directory))
    readable, sizes, unreadable = readable_images(paths)
    if not readable:
        raise InputError('none of the {} image files under {} can be read'.format(
            len(paths), directory))
    paired = None
    if targets is not None:
        if not os.path.isdir(targets):
            raise InputError('--targets {} is not a directory'.format(targets))
        check_target_settings(targets, size, scale)
        paired = target_paths(targets, directory, readable)
        missing = [p for p in paired if not os.path.isfile(p)]
        if missing:
            raise InputError('{} of the {} dataset images have no target under {} ({} first; '
                             'python -m scripts.style_targets or scripts.teacher_targets '
                             'writes them)'.format(
                                 len(missing), len(readable), targets, missing[0]))
        for path in paired:
            found = images.image_size(path)
            if found is None:
                raise InputError('target {} is not an image that can be read'.format(path))
            if found != (size, size):
                raise InputError('target {} is {}x{}, not the {}x{} of the crops (made for '
                                 'another --image_size?)'.format(path, *found, size, size))
    return ImageDataset(readable, size, scale, sizes, paired), unreadable
