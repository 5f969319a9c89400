"""CFNS's transform net written out in numpy, for checking net.py against it.

Written from chainer-fast-neuralstyle's net.py (master: ``deconv``; branch
``resize-conv``: ``resize``), NOT from this project's net.py: it imports no
project module and takes the arrays of a saved ``.model`` by CFNS's key names
('c1/W', 'r1/c1/W', 'b1/gamma', ...). Everything is float64.

CFNS master::

    h = b1(elu(c1(x))); h = b2(elu(c2(h))); h = b3(elu(c3(h)))
    h = r1(h) ... r5(h)           # r(x) = b2(c2(relu(b1(c1(x))))) + x
    h = b4(elu(d1(h))); h = b5(elu(d2(h)))        # d1, d2, d3 Deconvolution2D
    y = (tanh(d3(h)) + 1) * 127.5

CFNS resize-conv::

    h = relu(b1(c1(x))); h = relu(b2(c2(h))); h = relu(b3(c3(h)))
    h = r1(h) ... r5(h)
    h = unpooling_2d(h, 2, 2, cover_all=test)   # test=False: 2x nearest
    h = relu(b4(d1(h)))                         # d1, d2, d3 Convolution2D
    h = unpooling_2d(h, 2, 2, cover_all=test)
    h = relu(b5(d2(h)))
    y = (tanh(d3(h)) + 1) * 127.5

c1 k9 s1 p4, c2 and c3 k4 s2 p1; residual convolutions k3 s1 p1; deconv
decoder k4 s2 p1, k4 s2 p1, k9 s1 p4; resize decoder k3 p1, k3 p1, k9 p4.
Not CFNS's: ``dilation`` (this project's train.py --res_dilation) gives
each residual block's convolutions a rate; a 3x3 kernel at rate d is the
(2d+1)x(2d+1) kernel with its taps d apart and zeros between, padded by d.
BatchNormalization in training mode (CFNS's generate.py called the net with
its default test=False): the batch's mean and biased variance over N, H, W,
eps 2e-5 (Chainer's default, which CFNS did not change).
"""
import numpy

BN_EPS = 2e-5


def conv2d(x, W, b, stride, pad):
    """Chainer's convolution_2d (a correlation), W (out, in, kh, kw)."""
    x = numpy.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    n, c, h, w = x.shape
    out_c, in_c, kh, kw = W.shape
    assert in_c == c
    oh = (h - kh) // stride + 1
    ow = (w - kw) // stride + 1
    out = numpy.zeros((n, out_c, oh, ow))
    for dy in range(kh):
        for dx in range(kw):
            patch = x[:, :, dy:dy + stride * (oh - 1) + 1:stride,
                      dx:dx + stride * (ow - 1) + 1:stride]
            out += numpy.einsum('nchw,oc->nohw', patch, W[:, :, dy, dx])
    return out + b.reshape(1, -1, 1, 1)


def deconv2d(x, W, b, stride, pad):
    """Chainer's deconvolution_2d (transposed convolution), W (in, out, kh, kw).

    Input pixel (i, j) adds ``x[c, i, j] * W[c, o]`` to the output window at
    (i * stride - pad, j * stride - pad); output size stride * (h - 1) + k - 2 pad.
    """
    n, c, h, w = x.shape
    in_c, out_c, kh, kw = W.shape
    assert in_c == c
    full = numpy.zeros((n, out_c, stride * (h - 1) + kh, stride * (w - 1) + kw))
    for dy in range(kh):
        for dx in range(kw):
            full[:, :, dy:dy + stride * (h - 1) + 1:stride,
                 dx:dx + stride * (w - 1) + 1:stride] += numpy.einsum(
                     'nchw,co->nohw', x, W[:, :, dy, dx])
    oh, ow = full.shape[2] - 2 * pad, full.shape[3] - 2 * pad
    return full[:, :, pad:pad + oh, pad:pad + ow] + b.reshape(1, -1, 1, 1)


def spread_taps(W, rate):
    """The kernel W (out, in, k, k) with its taps ``rate`` apart, zeros between."""
    out_c, in_c, kh, kw = W.shape
    spread = numpy.zeros((out_c, in_c, rate * (kh - 1) + 1, rate * (kw - 1) + 1))
    spread[:, :, ::rate, ::rate] = W
    return spread


def batch_norm(x, gamma, beta):
    mean = x.mean(axis=(0, 2, 3), keepdims=True)
    var = ((x - mean) ** 2).mean(axis=(0, 2, 3), keepdims=True)
    return ((x - mean) / numpy.sqrt(var + BN_EPS) * gamma.reshape(1, -1, 1, 1)
            + beta.reshape(1, -1, 1, 1))


def elu(x):
    return numpy.where(x > 0, x, numpy.expm1(numpy.minimum(x, 0)))


def relu(x):
    return numpy.maximum(x, 0)


def unpool2x(x):
    """unpooling_2d(x, 2, 2, cover_all=False): every pixel becomes a 2x2 block."""
    return x.repeat(2, axis=2).repeat(2, axis=3)


