"""faststyle/npz.py: .model, .state and VGG16 files are read without running
code, only the members looked up, each checked before it is used."""
import zipfile

import numpy
import pytest

from faststyle import crops
import net
from faststyle import npz
from faststyle.errors import InputError
from conftest import model_arrays, write_npz


def huge_member(declared_shape):
    """The bytes of an .npy whose header declares ``declared_shape`` float32."""
    header = "{{'descr': '<f4', 'fortran_order': False, 'shape': {}, }}".format(
        declared_shape).encode()
    header += b' ' * (63 - (len(header) + 10) % 64) + b'\n'
    return b'\x93NUMPY\x01\x00' + len(header).to_bytes(2, 'little') + header + b'\0' * 16


def test_only_the_members_a_model_needs_are_read(model_path):
    with zipfile.ZipFile(model_path, 'a') as archive:
        archive.writestr('unused.npy', huge_member((10 ** 12,)))
    model = net.load_model(model_path)  # the unused member is never read
    assert model.arch == 'resize'
    arrays = npz.open_npz(model_path)
    with pytest.raises(InputError, match='declares 4000000000000 bytes'):
        arrays['unused']


def test_declared_size_must_match_the_archive(tmp_path, model_path):
    arrays = model_arrays(model_path)
    del arrays['c1/W']
    path = write_npz(str(tmp_path / 'lying.model'), arrays)
    with zipfile.ZipFile(path, 'a') as archive:
        archive.writestr('c1/W.npy', huge_member((32, 3, 9, 9)))  # holds 16 bytes
    # A member that declares more data than it holds is corrupt, not allocated.
    with pytest.raises(InputError, match='c1/W is truncated or corrupt .its header '
                                         'declares 31104 bytes of data, the archive holds 16'):
        net.load_model(path)


@pytest.mark.parametrize('change, message', [
    (lambda a: a.__setitem__('c1/W', a['c1/W'] * numpy.float32('nan')), 'NaN or infinite'),
    (lambda a: a.__setitem__('b2/avg_var', a['b2/avg_var'] + numpy.float32('inf')),
     'NaN or infinite'),
    (lambda a: a.__setitem__('c1/W', numpy.float32(0.5)), r'c1/W has shape \(\)'),
    (lambda a: a.__setitem__('c1/W', a['c1/W'].astype(numpy.float64)), 'float64'),
    (lambda a: a.__setitem__('c1/b', a['c1/b'].astype('>f4')), r'>f4'),
    (lambda a: a.__setitem__('c1/b', a['c1/b'].astype(numpy.int32)), 'int32'),
])
def test_wrong_weights_are_refused(tmp_path, model_path, change, message):
    arrays = model_arrays(model_path)
    change(arrays)
    path = write_npz(str(tmp_path / 'bad.model'), arrays)
    with pytest.raises(InputError, match=message):
        net.load_model(path)


def test_messages_say_what_is_wrong(tmp_path, model_path):
    data = open(model_path, 'rb').read()
    truncated = tmp_path / 'truncated.model'
    truncated.write_bytes(data[:len(data) // 2])
    with pytest.raises(InputError, match='truncated or corrupt'):
        net.load_model(str(truncated))
    big_header = str(tmp_path / 'big_header.model')
    with zipfile.ZipFile(big_header, 'w') as archive:
        header = b"{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }"
        header += b' ' * (20000 - len(header) - 1) + b'\n'
        archive.writestr('c1/W.npy', b'\x93NUMPY\x02\x00' + len(header).to_bytes(4, 'little')
                         + header + b'\0\0\0\0')
    with pytest.raises(InputError, match='array header is over 10000 bytes') as e:
        net.load_model(big_header)
    assert 'pickle' not in str(e.value)
    with pytest.raises(InputError, match='is a file, not a directory'):
        crops.list_images(model_path)
