"""scripts/style_targets.py and train.py --targets: per-crop targets and the loss towards them."""
import os

import chainer
import numpy
import pytest
from PIL import Image

from faststyle import crops
from faststyle import dataset
from faststyle import losses
from scripts import style_targets
import vgg16
from faststyle import errors
from conftest import assert_one_line_error, one_error_line, write_image


def crop_of(path, size):
    return numpy.asarray(crops.crop_square(Image.open(path).convert('RGB'), size))


def target_of(targets, image_dir, path):
    return crops.target_paths(targets, image_dir, [path])[0]


def targets_args(image_dir, style_path, vgg_path, out, *extra):
    return ['-s', style_path, '-d', image_dir, '-o', out, '--vgg', vgg_path,
            '--image_size', '32', '--steps', '2', '--no_progress'] + list(extra)


def test_without_losses_each_target_is_its_crop(tmp_path, image_dir, style_path, vgg_path):
    """Every weight 0: Adam has no gradient, so each target is the crop it
    started from, cut as train.py cuts it, at the crop's path as .png; with a
    style weight the targets move away from the crops."""
    nested = os.path.join(image_dir, 'more')
    os.mkdir(nested)
    write_image(os.path.join(nested, 'deep.jpg'), (50, 40), seed=7)
    still = str(tmp_path / 'still')
    assert style_targets.main(targets_args(
        image_dir, style_path, vgg_path, still, '--lambda_feat', '0', '--lambda_style', '0',
        '--lambda_tv', '0')) == 0
    for path in crops.list_images(image_dir):
        target = target_of(still, image_dir, path)
        numpy.testing.assert_array_equal(numpy.asarray(Image.open(target)), crop_of(path, 32))
    assert os.path.isfile(os.path.join(still, 'more', 'deep.png'))
    moved = str(tmp_path / 'moved')
    assert style_targets.main(targets_args(image_dir, style_path, vgg_path, moved,
                                           '--lambda_style', '1e6')) == 0
    for path in crops.list_images(image_dir):
        target = numpy.asarray(Image.open(target_of(moved, image_dir, path)))
        assert numpy.abs(target.astype(float) - crop_of(path, 32)).mean() > 1


def test_shards_share_the_crops_and_a_rerun_skips_what_exists(tmp_path, image_dir,
                                                             style_path, vgg_path, capsys):
    out = str(tmp_path / 'targets')
    args = targets_args(image_dir, style_path, vgg_path, out)
    assert style_targets.main(args + ['--shard', '1/2']) == 0
    paths = crops.list_images(image_dir)
    written = sorted(set(os.listdir(out)) - {crops.TARGET_SETTINGS})
    assert written == sorted(os.path.basename(p) for p in paths[1::2])
    first = os.path.join(out, written[0])
    os.utime(first, (0, 0))
    capsys.readouterr()
    assert style_targets.main(args) == 0
    assert '2 of the 4 crops of this shard to paint, 2 done before' in capsys.readouterr().out
    assert sorted(os.listdir(out)) == sorted([crops.TARGET_SETTINGS]
                                             + [os.path.basename(p) for p in paths])
    assert os.path.getmtime(first) == 0  # not written again
    # Other settings into the same folder would mix two kinds of target.
    capsys.readouterr()
    assert style_targets.main(args + ['--lambda_style', '3']) == 2
    err = capsys.readouterr().err
    assert one_error_line(err) and 'other settings (lambda_style)' in err


def test_an_undecodable_image_is_skipped_and_the_rest_get_targets(tmp_path, image_dir,
                                                                   style_path, vgg_path,
                                                                   capsys):
    with open(os.path.join(image_dir, 'img0.png'), 'r+b') as f:
        f.seek(60)
        f.write(b'\0' * 200)  # the header stays readable, the pixels do not
    out = str(tmp_path / 'targets')
    assert style_targets.main(targets_args(image_dir, style_path, vgg_path, out)) == 0
    assert 'skipping unreadable image' in capsys.readouterr().out
    assert sorted(set(os.listdir(out)) - {crops.TARGET_SETTINGS}) == [
        'img1.png', 'img2.png', 'img3.png']


