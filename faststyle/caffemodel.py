"""A small, safe, fast reader for the weights in a Caffe ``.caffemodel``.

A caffemodel is a serialized ``caffe.NetParameter`` protobuf message. Chainer's
``CaffeFunction`` needs generated protobuf code that current protobuf releases
refuse to load, and pure-python protobuf takes minutes on a 528 MB file. This
module reads the protobuf wire format itself, decoding only what a converter
needs: each layer's name and its blobs. Nothing in the file can run code.

Both NetParameter layouts are understood:

* ``layer`` (field 100): LayerParameter -- name 1, type 2 (string), blobs 7.
* ``layers`` (field 2, legacy V1): V1LayerParameter -- name 4, type 5 (enum),
  blobs 6. VGG_ILSVRC_16_layers.caffemodel is in this format.

BlobProto: num 1, channels 2, height 3, width 4 (legacy int32 dims), data 5
(float, packed or not), diff 6 (skipped), shape 7 (BlobShape, dim 1 int64,
packed or not), double_data 8 (double, converted to float32). Like Caffe, the
legacy 4-D dims take precedence over ``shape`` when any of them is present.

The file is memory-mapped (falling back to one read into ``bytes``); layers
not asked for are skipped by their length prefix without touching their data,
and wanted float data is copied once, straight from the file into the result.

    >>> import caffemodel
    >>> layers = caffemodel.read_layers('VGG_ILSVRC_16_layers.caffemodel',
    ...                                 names=['conv1_1'])
    >>> [blob.shape for blob in layers['conv1_1']]
    [(64, 3, 3, 3), (64,)]
"""
import mmap
import os

import numpy

from faststyle.errors import InputError

__all__ = ['read_layers']

# Wire types.
VARINT, FIXED64, LENGTH, START_GROUP, END_GROUP, FIXED32 = 0, 1, 2, 3, 4, 5

# NetParameter fields.
NET_LAYERS_V1 = 2
NET_LAYER = 100
# (name field, blobs field) of LayerParameter and V1LayerParameter.
LAYER_FIELDS = {NET_LAYER: (1, 7), NET_LAYERS_V1: (4, 6)}
# BlobProto fields.
BLOB_NUM, BLOB_CHANNELS, BLOB_HEIGHT, BLOB_WIDTH = 1, 2, 3, 4
BLOB_DATA, BLOB_SHAPE, BLOB_DOUBLE_DATA = 5, 7, 8
LEGACY_DIMS = (BLOB_NUM, BLOB_CHANNELS, BLOB_HEIGHT, BLOB_WIDTH)
SHAPE_DIM = 1

_MAX_VARINT_BYTES = 10


class _Corrupt(Exception):
    """The bytes are not a well-formed message of the expected kind."""


def _varint(buf, pos, end):
    """Decode the varint at ``pos``; return (value, position after it)."""
    value = 0
    shift = 0
    start = pos
    while True:
        if pos >= end:
            raise _Corrupt('truncated varint at offset {}'.format(start))
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            break
        shift += 7
        if pos - start >= _MAX_VARINT_BYTES:
            raise _Corrupt('varint longer than 10 bytes at offset {}'.format(start))
    if value >> 64:
        raise _Corrupt('varint out of range at offset {}'.format(start))
    return value, pos


def _signed64(value):
    return value - (1 << 64) if value >> 63 else value


def _next_field(buf, pos, end):
    """Read one field of a message spanning ``[pos, end)``.

    Returns (field number, wire type, value, position after the field). The
    value is the integer for VARINT, the offset of the payload for FIXED32
    and FIXED64, and (offset, length) for LENGTH.
    """
    start = pos
    key, pos = _varint(buf, pos, end)
    field, wire = key >> 3, key & 7
    if field == 0:
        raise _Corrupt('field number 0 at offset {}'.format(start))
    if wire == VARINT:
        value, pos = _varint(buf, pos, end)
        return field, wire, value, pos
    if wire == LENGTH:
        length, pos = _varint(buf, pos, end)
        if length > end - pos:
            raise _Corrupt('truncated: field {} at offset {} needs {} bytes, '
                           'only {} left'.format(field, start, length, end - pos))
        return field, wire, (pos, length), pos + length
    if wire in (FIXED32, FIXED64):
        size = 4 if wire == FIXED32 else 8
        if size > end - pos:
            raise _Corrupt('truncated: field {} at offset {} needs {} bytes, '
                           'only {} left'.format(field, start, size, end - pos))
        return field, wire, pos, pos + size
    if wire in (START_GROUP, END_GROUP):
        raise _Corrupt('field {} at offset {} is a protobuf group, which '
                       'caffemodels never use'.format(field, start))
    raise _Corrupt('invalid wire type {} at offset {}'.format(wire, start))


