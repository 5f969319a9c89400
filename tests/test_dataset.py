"""faststyle/dataset.py: the training images, read and cropped."""
import os

import numpy
from PIL import Image

from faststyle import crops
from faststyle import dataset
from conftest import write_image


def test_dataset_reads_recursively_any_case_and_mode(tmp_path):
    root = tmp_path / 'data'
    (root / 'sub' / 'deeper').mkdir(parents=True)
    write_image(str(root / 'a.JPG'), (50, 40), 0)
    write_image(str(root / 'sub' / 'gray.png'), (40, 40), 1, mode='L')
    write_image(str(root / 'sub' / 'alpha.PNG'), (40, 40), 2, mode='RGBA')
    write_image(str(root / 'sub' / 'deeper' / 'cmyk.jpeg'), (60, 45), 3, mode='CMYK')
    write_image(str(root / 'small.bmp'), (12, 20), 4)
    write_image(str(root / 'w.webp'), (40, 40), 5)
    (root / 'notes.txt').write_text('not an image')
    (root / 'broken.jpg').write_bytes(b'\xff\xd8 truncated nonsense')
    data, skipped = dataset.open_dataset(str(root), 32)
    assert len(data) == 6 and [os.path.basename(p) for p in skipped] == ['broken.jpg']
    for i in range(len(data)):
        example = data[i]
        assert example.shape == (3, 32, 32) and example.dtype == numpy.float32
    # Gray stays gray; the small image was enlarged, not padded.
    gray = data[data.paths.index(str(root / 'sub' / 'gray.png'))]
    numpy.testing.assert_array_equal(gray[0], gray[1])
    assert data[data.paths.index(str(root / 'small.bmp'))].std() > 1


def test_crop_keeps_large_images_unscaled_as_cfns():
    image = Image.fromarray(numpy.arange(100 * 80 * 3, dtype=numpy.uint32)
                            .reshape(80, 100, 3).astype(numpy.uint8))
    crop = numpy.asarray(crops.crop_square(image, 32))
    numpy.testing.assert_array_equal(crop, numpy.asarray(image)[24:56, 34:66])


def test_thin_dataset_image_is_not_enlarged_whole(tmp_path, monkeypatch):
    path = str(tmp_path / 'thin.png')
    Image.new('RGB', (1, 200000), (10, 200, 30)).save(path)
    sizes = []
    resize = Image.Image.resize

    def recording_resize(self, size, *args, **kwargs):
        sizes.append(size)
        return resize(self, size, *args, **kwargs)
    monkeypatch.setattr(Image.Image, 'resize', recording_resize)
    x = dataset.ImageDataset([path], 32)[0]
    assert x.shape == (3, 32, 32) and sizes == [(32, 32)]
    assert tuple(x[:, 16, 16]) == (10, 200, 30)
