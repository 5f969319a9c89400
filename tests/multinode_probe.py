"""Run train.main() under mpiexec and record what each rank did (tests only).

    mpiexec -n 2 python tests/multinode_probe.py RECORD.npz [--nan_on_rank R]
        [--signal_rank R] [--at_iteration K] -- TRAIN.PY ARGUMENTS

The real train.main() runs unchanged; the probe only watches it:

- every rank logs the dataset paths it loads, in order (its sub-dataset as
  the iterator walks it), so a test can replay the same global batches;
- after training, rank 0 writes RECORD.npz with every rank's final model
  arrays (``rank{r}/LINK/PARAM``, persistents included) and its loaded paths
  (``rank{r}/paths``).

``--nan_on_rank R`` makes rank R's loss NaN at iteration K, and
``--signal_rank R`` sends SIGTERM to rank R alone after iteration K: a
failure or a signal that only one process sees, which must not hang the job.
"""
import argparse
import os
import signal
import sys

from faststyle import chainer_compat  # noqa: F401,E402  (before Chainer: numpy 2, Py 3.12+)

import numpy  # noqa: E402
from chainer import serializers  # noqa: E402
from mpi4py import MPI  # noqa: E402

from faststyle import dataset  # noqa: E402
from faststyle import losses  # noqa: E402
import train  # noqa: E402
from faststyle import training  # noqa: E402
from faststyle import updater  # noqa: E402


def parse_args(argv):
    """Probe options, then ``--``, then train.py's arguments."""
    split = argv.index('--')
    p = argparse.ArgumentParser()
    p.add_argument('record')
    p.add_argument('--nan_on_rank', type=int, default=None)
    p.add_argument('--signal_rank', type=int, default=None)
    p.add_argument('--at_iteration', type=int, default=2)
    return p.parse_args(argv[:split]), argv[split + 1:]


def watch_loads(loaded):
    """Log the path of every example this process loads."""
    get_example = dataset.ImageDataset.get_example

    def logged(self, i):
        loaded.append(self.paths[i])
        return get_example(self, i)
    dataset.ImageDataset.get_example = logged


def capture_trainer(captured):
    build_trainer = training.build_trainer

    def build_and_keep(*args, **kwargs):
        trainer, vgg = build_trainer(*args, **kwargs)
        captured['trainer'] = trainer
        return trainer, vgg
    training.build_trainer = build_and_keep


def poison_loss(at_iteration):
    """This rank's loss becomes NaN in update ``at_iteration``."""
    perceptual_losses = losses.perceptual_losses
    calls = []

    def poisoned(*args, **kwargs):
        calls.append(1)
        loss_feat, loss_style, loss_tv = perceptual_losses(*args, **kwargs)
        if len(calls) == at_iteration:
            loss_feat = loss_feat * float('nan')
        return loss_feat, loss_style, loss_tv
    losses.perceptual_losses = poisoned


def signal_self_after(at_iteration):
    """SIGTERM to this process only, right after update ``at_iteration``."""
    update_core = updater.StyleTransferUpdater.update_core

    def update_then_signal(self):
        update_core(self)
        if self.iteration + 1 == at_iteration:  # iteration counts up after update_core
            os.kill(os.getpid(), signal.SIGTERM)
    updater.StyleTransferUpdater.update_core = update_then_signal


def model_arrays(trainer):
    model = trainer.updater.get_optimizer('main').target
    arrays = serializers.DictionarySerializer()
    arrays.save(model)
    return {key: numpy.asarray(value) for key, value in arrays.target.items()}


def main():
    args, train_args = parse_args(sys.argv[1:])
    rank = MPI.COMM_WORLD.rank
    loaded, captured = [], {}
    watch_loads(loaded)
    capture_trainer(captured)
    if args.nan_on_rank == rank:
        poison_loss(args.at_iteration)
    if args.signal_rank == rank:
        signal_self_after(args.at_iteration)
    status = train.main(train_args)
    if status:  # errors and signals: the exit status train.py would give
        sys.exit(status)

    mine = model_arrays(captured['trainer'])
    mine['paths'] = numpy.array(loaded, dtype=str)
    everyone = MPI.COMM_WORLD.gather(mine, root=0)
    if rank == 0:
        numpy.savez(args.record, **{'rank{}/{}'.format(r, key): value
                                    for r, arrays in enumerate(everyone)
                                    for key, value in arrays.items()})


if __name__ == '__main__':
    main()