def _expect(field, wire, wanted, what):
    if wire != wanted:
        raise _Corrupt('{} (field {}) has wire type {}, expected {}'.format(
            what, field, wire, wanted))


def _unpacked(buf, pos, end, payload, after, dtype):
    """Decode unpacked fixed-size values starting with the field at ``pos``.

    Protobuf writes unpacked ``repeated float`` as (key, 4 bytes) records;
    reading millions of them one by one in Python would be slow, so the run
    of records with the same one-byte key is found and decoded with numpy.
    ``payload`` and ``after`` are the first record's value offset and end.
    Returns (array, position after the run).
    """
    size = numpy.dtype(dtype).itemsize
    stride = size + 1
    if after - pos != stride:  # a key written in more than one byte
        return numpy.frombuffer(buf, dtype, count=1, offset=payload), after
    tag = buf[pos]
    records = numpy.frombuffer(buf, numpy.uint8, count=(end - pos) // stride * stride,
                               offset=pos).reshape(-1, stride)
    not_tag = records[:, 0] != tag
    count = int(numpy.argmax(not_tag)) if not_tag.any() else len(records)
    values = numpy.ascontiguousarray(records[:count, 1:]).view(dtype).reshape(-1)
    return values, pos + count * stride


def _packed(buf, offset, length, dtype, what):
    itemsize = numpy.dtype(dtype).itemsize
    if length % itemsize:
        raise _Corrupt('{} has {} bytes, not a multiple of {}'.format(
            what, length, itemsize))
    return numpy.frombuffer(buf, dtype, count=length // itemsize, offset=offset)


def _dims(buf, offset, length):
    """The ``dim`` values of a BlobShape (int64, packed or not)."""
    dims = []
    pos, end = offset, offset + length
    while pos < end:
        field, wire, value, pos = _next_field(buf, pos, end)
        if field != SHAPE_DIM:
            continue
        if wire == VARINT:
            dims.append(_signed64(value))
        elif wire == LENGTH:
            p, stop = value[0], value[0] + value[1]
            while p < stop:
                dim, p = _varint(buf, p, stop)
                dims.append(_signed64(dim))
        else:
            _expect(field, wire, VARINT, 'BlobShape.dim')
    return dims


def _blob(buf, offset, length, what):
    """Decode one BlobProto into an owned float32 array of its shape."""
    legacy = {}
    shape = None
    floats, doubles = [], []
    pos, end = offset, offset + length
    while pos < end:
        field, wire, value, after = _next_field(buf, pos, end)
        if field == BLOB_DATA:
            if wire == LENGTH:
                floats.append(_packed(buf, value[0], value[1], '<f4', what + ' data'))
            else:
                _expect(field, wire, FIXED32, what + ' data')
                values, after = _unpacked(buf, pos, end, value, after, '<f4')
                floats.append(values)
        elif field == BLOB_DOUBLE_DATA:
            if wire == LENGTH:
                doubles.append(_packed(buf, value[0], value[1], '<f8',
                                       what + ' double_data'))
            else:
                _expect(field, wire, FIXED64, what + ' double_data')
                values, after = _unpacked(buf, pos, end, value, after, '<f8')
                doubles.append(values)
        elif field in LEGACY_DIMS:
            _expect(field, wire, VARINT, what + ' dimension')
            legacy[field] = _signed64(value)
        elif field == BLOB_SHAPE:
            _expect(field, wire, LENGTH, what + ' shape')
            shape = _dims(buf, value[0], value[1])  # the last one wins, as in protobuf
        pos = after
    if legacy:  # Caffe's Blob::FromProto prefers the legacy dims too
        shape = [legacy.get(f, 0) for f in LEGACY_DIMS]
    if floats and doubles:
        raise _Corrupt('{} has both float and double data'.format(what))
    pieces = floats or doubles
    size = sum(len(p) for p in pieces)
    if shape is None:
        shape = [size]
    if any(d < 0 for d in shape):
        raise _Corrupt('{} has a negative dimension in shape {}'.format(what, tuple(shape)))
    expected = 1
    for d in shape:
        expected *= d
    if expected != size:
        raise _Corrupt('{} has {} values but its shape {} needs {}'.format(
            what, size, tuple(shape), expected))
    if len(pieces) == 1:
        array = pieces[0].astype(numpy.float32)  # the one copy out of the file
    elif pieces:
        array = numpy.concatenate(pieces).astype(numpy.float32, copy=False)
    else:
        array = numpy.zeros(0, numpy.float32)
    del pieces, floats, doubles  # release views of the mapped file
    return array.reshape(shape)


def _layers(buf, end):
    """Yield (name, [(offset, length) of each blob]) for every layer."""
    pos = 0
    found = False
    while pos < end:
        field, wire, value, pos = _next_field(buf, pos, end)
        if field not in LAYER_FIELDS:
            continue
        _expect(field, wire, LENGTH, 'NetParameter layer')
        found = True
        name_field, blobs_field = LAYER_FIELDS[field]
        name = None
        blobs = []
        p, stop = value[0], value[0] + value[1]
        while p < stop:
            f, w, v, p = _next_field(buf, p, stop)
            if f == name_field:
                _expect(f, w, LENGTH, 'layer name')
                name = _text(buf, v)
            elif f == blobs_field:
                _expect(f, w, LENGTH, 'layer blob')
                blobs.append(v)
        yield name, blobs
    if not found:
        raise _Corrupt('no layers in it')


def _text(buf, span):
    offset, length = span
    try:
        return bytes(buf[offset:offset + length]).decode('utf-8')
    except UnicodeDecodeError:
        raise _Corrupt('a layer name at offset {} is not UTF-8 text'.format(offset))


def _hint(head):
    """Say what a file that failed to parse looks like, if it is recognizable."""
    signatures = ((b'\xff\xd8\xff', 'a JPEG image'), (b'\x89PNG', 'a PNG image'),
                  (b'PK\x03\x04', 'a zip/npz archive'), (b'\x93NUMPY', 'a .npy array'),
                  (b'\x1f\x8b', 'gzip-compressed; decompress it first'),
                  (b'\x89HDF', 'an HDF5 file'))
    for magic, what in signatures:
        if head.startswith(magic):
            return '; it looks like {}'.format(what)
    sample = head[:4096]
    if sample and all(32 <= b < 127 or b in b'\t\r\n' for b in sample):
        return ('; it looks like a text file (an HTML error page instead of the '
                'download, or a .prototxt? the weights are in the binary .caffemodel)')
    return ''


def _open(path):
    """The file's bytes (a read-only mmap if possible) and a closing function."""
    if not os.path.isfile(path):
        raise InputError('{}: no such file'.format(path))
    try:
        with open(path, 'rb') as f:
            if os.fstat(f.fileno()).st_size == 0:
                raise InputError('{}: empty file, not a caffemodel'.format(path))
            try:
                mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            except (OSError, ValueError):  # a file system without mmap
                return f.read(), lambda: None
    except OSError as e:
        raise InputError('{}: cannot read it ({})'.format(path, e.strerror or e))

    def close():
        try:
            mapped.close()
        except BufferError:  # a view is still referenced (after an error); GC closes it
            pass
    return mapped, close


def read_layers(path, names=None):
    """Blobs of the layers in the caffemodel ``path``.

    Returns a dict mapping each layer name to the list of its blobs as
    float32 arrays (owned, not views of the file), each reshaped to its
    BlobProto shape. With ``names``, only those layers are decoded (the
    others are skipped unread) and only those found are returned. Layers
    without blobs map to an empty list; if a name occurs more than once, the
    first layer with blobs wins.

    Raises ``errors.InputError`` for a missing, unreadable, truncated or
    corrupt file, or one that is not a caffemodel.
    """
    wanted = None if names is None else set(names)
    buf, close = _open(path)
    try:
        result = {}
        for name, spans in _layers(buf, len(buf)):
            if name is None or (wanted is not None and name not in wanted):
                continue
            if result.get(name):
                continue
            result[name] = [_blob(buf, offset, length,
                                  'blob {} of layer {}'.format(i, name))
                            for i, (offset, length) in enumerate(spans)]
        return result
    except _Corrupt as e:
        raise InputError('{}: not a readable caffemodel ({}){}'.format(
            path, e, _hint(bytes(buf[:4096])))) from None
    except MemoryError:
        raise InputError('{}: not enough memory to read its weights'.format(path)) from None
    finally:
        close()
