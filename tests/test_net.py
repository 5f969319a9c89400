"""net.FastStyleNet's forward against CFNS's net written out in numpy
(tests/cfns_reference.py, which imports no project module)."""
import chainer
import numpy
import pytest

import cfns_reference
import net
import vgg16
from faststyle import npz
from faststyle.errors import InputError


def save_cfns_model(path, arrays):
    with open(str(path), 'wb') as f:
        numpy.savez(f, **arrays)
    return str(path)


@pytest.mark.parametrize('arch', net.ARCHS)
@pytest.mark.parametrize('shape', [(1, 3, 16, 12),
                                   # not multiples of 4: the strided layers
                                   # floor, the decoder gives 16x12 back
                                   (2, 3, 18, 14)])
def test_forward_matches_cfns_in_training_mode(tmp_path, arch, shape):
    arrays = cfns_reference.random_arrays(arch, seed=1)
    path = save_cfns_model(tmp_path / 'cfns.model', arrays)
    model = net.load_model(path)
    assert model.arch == arch
    x = numpy.random.RandomState(0).uniform(0, 255, shape).astype(numpy.float32)
    with chainer.using_config('train', True):
        ours = model(x).array
    with numpy.load(path) as saved:
        expected = cfns_reference.forward(dict(saved), x, arch)
    assert ours.shape == expected.shape == (shape[0], 3, 16, 12)
    # The output uses the range: a comparison of two saturated tanh would
    # say little.
    assert expected.std() > 30 and numpy.mean(numpy.abs(expected - 127.5) > 125) < 0.05
    numpy.testing.assert_allclose(ours, expected, rtol=0, atol=1e-3)


@pytest.mark.parametrize('arch', net.ARCHS)
def test_dilated_residual_blocks_match_the_reference_and_are_recorded(tmp_path, arch):
    """A net with --res_dilation's rates: recorded in its file, read back
    from it, and computing what the reference computes with each residual
    kernel's taps spread apart; rate 4 on a 8x7 map reaches past its edges."""
    rates = (1, 2, 4, 2, 3)
    arrays = dict(cfns_reference.random_arrays(arch, seed=6),
                  res_dilation=numpy.array(rates, numpy.int32))
    path = save_cfns_model(tmp_path / 'dilated.model', arrays)
    model = net.load_model(path)
    assert model.dilation == rates and model.arch == arch
    x = numpy.random.RandomState(7).uniform(0, 255, (2, 3, 32, 28)).astype(numpy.float32)
    with chainer.using_config('train', True):
        ours = model(x).array
    expected = cfns_reference.forward(arrays, x, arch, dilation=rates)
    assert numpy.abs(expected - cfns_reference.forward(arrays, x, arch)).max() > 1
    numpy.testing.assert_allclose(ours, expected, rtol=0, atol=1e-3)

    # Saved again: the rates go with it; at CFNS's rates no entry is added,
    # so the file is CFNS's key for key.
    npz.save_npz(str(tmp_path / 'again.model'), model)
    assert net.load_model(str(tmp_path / 'again.model')).dilation == rates
    model.set_dilation(net.CFNS_DILATION)
    npz.save_npz(str(tmp_path / 'cfns.model'), model)
    with numpy.load(str(tmp_path / 'cfns.model')) as saved:
        assert net.DILATION_KEY not in saved and 'r1/c1/W' in saved
    # A CFNS file run at other rates (a fine-tuning start, train.py -i).
    assert net.load_model(path, dilation=(2,) * 5).dilation == (2,) * 5


@pytest.mark.parametrize('rates', [[1, 2, 4], [1, 2, 0, 2, 1], [1, 2, 9, 2, 1],
                                   numpy.array([1., 2., 4., 2., 1.]),
                                   numpy.array([1, 2, 4, 2, 1], numpy.int64)])
def test_a_bad_recorded_dilation_is_refused(tmp_path, rates):
    rates = rates if isinstance(rates, numpy.ndarray) else numpy.array(rates, numpy.int32)
    arrays = dict(cfns_reference.random_arrays('resize', seed=8), res_dilation=rates)
    path = save_cfns_model(tmp_path / 'bad.model', arrays)
    with pytest.raises(InputError, match='res_dilation( must hold 5 int32 rates|: the '
                                         'residual dilation must be 5 rates in 1..8)'):
        net.load_model(path)


