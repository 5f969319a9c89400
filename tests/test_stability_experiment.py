"""benchmarks/stability_experiment.py end to end at a toy size: every run trains,
the 10 % lambda is derived from the stable run, every model is measured with both
BatchNorm statistics, the table and the JSON hold every figure, and the files
go into the work folder."""
import json
import os

import pytest

from benchmarks import stability_experiment as experiment
from test_quality import numpy_style_distance

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_toy_run(tmp_path, capsys):
    workdir = tmp_path / 'work'
    out = tmp_path / 'figures.json'
    assert experiment.main(['--iterations', '3', '--image_size', '32', '--crops', '1',
                            '--frames', '3', '--popping_frames', '2', '--vgg', 'random',
                            '--workdir', str(workdir), '--json', str(out)]) == 0
    printed = capsys.readouterr().out
    assert 'RANDOM stand-in VGG16' in printed
    assert json.loads(out.read_text())['loss_network']['random'] is True
    assert 'stable-10%: lambda_noise' in printed
    table = [line for line in printed.splitlines() if line.startswith('| ')]
    assert len(table) == 1 + 1 + 4 * 2  # header, source, 4 runs x 2 stats
    assert 'flicker | detail | warp/detail | flicker/rms |' in table[0]
    document = json.loads(out.read_text())
    assert [run['name'] for run in document['runs']] == [
        'vanilla', 'stable', 'per-batch', 'stable-10%']
    assert [len(run['history']) for run in document['runs']] == [3] * 4
    vanilla, stable, per_batch, tuned = document['runs']
    assert vanilla['lambda_noise'] == 0 and vanilla['noise_count'] is None
    assert stable['lambda_noise'] == per_batch['lambda_noise'] == 1000
    assert per_batch['noise_per_batch'] and not stable['noise_per_batch']
    assert tuned['lambda_noise'] > 0 and document['lambda_choice'] in tuned['note']
    # Same seed, same data, same first step: the runs start from one net.
    assert vanilla['history'][0]['loss_style'] == stable['history'][0]['loss_style']
    rows = document['rows']
    assert rows[0]['model'] == 'source' and rows[0]['warp_mse'] is not None
    assert [(r['model'], r['stats']) for r in rows[1:3]] == [
        ('vanilla', 'instance'), ('vanilla', 'running')]
    for row in rows[1:]:
        assert row['frames'] == 3
        # A random net's output of a moving clip, with noise on the input:
        # every figure is a positive number (0 or None would mean unmeasured).
        for key in ('warp_mse', 'flicker', 'popping', 'detail'):
            assert isinstance(row[key], float) and 0 < row[key] < 1e6, (key, row)
        # The derived columns are what stability.py's header defines.
        assert row['warp_per_detail'] == pytest.approx(row['warp_mse'] / row['detail'])
        assert row['flicker_per_rms_detail'] == pytest.approx(
            row['flicker'] / row['detail'] ** 0.5)
        # and the printed table shows these figures.
        cells = [[c.strip() for c in line.split('|')] for line in table]
        wanted = [row['model'], row['stats'], '{:.2f}'.format(row['warp_mse']),
                  '{:.3f}'.format(row['popping'])]
        assert any(all(w in line for w in wanted) for line in cells), (wanted, table)
    assert sorted(os.listdir(str(workdir))) == sorted(
        ['data', 'vgg16_random.model'] +
        [name + '.model' for name in ('vanilla', 'stable', 'per-batch', 'stable-10%')])


def test_lambda_choice_targets_ten_percent():
    run = experiment.Run('stable', 1000.0)
    # L_pop is 2 % of the loss: a ratio of 0.02 / 0.98 to the other terms.
    run.history = [{'loss': 100.0, 'loss_pop': 2.0}] * 10
    value, note = experiment.choose_lambda(run)
    assert value == 5400  # 1000 * (0.1 / 0.9) / (2 / 98) = 5444 -> 2 digits
    assert 'share 2.0%' in note


# --- --models mode, the style distance, the loss-network warning ------------------

import numpy  # noqa: E402
from PIL import Image  # noqa: E402

import net  # noqa: E402
from faststyle import npz  # noqa: E402
from faststyle import stability_measures  # noqa: E402
from faststyle import stylize  # noqa: E402
import vgg16  # noqa: E402
from faststyle import vgg16_weights


def tiny_models(folder):
    """Two transform nets with random weights (different seeds), saved as .model."""
    paths = {}
    for seed, (name, arch) in enumerate((('a', 'resize'), ('b', 'deconv'))):
        numpy.random.seed(seed)
        path = str(folder / '{}.model'.format(name))
        npz.save_npz(path, net.FastStyleNet(arch))
        paths[name] = path
    return paths


