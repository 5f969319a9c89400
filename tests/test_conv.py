"""faststyle/conv.py against Chainer's own F.convolution_2d and
F.deconvolution_2d: every output and gradient, in both orders of the sums,
and the constant-weight case."""
import chainer
import chainer.functions as F
import numpy
import pytest

from faststyle import conv


def run(function, x, W, b, stride, pad, seed=1, **dilate):
    x, W = chainer.Variable(x.copy()), chainer.Parameter(W.copy())
    b = None if b is None else chainer.Parameter(b.copy())
    y = function(x, W, b, stride, pad, **dilate)
    y.grad = numpy.random.RandomState(seed).randn(*y.shape).astype(numpy.float32)
    y.backward()
    return [y.array, x.grad, W.grad] + ([] if b is None else [b.grad])


def assert_same_as_chainer(ours, chainers, x, W, b, stride, pad, **dilate):
    """Output and every gradient of ``ours`` equal those of ``chainers``."""
    mine = run(ours, x, W, b, stride, pad, **dilate)
    expected = run(chainers, x, W, b, stride, pad, **dilate)
    assert len(mine) == len(expected)
    for got, want in zip(mine, expected):
        assert got.shape == want.shape and got.dtype == want.dtype
        numpy.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('n, c_in, c_out, k, stride, pad, h, w', [
    (2, 3, 5, 3, 1, 1, 9, 7),     # widens: im2col order
    (2, 8, 3, 9, 1, 4, 12, 10),   # narrows, 9x9 (the output layer): tap order
    (1, 6, 4, 4, 2, 1, 8, 8),     # strided (the encoder): im2col order
    (3, 5, 2, 3, 1, 0, 7, 6),     # narrows without padding
    (2, 4, 6, 1, 1, 0, 5, 5),     # 1x1
])
@pytest.mark.parametrize('bias', [True, False])
def test_equals_chainer_convolution(n, c_in, c_out, k, stride, pad, h, w, bias):
    rng = numpy.random.RandomState(0)
    x = rng.randn(n, c_in, h, w).astype(numpy.float32)
    W = rng.randn(c_out, c_in, k, k).astype(numpy.float32)
    b = rng.randn(c_out).astype(numpy.float32) if bias else None
    assert_same_as_chainer(conv.convolution_2d, F.convolution_2d, x, W, b, stride, pad)


@pytest.mark.parametrize('n, c_in, c_out, k, stride, pad, dilate, h, w', [
    (2, 4, 4, 3, 1, 2, 2, 9, 8),   # the residual blocks at rate 2 (--res_dilation)
    (1, 5, 5, 3, 1, 4, 4, 12, 10),  # at rate 4: taps further apart than the kernel is wide
    (2, 6, 3, 3, 1, 3, 3, 8, 9),   # narrows: dilated, so im2col order
    (1, 3, 4, 3, 2, 2, 2, 9, 9),   # strided and dilated
])
def test_dilated_equals_chainer_convolution(n, c_in, c_out, k, stride, pad, dilate, h, w):
    rng = numpy.random.RandomState(4)
    x = rng.randn(n, c_in, h, w).astype(numpy.float32)
    W = rng.randn(c_out, c_in, k, k).astype(numpy.float32)
    b = rng.randn(c_out).astype(numpy.float32)
    assert_same_as_chainer(conv.convolution_2d, F.convolution_2d, x, W, b, stride, pad,
                           dilate=dilate)


@pytest.mark.parametrize('n, c_in, c_out, k, stride, pad, h, w', [
    (2, 6, 4, 4, 2, 1, 5, 4),     # the deconv layout's 2x upsampling layers
    (1, 5, 3, 9, 1, 4, 8, 7),     # its 9x9 output layer
    (2, 3, 4, 2, 3, 0, 4, 5),     # stride above the kernel: gaps between taps, no padding
])
@pytest.mark.parametrize('bias', [True, False])
def test_deconvolution_equals_chainer(n, c_in, c_out, k, stride, pad, h, w, bias):
    rng = numpy.random.RandomState(3)
    x = rng.randn(n, c_in, h, w).astype(numpy.float32)
    W = rng.randn(c_in, c_out, k, k).astype(numpy.float32)
    b = rng.randn(c_out).astype(numpy.float32) if bias else None
    assert_same_as_chainer(conv.deconvolution_2d, F.deconvolution_2d, x, W, b, stride, pad)


@pytest.mark.parametrize('c_in, c_out', [(3, 5), (8, 3)])
def test_constant_weights_get_no_gradient_and_the_input_the_right_one(c_in, c_out):
    rng = numpy.random.RandomState(2)
    x = chainer.Variable(rng.randn(2, c_in, 6, 6).astype(numpy.float32))
    W = rng.randn(c_out, c_in, 3, 3).astype(numpy.float32)
    b = rng.randn(c_out).astype(numpy.float32)
    y = conv.convolution_2d(x, W, b, 1, 1)
    F.sum(y * y).backward()
    x_ref = chainer.Variable(x.array.copy())
    y_ref = F.convolution_2d(x_ref, W, b, 1, 1)
    F.sum(y_ref * y_ref).backward()
    numpy.testing.assert_allclose(x.grad, x_ref.grad, rtol=1e-4, atol=1e-3)


def test_no_backprop_mode_builds_no_graph():
    x = numpy.ones((1, 2, 5, 5), numpy.float32)
    W = chainer.Parameter(numpy.ones((3, 2, 3, 3), numpy.float32))
    with chainer.no_backprop_mode():
        y = conv.convolution_2d(x, W, None, 1, 1)
    assert y.creator is None
    # The centre sees all 2 x 3 x 3 ones, a corner 2 x 2 x 2.
    assert y.array[0, 0, 2, 2] == 18 and y.array[0, 0, 0, 0] == 8


@pytest.mark.parametrize('arch, dilation', [('deconv', (1, 1, 1, 1, 1)),
                                            ('resize', (1, 1, 1, 1, 1)),
                                            ('resize', (1, 2, 4, 2, 1))])
def test_the_transform_nets_layers_are_computed_here_on_the_cpu(arch, dilation):
    """Every convolution and transposed convolution of FastStyleNet goes
    through faststyle/conv.py on the CPU (3 encoder, 10 residual, 3 decoder
    layers), not Chainer's own, dilated residual blocks too."""
    import net
    model = net.FastStyleNet(arch, dilation=dilation)
    y = model(numpy.zeros((1, 3, 16, 16), numpy.float32))
    counts, seen, todo = {}, set(), [y.creator_node]
    while todo:
        node = todo.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        counts[type(node).__name__] = counts.get(type(node).__name__, 0) + 1
        todo.extend(x.creator_node for x in node.inputs)
    ours = counts.get('CpuConvolution2D', 0) + counts.get('CpuDeconvolution2D', 0)
    assert ours == 16, counts
    assert counts.get('CpuDeconvolution2D', 0) == (3 if arch == 'deconv' else 0), counts
