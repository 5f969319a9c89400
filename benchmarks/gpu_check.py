"""Check and time the GPU path in one run (a few minutes on one GPU):

    python -m benchmarks.gpu_check            # the first GPU, else one line and exit 0
    sh benchmarks/gpu_check.sh                # on a GPU machine without Chainer (docs/gpu.md)

1. Both nets ('deconv', 'resize'): forward and backward on the GPU against
   the CPU (same weights, same input, training mode), relative error.
2. 50 training steps at 256 px with and without L_pop (training.build_trainer,
   stand-in VGG16 weights from faststyle.vgg16_weights.random_weights: speed does not depend on
   the values): seconds per step.
3. stylize.Stylizer on 1280x720 frames, float32 and float16 (--fp16), batch 1
   and 8: frames/s, and how far the float16 frames are from the float32 ones.
4. generate.py end to end on a 1280x720 clip (its own process: start-up,
   decoding, encoding included): frames/s.
5. Peak GPU memory of each part (CuPy's memory pool, which only grows within
   a part), the GPU's name, CuPy/CUDA versions and whether cuDNN is used.
One table at the end. Without a GPU (no CuPy, no CUDA device, or Chainer
cannot use CuPy) it runs the CPU-side checks (imports, both nets forward and
backward, float16 on the CPU), prints one line and exits 0. ``--device
@numpy`` runs every part on the CPU at the sizes given (for the tests).
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from faststyle import chainer_compat  # noqa: F401  (before Chainer: numpy 2, Py 3.12+)

import chainer
import chainer.links as L
import cv2
import numpy

from faststyle.errors import InputError
from faststyle import cli
import net
from faststyle import stylize
from benchmarks.train_speed import benchmark_trainer

# float32 on a GPU sums in another order than the CPU (and without cuDNN
# through cuBLAS): relative errors of 1e-5..1e-4 are normal, 1e-2 is a bug.
TOLERANCE = 1e-3


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                formatter_class=cli.HelpFormatter)
    p.add_argument('--device', default=None,
                   help="Chainer device (default: '@cupy:0' when a GPU is usable)")
    p.add_argument('--steps', type=int, default=50, help='training steps timed')
    p.add_argument('--image_size', type=int, default=256, help='training crop size')
    p.add_argument('--frame', default='1280x720', help='frame size WxH for parts 3-4')
    p.add_argument('--frames', type=int, default=48,
                   help='frames per stylize timing and in the clip')
    p.add_argument('--check_size', type=int, default=64,
                   help='input size of the GPU-vs-CPU check')
    args = p.parse_args(argv)
    try:
        width, height = (int(v) for v in args.frame.lower().split('x'))
    except ValueError:
        p.error('--frame must look like 1280x720')
    args.frame_size = (width, height)
    return args


def gpu_problem():
    """(why no GPU is used here or None, whether that is an error).

    No CuPy or no CUDA device: no GPU. A device that CuPy sees but Chainer
    cannot use (e.g. a CuPy module Chainer imports is gone): an error."""
    try:
        import cupy
    except ImportError as e:  # not installed, or its CUDA libraries are missing
        return 'CuPy cannot be imported ({})'.format(' '.join(str(e).split())), False
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:
        return 'CUDA reports no device ({})'.format(' '.join(str(e).split())), False
    if count == 0:
        return 'CUDA reports no device', False
    if not chainer.backends.cuda.available:
        error = getattr(chainer.backends.cuda, '_resolution_error', 'unknown reason')
        return 'Chainer cannot use CuPy {} ({})'.format(cupy.__version__, error), True
    return None, False


class Meter:
    """Wall time and peak GPU memory pool size of one part."""

    def __init__(self, device):
        self.device = device
        self.gpu = device.xp is not numpy

    def sync(self):
        if self.gpu:
            self.device.device.synchronize()

    def start(self):
        if self.gpu:
            import cupy
            self.sync()
            cupy.get_default_memory_pool().free_all_blocks()
        self.t0 = time.perf_counter()

    def seconds(self):
        self.sync()
        return time.perf_counter() - self.t0

    def peak_mib(self):
        if not self.gpu:
            return None
        import cupy
        # The pool keeps every block it allocated until free_all_blocks, so
        # its total after a part is that part's peak.
        return cupy.get_default_memory_pool().total_bytes() / 2 ** 20


def relative_error(got, expected):
    got = chainer.backend.CpuDevice().send(got).astype(numpy.float64)
    expected = numpy.asarray(expected, numpy.float64)
    return float(numpy.abs(got - expected).max() / max(numpy.abs(expected).max(), 1e-12))


def forward_backward(arch, device, size, seed=0):
    """Output and gradients (input, c1/W, d3/W) of one training-mode step."""
    numpy.random.seed(seed)
    model = net.FastStyleNet(arch)
    model.to_device(device)
    model.cleargrads()  # new Parameters' grads are NaN until cleared
    rng = numpy.random.RandomState(seed)
    x = chainer.Variable(device.send(
        rng.uniform(0, 255, (2, 3, size, size)).astype(numpy.float32)))
    weight = device.send(rng.standard_normal((2, 3, size, size)).astype(numpy.float32))
    with chainer.using_config('train', True):
        y = model(x)
        chainer.functions.sum(y * weight).backward()
    return {'output': y.array, 'grad input': x.grad, 'grad c1/W': model.c1.W.grad,
            'grad d3/W': model.d3.W.grad}


def check_against_cpu(device, size):
    """Rows (what, value, ok) comparing ``device`` with the CPU, both nets."""
    rows = []
    cpu = chainer.get_device('@numpy')
    for arch in net.ARCHS:
        expected = forward_backward(arch, cpu, size)
        got = forward_backward(arch, device, size)
        worst = max(relative_error(got[k], expected[k]) for k in expected)
        rows.append(('{} forward+backward vs CPU, max rel. error'.format(arch),
                     '{:.1e}'.format(worst), worst <= TOLERANCE))
    return rows


def fp16_on_cpu(size=32):
    """float16 forward on the CPU vs float32 (net.to_float16): max |diff|."""
    numpy.random.seed(0)
    model = net.FastStyleNet('deconv')
    x = numpy.random.RandomState(1).uniform(0, 255, (1, 3, size, size)).astype(numpy.float32)
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        y32 = model(x).array
        y16 = net.to_float16(model)(x.astype(numpy.float16)).array
    return float(numpy.abs(y16.astype(numpy.float32) - y32).max())


def time_training(device, meter, steps, size, lambda_noise, workdir):
    meter.start()
    trainer = benchmark_trainer(device, size, lambda_noise, workdir)
    updater = trainer.updater
    for _ in range(2):  # warm-up: CuPy compiles its kernels on first use
        updater.update()
    meter.sync()
    start = time.perf_counter()
    for _ in range(steps):
        updater.update()
    meter.sync()
    return (time.perf_counter() - start) / steps, meter.peak_mib()


def smooth_frames(count, width, height, seed=0):
    """Moving gradients, not noise: like video, cheap to make and to encode."""
    rng = numpy.random.RandomState(seed)
    yy, xx = numpy.mgrid[0:height, 0:width].astype(numpy.float32)
    phases = rng.uniform(0, 6, 3)
    frames = []
    for t in range(count):
        channels = [127 + 120 * numpy.sin(xx / (40 + 20 * c) + phases[c] + t * 0.1)
                    * numpy.cos(yy / (30 + 10 * c)) for c in range(3)]
        frames.append(numpy.clip(numpy.stack(channels, 2), 0, 255).astype(numpy.uint8))
    return frames


def make_model(path, arch='deconv', seed=0):
    numpy.random.seed(seed)
    model = net.FastStyleNet(arch)
    rng = numpy.random.RandomState(seed)
    for link in model.links():
        if isinstance(link, L.BatchNormalization):
            link.gamma.array[:] = rng.uniform(0.5, 1.5, link.gamma.shape)
            link.beta.array[:] = rng.uniform(-0.5, 0.5, link.beta.shape)
    chainer.serializers.save_npz(path, model)
    return path


def time_stylize(model_path, spec, meter, frames, batch, fp16):
    stylizer = stylize.Stylizer(model_path, device=spec, backend='chainer',
                                batch=batch, fp16=fp16)
    stylizer.stylize(frames[:batch])  # warm-up
    meter.start()
    out = []
    for start in range(0, len(frames), batch):
        out.extend(stylizer.stylize(frames[start:start + batch]))
    return len(frames) / meter.seconds(), meter.peak_mib(), out


def write_clip(path, frames, fps=24):
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), fps, (width, height))
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()


def generate_end_to_end(model_path, spec, frames, batch, workdir):
    clip = os.path.join(workdir, 'clip.mp4')
    write_clip(clip, frames)
    out = os.path.join(workdir, 'stylized.mp4')
    command = [sys.executable, os.path.join(ROOT, 'generate.py'), clip, '-m', model_path,
               '-o', out, '--device', spec, '--backend', 'chainer', '--batch', str(batch),
               '--no_progress']
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError('generate.py failed: ' + (result.stderr or result.stdout).strip())
    return len(frames) / seconds


def describe_device(device):
    if device.xp is numpy:
        return 'CPU (numpy {})'.format(numpy.__version__)
    import cupy
    props = cupy.cuda.runtime.getDeviceProperties(device.device.id)
    name = props['name']
    name = name.decode() if isinstance(name, bytes) else name
    runtime = cupy.cuda.runtime.runtimeGetVersion()
    return '{} (CuPy {}, CUDA runtime {}.{}, cuDNN {}, numpy {})'.format(
        name, cupy.__version__, runtime // 1000, runtime % 1000 // 10,
        'used' if chainer.backends.cuda.cudnn_enabled else
        'not used: im2col + cuBLAS', numpy.__version__)


def run_checks(args, spec, table):
    device = chainer.get_device(spec)
    device.use()
    meter = Meter(device)
    table.add('device', describe_device(device), True)
    table.add('Python, Chainer', '{}, {}'.format(sys.version.split()[0], chainer.__version__),
              True)
    meter.start()
    for row in check_against_cpu(device, args.check_size):
        table.add(*row)
    width, height = args.frame_size
    with tempfile.TemporaryDirectory() as workdir:
        for lambda_noise, label in ((0, 'without L_pop'), (1.0, 'with L_pop')):
            seconds, peak = time_training(device, meter, args.steps, args.image_size,
                                          lambda_noise, workdir)
            table.add('train {} px, {} steps {}'.format(args.image_size, args.steps, label),
                      '{:.3f} s/step{}'.format(seconds, mib(peak)), True)
        model_path = make_model(os.path.join(workdir, 'style.model'))
        frames = smooth_frames(args.frames, width, height)
        results = {}
        for fp16 in (False, True):
            for batch in (1, 8):
                try:
                    fps, peak, out = time_stylize(model_path, spec, meter, frames, batch, fp16)
                except InputError as e:  # --fp16 on the CPU
                    table.add('stylize float16 batch {}'.format(batch), str(e), True)
                    continue
                results[fp16, batch] = out
                table.add('stylize {}x{} {} batch {}'.format(
                    width, height, 'float16' if fp16 else 'float32', batch),
                    '{:.2f} frames/s{}'.format(fps, mib(peak)), True)
        if (True, 8) in results:
            diff = numpy.abs(numpy.stack(results[True, 8]).astype(numpy.int16)
                             - numpy.stack(results[False, 8]))
            # Random weights are harsher than trained ones; a real error
            # (overflow) shows as most of the picture off by tens of levels.
            table.add('float16 vs float32 frames (uint8)',
                      'max {} mean {:.3f}'.format(diff.max(), diff.mean()),
                      diff.mean() < 1.0)
        fps = generate_end_to_end(model_path, spec, frames, 8, workdir)
        table.add('generate.py {} frames {}x{} --batch 8'.format(len(frames), width, height),
                  '{:.2f} frames/s end to end'.format(fps), True)


def mib(value):
    return '' if value is None else ', peak {:.0f} MiB'.format(value)


class Table:
    """Prints each row as soon as it is known, so that a crash (a CUDA error
    ends the process) loses none of the rows before it."""

    WIDTH = 46

    def __init__(self):
        self.all_ok = True
        print('| {} | result | ok |'.format('check'.ljust(self.WIDTH)))
        print('| {} | --- | --- |'.format('-' * self.WIDTH), flush=True)

    def add(self, what, value, ok):
        self.all_ok = self.all_ok and ok
        print('| {} | {} | {} |'.format(what.ljust(self.WIDTH), value, 'yes' if ok else 'NO'),
              flush=True)


def cpu_side_checks():
    """Imports, both nets forward+backward on the CPU, float16 on the CPU."""
    cpu = chainer.get_device('@numpy')
    for arch in net.ARCHS:
        result = forward_backward(arch, cpu, 16)
        for name, value in result.items():
            if not numpy.isfinite(value).all():
                raise RuntimeError('{} {} is not finite on the CPU'.format(arch, name))
    diff = fp16_on_cpu()
    if diff > 4:
        raise RuntimeError('float16 forward on the CPU is {:.1f} off float32'.format(diff))
    return 'both nets forward+backward, float16 forward within {:.2f} of float32'.format(diff)


def main(argv=None):
    args = parse_args(argv)
    spec = args.device
    if spec is None:
        summary = cpu_side_checks()
        problem, fatal = gpu_problem()
        if fatal:
            print('error: a GPU is present but {}'.format(problem), file=sys.stderr)
            return 1
        if problem:
            print('gpu_check: no GPU: {}; CPU-side checks passed ({}, Chainer {}, '
                  'numpy {})'.format(problem, summary, chainer.__version__,
                                     numpy.__version__))
            return 0
        spec = '@cupy:0'
    start = time.perf_counter()
    table = Table()
    run_checks(args, spec, table)
    table.add('whole check', '{:.0f} s'.format(time.perf_counter() - start), True)
    return 0 if table.all_ok else 1


if __name__ == '__main__':
    sys.exit(main())