@pytest.mark.parametrize('arch', net.ARCHS)
def test_per_image_statistics_equal_cfns_batch_of_one(tmp_path, arch):
    """At generation ('instance' stats) each image is CFNS's batch of one."""
    arrays = cfns_reference.random_arrays(arch, seed=2)
    path = save_cfns_model(tmp_path / 'cfns.model', arrays)
    model = net.load_model(path, stats='instance')
    x = numpy.random.RandomState(3).uniform(0, 255, (2, 3, 12, 16)).astype(numpy.float32)
    with chainer.using_config('train', False):
        ours = model(x).array
    for i in range(2):
        expected = cfns_reference.forward(arrays, x[i:i + 1], arch)
        numpy.testing.assert_allclose(ours[i:i + 1], expected, rtol=0, atol=1e-3)


def test_old_stats_name_image_loads_as_instance(tmp_path):
    """net.load_model(stats='image'), the name of earlier builds, computes
    what stats='instance' does."""
    path = save_cfns_model(tmp_path / 'cfns.model', cfns_reference.random_arrays('resize', 4))
    x = numpy.random.RandomState(5).uniform(0, 255, (2, 3, 12, 16)).astype(numpy.float32)
    with chainer.using_config('train', False):
        old = net.load_model(path, stats='image')(x).array
        new = net.load_model(path, stats='instance')(x).array
    assert numpy.array_equal(old, new)


@pytest.mark.parametrize('stats', ['Instance', 'runing', None])
def test_unknown_stats_are_refused_not_taken_for_instance(stats):
    with pytest.raises(InputError, match='stats must be one of'):
        net.FastStyleNet('resize', stats=stats)
    model = net.FastStyleNet('resize', stats='running')
    with pytest.raises(InputError, match='stats must be one of'):
        model.stats = stats
    assert model.stats == 'running'


class Col2imBuffers(chainer.FunctionHook):
    """The size of each col2im buffer a pass fills, from the shapes the
    functions see: a deconvolution's columns are (N, out channels, kh, kw,
    in H, in W), 2x2 unpooling's (N, channels, 2, 2, in H, in W), and a
    convolution's input gradient (N, in channels, kh, kw, out H, out W)."""

    name = 'col2im_buffers'

    def __init__(self):
        self.sizes = []

    def forward_preprocess(self, function, in_data):
        if 'Deconvolution2D' in function.label:
            x, W = in_data[:2]
            self.sizes.append(x.shape[0] * numpy.prod(W.shape[1:]) * x.shape[2] * x.shape[3])
        elif function.label == 'Unpooling2D':
            self.sizes.append(numpy.prod(in_data[0].shape) * 2 * 2)

    def backward_preprocess(self, function, in_data, out_grad):
        if 'Convolution2D' in function.label and 'Deconv' not in function.label \
                and function.inputs[0].requires_grad:
            x, W = in_data[:2]
            self.sizes.append(x.shape[0] * numpy.prod(W.shape[1:]) * out_grad[0].shape[2]
                              * out_grad[0].shape[3])


@pytest.mark.parametrize('arch', net.ARCHS)
def test_col2im_elements_per_pixel_is_the_largest_buffer_of_a_pass(arch):
    model = net.FastStyleNet(arch)
    x = numpy.zeros((2, 3, 24, 36), numpy.float32)
    forward = Col2imBuffers()
    with chainer.using_config('train', False), chainer.no_backprop_mode(), forward:
        model(x)
    assert len(forward.sizes) == (3 if arch == 'deconv' else 2)
    assert model.col2im_elements_per_pixel() == max(forward.sizes) / (2 * 24 * 36)
    both = Col2imBuffers()
    with chainer.using_config('train', True), both:
        chainer.functions.sum(model(x)).backward()
    # c2, c3, ten in the residual blocks, and the resize decoder's three
    assert len(both.sizes) == len(forward.sizes) + (12 if arch == 'deconv' else 15)
    assert model.col2im_elements_per_pixel(backward=True) == max(both.sizes) / (2 * 24 * 36)
    # The resize net's last convolution (32 x 9 x 9 per pixel) rules its backward pass.
    assert (model.col2im_elements_per_pixel(backward=True) > model.col2im_elements_per_pixel()) \
        == (arch == 'resize')