def test_images_that_would_share_a_target_are_refused(tmp_path, image_dir):
    write_image(os.path.join(image_dir, 'img1.jpg'), (40, 36), seed=5)
    with pytest.raises(errors.InputError, match='would share the target'):
        crops.target_paths(str(tmp_path / 't'), image_dir, crops.list_images(image_dir))


@pytest.mark.parametrize('flags, words', [(['--shard', '2/2'], '--shard'),
                                          (['-o', 'FILE'], 'not a directory'),
                                          (['--shard', 'x'], '--shard'),
                                          (['--image_size', '30'], '--image_size'),
                                          (['--steps', '0'], '--steps')])
def test_bad_flags_give_one_line(flags, words, tmp_path, image_dir, style_path, vgg_path,
                                 capsys):
    afile = str(tmp_path / 'afile')
    open(afile, 'w').close()
    flags = [afile if flag == 'FILE' else flag for flag in flags]
    try:
        status = style_targets.main(targets_args(image_dir, style_path, vgg_path,
                                                 str(tmp_path / 't'), *flags))
    except SystemExit as e:
        status = e.code
    assert status == 2
    err = capsys.readouterr().err
    assert one_error_line(err) and words in err


def test_a_missing_dataset_gives_one_line(tmp_path, style_path, vgg_path, capsys):
    assert style_targets.main(targets_args(str(tmp_path / 'none'), style_path, vgg_path,
                                           str(tmp_path / 't'))) == 2
    err = capsys.readouterr().err
    assert one_error_line(err) and 'does not exist' in err


def test_target_loss_is_the_content_loss_with_the_target_for_the_crop(vgg_path):
    vgg = vgg16.load_vgg(vgg_path)
    rng = numpy.random.RandomState(0)
    y, target = (rng.uniform(0, 255, (2, 3, 32, 32)).astype(numpy.float32) for _ in range(2))
    grams = losses.style_grams(vgg, y[:1])
    content_loss = losses.perceptual_losses(vgg, target, y, grams, 3.0, 0.0, 0.0)[0]
    loss = losses.target_loss(vgg(y), losses.target_features(vgg, target), 3.0)
    assert float(loss.array) > 0
    assert float(loss.array) == pytest.approx(float(content_loss.array), rel=1e-6)
    assert float(losses.target_loss(vgg(target), losses.target_features(vgg, target),
                                    3.0).array) == 0


def test_the_pixel_target_loss_is_the_weighted_mean_square_of_the_difference():
    rng = numpy.random.RandomState(2)
    y, target = (rng.uniform(0, 255, (2, 3, 8, 8)).astype(numpy.float32) for _ in range(2))
    expected = 3.0 * ((y.astype(numpy.float64) - target) ** 2).sum() / y.size
    assert float(losses.target_pixel_loss(y, target, 3.0).array) == pytest.approx(expected,
                                                                                  rel=1e-6)
    assert float(losses.target_pixel_loss(target, target, 3.0).array) == 0


def numpy_grams(features):
    batch, channels, height, width = features.shape
    flat = features.reshape(batch, channels, height * width).astype(numpy.float64)
    return flat @ flat.transpose(0, 2, 1) / (channels * height * width)


def test_the_target_style_loss_compares_each_output_with_its_own_targets_grams(vgg_path):
    vgg = vgg16.load_vgg(vgg_path)
    rng = numpy.random.RandomState(3)
    y, target = (rng.uniform(0, 255, (2, 3, 32, 32)).astype(numpy.float32) for _ in range(2))
    expected = sum(2.0 * ((numpy_grams(fy.array) - numpy_grams(ft.array)) ** 2).mean()
                   for fy, ft in zip(vgg(y), vgg(target)))
    loss = losses.target_style_loss(vgg(y), losses.target_features(vgg, target), 2.0)
    assert float(loss.array) == pytest.approx(expected, rel=1e-4)
    assert float(losses.target_style_loss(vgg(target), losses.target_features(vgg, target),
                                          2.0).array) == 0


