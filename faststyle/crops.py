"""Training crops without Chainer: the dataset's images listed, checked and
cut the CFNS way (train.py's dataset reads them through here), and folders
of per-crop targets (one image per crop, for train.py --targets), which
scripts.style_targets and scripts.teacher_targets write. The teacher runs
in another tool's environment, which has no Chainer: nothing here needs it.
"""
import argparse
import hashlib
import json
import os

import numpy
from PIL import Image

from faststyle import cli
from faststyle import folders
from faststyle import images
from faststyle import tempfiles
from faststyle.errors import InputError, WorkError


def list_images(directory):
    """Paths of the image files under ``directory`` (any depth, any case), sorted."""
    if not os.path.exists(directory):
        raise InputError('dataset directory {} does not exist'.format(directory))
    if not os.path.isdir(directory):
        raise InputError('dataset {} is a file, not a directory of images'.format(
            directory))
    return folders.list_files(directory, images.IMAGE_EXTENSIONS, recursive=True)


def readable_images(paths):
    """Split ``paths`` into (readable, their (width, height), unreadable) by
    checking each header."""
    readable, sizes, unreadable = [], [], []
    for path in paths:
        try:
            with images.opened(path) as image:
                images.check_pixels(path, *image.size)
                size = image.size
                image.verify()
            readable.append(path)
            sizes.append(size)
        except Exception:  # PIL raises many types for broken files
            unreadable.append(path)
    return readable, sizes, unreadable


