"""benchmarks/stability_experiment.py end to end at a toy size: every run trains,
the 10 % lambda is derived from the stable run, every model is measured with both
BatchNorm statistics, the table and the JSON hold every figure, and the files
go into the work folder."""
import json
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'benchmarks'))

import stability_experiment as experiment  # noqa: E402


def test_toy_run(tmp_path, capsys):
    workdir = tmp_path / 'work'
    out = tmp_path / 'figures.json'
    assert experiment.main(['--iterations', '3', '--image_size', '32', '--crops', '1',
                            '--frames', '3', '--popping_frames', '2',
                            '--workdir', str(workdir), '--json', str(out)]) == 0
    printed = capsys.readouterr().out
    assert 'RANDOM stand-in VGG16' in printed
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
        ('vanilla', 'image'), ('vanilla', 'running')]
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
