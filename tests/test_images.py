"""faststyle/images.py: how pictures are read, for generate.py and for
training alike."""
import os

import numpy
import pytest
from PIL import Image

from faststyle import crops
from faststyle import dataset
import generate
from faststyle import images
from faststyle import stability_measures
from faststyle.errors import InputError
from conftest import one_error_line, write_image


def test_sixteen_bit_png_is_scaled_not_saturated(tmp_path):
    path = str(tmp_path / 'gray16.png')
    Image.fromarray(numpy.full((4, 4), 1000, numpy.uint16)).save(path)
    assert Image.open(path).mode.startswith('I')
    assert numpy.asarray(images.open_rgb(path)).tolist() == [[[4, 4, 4]] * 4] * 4
    assert images.read_rgb_array(path)[0, 0].tolist() == [4, 4, 4]


def test_exif_orientation_is_applied(tmp_path, model_path, capsys):
    """A phone stores a portrait photo sideways with an EXIF orientation tag
    (6: turn 90 degrees clockwise to view): generate.py and the training
    readers see it upright, and the output carries no tag that would turn it
    again."""
    stored = numpy.zeros((24, 40, 3), numpy.uint8)
    stored[:, :8] = (255, 0, 0)  # the left edge as stored: the top when viewed
    exif = Image.Exif()
    exif[274] = 6
    path = str(tmp_path / 'portrait.jpg')
    Image.fromarray(stored).save(path, exif=exif, quality=95)
    upright = images.read_rgb_array(path)
    assert upright.shape == (40, 24, 3)
    assert upright[:8].mean(axis=(0, 1)).round(-1).tolist() == [250, 0, 0]
    assert upright[16:].max() < 40  # JPEG blurs the edge of the red band
    assert dataset.load_preview(path, 32).shape == (512, 308, 3)
    out = str(tmp_path / 'out.jpg')
    assert generate.main([path, '-m', model_path, '-o', out, '--backend', 'chainer',
                          '--padding', '4']) == 0
    with Image.open(out) as image:
        assert image.size == (24, 40) and 274 not in image.getexif()


def test_pil_size_warning_does_not_come_before_our_error(tmp_path, model_path,
                                                          monkeypatch, capsys):
    """PIL warns (two lines) from 89 megapixels on, below the error our own
    check gives: scaled down here, PIL warning from 1000 pixels, ours at 500."""
    import warnings
    path = str(tmp_path / 'big.png')
    write_image(path, (40, 30), seed=1)
    monkeypatch.setattr(Image, 'MAX_IMAGE_PIXELS', 1000)
    monkeypatch.setattr(images, 'MAX_PIXELS', 500)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        status = generate.main([path, '-m', model_path, '-o', str(tmp_path / 'o.png'),
                                '--backend', 'chainer'])
        assert crops.readable_images([path])[2] == [path]
    _, err = capsys.readouterr()
    assert status == 2 and one_error_line(err) and 'big.png: 40x30 is' in err, err
    assert [str(w.message) for w in caught] == []


def test_fifos_are_not_taken_for_images(tmp_path, image_dir):
    os.mkfifo(os.path.join(image_dir, 'pipe.jpg'))
    assert [os.path.basename(p) for p in crops.list_images(image_dir)] == [
        'img0.png', 'img1.png', 'img2.png', 'img3.png']
    assert 'pipe.jpg' not in ''.join(stability_measures.frame_files(image_dir))
    with pytest.raises(InputError, match='not a regular file'):
        images.open_rgb(os.path.join(image_dir, 'pipe.jpg'))


def test_resize_averages_when_a_side_shrinks_and_is_bilinear_when_both_grow():
    import cv2
    image = numpy.random.RandomState(3).randint(0, 256, (30, 42, 3)).astype(numpy.uint8)
    assert images.resize(image, (42, 30)) is image
    # (width, height), as OpenCV takes it; area averaging if either side
    # shrinks, even when the other grows.
    for size in ((29, 21), (45, 21), (29, 33)):
        assert numpy.array_equal(images.resize(image, size),
                                 cv2.resize(image, size, interpolation=cv2.INTER_AREA))
    assert numpy.array_equal(images.resize(image, (67, 48)),
                             cv2.resize(image, (67, 48), interpolation=cv2.INTER_LINEAR))
    assert images.scaled_size(42, 30, 0.7) == (29, 21)
    assert images.scaled_size(3, 2, 0.1) == (1, 1)
