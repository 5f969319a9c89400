"""caffemodel.py and ``vgg16.py --caffemodel``: files built by a tiny protobuf
encoder written here (legacy V1 ``layers`` and new ``layer`` layouts, all 13
VGG16 convolutions at full size), a cross-check against real protobuf
serialization, and truncated / corrupt / foreign files."""
import os
import struct
import subprocess
import sys
import textwrap

import numpy
import pytest

from faststyle import caffemodel
import vgg16
from faststyle import vgg16_weights
from faststyle.errors import InputError
from conftest import assert_one_line_error

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VGG16_PY = os.path.join(ROOT, 'vgg16.py')


# --- a minimal protobuf encoder, independent of caffemodel.py --------------

def varint(n):
    n &= (1 << 64) - 1  # negative int32/int64 values take 10 bytes
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def key(field, wire):
    return varint(field << 3 | wire)


def vfield(field, n):
    return key(field, 0) + varint(n)


def lfield(field, payload):
    if isinstance(payload, str):
        payload = payload.encode('utf-8')
    return key(field, 2) + varint(len(payload)) + payload


def f32field(field, x):
    return key(field, 5) + struct.pack('<f', x)


def f64field(field, x):
    return key(field, 1) + struct.pack('<d', x)


def packed_floats(field, array):
    return lfield(field, numpy.ascontiguousarray(array, '<f4').tobytes())


def unknown_fields():
    """Fields no caffe message here has, one of each wire type."""
    return (vfield(901, 2 ** 63 + 5) + f64field(902, -1.5) + lfield(903, b'\x00\xffjunk')
            + f32field(904, 2.5) + vfield(905, 0))


def v1_blob(array, dims=None, diff=False):
    dims = array.shape if dims is None else dims
    out = b''.join(vfield(f, d) for f, d in zip((1, 2, 3, 4), dims))
    out += packed_floats(5, array)
    if diff:
        out += packed_floats(6, numpy.full(array.size, 7.0))
    return out


def new_blob(array, packed_dims=True):
    if packed_dims:
        shape = lfield(1, b''.join(varint(d) for d in array.shape))
    else:
        shape = b''.join(vfield(1, d) for d in array.shape)
    return lfield(7, shape) + packed_floats(5, array)


V1_CONVOLUTION, V1_INNER_PRODUCT, V1_RELU = 4, 14, 18


def v1_layer(name, type_, blobs, name_last=False):
    body = lfield(2, 'bottom') + lfield(3, name)
    if not name_last:
        body += lfield(4, name)
    body += vfield(5, type_)
    body += b''.join(lfield(6, b) for b in blobs)
    body += f32field(7, 1.0) + f32field(7, 2.0) + f32field(8, 1.0) + f32field(8, 0.0)
    body += lfield(10, vfield(1, 64) + vfield(3, 1) + vfield(4, 3))  # convolution_param
    body += unknown_fields()
    if name_last:
        body += lfield(4, name)
    return body


def new_layer(name, type_, blobs, name_last=False):
    body = b'' if name_last else lfield(1, name)
    body += lfield(2, type_) + lfield(3, 'bottom') + lfield(4, name)
    body += lfield(6, f32field(3, 1.0)) + lfield(6, f32field(3, 2.0))  # ParamSpec lr_mult
    body += b''.join(lfield(7, b) for b in blobs)
    body += lfield(106, vfield(1, 64) + vfield(3, 1))  # convolution_param
    body += unknown_fields()
    if name_last:
        body += lfield(1, name)
    return body


def make_weights(seed=0):
    rng = numpy.random.default_rng(seed)
    arrays = {}
    for name, n_in, n_out in vgg16_weights.LAYERS:
        arrays[name + '/W'] = rng.standard_normal((n_out, n_in, 3, 3), numpy.float32)
        arrays[name + '/b'] = rng.standard_normal(n_out, numpy.float32)
    return arrays


FC6 = numpy.arange(16 * 32, dtype=numpy.float32).reshape(16, 32) / 7


