"""CFNS's ``-g N`` and Chainer's device specifiers, shared by every command;
how the CPU's memory is handed out to a training."""
import ctypes
import importlib.util
import platform

import chainer

from faststyle.errors import InputError


def add_device_arguments(parser, what='the net'):
    parser.add_argument('-g', '--gpu', type=int, default=-1,
                        help='GPU id for {}, -1 for the CPU'.format(what))
    parser.add_argument('--device', default=None,
                        help="Chainer device specifier, e.g. '@numpy' or '@cupy:1' "
                             '(overrides -g)')


def specifier(gpu, device=None):
    """``--device`` if given, else ``@cupy:GPU`` for GPU >= 0, else ``@numpy``."""
    return device or ('@cupy:{}'.format(gpu) if gpu >= 0 else '@numpy')


def get_device(spec, task='run'):
    """chainer.get_device, with a one-line InputError for unusable devices.

    ``spec`` is a specifier or a chainer Device; ``task`` ('run', 'train')
    completes the advice given when a GPU is asked for where CuPy cannot be
    used."""
    if (isinstance(spec, str) and spec.startswith('@cupy')
            and not chainer.backends.cuda.available):
        # Chainer's own message glues two sentences together and does not say
        # what to do; a user who copied a '-g 0' example needs the way out.
        problem = ('CuPy is not installed' if importlib.util.find_spec('cupy') is None
                   else 'CuPy finds no usable CUDA GPU')
        # Either flag may have asked for it (-g 0 or --device @cupy:0).
        raise InputError('no GPU can be used here ({}), and device {} needs one; '
                         'drop -g/--device (or use -g -1) to {} on the CPU'.format(
                             problem, spec, task))
    try:
        return chainer.get_device(spec)
    except Exception as e:  # unknown specifier, no such GPU
        reason = ' '.join(str(e).split())
        raise InputError('device {!r} cannot be used: {}'.format(spec, reason))


# glibc's mallopt parameters (malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4


def keep_freed_memory():
    """Let the process keep the memory it frees and hand it out again (glibc).

    A CPU training step allocates and frees the same large arrays every step
    (im2col matrices of up to 150 MB at 256 px). By default glibc maps each
    array above 32 MB (and, until its threshold adapts, above 128 kB) from
    the kernel and unmaps it when freed, so every step faults all of those
    pages in again: a third of the step's CPU time went to the kernel. Served
    from the heap and never trimmed, they are faulted in once. The process
    holds its peak until it exits, which a training reaches every step
    anyway. Returns whether the allocator took the settings (False off glibc)."""
    if platform.libc_ver()[0] != 'glibc':
        return False
    mallopt = ctypes.CDLL(None).mallopt  # the process's own libc
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    results = [mallopt(M_MMAP_MAX, 0), mallopt(M_TRIM_THRESHOLD, 2**31 - 1)]
    return all(results)
