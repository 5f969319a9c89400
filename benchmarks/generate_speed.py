"""How fast generate.py stylizes on this machine, per backend.

    python benchmarks/generate_speed.py [--model M.model] [--quick]

Prints, in one run:
  * numpy's float32 matrix-multiply peak (GFLOP/s), measured now;
  * the net's exact cost (multiply-adds per pixel, from the layer shapes);
  * per backend, frames/s of the net alone at 256x256 and 640x480, the
    GFLOP/s achieved and its share of the matmul peak;
  * frames/s of generate.py's whole video path (decode, pad, net, median,
    encode, with threads) on a 640x480 clip, against the same frames through
    Stylizer.stylize alone;
  * peak memory (RSS) to stylize one 1920x1080 frame, per backend.

Without --model a random net is used (speed does not depend on the weights).
Timings are medians; the load average is printed because the machine may be
shared.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from faststyle import chainer_compat  # noqa: F401,E402  (before Chainer: numpy 2, Py 3.12+)

import numpy  # NOQA: E402

import chainer  # NOQA: E402
import cv2  # NOQA: E402

import net  # NOQA: E402
from faststyle import stylize  # NOQA: E402
from faststyle import video  # NOQA: E402

BACKENDS = ('chainer', 'opencv', 'onnxruntime')


def matmul_peak(size=2048, repeats=5):
    """Best float32 GEMM rate of numpy (its BLAS) in GFLOP/s."""
    rng = numpy.random.RandomState(0)
    a = rng.rand(size, size).astype(numpy.float32)
    b = rng.rand(size, size).astype(numpy.float32)
    a @ b
    best = min(_time(lambda: a @ b) for _ in range(repeats))
    return 2 * size ** 3 / best / 1e9


def _time(function):
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def multiply_adds(model, height, width):
    """Multiply-adds of one forward pass at (height, width), from the layers."""
    def conv(link, h, w):
        out_c, in_c, kh, kw = link.W.shape
        sh, sw = link.stride
        ph, pw = link.pad
        oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
        return oh * ow * out_c * in_c * kh * kw, oh, ow

    def deconv(link, h, w):
        # Every input pixel scatters a full kernel into every output channel.
        in_c, out_c, kh, kw = link.W.shape
        sh, sw = link.stride
        ph, pw = link.pad
        oh, ow = sh * (h - 1) + kh - 2 * ph, sw * (w - 1) + kw - 2 * pw
        return h * w * in_c * out_c * kh * kw, oh, ow

    total = 0
    h, w = height, width
    for link in (model.c1, model.c2, model.c3):
        macs, h, w = conv(link, h, w)
        total += macs
    for block in (model.r1, model.r2, model.r3, model.r4, model.r5):
        for link in (block.c1, block.c2):
            macs, h, w = conv(link, h, w)
            total += macs
    for link in (model.d1, model.d2, model.d3):
        if model.arch == 'deconv':
            macs, h, w = deconv(link, h, w)
        else:
            if link is not model.d3:
                h, w = 2 * h, 2 * w  # nearest upsampling first
            macs, h, w = conv(link, h, w)
        total += macs
    assert (h, w) == (height, width)
    return total


def median_time(function, repeats, warmup=1):
    for _ in range(warmup):
        function()
    return float(numpy.median([_time(function) for _ in range(repeats)]))


def make_model_file(directory, arch):
    path = os.path.join(directory, '{}.model'.format(arch))
    chainer.serializers.save_npz(path, net.FastStyleNet(arch))
    return path


def make_clip(path, frames, width, height, fps=25):
    """A 640x480-style test clip: moving gradients plus noise, written by OpenCV."""
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), fps, (width, height))
    y, x = numpy.mgrid[0:height, 0:width].astype(numpy.float32)
    rng = numpy.random.RandomState(0)
    for t in range(frames):
        image = numpy.stack([127 + 100 * numpy.sin(x / 40 + t / 5),
                             127 + 100 * numpy.cos(y / 30 - t / 7),
                             127 + 100 * numpy.sin((x + y) / 60)], axis=2)
        image += rng.normal(0, 10, image.shape)
        writer.write(numpy.clip(image, 0, 255).astype(numpy.uint8))
    writer.release()


def net_speed(model_path, backend, height, width, repeats):
    """(seconds per frame, multiply-adds) of the backend's net alone."""
    stylizer = stylize.Stylizer(model_path, backend=backend, padding=0, median_filter=0)
    x = numpy.random.RandomState(0).uniform(0, 255, (1, 3, height, width)).astype(
        numpy.float32)
    seconds = median_time(lambda: stylizer.backend(x), repeats)
    model = net.load_model(model_path)
    return seconds, multiply_adds(model, height, width)


PEAK_MEMORY_CHILD = r'''
import resource, sys, numpy
sys.path.insert(0, {repo!r})
from faststyle import stylize
stylizer = stylize.Stylizer({model!r}, backend={backend!r})
frame = numpy.random.RandomState(0).randint(0, 256, (1080, 1920, 3)).astype(numpy.uint8)
stylizer.stylize([frame])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
'''