def forward(arrays, x, arch, dilation=(1, 1, 1, 1, 1)):
    """CFNS's FastStyleNet on ``x`` (N, 3, H, W) in [0, 255], training-mode BN;
    ``dilation``: the residual blocks' rates (module docstring)."""
    a = {k: numpy.asarray(v, numpy.float64) for k, v in arrays.items()}

    def conv(name, h, stride, pad):
        return conv2d(h, a[name + '/W'], a[name + '/b'], stride, pad)

    def deconv(name, h, stride, pad):
        return deconv2d(h, a[name + '/W'], a[name + '/b'], stride, pad)

    def bn(name, h):
        return batch_norm(h, a[name + '/gamma'], a[name + '/beta'])

    h = numpy.asarray(x, numpy.float64)
    if arch == 'deconv':
        h = bn('b1', elu(conv('c1', h, 1, 4)))
        h = bn('b2', elu(conv('c2', h, 2, 1)))
        h = bn('b3', elu(conv('c3', h, 2, 1)))
    elif arch == 'resize':
        h = relu(bn('b1', conv('c1', h, 1, 4)))
        h = relu(bn('b2', conv('c2', h, 2, 1)))
        h = relu(bn('b3', conv('c3', h, 2, 1)))
    else:
        raise ValueError(arch)
    for r, rate in zip(('r1', 'r2', 'r3', 'r4', 'r5'), dilation):
        def residual_conv(name, h):
            return conv2d(h, spread_taps(a[name + '/W'], rate), a[name + '/b'], 1, rate)
        t = relu(bn(r + '/b1', residual_conv(r + '/c1', h)))
        t = bn(r + '/b2', residual_conv(r + '/c2', t))
        h = t + h
    if arch == 'deconv':
        h = bn('b4', elu(deconv('d1', h, 2, 1)))
        h = bn('b5', elu(deconv('d2', h, 2, 1)))
        y = deconv('d3', h, 1, 4)
    else:
        h = relu(bn('b4', conv('d1', unpool2x(h), 1, 1)))
        h = relu(bn('b5', conv('d2', unpool2x(h), 1, 1)))
        y = conv('d3', h, 1, 4)
    return (numpy.tanh(y) + 1) * 127.5


# name -> shape of every parameter of the CFNS net (BN averages excluded).
def parameter_shapes(arch):
    shapes = {'c1/W': (32, 3, 9, 9), 'c1/b': (32,), 'c2/W': (64, 32, 4, 4),
              'c2/b': (64,), 'c3/W': (128, 64, 4, 4), 'c3/b': (128,)}
    if arch == 'deconv':
        shapes.update({'d1/W': (128, 64, 4, 4), 'd2/W': (64, 32, 4, 4),
                       'd3/W': (32, 3, 9, 9)})
    else:
        shapes.update({'d1/W': (64, 128, 3, 3), 'd2/W': (32, 64, 3, 3),
                       'd3/W': (3, 32, 9, 9)})
    shapes.update({'d1/b': (64,), 'd2/b': (32,), 'd3/b': (3,)})
    for r in ('r1', 'r2', 'r3', 'r4', 'r5'):
        for c in ('c1', 'c2'):
            shapes['{}/{}/W'.format(r, c)] = (128, 128, 3, 3)
            shapes['{}/{}/b'.format(r, c)] = (128,)
        for b in ('b1', 'b2'):
            for k in ('gamma', 'beta'):
                shapes['{}/{}/{}'.format(r, b, k)] = (128,)
    for b, size in zip(('b1', 'b2', 'b3', 'b4', 'b5'), (32, 64, 128, 64, 32)):
        for k in ('gamma', 'beta'):
            shapes['{}/{}'.format(b, k)] = (size,)
    return shapes


def random_arrays(arch, seed=0):
    """Random parameters in CFNS's layout, every one of them non-trivial:
    biases, gammas and betas too (so a dropped or swapped one shows), and
    d3 scaled so that tanh is not saturated."""
    rng = numpy.random.RandomState(seed)
    arrays = {}
    for name, shape in sorted(parameter_shapes(arch).items()):
        if name.endswith('/gamma'):
            value = rng.uniform(0.5, 1.5, shape)
        elif name.endswith('/beta') or name.endswith('/b'):
            value = rng.uniform(-0.5, 0.5, shape)
        else:
            # fan-in of a convolution (out, in, k, k) or a deconvolution (in, out, k, k)
            deconv = name[0] == 'd' and arch == 'deconv'
            fan_in = shape[0 if deconv else 1] * shape[2] * shape[3]
            value = rng.standard_normal(shape) * numpy.sqrt(2.0 / fan_in)
            if name == 'd3/W':
                value *= 0.5
        arrays[name] = value.astype(numpy.float32)
    # BatchNormalization's running averages and count, as CFNS's files hold them.
    for b, size in zip(('b1', 'b2', 'b3', 'b4', 'b5'), (32, 64, 128, 64, 32)):
        arrays[b + '/N'] = numpy.array(10)
        arrays[b + '/avg_mean'] = rng.uniform(-0.5, 0.5, size).astype(numpy.float32)
        arrays[b + '/avg_var'] = rng.uniform(0.5, 2.0, size).astype(numpy.float32)
    for r in ('r1', 'r2', 'r3', 'r4', 'r5'):
        for b in ('b1', 'b2'):
            arrays['{}/{}/N'.format(r, b)] = numpy.array(10)
            arrays['{}/{}/avg_mean'.format(r, b)] = rng.uniform(-0.5, 0.5, 128).astype(numpy.float32)
            arrays['{}/{}/avg_var'.format(r, b)] = rng.uniform(0.5, 2.0, 128).astype(numpy.float32)
    return arrays
