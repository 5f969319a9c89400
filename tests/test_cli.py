"""faststyle/cli.py: the contract every command keeps. One `error:` line and
a status (0 done, 1 failure, 2 bad input, 130 interrupted), outputs checked
before any work, the same --help conventions; net.py and noise.py say they
are modules."""
import argparse
import io
import os
import signal
import sys

import pytest

from faststyle import cli
from faststyle import errors
import export_onnx
import generate
from scripts import make_sample_clip
import net
import stability
from faststyle import tempfiles
import train
from faststyle import training
import vgg16
from conftest import one_error_line, small_args
from helpers_generate import REPO
from faststyle.errors import InputError, WorkError


def test_run_cli_maps_everything_to_one_line(capsys):
    def raises(error):
        def body(argv):
            raise error
        return body
    assert cli.run_cli(raises(InputError('bad'))) == 2
    assert cli.run_cli(raises(WorkError('disk full'))) == 1
    assert cli.run_cli(raises(KeyboardInterrupt())) == 130
    err = capsys.readouterr().err
    assert err.splitlines() == ['error: bad', 'error: disk full', '',
                                'interrupted (SIGINT); unfinished outputs were removed']
    # Work that stopped on a signal and said what it kept: 130, no second line;
    # a failure another MPI process reports (empty message): 1, no line here.
    assert cli.run_cli(raises(errors.Interrupted())) == 130
    assert cli.run_cli(raises(WorkError(''))) == 1
    assert cli.run_cli(raises(MemoryError())) == 1
    assert cli.run_cli(lambda argv: True) == 1
    assert cli.run_cli(lambda argv: None) == 0
    assert capsys.readouterr().err.splitlines() == ['error: out of memory']


