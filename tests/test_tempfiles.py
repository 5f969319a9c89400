"""faststyle/tempfiles.py: temporary files of killed runs are cleaned up."""
import os
import subprocess
import sys

from faststyle import cli
import net
from faststyle import npz
from faststyle import tempfiles


def test_orphans_of_dead_processes_are_removed(tmp_path, capsys):
    tmp_path = tmp_path / 'fresh'
    tmp_path.mkdir()
    dead = subprocess.Popen([sys.executable, '-c', 'pass'])
    dead.wait()
    host = tempfiles._host()
    names = {'orphan': '.tmp-{}@{}~x-abc.model'.format(dead.pid, host),
             'mine': '.tmp-{}@{}~y-abc.model'.format(os.getpid(), host),
             'other_host': '.tmp-{}@elsewhere~z-abc.model'.format(dead.pid),
             'not_ours': '.tmp-something.model'}
    for name in names.values():
        (tmp_path / name).write_text('x')
    # A command's output check removes them, once, before it writes there.
    cli.check_writable(str(tmp_path / 'new.model'))
    npz.save_npz(str(tmp_path / 'new.model'), net.FastStyleNet())
    assert sorted(os.listdir(str(tmp_path))) == sorted(
        ['new.model', names['mine'], names['other_host'], names['not_ours']])
    assert 'removed 1 temporary file(s)' in capsys.readouterr().err


def test_a_savez_stopped_midway_leaves_no_traceback_at_exit(tmp_path):
    # numpy.savez does not close its ZipFile when a write raises; deleted at
    # exit, after atomic_write closed the file, it printed a traceback (a
    # second Ctrl-C during a snapshot did this).
    script = '\n'.join([
        'import sys, numpy',
        'sys.path.insert(0, {!r})'.format(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
        'from faststyle import tempfiles',
        'class Stop:',
        '    def __array__(self, *args, **kwargs):',
        '        raise KeyboardInterrupt',
        'try:',
        '    tempfiles.atomic_write({!r}, lambda f: numpy.savez(f, a=numpy.zeros(3), b=Stop()))'
        .format(str(tmp_path / 'x.npz')),
        'except KeyboardInterrupt:',
        '    print("interrupted")'])
    result = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True,
                            timeout=120)
    assert result.stdout.strip() == 'interrupted', result.stderr
    assert 'Traceback' not in result.stderr and 'Exception ignored' not in result.stderr
    assert os.listdir(str(tmp_path)) == []
