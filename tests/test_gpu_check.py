"""benchmarks/gpu_check.py: its no-GPU line, and every part run on the CPU."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from benchmarks import gpu_check


def test_without_a_gpu_it_says_so_in_one_line_and_exits_0():
    if gpu_check.gpu_problem()[0] is None:
        pytest.skip('a GPU is usable here: the check would run on it')
    result = subprocess.run([sys.executable, '-m', 'benchmarks.gpu_check'], cwd=ROOT,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith('gpu_check: no GPU: '), result.stdout
    assert 'CPU-side checks passed' in lines[0]


def test_every_part_runs_on_the_cpu(capsys):
    # The GPU code path at toy sizes on '@numpy': GPU-vs-CPU compares the CPU
    # with itself, float16 is refused, generate.py runs in its own process.
    status = gpu_check.main(['--device', '@numpy', '--steps', '1', '--image_size', '32',
                             '--frame', '40x24', '--frames', '2', '--check_size', '16'])
    out = capsys.readouterr().out
    assert status == 0, out
    rows = [line for line in out.splitlines() if line.startswith('| ')]
    assert len(rows) == 2 + 12, out  # header, rule, 12 rows
    for arch in ('deconv', 'resize'):
        assert '| {} forward+backward vs CPU, max rel. error'.format(arch) in out
    assert out.count('s/step') == 2 and out.count('frames/s |') == 2
    assert out.count('--fp16 needs the chainer backend on a GPU') == 2
    assert 'frames/s end to end' in out and '| NO |' not in out