def test_sigterm_unwinds_and_removes_temporary_files(tmp_path, capsys):
    made = []

    def body(argv):
        fd, path = tempfiles.make_temp(str(tmp_path / 'out.mp4'))
        os.close(fd)
        made.append(path)
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            pytest.fail('SIGTERM did not interrupt')
        finally:
            os.remove(path)
    assert cli.run_cli(body) == 130
    assert 'interrupted (SIGTERM)' in capsys.readouterr().err
    assert made and os.listdir(str(tmp_path)) == []
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_outputs_are_checked_before_any_work(tmp_path, image_dir, style_path, vgg_path,
                                             model_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / 'taken.model'
    folder.mkdir()
    blocker = tmp_path / 'file'
    blocker.write_text('a file where a directory should be')
    # The work must not even start: these would fail if it did.
    monkeypatch.setattr(training, 'open_training_data', lambda *a: pytest.fail('trained'))
    monkeypatch.setattr(net, 'load_model', lambda *a, **k: pytest.fail('loaded'))
    assert train.main(small_args(image_dir, style_path, vgg_path, '-o', str(folder))) == 2
    err = capsys.readouterr().err
    assert one_error_line(err) and 'is a directory' in err
    assert export_onnx.main([model_path, '-o', str(folder)]) == 2
    assert one_error_line(capsys.readouterr().err)
    assert vgg16.main(['--random', '-o', str(blocker / 'vgg16.model')]) == 2
    err = capsys.readouterr().err
    assert one_error_line(err) and 'cannot write' in err
    frames = tmp_path / 'frames'
    make_sample_clip.main(['-o', '', '--frames', '2', '--size', '16x16',
                           '--frames-dir', str(frames)])
    capsys.readouterr()
    monkeypatch.setattr(stability, 'run', lambda *a: pytest.fail('measured'))
    assert stability.main([str(frames), '--json', str(folder), '--no-progress']) == 2
    assert one_error_line(capsys.readouterr().err)
    # An output that is one of the command's inputs is refused, whatever its
    # spelling, and the input is left as it was.
    model_bytes = open(model_path, 'rb').read()
    assert export_onnx.main([model_path, '-o', os.path.relpath(model_path)]) == 2
    err = capsys.readouterr().err
    assert one_error_line(err) and 'refusing to overwrite the input' in err
    assert open(model_path, 'rb').read() == model_bytes
    clip = str(tmp_path / 'clip.mp4')
    make_sample_clip.main(['-o', clip, '--frames', '2', '--size', '16x16'])
    capsys.readouterr()
    clip_bytes = open(clip, 'rb').read()
    assert stability.main([clip, '--json', clip, '--no-progress']) == 2
    assert 'refusing to overwrite the input' in capsys.readouterr().err
    assert open(clip, 'rb').read() == clip_bytes
    assert train.main(small_args(image_dir, style_path, vgg_path,
                                 '-o', vgg_path[:-len('.model')])) == 2
    assert 'refusing to overwrite the input' in capsys.readouterr().err
    # -i's model is an input too (it was replaced by the run's own save).
    assert train.main(small_args(image_dir, style_path, vgg_path, '-i', model_path,
                                 '-o', model_path)) == 2
    assert 'refusing to overwrite the input' in capsys.readouterr().err
    assert open(model_path, 'rb').read() == model_bytes
    # A frame of a source folder, or a flow file read with --flow_dir, is an
    # input (only a single file was checked; a frame became JSON text) ...
    frame = os.path.join(str(frames), sorted(os.listdir(str(frames)))[0])
    frame_bytes = open(frame, 'rb').read()
    flow_dir = tmp_path / 'flow'
    flow_dir.mkdir()
    (flow_dir / 'forward_1_2.flo').write_bytes(b'PIEH')
    for argv in ([str(frames), '--json', frame],
                 [clip, '--stylized', str(frames), '--json', frame],
                 [str(frames), '--flow_dir', str(flow_dir),
                  '--json', str(flow_dir / 'forward_1_2.flo')]):
        assert stability.main(argv + ['--no-progress']) == 2, argv
        assert 'refusing to overwrite the input' in capsys.readouterr().err
    assert open(frame, 'rb').read() == frame_bytes
    # ... while an earlier JSON in that folder is not.
    (frames / 'figures.json').write_text('{}')
    stability.check_outputs(stability.parse_args([str(frames), '--json',
                                                  str(frames / 'figures.json')]))
    with pytest.raises(InputError):
        cli.check_writable(str(blocker), inputs=[None, str(tmp_path / 'missing'), 'file'])
    cli.check_writable(str(blocker), inputs=[None, str(tmp_path / 'missing')])
    # A relative output in a folder yet to be made is fine, and is not made yet.
    cli.check_writable_directory(os.path.join('new', 'previews'))
    cli.check_writable(os.path.join('new', 'x.model'))
    assert not os.path.exists('new')


@pytest.mark.parametrize('module', [train, generate, stability, export_onnx, vgg16,
                                    make_sample_clip])
def test_help_states_the_exit_codes(module, capsys):
    with pytest.raises(SystemExit) as e:
        if module in (train, generate, stability, export_onnx, make_sample_clip):
            module.parse_args(['--help'])
        else:
            module.main(['--help'])
    assert e.value.code == 0
    out = ' '.join(capsys.readouterr().out.split())
    assert '2 bad input or flags' in out and '130 interrupted' in out
    # Stopped, train.py keeps what it trained; the others remove their unfinished outputs.
    kept = 'last finished step are saved: go on with -r NAME.state' in out
    assert kept == (module is train)
    assert ('unfinished outputs are removed' in out) == (module is not train)


def test_help_has_one_flag_spelling_and_one_way_of_showing_defaults(capsys):
    with pytest.raises(SystemExit):
        stability.parse_args(['--help'])
    out = capsys.readouterr().out
    assert '--max_frames' in out and '--max-frames' not in out
    assert '(default: 0.5)' in out and '%(default)' not in out  # --still_flow
    # The hyphenated spellings of earlier builds still work.
    assert stability.parse_args(['x', '--max-frames', '5']).max_frames == 5
    assert make_sample_clip.parse_args(['--frames-dir', 'f']).frames_dir == 'f'
    with pytest.raises(SystemExit):
        train.parse_args(['--help'])
    out = ' '.join(capsys.readouterr().out.split())
    assert 'seed for initial weights and data order (default: 0)' in out


@pytest.mark.parametrize('module', ['net.py', 'noise.py'])
def test_modules_say_what_they_are(module, monkeypatch, capsys):
    """Run as scripts, the modules say what they are and which commands use
    them, instead of printing nothing."""
    import runpy
    for argv in ([module], [module, '--help']):
        monkeypatch.setattr(sys, 'argv', argv)
        with pytest.raises(SystemExit) as e:
            runpy.run_path(os.path.join(REPO, module), run_name='__main__')
        out = ' '.join(capsys.readouterr().out.split())
        assert e.value.code == 0
        assert module + ' is a module, not a command' in out and 'train.py' in out
    monkeypatch.setattr(sys, 'argv', [module, '--bogus'])
    with pytest.raises(SystemExit) as e:
        runpy.run_path(os.path.join(REPO, module), run_name='__main__')
    assert e.value.code == 2 and one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize('total', [4, None])
def test_progress_rate_is_in_frames_a_second_also_below_one(total, monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self):
            return True
    terminal = Terminal()
    monkeypatch.setattr(sys, 'stderr', terminal)
    clock = iter(range(0, 1000, 3))  # 3 s a frame: tqdm's own rate would be '3.00s/ frames'
    # tqdm reads the clock it imported (from time import time): patched there,
    # whether or not an earlier test imported tqdm first.
    import tqdm.std
    monkeypatch.setattr(tqdm.std, 'time', lambda: next(clock))
    with cli.progress_bar(total, 'clip', leave=True) as bar:
        bar.mininterval = 0
        bar.update(1)
        bar.update(1)
    shown = terminal.getvalue()
    assert '0.33 frames/s' in shown and 's/ frames' not in shown, shown


@pytest.mark.parametrize('text, expected', [('0/1', (0, 1)), ('2/3', (2, 3)), ('0/4', (0, 4))])
def test_shard_reads_index_and_count(text, expected):
    assert cli.shard(text) == expected


@pytest.mark.parametrize('text', ['3/2', '2/2', '-1/2', '1/0', 'x', '1', '1/2/3', '1/b'])
def test_shard_refuses_what_is_not_a_share(text):
    with pytest.raises(argparse.ArgumentTypeError):
        cli.shard(text)
