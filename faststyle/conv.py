"""2-D convolution for training on the CPU: Chainer's arithmetic, without its copies.

Chainer's CPU convolution multiplies its im2col matrix (n, c, kh, kw, oh, ow)
by the weights with ``numpy.tensordot`` over the (c, kh, kw) axes, which
first copies the whole matrix into (n, oh, ow, c, kh, kw) order and returns
the output in (n, oh, ow, out) order, copied again by every later layer.
Here the same products are one ``matmul`` of W (out, c*kh*kw) with each
image's matrix (c*kh*kw, oh*ow), which is already contiguous, and the result
is NCHW as it comes; the weight gradient is computed only when the weights
need one (constant weights are passed as arrays). Same sums, rounding of the
same order (tests compare every output and gradient with Chainer's
F.convolution_2d).

A transposed convolution (the deconv layout's decoder) is the same three
products with their roles swapped: its output is a convolution's input
gradient, its input gradient a convolution, so :class:`CpuDeconvolution2D`
is written with the same three functions (Chainer's CPU deconvolution pays
the same copies as its convolution).

Other devices (CuPy: cuDNN or im2col + cuBLAS) keep Chainer's own function.
"""
import chainer
import chainer.functions as F
import numpy
from chainer import function_node
from chainer.utils import conv as conv_utils


def convolution_2d(x, W, b=None, stride=1, pad=0, dilate=1):
    """``F.convolution_2d(x, W, b, stride, pad, dilate=dilate)``; on the CPU
    computed by :class:`CpuConvolution2D`. ``W`` and ``b`` may be Variables
    (trained weights) or arrays (constants: no gradient is computed for them)."""
    if not _on_cpu(x):
        return F.convolution_2d(x, W, b, stride=stride, pad=pad, dilate=dilate)
    y, = CpuConvolution2D(_pair(stride), _pair(pad), _pair(dilate)).apply(_inputs(x, W, b))
    return y


def deconvolution_2d(x, W, b=None, stride=1, pad=0):
    """``F.deconvolution_2d(x, W, b, stride, pad)`` (W: in, out, kh, kw); on
    the CPU computed by :class:`CpuDeconvolution2D`."""
    if not _on_cpu(x):
        return F.deconvolution_2d(x, W, b, stride=stride, pad=pad)
    y, = CpuDeconvolution2D(_pair(stride), _pair(pad), (1, 1)).apply(_inputs(x, W, b))
    return y


def _on_cpu(x):
    array = x.array if isinstance(x, chainer.Variable) else x
    return isinstance(chainer.backend.get_device_from_array(array),
                      chainer.backend.CpuDevice)


def _inputs(x, W, b):
    return (x, W) if b is None else (x, W, b)


def _pair(value):
    return value if isinstance(value, tuple) else (value, value)


class _CpuProducts(function_node.FunctionNode):
    """What both CPU functions share: stride, padding and dilation (the
    spacing of a kernel's taps on the input; 1 for transposed
    convolutions), the retained inputs, and the bias (added to the output;
    its gradient the output gradient's sum). Subclasses compute ``_output(x, W)`` and
    ``_gradients(indexes, x, W, gy)`` (the list for x and W among ``indexes``).

    First-order gradients only (training needs no more): ``backward``
    computes arrays, not a differentiable graph.
    """

    def __init__(self, stride, pad, dilate):
        self.stride = stride
        self.pad = pad
        self.dilate = dilate

    def forward_cpu(self, inputs):
        x, W = inputs[:2]
        self.retain_inputs((0, 1))
        y = self._output(x, W)
        if len(inputs) == 3:
            y += inputs[2].reshape(1, -1, 1, 1)
        return y,

    def backward(self, indexes, grad_outputs):
        x, W = (v.array for v in self.get_retained_inputs())
        gy = grad_outputs[0].array
        grads = self._gradients(indexes, x, W, gy)
        if 2 in indexes:
            grads.append(gy.sum(axis=(0, 2, 3)))
        return tuple(chainer.Variable(g) for g in grads)


