"""export_onnx.py: the graph is valid, loads in OpenCV and onnxruntime, and
computes what the Chainer net computes."""
import os
import subprocess
import sys

import numpy
import pytest

from helpers_generate import DILATED, REPO, TEST_DILATION, make_frames, make_model
from conftest import one_error_line

import chainer  # NOQA: E402
import cv2  # NOQA: E402
import onnx  # NOQA: E402
import onnxruntime  # NOQA: E402

import export_onnx  # NOQA: E402
import net  # NOQA: E402
from faststyle import onnx_graph  # NOQA: E402
from faststyle import stylize  # NOQA: E402


# The CFNS layouts and the resize net with dilated residual blocks.
LAYOUTS = net.ARCHS + (DILATED,)


@pytest.fixture(scope='module')
def models(tmp_path_factory):
    directory = tmp_path_factory.mktemp('onnx_models')
    return {arch: make_model(directory / '{}.model'.format(seed), arch, seed + 10)
            for seed, arch in enumerate(LAYOUTS)}


def chainer_forward(model_path, stats, x):
    model = net.load_model(model_path, stats)
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        return model(x).array


@pytest.mark.parametrize('arch', LAYOUTS)
@pytest.mark.parametrize('stats', net.STATS)
def test_cli_export_loads_everywhere_and_matches(models, arch, stats, tmp_path, capsys):
    out = tmp_path / 'style.onnx'
    assert export_onnx.main([models[arch], '-o', str(out), '--stats', stats]) == 0
    assert 'wrote' in capsys.readouterr().out
    proto = onnx.load(str(out))
    onnx.checker.check_model(proto, full_check=True)
    ops = {node.op_type for node in proto.graph.node}
    assert ('InstanceNormalization' if stats == 'instance' else 'BatchNormalization') in ops
    assert ('ConvTranspose' if arch == 'deconv' else 'Resize') in ops
    # Both convolutions of each residual block at a rate above 1, and no other.
    rates = [next((list(a.ints) for a in node.attribute if a.name == 'dilations'), None)
             for node in proto.graph.node if node.op_type == 'Conv']
    assert [r for r in rates if r] == ([[rate, rate] for rate in TEST_DILATION if rate > 1
                                        for _ in range(2)] if arch == DILATED else [])

    # Dynamic batch and frame size: two different shapes through one session/net.
    rng = numpy.random.RandomState(0)
    session = onnxruntime.InferenceSession(str(out), providers=['CPUExecutionProvider'])
    opencv_net = cv2.dnn.readNetFromONNX(str(out))
    for shape in [(1, 3, 20, 28), (2, 3, 36, 12)]:
        x = rng.uniform(0, 255, shape).astype(numpy.float32)
        expected = chainer_forward(models[arch], stats, x)
        by_ort = session.run(None, {'input': x})[0]
        opencv_net.setInput(x)
        by_opencv = opencv_net.forward()
        assert by_ort.shape == by_opencv.shape == shape
        assert numpy.abs(by_ort - expected).max() <= 1
        assert numpy.abs(by_opencv - expected).max() <= 1


@pytest.mark.parametrize('arch', LAYOUTS)
@pytest.mark.parametrize('stats', net.STATS)
@pytest.mark.parametrize('backend', ['openvino', 'opencv', 'onnxruntime'])
def test_stylizer_backends_match_chainer_at_odd_sizes(models, arch, stats, backend):
    frames = make_frames(1, 21, 27) + make_frames(1, 13, 30, seed=1)
    kwargs = dict(stats=stats, padding=5, median_filter=0)
    expected = stylize.Stylizer(models[arch], backend='chainer', **kwargs).stylize(frames)
    ours = stylize.Stylizer(models[arch], backend=backend, **kwargs).stylize(frames)
    for a, b in zip(ours, expected):
        assert a.shape == b.shape
        assert numpy.abs(a.astype(numpy.int16) - b).max() <= 1


@pytest.mark.parametrize('arch', net.ARCHS)
@pytest.mark.parametrize('stats', net.STATS)
def test_space_to_depth_last_layer_is_the_same_net(models, arch, stats):
    """The graph the openvino backend runs: the last convolution rewritten as
    SpaceToDepth -> Conv -> DepthToSpace computes the same (onnxruntime)."""
    proto = onnx_graph.to_onnx(net.load_model(models[arch], stats), stats,
                                space_to_depth=True)
    onnx.checker.check_model(proto, full_check=True)
    ops = [node.op_type for node in proto.graph.node]
    assert ops[-6:-3] == ['SpaceToDepth', 'Conv', 'DepthToSpace']
    session = onnxruntime.InferenceSession(proto.SerializeToString(),
                                           providers=['CPUExecutionProvider'])
    x = numpy.random.RandomState(1).uniform(0, 255, (2, 3, 16, 24)).astype(numpy.float32)
    expected = chainer_forward(models[arch], stats, x)
    assert numpy.abs(session.run(None, {'input': x})[0] - expected).max() <= 1


def test_auto_backend_without_openvino_is_opencv(models, monkeypatch):
    monkeypatch.setitem(sys.modules, 'openvino', None)
    assert stylize.Stylizer(models['deconv']).backend_name == 'opencv'


def test_default_output_name_and_atomic(models, tmp_path):
    model = tmp_path / 'mine.model'
    model.write_bytes(open(models['resize'], 'rb').read())
    assert export_onnx.main([str(model)]) == 0
    assert sorted(os.listdir(tmp_path)) == ['mine.model', 'mine.onnx']


def test_old_stats_name_image_exports_instance_normalization(models, tmp_path):
    """--stats image, the name of earlier builds, writes the --stats instance graph."""
    paths = [tmp_path / '{}.onnx'.format(name) for name in ('image', 'instance')]
    for path, name in zip(paths, ('image', 'instance')):
        assert export_onnx.main([models['resize'], '-o', str(path), '--stats', name]) == 0
    assert paths[0].read_bytes() == paths[1].read_bytes()


def test_bad_model_one_line(tmp_path):
    bad = tmp_path / 'bad.model'
    bad.write_bytes(b'not a model')
    result = subprocess.run([sys.executable, os.path.join(REPO, 'export_onnx.py'),
                             str(bad), '-o', str(tmp_path / 'x.onnx')],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.startswith('error: ') and 'Traceback' not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / 'x.onnx').exists()


def test_output_must_be_onnx_and_an_onnx_given_as_the_model_is_named(models, tmp_path,
                                                                      capsys):
    assert export_onnx.main([models['resize'], '-o', str(tmp_path / 'x.txt')]) == 2
    err = capsys.readouterr().err
    assert one_error_line(err) and 'must be an .onnx file' in err
    assert not (tmp_path / 'x.txt').exists()
    exported = tmp_path / 'x.onnx'
    assert export_onnx.main([models['resize'], '-o', str(exported)]) == 0
    capsys.readouterr()
    assert export_onnx.main([str(exported)]) == 2
    err = capsys.readouterr().err
    assert one_error_line(err) and 'give the .model it came from' in err
