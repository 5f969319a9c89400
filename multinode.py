"""Data-parallel training over MPI with ChainerMN (ships inside Chainer 7)."""
from errors import InputError

COMMUNICATORS = ('naive', 'flat', 'hierarchical', 'two_dimensional',
                 'pure_nccl', 'single_node', 'non_cuda_aware')
INSTALL_HINT = ('install the MPI extras with `pip install -r requirements-mpi.txt` '
                'and start with `mpiexec -n N python train.py ...`')


def create_communicator(name):
    """A ChainerMN communicator, or a one-line InputError saying what is missing."""
    try:
        import mpi4py.MPI  # noqa: F401  (ChainerMN needs it; fail clearly here)
    except ImportError as e:
        raise InputError('--communicator needs mpi4py and an MPI library ({}); {}'.format(
            e, INSTALL_HINT))
    import chainermn
    try:
        return chainermn.create_communicator(name)
    except Exception as e:  # e.g. NCCL communicators without CuPy/NCCL
        raise InputError('cannot create the {!r} communicator: {}'.format(name, e))
