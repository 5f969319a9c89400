"""Let Chainer 7.8.1 (the last release, 2020) import and run on today's stack.

Every entry point imports this module before anything that imports Chainer::

    from faststyle import chainer_compat  # noqa: F401  (before Chainer: numpy 2, Py 3.12+)

Importing it imports Chainer once, with the shims below applied; later
``import chainer`` statements get that module. Each shim is applied only where
its break exists (a missing attribute or module, or the numpy or Python
version that removed it), names the Chainer line it serves, and changes
nothing else. Python 3.8-3.13, numpy 1.21-2.x.

Breaks found by running this project's test suite on Python 3.12 with numpy 2
(and setuptools >= 81):

* ``chainer/functions/array/as_strided.py`` line 10 and 252 read
  ``np.sctypes``, removed in numpy 2.0: ``import chainer`` fails.
* ``chainer/_environment_check.py`` lines 6-7 import ``numpy.distutils``
  (gone in numpy 2.0 and on Python 3.12) and ``pkg_resources`` (gone in
  setuptools 81): ``import chainer`` fails.

Known breaks in Chainer that this project does not reach, so not shimmed:
``numpy.float`` in ``F.resize_images`` (``compute_indices_and_weights``; the
nets upsample with ``F.unpooling_2d``), and ``xp.array(v, copy=False,
dtype=...)`` in ``chainermn/communicators/_memory_utility.py``
``unpack_params``, reached only when a communicator's
``allreduce_grad_dtype`` differs from the parameters' dtype (multinode.py
never sets it).
"""
import importlib.util
import sys
import types

import numpy


class _NumpyWith(types.ModuleType):
    """numpy plus the given names, for one Chainer module's ``np`` global."""

    def __init__(self, **names):
        super().__init__('numpy')
        self.__dict__.update(names)

    def __getattr__(self, name):
        return getattr(numpy, name)


def _sctypes():
    # The two keys Chainer reads, with numpy 1.x's members (longdouble is
    # float128 on x86-64 Linux; numpy 1.x listed it under 'float').
    floats = [numpy.float16, numpy.float32, numpy.float64]
    if numpy.dtype(numpy.longdouble) != numpy.dtype(numpy.float64):
        floats.append(numpy.longdouble)
    return {'int': [numpy.int8, numpy.int16, numpy.int32, numpy.int64],
            'float': floats}


def _environment_check_stub():
    # Stands in for chainer/_environment_check.py. Its checks are: Python
    # 3.5.0 (impossible here), numpy on macOS's Accelerate (numpy.distutils
    # is how it looks, and numpy >= 2.0 supports the new Accelerate), and a
    # warning when the installed CuPy is not the 7.x Chainer was released
    # with (every CuPy that runs on a current GPU is newer; the README
    # already says to silence that warning).
    module = types.ModuleType('chainer._environment_check')
    module.check = lambda: None
    return module


def _environment_check_breaks():
    # chainer/_environment_check.py lines 6-7: `import numpy.distutils.
    # system_info` and `import pkg_resources`. numpy.distutils does not exist
    # in numpy >= 2.0, nor in numpy 1.26 on Python >= 3.12 (no distutils);
    # pkg_resources does not exist in setuptools >= 81.
    no_distutils = (not numpy.__version__.startswith('1.')
                    or sys.version_info >= (3, 12)
                    or importlib.util.find_spec('numpy.distutils') is None)
    return no_distutils or importlib.util.find_spec('pkg_resources') is None


def apply():
    """Import Chainer with the shims its environment needs. Idempotent."""
    if 'chainer' in sys.modules:
        return  # imported already (by this function, or it imported fine)
    if _environment_check_breaks():
        sys.modules['chainer._environment_check'] = _environment_check_stub()

    sctypes_missing = not hasattr(numpy, 'sctypes')
    if sctypes_missing:
        # as_strided.py line 10 (`index_dtype = {... np.sctypes['int']}`) runs
        # at import time: numpy gets the attribute only while Chainer imports.
        numpy.sctypes = _sctypes()
    try:
        import chainer  # noqa: F401  (the import this module exists for)
        import chainer.functions.array.as_strided as as_strided
    finally:
        if sctypes_missing:
            del numpy.sctypes
    if sctypes_missing:
        # as_strided.py line 252 (`gy.dtype not in np.sctypes['float']`) runs
        # in backward: that module alone sees a numpy with sctypes.
        as_strided.np = _NumpyWith(sctypes=_sctypes())


apply()
