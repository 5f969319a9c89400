"""CFNS's ``-g N`` and Chainer's device specifiers, shared by every command."""
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


def get_device(spec):
    """chainer.get_device, with a one-line InputError for unusable devices."""
    try:
        return chainer.get_device(spec)
    except Exception as e:  # unknown specifier, CuPy missing, no such GPU
        reason = ' '.join(str(e).split())
        raise InputError('device {!r} cannot be used: {}'.format(spec, reason))
