"""Safe loading and atomic saving of Chainer ``.npz`` files.

``chainer.serializers.load_npz`` opens files with ``allow_pickle=True``, so a
downloaded ``.model`` could run code when loaded. Everything this project loads
from users goes through :func:`open_npz` here, which refuses pickled arrays.
Saving writes a temporary file next to the target and renames it, so a crash
never leaves a half-written model or snapshot under the final name.
"""
import os
import tempfile
import zipfile

import numpy
from chainer import serializers

from errors import InputError


def open_npz(path):
    """Return the arrays of ``path`` as a dict, never unpickling anything."""
    if not os.path.isfile(path):
        raise InputError('{}: no such file'.format(path))
    if not zipfile.is_zipfile(path):
        # numpy.load would take any other file for a pickle and say so.
        raise InputError('{}: not a .npz archive (a Chainer .model or .state '
                         'file)'.format(path))
    try:
        with numpy.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except ValueError as e:
        if 'pickle' in str(e):
            raise InputError('{}: contains pickled Python objects; refusing to '
                             'load it (it could run code)'.format(path))
        raise InputError('{}: not a valid .npz file ({})'.format(path, e))
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise InputError('{}: not a valid .npz file ({})'.format(path, e))


def load_arrays(arrays, target, path='', strict=True, source='file'):
    """Copy ``arrays`` (a dict from :func:`open_npz`) into a Chainer object."""
    deserializer = serializers.NpzDeserializer(arrays, path=path, strict=strict)
    try:
        deserializer.load(target)
    except KeyError as e:
        raise InputError('{}: missing entry {}'.format(source, e))
    except (ValueError, TypeError) as e:  # wrong shape or dtype
        raise InputError('{}: {}'.format(source, e))


def save_npz(path, target):
    """``chainer.serializers.save_npz`` that is atomic: temp file, then rename."""
    def write(f):
        serializers.save_npz(f, target, compression=False)
    atomic_write(path, write)


def atomic_write(path, write):
    """Call ``write(file_object)`` on a temp file, then rename it to ``path``."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix='.tmp-',
                               suffix=os.path.splitext(path)[1])
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files
        with os.fdopen(fd, 'wb') as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