class CpuConvolution2D(_CpuProducts):
    """Convolution of NCHW numpy arrays as matrix products per image.

    Two orders of the same sums, chosen by which intermediate matrix is
    smaller:

    * ``'input'`` (im2col): W (out, c*k*k) times the input's im2col matrix
      (c*k*k, oh*ow);
    * ``'output'``, for stride 1 and no dilation when the layer narrows
      (out < c, as the 9x9 output layer's 32 -> 3): the products of every weight tap with the
      padded input, W' (out*k*k, c) times (c, hp*wp), then each output pixel
      sums its k*k shifted taps. Its matrix has out*k*k rows, not c*k*k
      (243 instead of 2592 for that layer).
    """

    def _output(self, x, W):
        n_out, c = W.shape[:2]
        self.order = ('output' if self.stride == self.dilate == (1, 1) and n_out < c
                      else 'input')
        if self.order == 'input':
            return _convolve(x, W, self.stride, self.pad, self.dilate)
        return self._forward_output_order(x, W)

    def _forward_output_order(self, x, W):
        n_out, c, kh, kw = W.shape
        padded = self._padded(x)
        n, _, hp, wp = padded.shape
        out_h, out_w = hp - kh + 1, wp - kw + 1
        taps = numpy.matmul(_tap_rows(W), padded.reshape(n, c, hp * wp))
        taps = taps.reshape(n, n_out, kh, kw, hp, wp)
        y = numpy.zeros((n, n_out, out_h, out_w), dtype=x.dtype)
        for j in range(kh):
            for i in range(kw):
                y += taps[:, :, j, i, j:j + out_h, i:i + out_w]
        return y

    def _padded(self, x):
        ph, pw = self.pad
        return numpy.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))

    def _gradients(self, indexes, x, W, gy):
        if self.order == 'input':
            return self._backward_input_order(indexes, x, W, gy)
        return self._backward_output_order(indexes, x, W, gy)

    def _backward_input_order(self, indexes, x, W, gy):
        grads = []
        if 0 in indexes:
            grads.append(_spread_back(gy, W, self.stride, self.pad, x.shape[2:], self.dilate))
        if 1 in indexes:
            grads.append(_weight_gradient(x, gy, W.shape, self.stride, self.pad, self.dilate))
        return grads

    def _backward_output_order(self, indexes, x, W, gy):
        n, n_out, out_h, out_w = gy.shape
        _, c, kh, kw = W.shape
        ph, pw = self.pad
        hp, wp = out_h + kh - 1, out_w + kw - 1
        # Each output gradient spread back over the k*k taps that made it.
        spread = numpy.zeros((n, n_out, kh, kw, hp, wp), dtype=gy.dtype)
        for j in range(kh):
            for i in range(kw):
                spread[:, :, j, i, j:j + out_h, i:i + out_w] = gy
        spread = spread.reshape(n, n_out * kh * kw, hp * wp)
        grads = []
        if 0 in indexes:
            gx = numpy.matmul(_tap_rows(W).T, spread).reshape(n, c, hp, wp)
            grads.append(gx[:, :, ph:hp - ph, pw:wp - pw])
        if 1 in indexes:
            padded = self._padded(x).reshape(n, c, hp * wp)
            g_taps = _sum_of_products(spread, padded)
            grads.append(g_taps.reshape(n_out, kh, kw, c).transpose(0, 3, 1, 2).copy())
        return grads


class CpuDeconvolution2D(_CpuProducts):
    """Transposed convolution of NCHW numpy arrays (W: in, out, kh, kw):
    the output is what :func:`_spread_back` makes of the input, the input
    gradient the convolution of the output gradient, and the weight gradient
    :func:`_weight_gradient` with image and gradient swapped."""

    def _output(self, x, W):
        _, _, kh, kw = W.shape
        (sy, sx), (ph, pw) = self.stride, self.pad
        size = (conv_utils.get_deconv_outsize(x.shape[2], kh, sy, ph),
                conv_utils.get_deconv_outsize(x.shape[3], kw, sx, pw))
        return _spread_back(x, W, self.stride, self.pad, size)

    def _gradients(self, indexes, x, W, gy):
        grads = []
        if 0 in indexes:
            grads.append(_convolve(gy, W, self.stride, self.pad))
        if 1 in indexes:
            grads.append(_weight_gradient(gy, x, W.shape, self.stride, self.pad))
        return grads


def _convolve(x, W, stride, pad, dilate=(1, 1)):
    """The convolution of x (n, c, h, w) with W (out, c, kh, kw): W times each
    image's im2col matrix."""
    n_out, c, kh, kw = W.shape
    col = conv_utils.im2col_cpu(x, kh, kw, *stride, *pad, dy=dilate[0], dx=dilate[1])
    n, _, _, _, out_h, out_w = col.shape
    y = numpy.matmul(W.reshape(n_out, c * kh * kw),
                     col.reshape(n, c * kh * kw, out_h * out_w))
    return y.reshape(n, n_out, out_h, out_w)


def _spread_back(gy, W, stride, pad, size, dilate=(1, 1)):
    """The input gradient of :func:`_convolve` for output gradient gy
    (n, out, oh, ow) and an input of spatial ``size``: W transposed times
    each image's gradient, summed back onto the pixels (col2im)."""
    n, n_out, out_h, out_w = gy.shape
    _, c, kh, kw = W.shape
    gcol = numpy.matmul(W.reshape(n_out, c * kh * kw).T,
                        gy.reshape(n, n_out, out_h * out_w))
    return conv_utils.col2im_cpu(gcol.reshape(n, c, kh, kw, out_h, out_w),
                                 *stride, *pad, *size, dy=dilate[0], dx=dilate[1])


def _weight_gradient(x, gy, shape, stride, pad, dilate=(1, 1)):
    """The weight gradient (``shape``: out, c, kh, kw) of :func:`_convolve`:
    each image's output gradient times its im2col matrix, summed over images."""
    n, n_out, out_h, out_w = gy.shape
    _, c, kh, kw = shape
    # Made here, in the backward pass, rather than kept from the forward one:
    # kept, the matrices of every layer (9x its input for 3x3) would be alive
    # at once.
    col = conv_utils.im2col_cpu(x, kh, kw, *stride, *pad, dy=dilate[0], dx=dilate[1])
    rows = col.reshape(n, c * kh * kw, out_h * out_w)
    gy_rows = gy.reshape(n, n_out, out_h * out_w)
    return _sum_of_products(gy_rows, rows).reshape(shape)


def _sum_of_products(a, b):
    """The sum over images i of a[i] times b[i] transposed."""
    total = numpy.matmul(a[0], b[0].T)
    for i in range(1, len(a)):
        total += numpy.matmul(a[i], b[i].T)
    return total


def _tap_rows(W):
    """W (out, c, kh, kw) as rows (out*kh*kw, c): one row per output channel and tap."""
    n_out, c, kh, kw = W.shape
    return W.transpose(0, 2, 3, 1).reshape(n_out * kh * kw, c)