def legacy_file(arrays):
    """NetParameter with V1 ``layers`` (field 2), as VGG_ILSVRC_16_layers is."""
    parts = [lfield(1, 'VGG_ILSVRC_16_layers'), lfield(3, 'data')]
    parts += [vfield(4, d) for d in (10, 3, 224, 224)]  # input_dim, unpacked
    parts.append(unknown_fields())
    for i, (name, n_in, n_out) in enumerate(vgg16_weights.LAYERS):
        W, b = arrays[name + '/W'], arrays[name + '/b']
        blobs = [v1_blob(W, diff=(i == 0)), v1_blob(b, dims=(1, 1, 1, n_out))]
        parts.append(lfield(2, v1_layer(name, V1_CONVOLUTION, blobs, name_last=(i == 5))))
        parts.append(lfield(2, v1_layer(name.replace('conv', 'relu'), V1_RELU, [])))
    parts.append(lfield(2, v1_layer('fc6', V1_INNER_PRODUCT,
                                    [v1_blob(FC6, dims=(1, 1, 16, 32)),
                                     v1_blob(numpy.ones(16, numpy.float32), dims=(1, 1, 1, 16))])))
    parts.append(f64field(903, 1.0))
    return b''.join(parts)


def new_file(arrays):
    """NetParameter with ``layer`` (field 100) messages."""
    parts = [lfield(1, 'VGG16'), unknown_fields()]
    for i, (name, _, _) in enumerate(vgg16_weights.LAYERS):
        W, b = arrays[name + '/W'], arrays[name + '/b']
        blobs = [new_blob(W), new_blob(b, packed_dims=False)]
        parts.append(lfield(100, new_layer(name, 'Convolution', blobs, name_last=(i == 7))))
        parts.append(lfield(100, new_layer(name.replace('conv', 'relu'), 'ReLU', [])))
    parts.append(lfield(100, new_layer('fc6', 'InnerProduct', [new_blob(FC6)])))
    return b''.join(parts)


@pytest.fixture(scope='module')
def weights():
    return make_weights()


@pytest.fixture(scope='module')
def model_files(weights, tmp_path_factory):
    directory = tmp_path_factory.mktemp('caffemodels')
    paths = {}
    for kind, build in (('legacy', legacy_file), ('new', new_file)):
        path = directory / '{}.caffemodel'.format(kind)
        path.write_bytes(build(weights))
        paths[kind] = str(path)
    return paths


# --- the reader ------------------------------------------------------------

@pytest.mark.parametrize('kind', ['legacy', 'new'])
def test_read_layers_full_vgg16(kind, model_files, weights):
    layers = caffemodel.read_layers(model_files[kind])
    assert set(layers) == ({name for name, _, _ in vgg16_weights.LAYERS}
                           | {name.replace('conv', 'relu') for name, _, _ in vgg16_weights.LAYERS}
                           | {'fc6'})
    for name, n_in, n_out in vgg16_weights.LAYERS:
        W, b = layers[name]
        # Copies, not read-only views of the memory-mapped file.
        assert W.dtype == numpy.float32 and W.flags.c_contiguous and W.flags.writeable
        assert W.shape == (n_out, n_in, 3, 3)
        numpy.testing.assert_array_equal(W, weights[name + '/W'])
        assert b.shape == ((1, 1, 1, n_out) if kind == 'legacy' else (n_out,))
        numpy.testing.assert_array_equal(b.reshape(-1), weights[name + '/b'])
        assert layers[name.replace('conv', 'relu')] == []
    fc6 = layers['fc6'][0]
    numpy.testing.assert_array_equal(fc6.reshape(16, 32), FC6)
    assert fc6.shape == ((1, 1, 16, 32) if kind == 'legacy' else (16, 32))

    only = caffemodel.read_layers(model_files[kind], names=['conv3_2', 'fc6', 'nope'])
    assert sorted(only) == ['conv3_2', 'fc6']
    numpy.testing.assert_array_equal(only['conv3_2'][0], weights['conv3_2/W'])


