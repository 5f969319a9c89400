"""chainer_compat: Chainer 7.8.1 imports and runs, each shim only where needed."""
import importlib.util
import sys

import numpy

import chainer
import chainer.functions as F

from faststyle import chainer_compat

NUMPY_2 = not numpy.__version__.startswith('1.')


def test_numpy_is_left_as_it_was():
    # The sctypes shim lives in as_strided's own `np`, not in numpy.
    assert hasattr(numpy, 'sctypes') == (not NUMPY_2)


def test_as_strided_backward_reads_sctypes():
    # chainer/functions/array/as_strided.py line 252 runs in backward.
    x = chainer.Variable(numpy.arange(6, dtype=numpy.float32))
    y = F.as_strided(x, (2, 2), (2, 1))  # strides in elements: [0 1], [2 3]
    F.sum(y * y).backward()
    numpy.testing.assert_array_equal(x.grad, [0, 2, 4, 6, 0, 0])


def test_environment_check_is_replaced_only_where_it_cannot_import():
    real = sys.modules['chainer._environment_check']
    can_import = (not NUMPY_2 and sys.version_info < (3, 12)
                  and importlib.util.find_spec('pkg_resources') is not None)
    assert (getattr(real, '__file__', None) is not None) == can_import
    assert chainer_compat._environment_check_breaks() == (not can_import)


def test_apply_is_idempotent():
    before = sys.modules['chainer']
    chainer_compat.apply()
    assert sys.modules['chainer'] is before