def peak_memory_mb(model_path, backend):
    """Peak RSS of a fresh process stylizing one 1920x1080 frame (padding 50)."""
    code = PEAK_MEMORY_CHILD.format(repo=REPO, model=model_path, backend=backend)
    start = time.perf_counter()
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        return None, seconds
    return int(result.stdout.split()[-1]) / 1024, seconds  # ru_maxrss is in KiB on Linux


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--model', default=None,
                        help='a .model file (default: a random net of --arch)')
    parser.add_argument('--arch', choices=net.ARCHS, default='deconv',
                        help='layout of the random net (default: deconv, CFNS master)')
    parser.add_argument('--backends', default=','.join(BACKENDS),
                        help='comma-separated backends to time (default: all)')
    parser.add_argument('--video_frames', type=int, default=12,
                        help='frames of the 640x480 test clip (default: 12)')
    parser.add_argument('--repeats', type=int, default=3,
                        help='timed runs per measurement, median reported (default: 3)')
    parser.add_argument('--no_memory', action='store_true',
                        help='skip the 1920x1080 peak-memory runs')
    args = parser.parse_args(argv)
    backends = args.backends.split(',')
    started = time.perf_counter()

    with tempfile.TemporaryDirectory() as tmp:
        model_path = args.model or make_model_file(tmp, args.arch)
        model = net.load_model(model_path)
        print('machine: {} CPUs, load average {:.1f} {:.1f} {:.1f}, OpenCV {} '
              '({} threads), numpy {}, chainer {}'.format(
                  os.cpu_count(), *os.getloadavg(), cv2.__version__, cv2.getNumThreads(),
                  numpy.__version__, chainer.__version__))
        peak = matmul_peak()
        print('numpy float32 matmul peak: {:.0f} GFLOP/s'.format(peak))
        per_pixel = multiply_adds(model, 256, 256) / (256 * 256)
        print('net: {} layout, {:.0f} multiply-adds per pixel ({:.1f} GFLOP per '
              '640x480 frame)'.format(model.arch, per_pixel,
                                      2 * multiply_adds(model, 480, 640) / 1e9))

        print('\nnet alone (no padding, batch 1):')
        print('{:<12} {:>9} {:>9} {:>9} {:>9} {:>7}'.format(
            'backend', 'size', 'frames/s', 's/frame', 'GFLOP/s', 'peak%'))
        inference_fps = {}
        for backend in backends:
            for height, width in ((256, 256), (480, 640)):
                seconds, macs = net_speed(model_path, backend, height, width, args.repeats)
                gflops = 2 * macs / seconds / 1e9
                print('{:<12} {:>9} {:>9.2f} {:>9.3f} {:>9.1f} {:>6.0f}%'.format(
                    backend, '{}x{}'.format(width, height), 1 / seconds, seconds,
                    gflops, 100 * gflops / peak))
                inference_fps[backend, height] = 1 / seconds

        default = stylize.Stylizer(model_path)
        print('\nvideo 640x480, {} frames, backend {} (auto), generate.py defaults '
              '(padding 50, median 3):'.format(args.video_frames, default.backend_name))
        clip = os.path.join(tmp, 'clip.mp4')
        make_clip(clip, args.video_frames, 640, 480)
        frames = list(video.VideoReader(clip))
        # The same frames through the Stylizer alone, right before the video run,
        # so both see the same machine load.
        default.stylize(frames[:1])
        stylize_seconds = _time(lambda: default.stylize(frames)) / len(frames)
        summary = video.stylize_video(clip, os.path.join(tmp, 'out.mp4'),
                                      default.stylize, progress=False)
        end_to_end = summary['frames'] / summary['seconds']
        print('  Stylizer.stylize alone (pad, net, crop, median): {:.2f} frames/s'.format(
            1 / stylize_seconds))
        print('  end to end (decode, stylize, encode {}): {:.2f} frames/s = {:.0f}% of '
              'Stylizer.stylize alone'.format(
                  'with ffmpeg' if video.find_ffmpeg() else 'with OpenCV', end_to_end,
                  100 * end_to_end * stylize_seconds))

        if not args.no_memory:
            print('\npeak memory (RSS of a fresh process) for one 1920x1080 frame, '
                  'padding 50:')
            for backend in backends:
                megabytes, seconds = peak_memory_mb(model_path, backend)
                print('  {:<12} {}  ({:.0f} s for the process)'.format(
                    backend, 'failed' if megabytes is None else '{:.0f} MB'.format(megabytes),
                    seconds))
        print('\nload average now {:.1f}; whole run {:.0f} s'.format(
            os.getloadavg()[0], time.perf_counter() - started))
    return 0


if __name__ == '__main__':
    sys.exit(main())