def write(tmp_path, data, name='net.caffemodel'):
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def test_blob_encodings(tmp_path):
    """Unpacked floats and dims, split packed data, doubles, legacy dims first."""
    a = numpy.arange(24, dtype=numpy.float32).reshape(2, 3, 4) - 5.5
    unpacked = (lfield(7, b''.join(vfield(1, d) for d in a.shape))
                + b''.join(f32field(5, x) for x in a.ravel()))
    split = (lfield(7, lfield(1, b'\x02\x03\x04')) + packed_floats(5, a.ravel()[:10])
             + packed_floats(6, a.ravel()) + packed_floats(5, a.ravel()[10:]))
    doubles = lfield(7, lfield(1, b'\x02\x03\x04')) + lfield(8, a.astype('<f8').tobytes())
    unpacked_doubles = (lfield(7, lfield(1, b'\x02\x03\x04'))
                        + b''.join(f64field(8, x) for x in a.ravel()))
    # Legacy dims win over shape, as in Caffe's Blob::FromProto.
    legacy = lfield(7, lfield(1, b'\x18')) + v1_blob(a, dims=(1, 2, 3, 4))
    # A float record whose key is written in two bytes (legal, if odd).
    two_byte_key = (lfield(7, lfield(1, b'\x02')) + b'\xad\x00' + struct.pack('<f', 1.5)
                    + f32field(5, 2.5))
    scalar = packed_floats(5, [3.0])  # no shape at all: a 1-D array
    empty = lfield(7, lfield(1, b'\x00\x03'))
    layer = new_layer('x', 'Custom', [unpacked, split, doubles, unpacked_doubles,
                                      legacy, two_byte_key, scalar, empty])
    path = write(tmp_path, lfield(100, layer) + unknown_fields())
    blobs = caffemodel.read_layers(path)['x']
    for blob in blobs[:4]:
        assert blob.dtype == numpy.float32 and blob.shape == (2, 3, 4)
        numpy.testing.assert_array_equal(blob, a)
    numpy.testing.assert_array_equal(blobs[4], a.reshape(1, 2, 3, 4))
    numpy.testing.assert_array_equal(blobs[5], [1.5, 2.5])
    numpy.testing.assert_array_equal(blobs[6], [3.0])
    assert blobs[7].shape == (0, 3) and blobs[7].dtype == numpy.float32


def test_duplicate_names_first_with_blobs_wins(tmp_path):
    data = b''.join(lfield(100, new_layer('c', t, blobs)) for t, blobs in (
        ('Split', []), ('Convolution', [new_blob(numpy.ones(2, numpy.float32))]),
        ('Convolution', [new_blob(numpy.zeros(3, numpy.float32))])))
    layers = caffemodel.read_layers(write(tmp_path, data))
    numpy.testing.assert_array_equal(layers['c'][0], [1, 1])


@pytest.mark.parametrize('data, message', [
    (b'', 'empty file'),
    (lfield(100, new_layer('x', 'T', [])) + key(7, 3) + key(7, 4), 'group'),
    (key(3, 6), 'invalid wire type 6'),
    (b'\x00\x01', 'field number 0'),
    (b'\xff' * 11, 'varint'),
    (lfield(1, 'just a name'), 'no layers'),
    (lfield(100, new_layer('x', 'T', [lfield(7, lfield(1, b'\x02\x02'))
                                      + packed_floats(5, [1, 2, 3])])), '3 values'),
    (lfield(100, new_layer('x', 'T', [lfield(5, b'\x00' * 6)])), 'multiple of 4'),
    (lfield(100, new_layer('x', 'T', [lfield(7, vfield(1, -2)) + packed_floats(5, [])])),
     'negative'),
    (lfield(100, new_layer('x', 'T', [])) + lfield(2, b'\x0a'), 'truncated'),
    (b'\xff\xd8\xff\xe0\x00\x10JFIF\x00', 'JPEG'),
    (b'<!DOCTYPE html>\n<html><body>Not Found</body></html>\n', 'text file'),
    (b'name: "VGG_ILSVRC_16_layers"\nlayers {\n', 'prototxt'),
])
def test_bad_files(tmp_path, data, message):
    with pytest.raises(InputError) as e:
        caffemodel.read_layers(write(tmp_path, data))
    assert message in str(e.value) and '\n' not in str(e.value)


def test_missing_file_and_directory(tmp_path):
    for path in (str(tmp_path / 'nope.caffemodel'), str(tmp_path)):
        with pytest.raises(InputError, match='no such file'):
            caffemodel.read_layers(path)


