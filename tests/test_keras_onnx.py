"""vgg16.py --keras_onnx: the convolutions of an ONNX graph of Keras's VGG16."""
import os

import cv2
import numpy
import onnx
from onnx import TensorProto, helper, numpy_helper
import pytest

import vgg16

from faststyle import vgg16_weights
from conftest import one_error_line

# (in, out) channels of conv1_1 .. conv5_3, and after which a block pools;
# written out here, not taken from the module under test.
VGG16_CONVS = [(3, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256),
               (256, 256), (256, 512), (512, 512), (512, 512), (512, 512), (512, 512),
               (512, 512)]
POOL_AFTER = {1, 3, 6, 9, 12}


def write_graph(path, seed=0, stride_of=None, convs=VGG16_CONVS):
    """A graph laid out as tf2onnx writes Keras's VGG16 with a classifier
    head: Conv (weights and bias as initializers) + Relu, MaxPool after each
    block, then Flatten and a Gemm. Returns {index: (W, b)}; the graph also
    outputs relu1_2 (for OpenCV to compute it independently)."""
    rng = numpy.random.RandomState(seed)
    nodes, initializers, values = [], [], {}
    h = 'input'
    for i, (n_in, n_out) in enumerate(convs):
        W = (rng.standard_normal((n_out, n_in, 3, 3)) * 0.05).astype(numpy.float32)
        b = rng.standard_normal(n_out).astype(numpy.float32)
        values[i] = W, b
        initializers += [numpy_helper.from_array(W, 'W{}'.format(i)),
                         numpy_helper.from_array(b, 'b{}'.format(i))]
        stride = 2 if i == stride_of else 1
        nodes.append(helper.make_node('Conv', [h, 'W{}'.format(i), 'b{}'.format(i)],
                                      ['c{}'.format(i)], kernel_shape=[3, 3],
                                      pads=[1, 1, 1, 1], strides=[stride, stride]))
        nodes.append(helper.make_node('Relu', ['c{}'.format(i)], ['r{}'.format(i)]))
        h = 'r{}'.format(i)
        if i in POOL_AFTER:
            nodes.append(helper.make_node('MaxPool', [h], ['p{}'.format(i)],
                                          kernel_shape=[2, 2], strides=[2, 2]))
            h = 'p{}'.format(i)
    nodes.append(helper.make_node('Flatten', [h], ['flat']))
    head = numpy.ones((convs[-1][1], 4), numpy.float32)
    initializers.append(numpy_helper.from_array(head, 'head'))
    nodes.append(helper.make_node('Gemm', ['flat', 'head'], ['logits']))
    graph = helper.make_graph(
        nodes, 'vgg16_classifier',
        [helper.make_tensor_value_info('input', TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info('logits', TensorProto.FLOAT, [1, 4]),
         helper.make_tensor_value_info('r1', TensorProto.FLOAT, [1, 64, 32, 32])],
        initializers)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid('', 13)]), path)
    return values


@pytest.fixture(scope='module')
def keras_graph(tmp_path_factory):
    path = str(tmp_path_factory.mktemp('onnx') / 'vgg16_classifier.onnx')
    return path, write_graph(path)


def test_conversion_keeps_every_convolution_bit_for_bit(keras_graph, tmp_path):
    path, values = keras_graph
    out = str(tmp_path / 'vgg16.model')
    assert vgg16.main(['--keras_onnx', path, '-o', out]) == 0
    arrays = numpy.load(out, allow_pickle=False)
    names = ['conv{}_{}'.format(block, i) for block, n in ((1, 2), (2, 2), (3, 3), (4, 3),
                                                         (5, 3)) for i in range(1, n + 1)]
    for index, name in enumerate(names):
        W, b = values[index]
        assert numpy.array_equal(arrays[name + '/W'], W), name
        assert numpy.array_equal(arrays[name + '/b'], b), name
    assert not any(key.startswith('head') for key in arrays.files)
    # Keras's VGG16 takes Caffe's input, and CFNS's content weight is its default.
    assert vgg16.load_vgg(out).preprocessing == 'caffe'
    assert vgg16_weights.default_content_weight(out) == 1.0


def test_converted_net_computes_what_the_graph_computes(keras_graph, tmp_path):
    """relu1_2 of the converted VGG16 on an RGB image equals OpenCV's run of
    the graph on that image as Caffe's input (BGR minus the ImageNet mean)."""
    path, _ = keras_graph
    out = str(tmp_path / 'vgg16.model')
    assert vgg16.main(['--keras_onnx', path, '-o', out]) == 0
    rgb = numpy.random.RandomState(2).uniform(0, 255, (1, 3, 32, 32)).astype(numpy.float32)
    ours = vgg16.load_vgg(out)(rgb, n_features=1)[0].array
    bgr = rgb[:, ::-1] - numpy.array([103.939, 116.779, 123.68],
                                     numpy.float32).reshape(1, 3, 1, 1)
    net = cv2.dnn.readNetFromONNX(path)
    net.setInput(numpy.ascontiguousarray(bgr))
    reference = net.forward('r1')
    numpy.testing.assert_allclose(ours, reference, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize('case', ['too_few', 'strided', 'wrong_width', 'not_onnx', 'missing'])
def test_a_graph_that_is_not_vgg16_is_refused_in_one_line(case, tmp_path, capsys):
    path = str(tmp_path / 'graph.onnx')
    says = {'too_few': '12 convolutions, VGG16 has 13',
            'strided': "convolution conv2_1 (", 'wrong_width': 'has W of shape',
            'not_onnx': 'not a readable ONNX file', 'missing': 'no such file'}[case]
    if case == 'too_few':
        write_graph(path, convs=VGG16_CONVS[:12])
    elif case == 'strided':
        write_graph(path, stride_of=2)
    elif case == 'wrong_width':
        write_graph(path, convs=[(3, 32), (32, 64)] + VGG16_CONVS[2:])
    elif case == 'not_onnx':
        with open(path, 'wb') as f:
            f.write(b'\xff' * 64)
    out = str(tmp_path / 'vgg16.model')
    assert vgg16.main(['--keras_onnx', path, '-o', out]) == 2
    err = capsys.readouterr().err
    assert one_error_line(err) and says in err, err
    assert not os.path.exists(out)
