"""benchmarks/gpu_check.py: its no-GPU line, and every part run on the CPU;
scripts/with_chainer.sh, which installs Chainer for it on a GPU machine."""
import os
import subprocess
import sys
import zipfile

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


def fake_chainer_wheel(folder):
    """A wheel named as Chainer 7.8.1's whose package says where it was imported from."""
    os.makedirs(folder)
    path = os.path.join(folder, 'chainer-7.8.1-py3-none-any.whl')
    info = 'chainer-7.8.1.dist-info/'
    files = {'chainer/__init__.py': 'FAKE = True\n',
             info + 'METADATA': 'Metadata-Version: 2.1\nName: chainer\nVersion: 7.8.1\n',
             info + 'WHEEL': 'Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n'
                             'Tag: py3-none-any\n'}
    files[info + 'RECORD'] = ''.join(name + ',,\n' for name in list(files) + [info + 'RECORD'])
    with zipfile.ZipFile(path, 'w') as wheel:
        for name, text in files.items():
            wheel.writestr(name, text)
    return path


def with_chainer(tmp_path, wheels, *command):
    # A package named chainer that fails to import stands for a machine without it.
    blocker = tmp_path / 'blocker' / 'chainer'
    blocker.mkdir(parents=True, exist_ok=True)
    (blocker / '__init__.py').write_text('raise ImportError("no Chainer here")\n')
    env = dict(os.environ, PYTHON=sys.executable, WHEELS=str(wheels),
               SITE=str(tmp_path / 'site'), PYTHONPATH=str(tmp_path / 'blocker'))
    return subprocess.run(['sh', os.path.join(ROOT, 'scripts', 'with_chainer.sh')]
                          + list(command), capture_output=True, text=True, env=env, timeout=300)


def test_with_chainer_installs_the_carried_wheel_for_the_command_and_its_children(tmp_path):
    fake_chainer_wheel(str(tmp_path / 'wheels'))
    # The command starts another Python, as gpu_lease starts train.py.
    child = 'import chainer; print(chainer.FAKE, chainer.__file__)'
    result = with_chainer(tmp_path, tmp_path / 'wheels', sys.executable, '-c',
                          'import subprocess, sys; subprocess.run([sys.executable, "-c", {!r}])'
                          .format(child))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith('True ' + str(tmp_path / 'site')), result.stdout


def test_with_chainer_without_chainer_or_its_wheel_says_so_in_one_line(tmp_path):
    result = with_chainer(tmp_path, tmp_path / 'nothing', 'true')
    assert result.returncode == 2
    assert result.stderr.startswith('error: Chainer is not installed')
    assert len(result.stderr.splitlines()) == 1 and 'with_chainer.sh wheel' in result.stderr
