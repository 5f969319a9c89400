"""Data-parallel training over MPI with ChainerMN (ships inside Chainer 7).

``mpiexec -n N python train.py ... --communicator NAME`` runs N copies of
train.py. Each process trains on its 1/N of the dataset; ChainerMN averages
the gradients over the processes before every Adam step, so the N nets stay
identical and the group trains like one process on batches of N x -b images.

Every collective operation (allreduce, broadcast, barrier) must be entered by
every process in the same order, or the job hangs until the cluster kills
it. Hence the rules kept here:

- anything that ends training (a diverged loss, Ctrl-C/SIGTERM) is decided
  by all processes together, after the same iteration;
- only rank 0 writes files, but the values it writes (BatchNormalization
  running averages) are first averaged over all processes;
- an error seen by one process only aborts the whole MPI job.
"""
import math
import os
import sys
import time

import chainer
from chainer import training

from faststyle import trainer_extensions
from faststyle.errors import InputError, Interrupted
from faststyle.updater import DivergedError, StyleTransferUpdater

# What chainermn.create_communicator accepts in Chainer 7 ('hierarchical',
# 'two_dimensional' and 'single_node' were removed in v7).
COMMUNICATORS = ('pure_nccl', 'non_cuda_aware', 'flat', 'naive')
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


def gpu_for_process(comm):
    """The GPU id of this process: ``intra_rank``, wrapped to the GPUs it can see.

    With every GPU of a node visible (``mpiexec``, ``srun --gpus-per-node``)
    the processes of a node take GPUs 0, 1, ...; when the scheduler shows
    each task only its own GPU (``srun --gpus-per-task=1``), that is GPU 0.
    """
    from chainer.backends import cuda
    if not cuda.available:
        return comm.intra_rank  # let chainer.get_device report what is missing
    try:
        visible = cuda.cupy.cuda.runtime.getDeviceCount()
    except Exception:  # no device or driver: chainer.get_device says so
        return comm.intra_rank
    return comm.intra_rank % max(1, visible)


def setup_optimizer(optimizer, model, comm):
    """Wrap ``optimizer`` in ChainerMN's multi-node optimizer, set up on ``model``.

    Rank 0's weights are broadcast here. Left to itself, ChainerMN's
    optimizer broadcasts in its first ``update()`` and throws that step's
    gradients away; as each resumed run is a new process, every resume would
    then lose one step. Broadcasting now and letting the optimizer record the
    parameter set makes every step a real one, so N processes reproduce one
    process on the same global batches.
    """
    import chainermn
    optimizer = chainermn.create_multi_node_optimizer(optimizer, comm)
    optimizer.setup(model)
    comm.bcast_data(model)
    optimizer.is_changed(model)  # records the parameters: no broadcast in update()
    return optimizer


class MultiNodeUpdater(StyleTransferUpdater):
    """StyleTransferUpdater whose divergence check is decided by all processes.

    A rank that raised DivergedError on its own would leave the others waiting
    in the gradient allreduce forever; so the ranks count the non-finite
    losses together and all stop, before any update, if there is one.
    """

    def __init__(self, iterator, optimizer, vgg, style, device, config, comm):
        super().__init__(iterator, optimizer, vgg, style, device, config)
        self.comm = comm

    def check_finite(self, value):
        diverged = self.comm.allreduce_obj(0 if math.isfinite(value) else 1)
        if diverged:
            raise DivergedError('the loss became non-finite in {} of {} processes at '
                                'iteration {} (here: {})'.format(
                                    diverged, self.comm.size, self.iteration + 1, value))


