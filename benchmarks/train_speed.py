"""Seconds per training step, share of the CPU's matmul peak, peak memory.

    python -m benchmarks.train_speed [--sizes 128 256] [--steps 6] [--baseline REV] [--repeat N]

Each configuration runs in its own process (so peak memory is its own) on
stand-in VGG16 weights (random, CFNS layout: speed does not depend on the
values), on the shipped photos, batch 1, with ``--loss_margin 0`` (the whole
crop: the objective of earlier builds). ``--baseline REV`` also runs every
configuration in a copy of the repository at git revision REV (``git
archive``), side by side in the same run, and compares the losses of the
first step: the same objective gives the same losses.

The share of the peak counts the minimum work of a step, not what the code
happens to compute: the transform net forward and backward (three times its
forward multiply-adds; twice with L_pop, for x and x + N), VGG16 to relu4_3
forward and input gradient on the output (twice its forward), and the content
target through relu3_3 (once). The peak is numpy's float32 matmul rate,
measured in this run.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if __name__ == '__main__' and '--worker' in sys.argv:
    # A worker times the code of the tree it is pointed at (PYTHONPATH), not
    # necessarily this one: nothing of this tree may come first on the path.
    sys.path.remove(os.path.dirname(os.path.abspath(__file__)))

from faststyle import chainer_compat  # noqa: F401  (before Chainer: numpy 2, Py 3.12+)

CONFIGURATIONS = (('resize', 0), ('resize', 1000), ('deconv', 0), ('deconv', 1000))
LOSS_TERMS = ('main/loss_feat', 'main/loss_style', 'main/loss_tv', 'main/loss_pop')
# VGG16's convolutions up to relu4_3: (input channels, output channels, pixel
# fraction of the input size), 3x3 each; relu3_3 is after the first seven.
VGG_LAYERS = ((3, 64, 1), (64, 64, 1), (64, 128, 1 / 4), (128, 128, 1 / 4),
              (128, 256, 1 / 16), (256, 256, 1 / 16), (256, 256, 1 / 16),
              (256, 512, 1 / 64), (512, 512, 1 / 64), (512, 512, 1 / 64))


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def benchmark_trainer(device, size, lambda_noise, workdir, arch='deconv', vgg_path=None,
                      extra_flags=()):
    """train.py's trainer on the shipped photos with stand-in VGG16 weights
    (the same cost as real ones), for timing steps; gpu_check.py uses it too."""
    from faststyle import dataset
    import train
    from faststyle import vgg16_weights
    if vgg_path is None:
        vgg_path = os.path.join(workdir, 'vgg16.model')
        vgg16_weights.save_arrays(vgg_path, vgg16_weights.random_weights())
    images = os.path.join(ROOT, 'sample_images')
    args = train.parse_args(['-s', os.path.join(images, 'style.jpg'), '-d', images,
                             '--vgg', vgg_path, '--image_size', str(size),
                             '--arch', arch, '--lambda_noise', str(lambda_noise),
                             '-o', os.path.join(workdir, 'bench.model')]
                            + list(extra_flags))
    data, _ = dataset.open_dataset(images, size)
    # The worker also runs on older revisions (--baseline), so it speaks
    # train.py's flags, the interface every revision has, and finds
    # build_trainer where that revision keeps it.
    try:
        from faststyle.training import build_trainer
    except ImportError:
        build_trainer = train.build_trainer
    trainer, _ = build_trainer(args, device, data)
    return trainer


def worker(size, lambda_noise, arch, steps, vgg_path, extra_flags):
    """Time ``steps`` training steps after one warm-up; print a JSON line."""
    import chainer
    with tempfile.TemporaryDirectory() as workdir:
        updater = benchmark_trainer(chainer.get_device('@numpy'), size, lambda_noise,
                                    workdir, arch, vgg_path, extra_flags).updater
        reporter = chainer.Reporter()
        reporter.add_observer('main', updater.get_optimizer('main').target)
        first = {}
        with reporter.scope(first):
            updater.update()  # also the warm-up: allocations, first-call overheads
        first = {key: float(getattr(value, 'array', value)) for key, value in first.items()}
        times = []
        for _ in range(steps):
            start = time.perf_counter()
            updater.update()
            times.append(time.perf_counter() - start)
    print(json.dumps({'seconds': statistics.median(times), 'peak_mb': peak_rss_mb(),
                      'first_losses': first}))


def measure(tree, size, lambda_noise, arch, steps, vgg_path, extra_flags=()):
    """Run a worker on the code of ``tree`` (a repository root)."""
    env = dict(os.environ, PYTHONPATH=tree)
    job = json.dumps({'size': size, 'lambda_noise': lambda_noise, 'arch': arch,
                      'steps': steps, 'vgg_path': vgg_path,
                      'extra_flags': list(extra_flags)})
    out = subprocess.run(
        [sys.executable, os.path.abspath(__file__), '--worker', job],
        cwd=tree, env=env, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit('error: the worker failed in {}:\n{}'.format(tree, out.stderr))
    return json.loads(out.stdout.strip().splitlines()[-1])


def minimum_flops(size, arch, lambda_noise):
    """FLOPs of the minimum work of one step (see the module's docstring)."""
    from benchmarks.generate_speed import multiply_adds
    import net
    transform = 2 * multiply_adds(net.FastStyleNet(arch), size, size)
    vgg_to = [2 * 9 * size * size * sum(c_in * c_out * fraction
                                         for c_in, c_out, fraction in VGG_LAYERS[:n])
              for n in (7, 10)]
    passes = 2 if lambda_noise else 1
    return passes * 3 * transform + 2 * vgg_to[1] + vgg_to[0]


def export_tree(revision, directory):
    """The files of git ``revision`` of this repository, written into ``directory``."""
    archive = subprocess.run(['git', '-C', ROOT, 'archive', revision],
                             capture_output=True, check=True).stdout
    os.makedirs(directory)
    subprocess.run(['tar', '-x', '-C', directory], input=archive, check=True)
    return directory


def fastest(runs):
    """The run with the fewest seconds a step, with the highest peak memory of
    all runs (memory, unlike time, is not what noise inflates)."""
    best = dict(min(runs, key=lambda run: run['seconds']))
    best['peak_mb'] = max(run['peak_mb'] for run in runs)
    return best


def margin_flags(tree):
    """``--loss_margin 0`` where the tree's train.py has the flag (builds
    before it trained on the whole crop, which is what the flag asks for)."""
    sources = [os.path.join(tree, name) for name in ('train.py', 'faststyle/training.py')]
    known = any(os.path.exists(path) and '--loss_margin' in open(path).read()
                for path in sources)
    return ['--loss_margin', '0'] if known else []


def loss_difference(ours, theirs):
    """Largest relative difference of the first step's loss terms."""
    worst = 0.0
    for key in LOSS_TERMS:
        a, b = ours.get(key, 0.0), theirs.get(key, 0.0)
        if a or b:
            worst = max(worst, abs(a - b) / max(abs(a), abs(b)))
    return worst


def main():
    from benchmarks.generate_speed import matmul_peak
    from faststyle import cli
    from faststyle import vgg16_weights
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                     formatter_class=cli.HelpFormatter)
    parser.add_argument('--sizes', type=int, nargs='+', default=[128, 256],
                        help='training image sizes')
    parser.add_argument('--steps', type=int, default=6,
                        help='timed steps per configuration (the median is shown)')
    parser.add_argument('--archs', nargs='+', default=['resize', 'deconv'],
                        choices=['resize', 'deconv'], help='transform net layouts')
    parser.add_argument('--repeat', type=int, default=1,
                        help='runs of each configuration (and of the baseline, '
                             'alternating); the fastest is shown: a loaded or '
                             'noisy machine only ever slows a run down')
    parser.add_argument('--baseline', metavar='REV', default=None,
                        help='also time git revision REV of this repository, side by side')
    parser.add_argument('--worker', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(**json.loads(args.worker))

    with tempfile.TemporaryDirectory() as workdir:
        vgg_path = os.path.join(workdir, 'vgg16.model')
        vgg16_weights.save_arrays(vgg_path, vgg16_weights.random_weights())
        baseline = None
        if args.baseline:
            baseline = export_tree(args.baseline, os.path.join(workdir, 'baseline'))
        peak = matmul_peak()
        print('CPU, batch 1, stand-in VGG16 weights, --loss_margin 0, median of {} '
              'steps, fastest of {} run(s) (peak MB: the highest); numpy float32 '
              'matmul peak {:.0f} GFLOP/s'.format(
                  args.steps, args.repeat, peak))
        if baseline:
            print('baseline: git revision {}, run side by side'.format(args.baseline))
        header = ['size', 'arch', 'L_pop', 's/step', 'GFLOP', 'peak%', 'peak MB']
        if baseline:
            header += ['base s/step', 'speed-up', 'base MB', 'losses differ']
        print(' '.join('{:>13}'.format(h) for h in header))
        for size in args.sizes:
            for arch, lambda_noise in CONFIGURATIONS:
                if arch not in args.archs:
                    continue
                runs = [measure(ROOT, size, lambda_noise, arch, args.steps, vgg_path,
                                margin_flags(ROOT))]
                base_runs = []
                for repeat in range(args.repeat):
                    if repeat:
                        runs.append(measure(ROOT, size, lambda_noise, arch, args.steps,
                                            vgg_path, margin_flags(ROOT)))
                    if baseline:
                        base_runs.append(measure(baseline, size, lambda_noise, arch,
                                                 args.steps, vgg_path, margin_flags(baseline)))
                ours = fastest(runs)
                flops = minimum_flops(size, arch, lambda_noise)
                row = [size, arch, 'yes' if lambda_noise else 'no',
                       '{:.3f}'.format(ours['seconds']), '{:.1f}'.format(flops / 1e9),
                       '{:.0f}%'.format(100 * flops / ours['seconds'] / 1e9 / peak),
                       '{:.0f}'.format(ours['peak_mb'])]
                if baseline:
                    theirs = fastest(base_runs)
                    row += ['{:.3f}'.format(theirs['seconds']),
                            '{:.2f}x'.format(theirs['seconds'] / ours['seconds']),
                            '{:.0f}'.format(theirs['peak_mb']),
                            '{:.4f}%'.format(100 * loss_difference(
                                ours['first_losses'], theirs['first_losses']))]
                print(' '.join('{:>13}'.format(str(v)) for v in row), flush=True)
        print('numpy float32 matmul peak at the end: {:.0f} GFLOP/s'.format(matmul_peak()))


if __name__ == '__main__':
    main()
