"""The ONNX graph of a fast-style net, written from net.py's own layers.

The graph is written node by node by net.py's description of the layers
(FastStyleNet.layers), so it is exactly the net of net.py: input ``input``
is RGB float32 in [0, 255] of shape (N, 3, H, W), H and W multiples of 4,
any size (dynamic axes); output ``output`` has the same shape and range.

Why not Chainer's own tracing exporter, onnx_chainer (benchmarks/onnx_export.py
shows it): it cannot export the resize layout (CFNS's unpooling with an
output size), it fixes the frame size it traced, and it writes each
per-image normalization as about 20 primitive nodes instead of one
InstanceNormalization. Padding, cropping and the median
filter are not part of the graph (stylize.py does them).

BatchNorm with per-image statistics (``stats='instance'``, CFNS's generate.py)
is InstanceNormalization with BatchNorm's gamma, beta and eps; the running
averages (``'running'``) are a BatchNormalization node.

The graph loads in onnxruntime, OpenVINO and OpenCV's DNN module
(``cv2.dnn.readNetFromONNX``); stylize.py runs it in them as fast CPU
backends, and export_onnx.py writes it to a file for other runtimes.
"""
import chainer.links as L
import numpy

from faststyle import tempfiles
from faststyle.errors import InputError
import net

# Opset 13: Resize with optional roi, recent enough for OpenCV 4.5+ and
# onnxruntime, old enough for most deployment runtimes.
OPSET = 13


def _import_onnx():
    try:
        import onnx
        from onnx import helper, numpy_helper
    except ImportError:
        raise InputError('the onnx package is needed to export ONNX: '
                         'pip install "onnx<1.18"')
    return onnx, helper, numpy_helper


