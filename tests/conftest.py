"""Shared fixtures and helpers: stand-in VGG16 weights (random, CFNS layout),
tiny data sets and a random model; train.py's flags for a small run; how a
command's one-line error is recognised; .npz files written and read back."""
import os
import subprocess

import numpy
import pytest
from PIL import Image

from faststyle import chainer_compat  # noqa: F401  (before Chainer: numpy 2, Py 3.12+)
from faststyle import crops
from faststyle import npz
from faststyle import vgg16_weights
import net

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def one_error_line(text):
    """Whether ``text`` (a command's stderr) is one ``error: ...`` line and no
    traceback: how every command reports bad input or a failure."""
    lines = text.strip().splitlines()
    return len(lines) == 1 and lines[0].startswith('error: ') and 'Traceback' not in text


def assert_one_line_error(result, *fragments):
    """A finished subprocess (subprocess.run's result) failed with one
    ``error: ...`` line that holds each of ``fragments``."""
    assert result.returncode != 0, result.stdout
    assert one_error_line(result.stderr), result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


def stop_process(process, timeout):
    """Stop a server a test started: SIGTERM first, so it can remove its lock
    files and sockets for the next run, SIGKILL if it is still there after
    ``timeout`` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope='session')
def vgg_path(tmp_path_factory):
    """Random He-scaled VGG16 weights in the exact CFNS vgg16.model layout."""
    path = str(tmp_path_factory.mktemp('vgg') / 'vgg16.model')
    vgg16_weights.save_arrays(path, vgg16_weights.random_weights(seed=0))
    return path


def write_image(path, size, seed, mode='RGB'):
    rng = numpy.random.RandomState(seed)
    w, h = size
    # Smooth content (a few gradients), not pure noise, so losses behave.
    yy, xx = numpy.mgrid[0:h, 0:w]
    channels = [127 + 120 * numpy.sin(xx / (3 + 5 * rng.rand()) + rng.rand() * 6)
                * numpy.cos(yy / (4 + 5 * rng.rand())) for _ in range(3)]
    rgb = numpy.clip(numpy.stack(channels, axis=2), 0, 255).astype(numpy.uint8)
    Image.fromarray(rgb).convert(mode).save(path)
    return path


@pytest.fixture
def image_dir(tmp_path):
    """Four small RGB training images."""
    directory = tmp_path / 'images'
    directory.mkdir()
    for i in range(4):
        write_image(str(directory / 'img{}.png'.format(i)), (40, 36), seed=i)
    return str(directory)


@pytest.fixture
def targets_dir(tmp_path, image_dir):
    """A 32-px target for each image of image_dir, unlike its crop."""
    directory = str(tmp_path / 'targets')
    os.mkdir(directory)
    paths = crops.list_images(image_dir)
    for k, target in enumerate(crops.target_paths(directory, image_dir, paths)):
        write_image(target, (32, 32), seed=50 + k)
    return directory


@pytest.fixture
def style_path(tmp_path):
    return write_image(str(tmp_path / 'style.jpg'), (48, 48), seed=99)


def small_args(image_dir, style_path, vgg_path, *extra):
    """train.py's flags for one epoch on 32-pixel crops, without previews, a
    loss line every iteration; the progress bar is left to the test."""
    return ['-d', image_dir, '-s', style_path, '--vgg', vgg_path, '--image_size', '32',
            '--preview_interval', '0', '--log_interval', '1', '-e', '1'] + list(extra)


@pytest.fixture
def model_path(tmp_path):
    """A random resize-layout FastStyleNet saved as a .model (seed 0)."""
    path = str(tmp_path / 'keep.model')
    numpy.random.seed(0)
    npz.save_npz(path, net.FastStyleNet('resize'))
    return path


def model_arrays(path):
    """The arrays of a saved .model or .state (an npz archive), by name."""
    with numpy.load(path) as archive:
        return {key: archive[key] for key in archive.files}


def assert_same_arrays(path, expected_path, rounding_only=()):
    """The exact-resume check: the same names and bit for bit the same arrays;
    those whose names end with one of ``rounding_only`` equal to float32
    rounding (within 1e-5 of the array's largest magnitude: the rounding of a
    sum is relative to its largest terms, not to each element)."""
    actual, expected = model_arrays(path), model_arrays(expected_path)
    assert sorted(actual) == sorted(expected)
    for key in expected:
        if key.endswith(tuple(rounding_only)):
            scale = float(numpy.abs(expected[key]).max())
            numpy.testing.assert_allclose(actual[key], expected[key], rtol=0,
                                          atol=1e-5 * scale, err_msg=key)
        else:
            numpy.testing.assert_array_equal(actual[key], expected[key], err_msg=key)


def write_npz(path, arrays):
    """``arrays`` saved at ``path`` exactly (numpy.savez would add .npz)."""
    numpy.savez(path, **arrays)
    os.replace(path + '.npz' if not path.endswith('.npz') else path, path)
    return path


@pytest.fixture(autouse=True)
def allocator_left_alone(monkeypatch):
    """Trainings built in the test process do not switch its allocator to
    keeping freed memory (devices.keep_freed_memory): the suite's memory
    would only grow. Its own tests run it in child processes."""
    from faststyle import devices
    monkeypatch.setattr(devices, 'keep_freed_memory', lambda: True)