def test_vgg_col2im_elements_per_pixel_is_the_largest_buffer_of_its_backward_pass():
    x = chainer.Variable(numpy.zeros((2, 3, 32, 40), numpy.float32))
    hook = Col2imBuffers()
    with hook:
        chainer.functions.sum(sum(chainer.functions.sum(f) for f in vgg16.VGG16()(x))).backward()
    assert len(hook.sizes) == 10  # conv1_1 .. conv4_3, the input's gradient included
    assert vgg16.COL2IM_ELEMENTS_PER_PIXEL == max(hook.sizes) / (2 * 32 * 40)


def window_of_output_pixel(p, layers):
    """The input pixels [first, last] that output pixel ``p`` of a stack of
    layers depends on, walked back layer by layer: ('conv', k, stride, pad)
    reads inputs stride * o - pad .. stride * o - pad + k - 1; ('deconv', k,
    stride, pad) writes input i to outputs stride * i - pad .. stride * i -
    pad + k - 1; ('up',) is nearest 2x upsampling, output o reading input
    o // 2."""
    first, last = p, p
    for layer in reversed(layers):
        if layer[0] == 'up':
            first, last = first // 2, last // 2
        elif layer[0] == 'conv':
            _, k, stride, pad = layer
            first, last = stride * first - pad, stride * last - pad + k - 1
        else:
            _, k, stride, pad = layer
            first, last = -(-(first + pad - k + 1) // stride), (last + pad) // stride
    return first, last


def test_receptive_field_is_the_window_the_layers_give():
    """Both layouts as net.py lists them: c1 9x9, c2 and c3 4x4 stride 2,
    ten 3x3 convolutions in the residual blocks; then the resize layout's
    upsample, d1 3x3, upsample, d2 3x3, d3 9x9, or the deconv layout's d1
    and d2 4x4 stride-2 and d3 9x9 transposed convolutions."""
    from benchmarks import receptive_field
    encoder = ([('conv', 9, 1, 4), ('conv', 4, 2, 1), ('conv', 4, 2, 1)]
               + [('conv', 3, 1, 1)] * 10)
    decoders = {
        'resize': [('up',), ('conv', 3, 1, 1), ('up',), ('conv', 3, 1, 1), ('conv', 9, 1, 4)],
        'deconv': [('deconv', 4, 2, 1), ('deconv', 4, 2, 1), ('deconv', 9, 1, 4)]}
    centre = receptive_field.SIDE // 2
    for arch, decoder in decoders.items():
        first, last = window_of_output_pixel(centre, encoder + decoder)
        assert receptive_field.receptive_field(arch) == last - first + 1, arch
    # --res_dilation: a 3x3 kernel at rate d spans 2d + 1 inputs, padded by d.
    for rates in [(1, 2, 4, 2, 1), (2, 4, 8, 4, 2), (net.MAX_DILATION,) * 5]:
        dilated = encoder[:3] + [('conv', 2 * d + 1, 1, d) for d in rates for _ in range(2)]
        side = receptive_field.input_side(rates)
        first, last = window_of_output_pixel(side // 2, dilated + decoders['resize'])
        assert receptive_field.receptive_field('resize', rates) == last - first + 1, rates
    gradient = numpy.zeros((9, 9))
    gradient[2:5, 3:8] = 1
    assert receptive_field.nonzero_extent(gradient) == (3, 5)
    # Half of a uniform 9x9 square lies within the centre 7x7 (49 of 81), not 5x5.
    assert receptive_field.mass_side(numpy.ones((9, 9)), 0.5) == 7


def test_receptive_field_bad_model_is_one_error_line(tmp_path, capsys):
    from benchmarks import receptive_field
    assert receptive_field.main(['-m', str(tmp_path / 'missing.model')]) == 2
    err = capsys.readouterr().err
    assert err.startswith('error: ') and err.count('\n') == 1