class GraphBuilder:
    """The operations of net.FastStyleNet.layers, written as ONNX nodes.

    Collects nodes and initializers (named after the Chainer parameters) with
    unique names. ``stats`` picks the normalization node; ``space_to_depth``
    rewrites the last convolution (see conv_space_to_depth).
    """

    def __init__(self, helper, numpy_helper, model, stats, space_to_depth=False):
        self.helper = helper
        self.numpy_helper = numpy_helper
        self.stats = stats
        self.space_to_depth = space_to_depth
        self.link_names = {id(link): name.lstrip('/') for name, link in model.namedlinks()}
        self.nodes = []
        self.initializers = []
        self.initializer_names = set()
        self.count = 0

    def constant(self, name, array):
        """A float32 initializer; a name already added is reused as is."""
        if name not in self.initializer_names:
            array = numpy.asarray(array, dtype=numpy.float32)
            self.initializers.append(self.numpy_helper.from_array(array, name))
            self.initializer_names.add(name)
        return name

    def node(self, op, inputs, output=None, **attributes):
        self.count += 1
        output = output or '{}_{}'.format(op.lower(), self.count)
        self.nodes.append(self.helper.make_node(
            op, inputs, [output], name='{}_{}'.format(op, self.count), **attributes))
        return output

    def conv(self, link, x):
        prefix = self.link_names[id(link)]
        transposed = isinstance(link, L.Deconvolution2D)
        if self.space_to_depth and prefix == 'd3':
            return self.conv_space_to_depth(link, prefix, x, transposed)
        weight = link.W.array
        kh, kw = weight.shape[2:]
        stride, pad = tuple(link.stride), tuple(link.pad)
        if transposed and stride == (1, 1):
            # A stride-1 transposed convolution is a convolution with the kernel
            # flipped, in/out channels swapped and padding k - 1 - p: the same
            # numbers, and runtimes do it faster (OpenCV's col2im buffer for
            # CFNS's 9x9 d3 even overflows at 1920x1080).
            weight = weight[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)
            pad = (kh - 1 - pad[0], kw - 1 - pad[1])
            transposed = False
        inputs = [x, self.constant(prefix + '/W', numpy.ascontiguousarray(weight))]
        if link.b is not None:
            inputs.append(self.constant(prefix + '/b', link.b.array))
        # Only the residual blocks are ever dilated (--res_dilation), and
        # only there is the attribute written: CFNS's net exports as before.
        dilation = {} if tuple(link.dilate) == (1, 1) else {'dilations': list(link.dilate)}
        return self.node('ConvTranspose' if transposed else 'Conv', inputs,
                         kernel_shape=[kh, kw], strides=list(stride),
                         pads=[pad[0], pad[1], pad[0], pad[1]], **dilation)

    def conv_space_to_depth(self, link, prefix, x, transposed=False, block=4):
        """The stride-1 (transposed) convolution ``link`` on an input whose
        height and width are multiples of ``block``, as SpaceToDepth(block) ->
        convolution -> DepthToSpace(block): the same products summed in
        another order, laid out so the few output channels become block^2
        times as many. For CFNS's last layer (32 -> 3 channels, 9x9) that is
        a 3x3 convolution 512 -> 48 with 1.8x the multiply-adds, which
        OpenVINO runs about 3x faster (measured): 3 output channels leave
        its vector units mostly idle."""
        weight = link.W.array
        if tuple(link.stride) != (1, 1) or tuple(link.dilate) != (1, 1):
            raise ValueError('only stride-1, undilated convolutions can be rewritten')
        pad = tuple(link.pad)
        kh, kw = weight.shape[2:]
        if transposed:  # the flip of conv() above
            weight = weight[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)
            pad = (kh - 1 - pad[0], kw - 1 - pad[1])
        out_c, in_c = weight.shape[:2]
        # Output pixel block*I + a reads input pixel block*(I + q) + r with
        # kernel row u = block*q + r - a + pad; likewise columns.
        q_lo = [-((p + block - 1) // block) for p in pad]
        q_hi = [(block + k - 2 - p) // block for k, p in zip((kh, kw), pad)]
        n = [hi - lo + 1 for lo, hi in zip(q_lo, q_hi)]
        blocked = numpy.zeros((out_c, block, block, block, block, in_c, n[0], n[1]),
                              numpy.float32)
        for a in range(block):
            for r in range(block):
                for q in range(q_lo[0], q_hi[0] + 1):
                    u = block * q + r - a + pad[0]
                    if not 0 <= u < kh:
                        continue
                    for b in range(block):
                        for s in range(block):
                            for t in range(q_lo[1], q_hi[1] + 1):
                                v = block * t + s - b + pad[1]
                                if 0 <= v < kw:
                                    blocked[:, a, b, r, s, :, q - q_lo[0], t - q_lo[1]] = \
                                        weight[:, :, u, v]
        # ONNX layouts: SpaceToDepth's channel is (r * block + s) * C + c,
        # DepthToSpace CRD's is o * block^2 + a * block + b.
        blocked = blocked.reshape(out_c * block * block, block * block * in_c, n[0], n[1])
        inputs = [self.node('SpaceToDepth', [x], blocksize=block),
                  self.constant(prefix + '/W_blocked', blocked)]
        if link.b is not None:
            inputs.append(self.constant(prefix + '/b_blocked',
                                        numpy.repeat(link.b.array, block * block)))
        h = self.node('Conv', inputs, kernel_shape=n, strides=[1, 1],
                      pads=[-q_lo[0], -q_lo[1], q_hi[0], q_hi[1]])
        return self.node('DepthToSpace', [h], blocksize=block, mode='CRD')

    def normalize(self, bn, x):
        prefix = self.link_names[id(bn)]
        gamma = self.constant(prefix + '/gamma', bn.gamma.array)
        beta = self.constant(prefix + '/beta', bn.beta.array)
        if self.stats == 'instance':
            return self.node('InstanceNormalization', [x, gamma, beta],
                             epsilon=float(bn.eps))
        mean = self.constant(prefix + '/avg_mean', bn.avg_mean)
        var = self.constant(prefix + '/avg_var', bn.avg_var)
        return self.node('BatchNormalization', [x, gamma, beta, mean, var],
                         epsilon=float(bn.eps))

    def upsample(self, x):
        scales = self.constant('upsample_scales', [1, 1, 2, 2])
        # Nearest with 'asymmetric' + 'floor' maps output pixel i to input i // 2,
        # which is exactly unpooling_2d(2, 2).
        return self.node('Resize', [x, '', scales], mode='nearest',
                         coordinate_transformation_mode='asymmetric',
                         nearest_mode='floor')

    def elu(self, x):
        return self.node('Elu', [x], alpha=1.0)

    def relu(self, x):
        return self.node('Relu', [x])

    def add(self, x, y):
        return self.node('Add', [x, y])

    def to_pixels(self, x):
        h = self.node('Add', [self.node('Tanh', [x]),
                              self.constant('one', numpy.ones((), numpy.float32))])
        return self.node('Mul', [h, self.constant('half_range',
                                                  numpy.full((), 127.5, numpy.float32))],
                         output='output')


def to_onnx(model, stats='instance', space_to_depth=False):
    """A checked ``onnx.ModelProto`` computing ``model`` (a net.FastStyleNet).

    ``space_to_depth``: the last 9x9 convolution (3 output channels) as
    SpaceToDepth -> Conv -> DepthToSpace (see conv_space_to_depth): faster in
    OpenVINO, not in OpenCV (measured), same numbers up to float rounding.
    """
    onnx, helper, numpy_helper = _import_onnx()
    stats = net.check_stats(stats)
    model.to_device('@numpy')
    g = GraphBuilder(helper, numpy_helper, model, stats, space_to_depth)
    model.layers(g, 'input')  # names its last node 'output'

    dims = ['batch', 3, 'height', 'width']
    graph = helper.make_graph(
        g.nodes, 'fast_style_{}_{}'.format(model.arch, stats),
        [helper.make_tensor_value_info('input', onnx.TensorProto.FLOAT, dims)],
        [helper.make_tensor_value_info('output', onnx.TensorProto.FLOAT, dims)],
        initializer=g.initializers)
    proto = helper.make_model(graph, producer_name='fast-style export_onnx.py',
                              opset_imports=[helper.make_opsetid('', OPSET)])
    # Runtimes of the ONNX 1.14-era (OpenCV, older onnxruntime) read IR 8.
    proto.ir_version = min(proto.ir_version, 8)
    proto.doc_string = ('Fast style transfer net ({} layout, {} BatchNorm statistics). '
                        'RGB float32 in [0, 255], (N, 3, H, W), H and W multiples of 4.'
                        .format(model.arch, stats))
    onnx.checker.check_model(proto)
    return proto


def export(model_path, out_path, stats='instance'):
    """Load ``model_path`` safely and write its ONNX graph to ``out_path`` atomically."""
    model = net.load_model(model_path, stats=stats)
    proto = to_onnx(model, stats)
    tempfiles.atomic_write(out_path, lambda f: f.write(proto.SerializeToString()))
    return model.arch
