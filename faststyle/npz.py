"""Safe loading and atomic saving of Chainer ``.npz`` files.

``chainer.serializers.load_npz`` opens files with ``allow_pickle=True``, so a
downloaded ``.model`` could run code when loaded. Everything this project loads
from users goes through :func:`open_npz` here, which refuses pickled arrays.
Saving writes a temporary file next to the target and renames it, so a crash
never leaves a half-written model or snapshot under the final name.
"""
import zipfile
from collections.abc import Mapping

import numpy
from chainer import serializers

from faststyle import tempfiles
from faststyle.cli import check_regular_file
from faststyle.errors import InputError


# No array that a model, snapshot or VGG16 file holds comes near this
# (VGG16's largest is 9.4 MB); a member declaring more is refused unread.
MAX_MEMBER_BYTES = 1 << 30
# numpy's own limit for a trusted header; ours are about 120 bytes.
MAX_HEADER_BYTES = 10000
ZIP_MAGIC = b'PK\x03\x04'


class NpzArchive(Mapping):
    """The arrays of a ``.npz`` file, read one at a time when asked for.

    Only members that are looked up are decompressed. Each member's header is
    checked before anything is allocated: no pickled (object) arrays, a
    declared size that matches what the archive holds, at most
    MAX_MEMBER_BYTES.
    """

    def __init__(self, path):
        check_regular_file(path)
        self.path = path
        with open(path, 'rb') as f:
            magic = f.read(4)
        if not zipfile.is_zipfile(path):
            if magic == ZIP_MAGIC:
                raise InputError('{}: truncated or corrupt (the .npz archive has no '
                                 'central directory; was the copy or download cut '
                                 'short?)'.format(path))
            # numpy.load would take any other file for a pickle and say so.
            raise InputError('{}: not a .npz archive (a Chainer .model or .state '
                             'file){}'.format(path, '; an .onnx export is for other '
                                              'runtimes, give the .model it came from'
                                              if path.lower().endswith('.onnx') else ''))
        try:
            self._zip = zipfile.ZipFile(path)
            infos = self._zip.infolist()
        except (zipfile.BadZipFile, OSError, ValueError) as e:
            raise InputError('{}: truncated or corrupt .npz archive ({})'.format(path, e))
        self._infos = {info.filename[:-len('.npy')]: info for info in infos
                       if info.filename.endswith('.npy')}
        self._headers = {}
        self._cached = (None, None)
        # Headers only (a few hundred bytes each): a pickled member is refused
        # even where it would never be read.
        for key in self._infos:
            self._read_header(key)

    def __iter__(self):
        return iter(self._infos)

    def __len__(self):
        return len(self._infos)

    def __contains__(self, key):
        return key in self._infos

    def close(self):
        self._zip.close()

    def _corrupt(self, key, reason):
        return InputError('{}: entry {} is truncated or corrupt ({})'.format(
            self.path, key, reason))

    def _read_header(self, key):
        """(shape, dtype, fortran_order, header_bytes) of member ``key``; refuses
        pickled members and malformed headers, not sizes."""
        if key in self._headers:
            return self._headers[key]
        info = self._infos[key]
        try:
            with self._zip.open(info) as f:
                version = numpy.lib.format.read_magic(f)
                if version == (1, 0):
                    read = numpy.lib.format.read_array_header_1_0
                elif version in ((2, 0), (3, 0)):
                    read = numpy.lib.format.read_array_header_2_0
                else:
                    raise ValueError('unknown .npy version {}'.format(version))
                shape, fortran, dtype = read(f, max_header_size=MAX_HEADER_BYTES)
                offset = f.tell()
        except (ValueError, SyntaxError, EOFError, OSError, zipfile.BadZipFile) as e:
            reason = ' '.join(str(e).split())
            if 'Header info length' in reason:
                reason = 'its array header is over {} bytes; numpy and Chainer ' \
                         'never write such headers'.format(MAX_HEADER_BYTES)
            raise self._corrupt(key, reason[:200])
        if dtype.hasobject:
            raise InputError('{}: contains pickled Python objects ({}); refusing to '
                             'load it (it could run code)'.format(self.path, key))
        self._headers[key] = (shape, dtype, fortran, offset)
        return self._headers[key]

    def header(self, key):
        """(shape, dtype, fortran_order, header_bytes) of member ``key``, with a
        declared size that matches the archive and is at most MAX_MEMBER_BYTES."""
        shape, dtype, fortran, offset = self._read_header(key)
        info = self._infos[key]
        count = 1
        for n in shape:
            count *= n
        nbytes = count * dtype.itemsize
        if nbytes > MAX_MEMBER_BYTES:
            raise InputError('{}: entry {} declares {} bytes ({}), more than any '
                             'model or snapshot holds; refusing to load it'.format(
                                 self.path, key, nbytes, shape))
        if offset + nbytes != info.file_size:
            raise self._corrupt(key, 'its header declares {} bytes of data, the archive '
                                'holds {}'.format(nbytes, info.file_size - offset))
        return shape, dtype, fortran, offset

    def __getitem__(self, key):
        if key not in self._infos:
            raise KeyError(key)
        if self._cached[0] == key:
            return self._cached[1]
        shape, dtype, fortran, offset = self.header(key)
        nbytes = self._infos[key].file_size - offset
        try:
            with self._zip.open(self._infos[key]) as f:
                f.read(offset)
                data = f.read(nbytes)
                f.read(1)  # reach the end, where zipfile checks the CRC
        except (OSError, EOFError, zipfile.BadZipFile, RuntimeError) as e:
            raise self._corrupt(key, ' '.join(str(e).split())[:200])
        if len(data) != nbytes:
            raise self._corrupt(key, 'it ends early')
        array = numpy.frombuffer(data, dtype=dtype).reshape(
            shape, order='F' if fortran else 'C').copy()
        self._cached = (key, array)
        return array


