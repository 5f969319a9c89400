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
