"""scripts/content_crops.py: the crops and their flattened copies."""
import os

import numpy
from PIL import Image

from scripts import content_crops


def noisy_red_blue_halves(size=64, seed=0):
    """A red left half and a blue right half, each with strong pixel noise:
    the flattened copy's answer is known (the clean halves)."""
    clean = numpy.zeros((size, size, 3), numpy.float64)
    clean[:, :size // 2] = (200, 40, 40)
    clean[:, size // 2:] = (40, 40, 200)
    noise = numpy.random.RandomState(seed).uniform(-12, 12, clean.shape)
    return clean, Image.fromarray(numpy.clip(clean + noise, 0, 255).astype(numpy.uint8))


def test_flattened_copy_removes_texture_and_keeps_edge_and_colours():
    clean, crop = noisy_red_blue_halves()
    flat = numpy.asarray(content_crops.flattened(crop), numpy.float64)
    noisy = numpy.asarray(crop, numpy.float64)
    assert flat.shape == noisy.shape
    inner = (slice(4, -4), slice(None))   # away from the mirrored image edge
    # The texture goes: nearer the clean picture than the noisy crop is.
    assert numpy.abs(flat - clean)[inner].mean() < 0.5 * numpy.abs(noisy - clean)[inner].mean()
    # The edge stays sharp: two pixels either side still hold their half's
    # colour (a blur would mix them), red stays left, blue right.
    half = flat.shape[1] // 2
    left, right = flat[inner][:, half - 2], flat[inner][:, half + 1]
    assert numpy.abs(left - (200, 40, 40)).max() < 30
    assert numpy.abs(right - (40, 40, 200)).max() < 30


def test_write_crops_with_flat_copies_writes_each_crop_and_its_copy(tmp_path, monkeypatch):
    photos = []
    for k in range(2):
        path = str(tmp_path / 'photo{}.png'.format(k))
        noisy_red_blue_halves(96, seed=k)[1].save(path)
        photos.append(path)
    monkeypatch.setattr(content_crops, 'photo_paths', lambda: photos)
    plain = str(tmp_path / 'plain')
    with_flat = str(tmp_path / 'with_flat')
    count = content_crops.write_crops(plain, 32, per_photo=2)
    assert content_crops.write_crops(with_flat, 32, per_photo=2, flat_copies=True) == 2 * count
    names = sorted(os.listdir(plain))
    assert sorted(os.listdir(with_flat)) == sorted(
        names + [n[:-len('.png')] + '_flat.png' for n in names])
    for name in names:   # the crops themselves are unchanged
        same = numpy.asarray(Image.open(os.path.join(plain, name)))
        assert numpy.array_equal(same, numpy.asarray(Image.open(os.path.join(with_flat, name))))
        copy = numpy.asarray(Image.open(os.path.join(with_flat, name[:-4] + '_flat.png')))
        assert copy.shape == same.shape and not numpy.array_equal(copy, same)
