"""Seconds per training iteration with and without the noise loss L_pop.

    python -m benchmarks.train_speed [--sizes 128 256] [--iterations 4]

Each configuration runs in its own process (so peak memory is its own) on
stand-in VGG16 weights (random, CFNS layout: speed does not depend on the
values). L_pop should cost one more forward and backward pass of the
transform net and nothing else, so besides the measured ratio the table
shows the ratio that this alone predicts: (vanilla + net fwd/bwd) / vanilla.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from faststyle import chainer_compat  # noqa: F401  (before Chainer: numpy 2, Py 3.12+)
from faststyle import cli


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def benchmark_trainer(device, size, lambda_noise, workdir):
    """train.py's trainer on the shipped photos with stand-in VGG16 weights
    (the same cost as real ones), for timing steps; gpu_check.py uses it too."""
    from faststyle import dataset
    import train
    from faststyle import vgg16_weights
    vgg_path = os.path.join(workdir, 'vgg16.model')
    if not os.path.exists(vgg_path):
        vgg16_weights.save_arrays(vgg_path, vgg16_weights.random_weights())
    images = os.path.join(ROOT, 'sample_images')
    args = train.parse_args(['-s', os.path.join(images, 'style.jpg'), '-d', images,
                             '--vgg', vgg_path, '--image_size', str(size),
                             '--lambda_noise', str(lambda_noise),
                             '-o', os.path.join(workdir, 'bench.model')])
    data, _ = dataset.open_dataset(images, size)
    trainer, _ = train.build_trainer(args, device, data)
    return trainer


def time_training(size, lambda_noise, iterations, workdir):
    import chainer
    updater = benchmark_trainer(chainer.get_device('@numpy'), size, lambda_noise,
                                workdir).updater
    updater.update()  # warm-up: allocations, first-call overheads
    start = time.perf_counter()
    for _ in range(iterations):
        updater.update()
    return (time.perf_counter() - start) / iterations


def time_net_forward_backward(size, iterations):
    """One forward and backward pass of the transform net alone (training mode)."""
    import numpy
    import net
    model = net.FastStyleNet()
    x = numpy.random.RandomState(0).uniform(0, 255, (1, 3, size, size)).astype(numpy.float32)

    def step():
        model.cleargrads()
        y = model(x)
        y.grad = numpy.ones_like(y.array)
        y.backward()
    step()
    start = time.perf_counter()
    for _ in range(iterations):
        step()
    return (time.perf_counter() - start) / iterations


def worker(kind, size, lambda_noise, iterations):
    with tempfile.TemporaryDirectory() as workdir:
        if kind == 'net':
            seconds = time_net_forward_backward(size, iterations)
        else:
            seconds = time_training(size, lambda_noise, iterations, workdir)
    print(json.dumps({'seconds': seconds, 'peak_mb': peak_rss_mb()}))


def measure(kind, size, lambda_noise, iterations):
    out = subprocess.run([sys.executable, '-m', 'benchmarks.train_speed', '--worker', kind,
                          str(size), str(lambda_noise), str(iterations)], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                     formatter_class=cli.HelpFormatter)
    parser.add_argument('--sizes', type=int, nargs='+', default=[128, 256],
                        help='training image sizes')
    parser.add_argument('--iterations', type=int, default=4,
                        help='timed iterations per configuration')
    parser.add_argument('--worker', nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind, size, lambda_noise, iterations = args.worker
        return worker(kind, int(size), float(lambda_noise), int(iterations))

    print('CPU, batch 1, stand-in VGG16 weights, {} timed iterations each'.format(
        args.iterations))
    print('{:>5} {:>12} {:>12} {:>8} {:>10} {:>11} {:>11}'.format(
        'size', 'vanilla s/it', 'L_pop s/it', 'ratio', 'predicted', 'peak MB', 'peak MB'))
    print('{:>5} {:>12} {:>12} {:>8} {:>10} {:>11} {:>11}'.format(
        '', '', '', '', 'ratio', 'vanilla', 'L_pop'))
    for size in args.sizes:
        vanilla = measure('train', size, 0, args.iterations)
        stable = measure('train', size, 1000, args.iterations)
        net_fb = measure('net', size, 0, args.iterations)
        print('{:>5} {:>12.3f} {:>12.3f} {:>8.2f} {:>10.2f} {:>11.0f} {:>11.0f}'.format(
            size, vanilla['seconds'], stable['seconds'],
            stable['seconds'] / vanilla['seconds'],
            (vanilla['seconds'] + net_fb['seconds']) / vanilla['seconds'],
            vanilla['peak_mb'], stable['peak_mb']), flush=True)


if __name__ == '__main__':
    main()