def open_npz(path):
    """The arrays of ``path`` as a read-only mapping (:class:`NpzArchive`);
    nothing is unpickled and nothing is read until it is looked up."""
    return NpzArchive(path)


def _is_array(value):
    return hasattr(value, 'shape') and hasattr(value, 'dtype')


def check_entry(arrays, key, value, source):
    """Check member ``key`` against what the object expects (``value``) before
    it is copied: exact shape and dtype (native byte order) for arrays, a 0-d
    array for scalars, finite values for floating-point data."""
    if not isinstance(arrays, NpzArchive):
        return
    shape, dtype, _, _ = arrays.header(key)
    if _is_array(value):
        if tuple(shape) != tuple(value.shape):
            raise InputError('{}: {} has shape {}, expected {}'.format(
                source, key, tuple(shape), tuple(value.shape)))
        if dtype != value.dtype or not dtype.isnative:
            raise InputError('{}: {} is {} ({}), expected {} in native byte '
                             'order'.format(source, key, dtype.name, dtype.str,
                                            numpy.dtype(value.dtype).name))
    elif value is not None and tuple(shape) != ():
        raise InputError('{}: {} has shape {}, expected a single value'.format(
            source, key, tuple(shape)))
    if dtype.kind in 'fc':
        array = arrays[key]
        if not numpy.isfinite(array).all():
            raise InputError('{}: {} holds {} NaN or infinite value(s); the file is '
                             'damaged or comes from a diverged run'.format(
                                 source, key, int(array.size - numpy.isfinite(array).sum())))


class CheckedDeserializer(serializers.NpzDeserializer):
    """NpzDeserializer that checks each entry (:func:`check_entry`) first, so
    a scalar is not broadcast into a weight, nor float64, integer,
    big-endian or non-finite data copied in silently."""

    def __init__(self, npz, path='', strict=True, source='file'):
        super().__init__(npz, path=path, strict=strict)
        self.source = source

    def __getitem__(self, key):
        return CheckedDeserializer(self.npz, self.path + key.strip('/') + '/',
                                   strict=self.strict, source=self.source)

    def __call__(self, key, value):
        full = self.path + key.lstrip('/')
        if full in self.npz:
            check_entry(self.npz, full, value, self.source)
        return super().__call__(key, value)


def load_arrays(arrays, target, path='', strict=True, source='file'):
    """Copy ``arrays`` (from :func:`open_npz`) into a Chainer object, checked."""
    deserializer = CheckedDeserializer(arrays, path=path, strict=strict, source=source)
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
    tempfiles.atomic_write(path, write)


