"""Temporary files next to their final path, and the cleanup of orphans.

Every output is written to ``.tmp-<pid>@<host>~<name>-<random><ext>`` in the
output's directory and renamed when complete. A process killed with
SIGKILL (or a power cut) cannot remove its temporary file; the next command
that checks its outputs in that directory (cli.check_writable) removes the
temporary files of processes of this host that no longer run. Files of other
hosts (a shared file system under an array job) and of running processes are
never touched. The cleanup lists the whole directory, so it is done once
where a command starts writing there, never per file written: thousands of
outputs in one folder must not each list that folder.
"""
import contextlib
import os
import re
import socket
import sys
import tempfile
import traceback

from faststyle.errors import WorkError

PREFIX = '.tmp-'
_ORPHAN = re.compile(r'^\.tmp-(\d+)@([A-Za-z0-9.-]+)~')


def _host():
    return re.sub(r'[^A-Za-z0-9.-]', '-', socket.gethostname()) or 'host'


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. another user's process: it exists
        return True
    return True


def clean_orphans(directory, quiet=False):
    """Remove the temporary files left in ``directory`` by dead processes of
    this host; returns their names. Lists ``directory``: call it once where a
    command starts writing there (see the module docstring)."""
    directory = os.path.abspath(directory)
    removed = []
    host = _host()
    try:
        names = os.listdir(directory)
    except OSError:
        return removed
    for name in names:
        match = _ORPHAN.match(name)
        if not match or match.group(2) != host:
            continue
        pid = int(match.group(1))
        if pid == os.getpid() or _alive(pid):
            continue
        try:
            os.remove(os.path.join(directory, name))
            removed.append(name)
        except OSError:
            pass
    if removed and not quiet:
        print('note: removed {} temporary file(s) left in {} by an interrupted run'
              .format(len(removed), directory), file=sys.stderr)
    return removed


def make_temp(final_path):
    """A new empty file next to ``final_path`` (same extension, hidden name),
    with the permissions a normal new file gets; returns (fd, path)."""
    directory = os.path.dirname(os.path.abspath(final_path))
    os.makedirs(directory, exist_ok=True)
    stem, ext = os.path.splitext(os.path.basename(final_path))
    fd, path = tempfile.mkstemp(
        dir=directory, suffix=ext,
        prefix='{}{}@{}~{}-'.format(PREFIX, os.getpid(), _host(), stem[:64]))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)  # mkstemp makes 0600 files
    return fd, path


def atomic_write(path, write):
    """Call ``write(file_object)`` on a temp file, then rename it to ``path``.

    A failure to write (a full disk, a read-only place) removes the temp file
    and raises WorkError with one line saying why; ``path`` is left as it was.
    """
    try:
        fd, tmp = make_temp(path)
    except OSError as e:
        raise WorkError('could not write {} ({})'.format(path, e.strerror or e))
    try:
        with os.fdopen(fd, 'wb') as f:
            try:
                write(f)
            except BaseException as e:
                # A writer stopped midway (a second Ctrl-C) can leave an object
                # that writes when it is deleted: numpy.savez's ZipFile, which
                # it does not close on an exception. Let it go now, while the
                # file is open, not at exit, where it prints a traceback.
                traceback.clear_frames(e.__traceback__)
                raise
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        remove_quietly(tmp)
        raise WorkError('could not write {} ({})'.format(path, e.strerror or e))
    except BaseException:
        remove_quietly(tmp)
        raise


@contextlib.contextmanager
def atomic_path(path):
    """For writers that take a file name (ffmpeg, cv2): yield a temp path next
    to ``path``, renamed to ``path`` when the block ends normally and removed
    when it raises."""
    fd, tmp = make_temp(path)
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        remove_quietly(tmp)


def remove_quietly(path):
    try:
        os.remove(path)
    except OSError:
        pass
