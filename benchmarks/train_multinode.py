"""Seconds per training iteration at 1 and 2 MPI processes, and bytes allreduced per step.

    python -m benchmarks.train_multinode [--image_size 128] [--steps 3]

Runs train.py's own set-up (communicator, device, scattered dataset,
build_trainer) in three ways: one process without MPI, ``mpiexec -n 1`` and
``mpiexec -n 2`` with the 'naive' communicator, and times the updater's
steps (forward, backward, gradient allreduce, Adam) after one warm-up step.
It also times the gradient allreduce alone, and counts the bytes it moves.

On a 2-core CPU the two processes share the cores, so this measures the
overhead of data parallelism, not its speed-up; see docs/cluster.md for what
to expect on GPUs. VGG16 weights default to random stand-in ones: fine for
timing, meaningless as a style.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from faststyle import chainer_compat  # noqa: F401  (before Chainer: numpy 2, Py 3.12+)
from faststyle import cli


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                formatter_class=cli.HelpFormatter)
    p.add_argument('--image_size', type=int, default=128)
    p.add_argument('--batchsize', '-b', type=int, default=1, help='per process')
    p.add_argument('--steps', type=int, default=3, help='timed steps after one warm-up')
    p.add_argument('--dataset', '-d', default=os.path.join(ROOT, 'sample_images'))
    p.add_argument('--style_image', '-s',
                   default=os.path.join(ROOT, 'sample_images', 'style.jpg'))
    p.add_argument('--vgg', default=None,
                   help='VGG16 weights (default: random stand-in weights in a temp file)')
    p.add_argument('--communicator', default=None,
                   help=argparse.SUPPRESS)  # set for the measuring processes
    p.add_argument('--measure', action='store_true', help=argparse.SUPPRESS)
    p.add_argument('--timeout', type=int, default=600, help='seconds per run')
    return p.parse_args(argv)


def train_config(args):
    from faststyle import training
    return training.TrainConfig(
        style_image=args.style_image, dataset=args.dataset, vgg=args.vgg,
        image_size=args.image_size, batchsize=args.batchsize, no_progress=True,
        preview_interval=0, output='benchmark', communicator=args.communicator)


def measure(args):
    """In each measuring process: time steps and the allreduce; rank 0 prints JSON."""
    import numpy

    from faststyle import multinode
    from faststyle import training
    config = train_config(args)
    comm = multinode.create_communicator(args.communicator) if args.communicator else None
    device = training.get_device(config, comm)
    train_data = training.open_training_data(config, comm).data
    trainer, _ = training.build_trainer(config, device, train_data, comm)
    updater = trainer.updater
    model = updater.get_optimizer('main').target

    def synchronize():
        if device.xp is not numpy:  # GPU kernels run asynchronously
            device.device.synchronize()
        if comm is not None:
            comm.mpi_comm.Barrier()

    updater.update()  # warm-up (first allocations, the first batch's reads)
    synchronize()
    start = time.perf_counter()
    for _ in range(args.steps):
        updater.update()
    synchronize()
    step = (time.perf_counter() - start) / args.steps

    allreduce = None
    if comm is not None:
        repeats = 10
        start = time.perf_counter()
        for _ in range(repeats):
            comm.multi_node_mean_grad(model)
        synchronize()
        allreduce = (time.perf_counter() - start) / repeats

    parameters = sum(param.size for param in model.params())
    gradient_bytes = sum(param.size * param.dtype.itemsize for param in model.params())
    if comm is None or comm.rank == 0:
        print(json.dumps({
            'processes': 1 if comm is None else comm.size,
            'communicator': args.communicator or 'none (no MPI)',
            'batch_per_process': args.batchsize,
            'seconds_per_iteration': step,
            'allreduce_seconds': allreduce,
            'parameters': parameters,
            'gradient_bytes': gradient_bytes,
        }), flush=True)


def run(args, processes):
    """One measuring run; ``processes`` None means without MPI at all."""
    command = [sys.executable, '-m', 'benchmarks.train_multinode', '--measure',
               '--image_size', str(args.image_size), '-b', str(args.batchsize),
               '--steps', str(args.steps), '-d', args.dataset, '-s', args.style_image,
               '--vgg', args.vgg]
    if processes is not None:
        mpiexec = os.path.join(os.path.dirname(sys.executable), 'mpiexec')
        command = [mpiexec, '-n', str(processes)] + command + ['--communicator', 'naive']
    with tempfile.TemporaryDirectory() as cwd:  # build_trainer's models/ dir goes here
        result = subprocess.run(command, cwd=cwd, env=dict(os.environ, PYTHONPATH=ROOT),
                                capture_output=True, text=True,
                                timeout=args.timeout)
    if result.returncode != 0:
        sys.exit('benchmark run failed: {}\n{}{}'.format(
            ' '.join(command), result.stdout, result.stderr))
    return json.loads([line for line in result.stdout.splitlines()
                       if line.startswith('{')][-1])


def report(rows, args, load_before, load_after):
    print('train step, {0}x{0}, -b {1} per process, {2} timed steps '
          '(CPU, {3} cores; 1-min load average {4:.1f} before, {5:.1f} after: '
          'other work on the machine slows every row)'.format(
              args.image_size, args.batchsize, args.steps, os.cpu_count(),
              load_before, load_after))
    print()
    print('| processes | communicator | global batch | s/iteration | images/s '
          '| allreduce alone, s |')
    print('| --- | --- | --- | --- | --- | --- |')
    for row in rows:
        batch = row['processes'] * row['batch_per_process']
        print('| {} | {} | {} | {:.3f} | {:.2f} | {} |'.format(
            row['processes'], row['communicator'], batch, row['seconds_per_iteration'],
            batch / row['seconds_per_iteration'],
            '-' if row['allreduce_seconds'] is None
            else '{:.4f}'.format(row['allreduce_seconds'])))
    params, size = rows[0]['parameters'], rows[0]['gradient_bytes']
    print()
    print('allreduced per step: {:,} parameters = {:.1f} MB of float32 gradients; '
          'a ring allreduce sends and receives 2(N-1)/N x that per process '
          '({:.1f} MB at N = 2).'.format(params, size / 1e6, size / 1e6))


def main():
    args = parse_args()
    if args.measure:
        measure(args)
        return
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as scratch:
        if args.vgg is None:
            from faststyle import vgg16_weights
            args.vgg = os.path.join(scratch, 'vgg16_stand_in.model')
            vgg16_weights.save_arrays(args.vgg, vgg16_weights.random_weights(seed=0))
        rows = [run(args, None), run(args, 1), run(args, 2)]
    report(rows, args, load_before, os.getloadavg()[0])


if __name__ == '__main__':
    main()