def test_every_prefix_and_corruption_fails_cleanly(tmp_path, weights):
    """Any prefix, flipped byte or random bytes: a result or InputError, never a crash."""
    small = {k: v[:2, :2] if v.ndim == 4 else v[:2] for k, v in list(weights.items())[:4]}
    data = (lfield(1, 'net') + lfield(2, v1_layer('conv1_1', V1_CONVOLUTION, [
        v1_blob(small['conv1_1/W']), v1_blob(small['conv1_1/b'], dims=(1, 1, 1, 2))]))
        + lfield(100, new_layer('conv1_2', 'Convolution', [
            new_blob(small['conv1_2/W']), new_blob(small['conv1_2/b'], packed_dims=False)])))
    rng = numpy.random.RandomState(1)
    cases = [data[:n] for n in range(1, len(data))]
    for _ in range(200):
        corrupt = bytearray(data)
        corrupt[rng.randint(len(data))] = rng.randint(256)
        cases.append(bytes(corrupt))
    cases += [rng.bytes(rng.randint(1, 2000)) for _ in range(100)]
    failures = 0
    for case in cases:
        path = write(tmp_path, case, 'case.caffemodel')
        try:
            caffemodel.read_layers(path)
        except InputError as e:
            assert '\n' not in str(e)
            failures += 1
    assert failures > len(data) // 2  # most prefixes end mid-field


# --- the command line ------------------------------------------------------

