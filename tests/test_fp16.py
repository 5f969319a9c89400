"""float16 inference: generate.py --fp16 (GPU only) and net.to_float16."""
import chainer
import chainer.links as L
import numpy
import pytest
from PIL import Image

import generate
import net
from faststyle import stylize
from faststyle.errors import InputError
from helpers_generate import make_model


@pytest.fixture(scope='module')
def model_path(tmp_path_factory):
    return make_model(tmp_path_factory.mktemp('fp16') / 'deconv.model', 'deconv')


def test_generate_refuses_fp16_on_the_cpu(model_path, tmp_path, capsys):
    image = tmp_path / 'in.png'
    Image.fromarray(numpy.zeros((16, 20, 3), numpy.uint8)).save(str(image))
    status = generate.main([str(image), '-m', model_path, '-o', str(tmp_path / 'o.png'),
                            '--fp16'])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert status == 2 and len(lines) == 1, err
    assert lines[0].startswith('error: ') and '--fp16' in lines[0]
    assert not (tmp_path / 'o.png').exists()


def test_stylizer_refuses_fp16_with_an_onnx_backend(model_path):
    with pytest.raises(InputError, match='fp16'):
        stylize.Stylizer(model_path, backend='opencv', fp16=True)


def test_to_float16_keeps_batchnorm_in_float32():
    model = net.to_float16(net.FastStyleNet('resize'))
    checked = 0
    for name, link in model.namedlinks(skipself=True):
        batchnorm = isinstance(link, L.BatchNormalization)
        if not (batchnorm or isinstance(link, (L.Convolution2D, L.Deconvolution2D))):
            continue
        expected = numpy.float32 if batchnorm else numpy.float16
        for param in link.params():
            assert param.dtype == expected, name
            checked += 1
        if batchnorm:
            assert link.avg_mean.dtype == link.avg_var.dtype == numpy.float32
    assert checked == len(list(model.params()))


@pytest.mark.parametrize('arch', net.ARCHS)
@pytest.mark.parametrize('stats', net.STATS)
def test_float16_forward_on_the_cpu_is_close_to_float32(arch, stats, tmp_path):
    # Per-image statistics square activations of several hundred: in float16
    # they would overflow (to inf, then a 0..255 garbage picture); net.py
    # normalizes float16 inputs in float32, and this would fail without it.
    model = net.load_model(make_model(tmp_path / 'm.model', arch, seed=3), stats=stats)
    x = numpy.random.RandomState(0).uniform(0, 255, (2, 3, 36, 28)).astype(numpy.float32)
    if stats == 'running':
        # Running averages of this input's own statistics (one training-mode
        # pass with decay 0): the random ones would scale activations up a
        # hundredfold and make tanh's input ill-conditioned in any precision.
        for link in model.links():
            if isinstance(link, L.BatchNormalization):
                link.decay = 0.0
        with chainer.using_config('train', True), chainer.no_backprop_mode():
            model(x)
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        expected = model(x).array
        got = net.to_float16(model)(x.astype(numpy.float16)).array
    assert got.dtype == numpy.float16
    diff = numpy.abs(got.astype(numpy.float32) - expected)
    assert expected.std() > 10  # not a saturated, constant picture
    assert diff.max() <= 4 and diff.mean() <= 0.5, (diff.max(), diff.mean())
