"""Reading user images with bounded memory and honest colours.

* Only regular files are opened (a FIFO named .jpg would hang the reader).
* The pixel count is read from the header and checked before decoding, so
  no input takes more than about 3 bytes x MAX_PIXELS to decode.
* 16-bit and 32-bit grayscale images (PNG, TIFF) are scaled to 8 bits, not
  clipped (PIL's convert('RGB') turns any value above 255 into white).
* Pictures are turned upright by their EXIF orientation tag, as every viewer
  shows them (a phone stores a portrait photo sideways with such a tag).
"""
import contextlib
import warnings

import cv2
import numpy
from PIL import Image, ImageOps

from faststyle.errors import InputError
from faststyle.cli import check_regular_file

# What every tool reads as an image (PIL decodes all of them).
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp', '.tif', '.tiff', '.ppm',
                    '.pgm')
# About 8K x 5K: well above any photo or video frame this project stylizes or
# trains on. A hard cap, checked from the header before decoding; whether a
# frame also fits in the memory left is stylize.Stylizer's check (the net
# takes 320 to 1200 bytes a pixel by backend, stylize.BYTES_PER_PIXEL).
MAX_PIXELS = 40_000_000
SIXTEEN_BIT_MODES = ('I;16', 'I;16L', 'I;16B', 'I;16N')


@contextlib.contextmanager
def opened(path):
    """``Image.open(path)`` for a caller that checks the size itself
    (check_pixels, before decoding), without PIL's two-line warnings: its
    DecompressionBombWarning, from 89 megapixels on, would come before that
    check's one line (PIL still refuses twice that, DecompressionBombError);
    'Corrupt EXIF data' only means that the picture is taken as stored."""
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', Image.DecompressionBombWarning)
        warnings.filterwarnings('ignore', 'Corrupt EXIF data')
        with Image.open(path) as image:
            yield image


def check_pixels(path, width, height, max_pixels=None):
    max_pixels = max_pixels or MAX_PIXELS
    if width * height > max_pixels:
        raise InputError('{}: {}x{} is {:.0f} megapixels, more than the {:.0f} '
                         'this tool takes; shrink it first'.format(
                             path, width, height, width * height / 1e6,
                             max_pixels / 1e6))


def to_rgb(image):
    """Any PIL mode as an RGB image; high bit depths are scaled, not clipped."""
    if image.mode in SIXTEEN_BIT_MODES or image.mode in ('I', 'F'):
        values = numpy.asarray(image).astype(numpy.float64)
        if image.mode in SIXTEEN_BIT_MODES or values.max(initial=0) > 255:
            values = values / 257.0  # 0..65535 -> 0..255
        elif image.mode == 'F' and values.max(initial=0) <= 1.0:
            values = values * 255.0  # a float image in 0..1
        gray = numpy.clip(numpy.rint(values), 0, 255).astype(numpy.uint8)
        return Image.fromarray(gray, 'L').convert('RGB')
    return image.convert('RGB')


def open_rgb(path, max_pixels=None):
    """The image at ``path`` as an RGB PIL image, after the checks above.

    Raises InputError for a missing, non-regular, too large or unreadable file.
    """
    check_regular_file(path, 'image file')
    try:
        with opened(path) as image:
            check_pixels(path, image.size[0], image.size[1], max_pixels)
            # Decodes, turns and drops the tag; no copy of an upright picture.
            ImageOps.exif_transpose(image, in_place=True)
            return to_rgb(image)
    except InputError:
        raise
    except Image.DecompressionBombError as e:
        raise InputError('{}: {}'.format(path, e))
    except Image.UnidentifiedImageError:  # PIL's message names the path again
        raise InputError('{}: cannot read this image (not a format PIL knows, or '
                         'damaged)'.format(path))
    except (OSError, ValueError, SyntaxError, EOFError, TypeError) as e:
        raise InputError('{}: cannot read this image ({})'.format(
            path, getattr(e, 'strerror', None) or e))


def read_rgb_array(path, max_pixels=None):
    """:func:`open_rgb` as an (H, W, 3) uint8 array."""
    return numpy.asarray(open_rgb(path, max_pixels))


def image_size(path):
    """(width, height) from the header only, for readers other than PIL."""
    check_regular_file(path, 'image file')
    try:
        with opened(path) as image:
            return image.size
    except Exception:  # PIL raises many types; the real reader says why
        return None


def scaled_size(width, height, factor):
    """(width, height) times ``factor``, rounded, at least 1 pixel each."""
    return max(1, int(round(width * factor))), max(1, int(round(height * factor)))


def resize(image, size):
    """``image`` (HxWxC uint8) resized to ``size`` = (width, height): by area
    averaging when either side shrinks (no aliasing), bilinearly when both
    grow (bicubic was crisper, but a net's output enlarged by it popped a
    quarter to a third more: docs/generate.md); the array itself when it
    has that size already."""
    width, height = size
    if image.shape[:2] == (height, width):
        return image
    shrinks = width < image.shape[1] or height < image.shape[0]
    return cv2.resize(image, (width, height),
                      interpolation=cv2.INTER_AREA if shrinks else cv2.INTER_LINEAR)