def test_cli_converts(model_files, weights, tmp_path):
    """Both layouts, converted by two concurrent ``vgg16.py`` processes."""
    procs = {kind: subprocess.Popen(
        [sys.executable, VGG16_PY, '--caffemodel', model_files[kind], '-o', kind + '.model'],
        cwd=str(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        universal_newlines=True) for kind in ('legacy', 'new')}
    for kind, proc in procs.items():
        _, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr
        assert 'Traceback' not in stderr
        with numpy.load(str(tmp_path / (kind + '.model')), allow_pickle=False) as saved:
            assert sorted(saved.files) == sorted(weights)
            for name, expected in weights.items():
                assert saved[name].dtype == numpy.float32
                numpy.testing.assert_array_equal(saved[name], expected)
    vgg = vgg16.load_vgg(str(tmp_path / 'legacy.model'))
    assert not vgg.is_stand_in
    numpy.testing.assert_array_equal(vgg.conv5_3.W.array, weights['conv5_3/W'])
    numpy.testing.assert_array_equal(vgg.conv1_1.b.array, weights['conv1_1/b'])


def test_cli_truncated_and_foreign_files(model_files, tmp_path, capsys):
    with open(model_files['legacy'], 'rb') as f:
        data = f.read(os.path.getsize(model_files['legacy']) * 2 // 3)
    truncated = write(tmp_path, data, 'truncated.caffemodel')
    jpeg = str(tmp_path / 'photo.jpg')
    from PIL import Image
    Image.new('RGB', (32, 32), (200, 10, 10)).save(jpeg)
    procs = [(path, subprocess.Popen(
        [sys.executable, VGG16_PY, '--caffemodel', path, '-o', 'out.model'],
        cwd=str(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        universal_newlines=True)) for path in (truncated, jpeg)]
    for path, proc in procs:
        stdout, stderr = proc.communicate(timeout=120)
        result = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
        assert_one_line_error(result, path, 'not a readable caffemodel')
        if path == truncated:
            assert 'truncated' in stderr
        if path == jpeg:
            assert 'JPEG' in stderr
    # Random bytes, through the same main() in this process (saves a start-up).
    noise = write(tmp_path, numpy.random.RandomState(3).bytes(5000), 'noise.caffemodel')
    status = vgg16.main(['--caffemodel', noise, '-o', str(tmp_path / 'out.model')])
    assert status == 2  # bad input (errors.py)
    err = capsys.readouterr().err
    assert err.startswith('error: {}: not a readable caffemodel'.format(noise))
    assert err.count('\n') == 1
    assert not (tmp_path / 'out.model').exists()
    # A well-formed caffemodel of some other network.
    other = write(tmp_path, lfield(100, new_layer('conv1', 'Convolution', [
        new_blob(numpy.ones((2, 3, 3, 3), numpy.float32))])), 'other.caffemodel')
    with pytest.raises(InputError, match='has no layer conv1_1; is it VGG16'):
        vgg16_weights.from_caffemodel(other)


# --- against real protobuf serialization -----------------------------------

PROTOBUF_WRITER = textwrap.dedent('''
    import importlib.util
    import os
    import sys
    import numpy

    # chainer.links.caffe.protobuf3.caffe_pb2, loaded from its file so the
    # subprocess does not spend seconds importing all of chainer first.
    chainer_dir = importlib.util.find_spec('chainer').submodule_search_locations[0]
    spec = importlib.util.spec_from_file_location('caffe_pb2', os.path.join(
        chainer_dir, 'links', 'caffe', 'protobuf3', 'caffe_pb2.py'))
    caffe_pb2 = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(caffe_pb2)

    arrays = numpy.load(sys.argv[1])
    net = caffe_pb2.NetParameter()
    net.name = 'tiny'
    net.input.append('data')
    net.input_dim.extend([1, 3, 8, 8])

    old = net.layers.add()              # legacy V1LayerParameter
    old.name = 'conv_old'
    old.type = caffe_pb2.V1LayerParameter.CONVOLUTION
    old.bottom.append('data')
    old.top.append('conv_old')
    old.blobs_lr.extend([1.0, 2.0])
    old.convolution_param.num_output = 2
    for key, dims in (('old_W', (2, 3, 3, 3)), ('old_b', (1, 1, 1, 2))):
        blob = old.blobs.add()
        blob.num, blob.channels, blob.height, blob.width = dims
        blob.data.extend(arrays[key].ravel().tolist())
        blob.diff.extend([9.0] * arrays[key].size)

    relu = net.layers.add()
    relu.name = 'relu_old'
    relu.type = caffe_pb2.V1LayerParameter.RELU

    new = net.layer.add()               # LayerParameter
    new.name = 'conv_new'
    new.type = 'Convolution'
    new.bottom.append('conv_old')
    new.top.append('conv_new')
    new.param.add().lr_mult = 1.0
    new.convolution_param.num_output = 4
    new.convolution_param.kernel_size.append(3)
    for key in ('new_W', 'new_b'):
        blob = new.blobs.add()
        blob.shape.dim.extend(arrays[key].shape)
        blob.data.extend(arrays[key].ravel().tolist())
    blob = new.blobs.add()
    blob.shape.dim.extend(arrays['new_d'].shape)
    blob.double_data.extend(arrays['new_d'].ravel().tolist())

    net.layer.add(name='relu_new', type='ReLU')
    with open(sys.argv[2], 'wb') as f:
        f.write(net.SerializeToString())
''')


def test_matches_real_protobuf_encoding(tmp_path):
    rng = numpy.random.RandomState(5)
    arrays = {'old_W': rng.standard_normal((2, 3, 3, 3)).astype(numpy.float32),
              'old_b': rng.standard_normal((1, 1, 1, 2)).astype(numpy.float32),
              'new_W': rng.standard_normal((4, 3, 3, 3)).astype(numpy.float32),
              'new_b': rng.standard_normal(4).astype(numpy.float32),
              'new_d': rng.standard_normal((2, 5))}
    numpy.savez(str(tmp_path / 'arrays.npz'), **arrays)
    script = tmp_path / 'write_caffemodel.py'
    script.write_text(PROTOBUF_WRITER)
    path = tmp_path / 'tiny.caffemodel'
    env = dict(os.environ, PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION='python')
    result = subprocess.run([sys.executable, str(script), str(tmp_path / 'arrays.npz'),
                             str(path)], cwd=str(tmp_path), env=env, timeout=300,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            universal_newlines=True)
    assert result.returncode == 0, result.stderr
    layers = caffemodel.read_layers(str(path))
    assert sorted(layers) == ['conv_new', 'conv_old', 'relu_new', 'relu_old']
    assert layers['relu_old'] == [] and layers['relu_new'] == []
    W, b = layers['conv_old']
    assert W.shape == (2, 3, 3, 3) and b.shape == (1, 1, 1, 2)
    numpy.testing.assert_array_equal(W, arrays['old_W'])
    numpy.testing.assert_array_equal(b, arrays['old_b'])
    W, b, d = layers['conv_new']
    numpy.testing.assert_array_equal(W, arrays['new_W'])
    numpy.testing.assert_array_equal(b, arrays['new_b'])
    assert d.dtype == numpy.float32
    numpy.testing.assert_array_equal(d, arrays['new_d'].astype(numpy.float32))