def test_perceptual_losses_take_the_features_they_are_given(vgg_path):
    # The updater passes vgg(output) once, for these losses and the target's.
    vgg = vgg16.load_vgg(vgg_path)
    rng = numpy.random.RandomState(1)
    x, y, z = (rng.uniform(0, 255, (1, 3, 32, 32)).astype(numpy.float32) for _ in range(3))
    grams = losses.style_grams(vgg, x)
    given = losses.perceptual_losses(vgg, x, y, grams, 3.0, 5.0, 0.0, features_y=vgg(z))
    for term, expected in zip(given[:2], losses.perceptual_losses(vgg, x, z, grams, 3.0, 5.0, 0.0)):
        assert float(term.array) == pytest.approx(float(expected.array), rel=1e-6)
    assert float(given[0].array) != pytest.approx(
        float(losses.perceptual_losses(vgg, x, y, grams, 3.0, 5.0, 0.0)[0].array), rel=1e-3)


def test_the_dataset_pairs_each_crop_with_its_target(image_dir, targets_dir):
    data, _ = dataset.open_dataset(image_dir, 32, targets=targets_dir)
    for i, path in enumerate(data.paths):
        crop, target = data[i]
        numpy.testing.assert_array_equal(crop, crop_of(path, 32).transpose(2, 0, 1))
        wanted = numpy.asarray(Image.open(target_of(targets_dir, image_dir, path)))
        numpy.testing.assert_array_equal(target, wanted.transpose(2, 0, 1))
    batch = chainer.dataset.concat_examples([data[0], data[1]])
    assert isinstance(batch, tuple) and [b.shape for b in batch] == [(2, 3, 32, 32)] * 2


def test_missing_or_misfit_targets_are_refused_before_training(tmp_path, image_dir,
                                                               targets_dir, style_path,
                                                               vgg_path):
    from test_train import run_train, train_args

    def fails(*flags_and_words):
        *flags, words = flags_and_words
        assert_one_line_error(run_train(*train_args(image_dir, style_path, vgg_path, *flags),
                                        '-o', 'x', cwd=str(tmp_path)), *words)
    fails('--targets', targets_dir, ['--targets goes with --lambda_target or --lambda_target_style'])
    fails('--lambda_target', '1', ['--targets goes with --lambda_target or --lambda_target_style'])
    fails('--target_pixels', ["--target_pixels is for --lambda_target's loss"])
    fails('--targets', targets_dir, '--lambda_target_style', '1', '--target_pixels',
          ["--target_pixels is for --lambda_target's loss"])
    fails('--targets', str(tmp_path / 'nowhere'), '--lambda_target', '1', ['not a directory'])
    first = target_of(targets_dir, image_dir, crops.list_images(image_dir)[0])
    write_image(first, (24, 24), seed=1)
    fails('--targets', targets_dir, '--lambda_target', '1', '-e', '1',
          ['is 24x24, not the 32x32'])
    os.remove(first)
    fails('--targets', targets_dir, '--lambda_target', '1',
          ['1 of the 4 dataset images have no target', 'scripts.style_targets'])
    with open(os.path.join(targets_dir, crops.TARGET_SETTINGS), 'w') as f:
        f.write('{"image_size": 32, "scale_crops": true}')
    write_image(first, (32, 32), seed=1)
    fails('--targets', targets_dir, '--lambda_target', '1',
          ['made for --image_size 32 --scale_crops', 'this run cuts --image_size 32'])
    assert not os.path.exists(str(tmp_path / 'models' / 'x.model'))


def test_the_run_says_which_target_losses_it_uses(tmp_path, image_dir, targets_dir, style_path,
                                                  vgg_path):
    from test_train import run_train, train_args
    result = run_train(*train_args(image_dir, style_path, vgg_path, '--targets', targets_dir,
                                   '--lambda_target', '3', '--target_pixels',
                                   '--lambda_target_style', '2', '-e', '1', '--lambda_noise',
                                   '0'), '-o', 'x', cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert 'target 3, pixels (the targets in {})'.format(targets_dir) in result.stdout
    assert 'target style 2 (the targets in {})'.format(targets_dir) in result.stdout
    assert 'loss_target_style' in result.stdout