def tiny_clip(folder, frames=3):
    """A short pan over a random image, as a folder of 40x32 PNG frames."""
    folder.mkdir()
    rng = numpy.random.RandomState(0)
    base = rng.randint(0, 256, (32, 48, 3)).astype(numpy.uint8)
    for t in range(frames):
        Image.fromarray(base[:, t:t + 40]).save(str(folder / '{:02d}.png'.format(t)))
    return str(folder)


def test_models_mode(tmp_path, capsys):
    models = tiny_models(tmp_path)
    clip = tiny_clip(tmp_path / 'clip')
    workdir = tmp_path / 'work'
    out = tmp_path / 'figures.json'
    assert experiment.main([
        '--models', 'a=' + models['a'], 'b=' + models['b'], '--vgg', 'random',
        '--image_size', '32', '--crops', '1', '--clip', clip, '--size', '40',
        '--frames', '3', '--popping_frames', '2', '--stats', 'instance',
        '--workdir', str(workdir), '--json', str(out)]) == 0
    printed = capsys.readouterr().out
    assert 'WARNING: RANDOM stand-in VGG16' in printed
    # Nothing was trained (train_runs says 'training NAME' before each run).
    assert not [line for line in printed.splitlines() if line.startswith('training ')]
    table = [line for line in printed.splitlines() if line.startswith('| ')]
    assert len(table) == 1 + 1 + 2  # header, source, 2 models x 1 stats
    header = [c.strip() for c in table[0].strip('|').split('|')]
    assert header[9:13] == ['style dist', 'style', 'content', 'noise MSE']
    for line in table[2:]:
        values = [c.strip() for c in line.strip('|').split('|')]
        # lambda, L_pop share and s/it: not known for a net not trained here.
        assert values[1] == values[13] == values[14] == '-'
        assert float(values[9]) > 0 and float(values[12]) > 0
    document = json.loads(out.read_text())
    assert document['warning'].startswith('RANDOM stand-in VGG16')
    runs = document['runs']
    assert [(r['name'], r['arch'], r['trained_here'], r['history']) for r in runs] == [
        ('a', 'resize', False, []), ('b', 'deconv', False, [])]
    assert runs[0]['final']['loss_style'] != runs[1]['final']['loss_style']
    # Nothing was written but the loss network and the data.
    assert sorted(os.listdir(str(workdir))) == ['data', 'vgg16_random.model']
    # The style-distance column: recomputed from the stylized frames in numpy.
    vgg = vgg16.load_vgg(str(workdir / 'vgg16_random.model'))
    style = experiment.dataset.load_style(experiment.DEFAULT_STYLE, 32)
    source = list(stability_measures.SourceFrames(clip, 40, 3))
    rows = {row['model']: row for row in document['rows']}
    expected = numpy.mean([numpy_style_distance(vgg, f, style) for f in source])
    assert abs(rows['source']['style_dist'] - expected) <= 1e-4 * expected
    for name, path in models.items():
        outputs = stylize.Stylizer(path, stats='instance').stylize(source)
        expected = numpy.mean([numpy_style_distance(vgg, f, style) for f in outputs])
        assert abs(rows[name]['style_dist'] - expected) <= 1e-4 * expected


def test_models_mode_names_a_real_loss_network(tmp_path, capsys):
    """A loss network that is not the stand-in: no RANDOM warning, its source named."""
    arrays = vgg16_weights.random_weights(0)
    del arrays[vgg16_weights.STAND_IN_KEY]
    arrays[vgg16_weights.SOURCE_KEY] = numpy.array('test weights')
    arrays[vgg16_weights.PREPROCESSING_KEY] = numpy.array('caffe')
    vgg_path = str(tmp_path / 'vgg.model')
    vgg16_weights.save_arrays(vgg_path, arrays)
    models = tiny_models(tmp_path)
    out = tmp_path / 'figures.json'
    assert experiment.main([
        '--models', 'a=' + models['a'], '--vgg', vgg_path, '--image_size', '32',
        '--crops', '1', '--clip', tiny_clip(tmp_path / 'clip', 2), '--size', '40',
        '--frames', '2', '--popping_frames', '1', '--stats', 'running',
        '--json', str(out)]) == 0
    printed = capsys.readouterr().out
    assert 'RANDOM' not in printed
    assert 'loss network: test weights ({}, caffe preprocessing)'.format(vgg_path) in printed
    document = json.loads(out.read_text())
    assert document['loss_network'] == {'path': vgg_path, 'source': 'test weights',
                                        'random': False, 'preprocessing': 'caffe'}
    assert 'RANDOM' not in document['warning']


def test_models_flag_errors(tmp_path, capsys):
    for argv, message in (
            (['--models', 'nameonly'], "expected NAME=PATH, not 'nameonly'"),
            (['--models', 'a=' + str(tmp_path / 'missing.model')], 'no such file'),
            (['--vgg', str(tmp_path / 'nowhere.model')], 'no such file')):
        try:
            experiment.main(argv)
        except SystemExit as e:
            assert e.code == 2
        else:
            raise AssertionError('{} was accepted'.format(argv))
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith('error:') and message in err[0]