def crop_square(image, size, scale=False):
    """CFNS's crop: enlarge only if the short side is below ``size``, then centre-crop.

    With ``scale``, the image is scaled (up or down) so that its short side
    is ``size`` first: the crop is the middle square of the whole picture,
    not a patch of it. Only that square is resampled, with PIL's
    antialiasing when shrinking.
    """
    w, h = image.size
    if scale:
        side = min(w, h)
        left, top = (w - side) / 2, (h - side) / 2
        return image.resize((size, size), Image.BILINEAR,
                            box=(left, top, left + side, top + side))
    if min(w, h) < size and max(w, h) > 4 * min(w, h):
        # A thin image (1x200000 in a few hundred bytes) would take gigabytes
        # enlarged whole: enlarge only the part that the crop keeps.
        big_w, big_h = (size, size * h // w) if w < h else (size * w // h, size)
        left, top = (big_w - size) // 2, (big_h - size) // 2
        box = (left * w / big_w, top * h / big_h,
               (left + size) * w / big_w, (top + size) * h / big_h)
        return image.resize((size, size), Image.BILINEAR, box=box)
    if min(w, h) < size:
        if w < h:
            image = image.resize((size, size * h // w), Image.BILINEAR)
        else:
            image = image.resize((size * w // h, size), Image.BILINEAR)
        w, h = image.size
    left, top = (w - size) // 2, (h - size) // 2
    return image.crop((left, top, left + size, top + size))


def target_paths(targets, directory, image_paths):
    """Where the target of each dataset image (under ``directory``) lies
    under ``targets``: the same relative path, as .png. Two images that
    differ only in their extension (a.jpg, a.png) would share one target:
    an InputError."""
    paths = [os.path.join(targets, os.path.splitext(os.path.relpath(p, directory))[0] + '.png')
             for p in image_paths]
    seen = {}
    for image, path in zip(image_paths, paths):
        if path in seen:
            raise InputError('{} and {} would share the target {}: rename one'.format(
                seen[path], image, path))
        seen[path] = image
    return paths


# What a folder of targets records about how they were made.
TARGET_SETTINGS = 'settings.json'


def read_target_settings(targets):
    """The settings recorded in the folder ``targets``, or None if it has none."""
    path = os.path.join(targets, TARGET_SETTINGS)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding='utf-8') as f:
            settings = json.load(f)
        if not isinstance(settings, dict):
            raise ValueError('not an object')
        return settings
    except (OSError, ValueError) as e:
        raise InputError('{} cannot be read ({})'.format(path, e))


def check_target_settings(targets, size, scale):
    """InputError if the targets in ``targets`` were made for crops other than
    those of ``size`` and ``scale`` (--image_size, --scale_crops)."""
    settings = read_target_settings(targets)
    if settings is None:
        return
    made = (settings.get('image_size'), bool(settings.get('scale_crops')))
    if made != (size, bool(scale)):
        raise InputError('the targets in {} were made for --image_size {}{}, this run cuts '
                         '--image_size {}{}'.format(
                             targets, made[0], ' --scale_crops' if made[1] else '', size,
                             ' --scale_crops' if scale else ''))


def add_target_flags(parser):
    """The flags of a command that writes a folder of targets: the dataset,
    the folder, the crops as train.py cuts them, a shard, no progress bar."""
    parser.add_argument('--dataset', '-d', required=True, help="train.py's dataset directory")
    parser.add_argument('--out', '-o', required=True, help='directory to write the targets to')
    parser.add_argument('--image_size', type=crop_size, default=256,
                        help="train.py's crop size")
    cli.add_flag(parser, '--scale_crops', action='store_true',
                 help="scale each image to the crop size first (train.py's --scale_crops)")
    parser.add_argument('--shard', default='0/1', metavar='I/N', type=cli.shard,
                        help='only crops I, I+N, I+2N, ... of the sorted dataset')
    cli.add_flag(parser, '--no_progress', action='store_true', help='no progress bar')


def check_crop_size(size):
    """InputError unless ``size`` is a crop size train.py takes."""
    if size < 16 or size % 4:
        raise InputError('--image_size must be a multiple of 4 and at least 16')


def crop_size(text):
    """argparse type: a crop size train.py takes (:func:`check_crop_size`)."""
    try:
        size = int(text)
        check_crop_size(size)
    except (ValueError, InputError) as e:
        raise argparse.ArgumentTypeError(str(e))
    return size


def painting_digest(path):
    """The SHA-256 of the painting's file, recorded with its targets."""
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def record_target_settings(directory, settings):
    """Write ``settings`` into ``directory``, or InputError if it holds
    targets made with others (a folder of mixed targets would teach two
    pictures)."""
    recorded = read_target_settings(directory)
    if recorded is not None and recorded != settings:
        changed = sorted(k for k in set(recorded) | set(settings)
                         if recorded.get(k) != settings.get(k))
        raise InputError('the targets in {} were made with other settings ({}): write '
                         'these to another -o'.format(directory, ', '.join(changed)))
    if recorded is None:
        tempfiles.atomic_write(os.path.join(directory, TARGET_SETTINGS),
                               lambda f: f.write(json.dumps(settings, indent=1).encode()))


def write_targets(dataset, out, size, scale, shard, settings, make_painter,
                  show_progress=True):
    """Write the target of every readable image under ``dataset`` (its crop
    cut as train.py cuts it: ``size``, ``scale``) that is in ``shard`` (I, N)
    and not under ``out`` yet, each whole, after recording ``settings``
    (:func:`record_target_settings`). ``make_painter()`` is called only when
    there is work, and returns the function from a crop (HxWx3 uint8) to its
    target (the same shape). An image that fails to decode is skipped, as
    train.py skips it. Returns how many targets were written."""
    paths, _, unreadable = readable_images(list_images(dataset))
    if not paths:
        raise InputError('no readable images under {}'.format(dataset))
    for path in unreadable:
        print('warning: skipping unreadable image {}'.format(path))
    cli.check_writable_directory(out, 'targets folder')
    index, count = shard
    share = list(zip(paths, target_paths(out, dataset, paths)))[index::count]
    todo = [(image, target) for image, target in share if not os.path.exists(target)]
    print('{} of the {} crops of this shard to paint, {} done before'.format(
        len(todo), len(share), len(share) - len(todo)), flush=True)
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as e:
        raise WorkError('could not create {} ({})'.format(out, cli.describe_os_error(e)))
    record_target_settings(out, settings)
    if not todo:
        return 0
    paint = make_painter()
    written = 0
    with cli.progress_bar(len(todo), 'targets', enabled=show_progress) as bar:
        for image, target in todo:
            try:
                crop = numpy.asarray(crop_square(images.open_rgb(image), size, scale))
            except Exception:  # PIL raises many types for broken files
                print('warning: skipping unreadable image {}'.format(image))
                continue
            painted = paint(crop)
            if painted.shape != crop.shape or painted.dtype != numpy.uint8:
                raise WorkError('the target of {} came out {} {}, not {} uint8'.format(
                    image, painted.shape, painted.dtype, crop.shape))
            try:
                os.makedirs(os.path.dirname(target), exist_ok=True)
            except OSError as e:
                raise WorkError('could not create {} ({})'.format(
                    os.path.dirname(target), cli.describe_os_error(e)))
            tempfiles.atomic_write(target, lambda f: Image.fromarray(painted).save(f, 'PNG'))
            written += 1
            bar.update(1)
    return written