def average_persistents(model, comm):
    """Average the BatchNormalization running means and variances over ranks.

    Each process normalizes with its own batch statistics (as CFNS, whose
    BatchNormalization is per batch), so each accumulates its own running
    averages. Averaging them before a save writes the estimate over all the
    data, and leaves every rank with the same model.

    The values go through host memory: ChainerMN's AllreducePersistent hands
    GPU pointers to MPI, which needs a CUDA-aware MPI even with pure_nccl.
    They are a few thousand numbers, averaged only before saves.
    """
    import numpy
    host = chainer.backend.CpuDevice()
    for _, link in sorted(model.namedlinks()):
        for name in sorted(link._persistent):  # Chainer 7 has no public list of them
            value = getattr(link, name)
            if getattr(value, 'dtype', numpy.dtype(int)).kind != 'f':
                # Integer counters such as BatchNormalization.N, and the
                # residual rates (net.DILATION_KEY), the same on every rank.
                continue
            local = numpy.ascontiguousarray(host.send(value), dtype=numpy.float64)
            total = numpy.empty_like(local)
            comm.mpi_comm.Allreduce(local, total)
            value[...] = chainer.backend.get_device_from_array(value).send(
                (total / comm.size).astype(value.dtype))


def snapshot_trigger(checkpoint):
    """Fires when rank 0 saves a snapshot: every epoch and at each CFNS checkpoint.

    Stateless (unlike IntervalTrigger, whose state only rank 0's .state would
    keep), so it fires at the same iterations on every rank after a resume.
    """
    def fires(trainer):
        updater = trainer.updater
        return bool(updater.is_new_epoch or trainer_extensions.is_checkpoint(trainer, checkpoint))
    return fires


def average_before_snapshots(model, comm, checkpoint):
    """The all-rank extension that runs :func:`average_persistents` before rank 0's savers."""
    @training.make_extension(trigger=snapshot_trigger(checkpoint),
                             priority=training.PRIORITY_WRITER + 1)
    def average_running_statistics(trainer):
        average_persistents(model, comm)
    return average_running_statistics


class CollectiveStopOnSignal(trainer_extensions.StopOnSignal):
    """StopOnSignal for all processes: any rank's signal stops all of them together.

    ``mpiexec`` forwards Ctrl-C and SIGTERM to every process and SLURM
    signals every task, but each sees it at its own moment: one could stop
    after iteration k while another is already waiting in the allreduce of
    k + 1. So after each iteration the ranks ask each other (one tiny
    allreduce); if any was signalled, all stop after that same iteration,
    rank 0 saves, and the others wait until the files are complete.
    """

    def __init__(self, snapshots, model, comm):
        super().__init__(snapshots)
        self.model = model
        self.comm = comm

    def __call__(self, trainer):
        signalled = self.comm.allreduce_obj(0 if self.signal_name is None else 1)
        if not signalled or trainer.stop_trigger(trainer):  # the same on every rank
            return
        average_persistents(self.model, self.comm)
        if self.comm.rank == 0:
            self.snapshots.save(trainer)
        self.comm.mpi_comm.Barrier()  # no rank exits while rank 0 writes
        raise Interrupted('{} at iteration {}'.format(
            self.signal_name or 'a signal to another process', trainer.updater.iteration))


ABORT_GRACE_SECONDS = 1.0


def abort(comm, message):
    """Print ``message`` and end the whole MPI job.

    A process that just exited would hang in MPI_Finalize while the others
    wait for it in a collective operation; MPI_Abort ends them all.
    """
    sys.stdout.flush()
    print(message if comm.rank == 0 else 'rank {}: {}'.format(comm.rank, message),
          file=sys.stderr, flush=True)
    # The launcher forwards a process's output to the terminal on its own
    # time; MPI_Abort right after printing can end the job before the message
    # got there (seen with MPICH's mpiexec: an empty stderr).
    time.sleep(ABORT_GRACE_SECONDS)
    comm.mpi_comm.Abort(1)
    os._exit(1)  # MPICH's MPI_Abort can return before the launcher kills us


def abort_on_uncaught_exceptions():
    """An uncaught exception in any process aborts the MPI job instead of hanging it."""
    import chainermn.global_except_hook
    chainermn.global_except_hook.add_hook()


def is_writer(comm):
    """True in the one process that prints and writes files."""
    return comm is None or comm.rank == 0


def describe_group(comm, batchsize):
    return '{} processes ({} per node), effective batch {} = {} x -b {}'.format(
        comm.size, comm.intra_size, comm.size * batchsize, comm.size, batchsize)
