"""How fast generate.py stylizes on this machine, per backend and precision.

    python -m benchmarks.generate_speed [-m A.model -m B.model] [--no_memory]

Prints, in one run:
  * numpy's float32 matrix-multiply (sgemm) peak, GFLOP/s, measured again
    right before each timed row: every rate is also given as a share of the
    peak next to it, so runs on a busy machine (where the load changes from
    minute to minute) still compare;
  * the net's exact cost (multiply-adds per pixel, from the layer shapes);
  * per backend (openvino at fp32 and bf16, opencv, onnxruntime, chainer),
    the net alone at 256x256, 640x480 and 1280x720: frames/s, GFLOP/s and
    the share of the peak (GFLOP/s always counts the net's own multiply-adds,
    not extra work a runtime does);
  * generate.py's default path on one 640x480 frame (padding 50: the net sees
    740x580), per CPU backend, with the same share of the peak;
  * one 1280x720 frame with --content_scale 1 and 0.5 (the net sees 1380x820
    and 740x460), CPU default backend: the speed-up of the smaller net input;
  * bf16's quality cost: PSNR and largest error (0-255) of the bf16 output
    against fp32 through the whole pipeline, for each -m model, or without -m
    for RANDOM nets of both layouts (labelled as such: a random net's figures
    say little about a trained one's);
  * video end to end (decode, stylize, encode, threads) at 640x480 and
    1280x720 against the same frames through Stylizer.stylize alone, for the
    CPU default, and at 640x480 with OpenVINO's THROUGHPUT hint (2 streams);
  * peak memory (RSS) to stylize one 1920x1080 frame, per backend;
  * the speed goals generate.py is held to (share of the peak, bf16
    speed-up, video share) in a few lines.

Without -m, speed is measured on a random net (speed does not depend on the
weights). Timings are medians; the load average is printed because the
machine may be shared.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from faststyle import chainer_compat  # noqa: F401,E402  (before Chainer: numpy 2, Py 3.12+)

import numpy

import chainer
import cv2

import net
from faststyle import cli
from faststyle import images
from faststyle import stylize
from faststyle import video
from faststyle import pipeline

# (backend, precision) rows of the speed tables.
CONFIGS = (('openvino', 'fp32'), ('openvino', 'bf16'), ('opencv', 'fp32'),
           ('onnxruntime', 'fp32'), ('chainer', 'fp32'))
SIZES = ((256, 256), (480, 640), (720, 1280))
# Chainer takes ~15 s a 1280x720 frame here; it is the GPU backend anyway.
SKIP = {('chainer', 720)}


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


def net_speed(model_path, backend, precision, height, width, repeats):
    """Seconds per frame of the backend's net alone (median)."""
    stylizer = stylize.Stylizer(model_path, backend=backend, precision=precision,
                                padding=0, median_filter=0)
    x = numpy.random.RandomState(0).uniform(0, 255, (1, 3, height, width)).astype(
        numpy.float32)
    return median_time(lambda: stylizer.backend(x), repeats)


def photo(height, width):
    """The Tubingen photo of sample_images/, resized: real image statistics."""
    image = cv2.imread(os.path.join(REPO, 'sample_images', 'tubingen.jpg'))
    image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def errors(a, b):
    """(largest absolute error, PSNR in dB) between uint8 images."""
    d = a.astype(numpy.float64) - b.astype(numpy.float64)
    mse = numpy.mean(d ** 2)
    return int(numpy.abs(d).max()), (float('inf') if mse == 0 else
                                     10 * numpy.log10(255 ** 2 / mse))


def video_rates(clip, tmp, stylizer):
    """(Stylizer.stylize alone, end to end) in frames/s on the frames of ``clip``."""
    frames = list(video.VideoReader(clip))
    stylizer.stylize(frames[:1])  # compile for this size, warm caches
    # The same frames through the Stylizer alone, right before the video run,
    # so both see the same machine load.
    alone = len(frames) / _time(lambda: stylizer.stylize(frames))
    summary = pipeline.stylize_video(clip, os.path.join(tmp, 'out.mp4'), stylizer.stylize,
                                  batch=stylizer.frames_per_call, progress=False)
    return alone, summary['frames'] / summary['seconds']


PEAK_MEMORY_CHILD = r'''
import resource, numpy
from faststyle import stylize
stylizer = stylize.Stylizer({model!r}, backend={backend!r}, precision={precision!r})
frame = numpy.random.RandomState(0).randint(0, 256, (1080, 1920, 3)).astype(numpy.uint8)
stylizer.stylize([frame])
# VmHWM: this process's own peak. ru_maxrss would carry over the parent's
# peak from before the exec (Linux), hiding the child's when smaller.
try:
    print([line.split()[1] for line in open('/proc/self/status')
           if line.startswith('VmHWM:')][0])
except OSError:
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
'''


def peak_memory_mb(model_path, backend, precision='fp32'):
    """Peak RSS of a fresh process stylizing one 1920x1080 frame (padding 50)."""
    code = PEAK_MEMORY_CHILD.format(model=model_path, backend=backend,
                                    precision=precision)
    start = time.perf_counter()
    # From the repository root: the child imports faststyle like this script.
    result = subprocess.run([sys.executable, '-c', code], cwd=REPO, capture_output=True,
                            text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        return None, seconds
    return int(result.stdout.split()[-1]) / 1024, seconds  # both in KiB on Linux


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                     formatter_class=cli.HelpFormatter)
    parser.add_argument('-m', '--model', action='append', default=[],
                        help='a .model file; repeat for more. Speed uses the first, '
                             'the bf16 quality figures each (default: random nets)')
    parser.add_argument('--arch', choices=net.ARCHS, default='deconv',
                        help='layout of the random net timed without -m (default: '
                             'deconv, CFNS master)')
    parser.add_argument('--backends', default=','.join(sorted({b for b, _ in CONFIGS})),
                        help='comma-separated backends to time (default: all)')
    parser.add_argument('--video_frames', type=int, default=24,
                        help='frames of each test clip; x264 holds back ~20 frames '
                             'for its look-ahead and encodes them at the end, which a '
                             'short clip pays for in full')
    parser.add_argument('--repeats', type=int, default=3,
                        help='timed runs per measurement, median reported')
    parser.add_argument('--no_memory', action='store_true',
                        help='skip the 1920x1080 peak-memory runs')
    parser.add_argument('--no_throughput', action='store_true',
                        help="skip the videos with OpenVINO's THROUGHPUT hint")
    args = parser.parse_args(argv)
    backends = args.backends.split(',')
    configs = [(b, p) for b, p in CONFIGS if b in backends]
    has_bf16 = False
    if stylize.import_openvino() is None:
        print('openvino is not installed: no openvino rows')
        configs = [(b, p) for b, p in configs if b != 'openvino']
    else:
        has_bf16 = stylize.cpu_has_bf16(stylize.import_openvino().Core())
        if not has_bf16:
            print('this CPU has no bfloat16 instructions: no bf16 rows')
            configs = [(b, p) for b, p in configs if p != 'bf16']
    started = time.perf_counter()

    with tempfile.TemporaryDirectory() as tmp:
        model_path = args.model[0] if args.model else make_model_file(tmp, args.arch)
        model = net.load_model(model_path)
        openvino = stylize.import_openvino()
        print('machine: {} CPUs, load average {:.1f} {:.1f} {:.1f}, OpenCV {} '
              '({} threads), OpenVINO {}, numpy {}, chainer {}'.format(
                  os.cpu_count(), *os.getloadavg(), cv2.__version__, cv2.getNumThreads(),
                  openvino.__version__.split('-')[0] if openvino else 'none',
                  numpy.__version__, chainer.__version__))
        print('numpy float32 matmul (sgemm) peak: {:.0f} GFLOP/s now'.format(matmul_peak()))
        per_pixel = multiply_adds(model, 256, 256) / (256 * 256)
        print('net: {} ({} layout), {:.0f} multiply-adds per pixel ({:.1f} GFLOP per '
              '640x480 frame)'.format(args.model[0] if args.model else 'random net',
                                      model.arch, per_pixel,
                                      2 * multiply_adds(model, 480, 640) / 1e9))

        def row(label, size, measure, macs):
            """Time ``measure`` (returns seconds per frame) right after the
            sgemm peak, so that both see the same load on a shared machine."""
            row_peak = matmul_peak(repeats=3)
            seconds = measure()
            gflops = 2 * macs / seconds / 1e9
            print('{:<20} {:>9} {:>9.2f} {:>9.3f} {:>9.1f} {:>7.0f} {:>6.0f}%'.format(
                label, size, 1 / seconds, seconds, gflops, row_peak,
                100 * gflops / row_peak))
            return seconds, gflops / row_peak

        header = '{:<20} {:>9} {:>9} {:>9} {:>9} {:>7} {:>7}'.format(
            'backend', 'size', 'frames/s', 's/frame', 'GFLOP/s', 'sgemm', 'peak%')
        print('(sgemm: the numpy float32 matmul peak in GFLOP/s, measured again right '
              'before each row; peak% = GFLOP/s / sgemm)')
        print('\nnet alone (no padding, batch 1):')
        print(header)
        for backend, precision in configs:
            for height, width in SIZES:
                if (backend, height) in SKIP:
                    continue
                row('{} {}'.format(backend, precision), '{}x{}'.format(width, height),
                    lambda: net_speed(model_path, backend, precision, height, width,
                                      args.repeats), multiply_adds(model, height, width))

        print('\none 640x480 frame through Stylizer.stylize, generate.py defaults '
              '(padding 50, so the net sees 740x580; median 3):')
        print(header)
        frame = photo(480, 640)
        macs = multiply_adds(model, 580, 740)
        default = stylize.Stylizer(model_path)
        padded = {}
        for backend, precision in [('auto', 'fp32')] + configs:
            if backend == 'chainer':
                continue
            stylizer = default if backend == 'auto' else stylize.Stylizer(
                model_path, backend=backend, precision=precision)
            padded[backend, precision] = row(
                '{} {}'.format('auto = ' + default.backend_name if backend == 'auto'
                               else backend, precision), '640x480',
                lambda: median_time(lambda: stylizer.stylize([frame]), args.repeats), macs)

        print('\none 1280x720 frame through Stylizer.stylize, CPU default backend, '
              'generate.py defaults, by --content_scale (the padding of 50 is added '
              'to the resized frame):')
        print(header)
        frame720 = photo(720, 1280)
        scaled_seconds = {}
        for scale in (1.0, 0.5):
            stylizer = stylize.Stylizer(model_path, content_scale=scale)
            net_width, net_height = images.scaled_size(1280, 720, scale)
            scaled_seconds[scale] = row(
                'content_scale {:g}'.format(scale), '1280x720',
                lambda: median_time(lambda: stylizer.stylize([frame720]), args.repeats),
                multiply_adds(model, *stylize.padded_size(net_height, net_width,
                                                          stylize.PADDING)))[0]
        print('  --content_scale 0.5 is {:.2f}x as fast as 1'.format(
            scaled_seconds[1.0] / scaled_seconds[0.5]))

        if has_bf16:
            print('\nbf16 against fp32 (openvino), Tubingen photo at 640x480, '
                  'generate.py defaults, uint8 output:')
            if args.model:
                nets = [(path, path, net.STATS) for path in args.model]
            else:
                # Only per-image statistics: an untrained net's running averages
                # (0 and 1) leave its activations unnormalized and saturated.
                nets = [('RANDOM {} net (untrained: not what a trained net '
                         'gives)'.format(arch), make_model_file(tmp, arch), ('instance',))
                        for arch in net.ARCHS]
            for label, path, stats_modes in nets:
                for stats in stats_modes:
                    fp32, bf16 = (stylize.Stylizer(path, backend='openvino', stats=stats,
                                                   precision=precision).stylize([frame])[0]
                                  for precision in ('fp32', 'bf16'))
                    largest, psnr = errors(bf16, fp32)
                    print('  {} [{} layout, stats {}]: PSNR {:.1f} dB, largest error '
                          '{}/255, mean {:.2f}'.format(
                              label, net.load_model(path).arch, stats, psnr, largest,
                              numpy.mean(numpy.abs(bf16.astype(float) - fp32))))

        video_configs = [('CPU default, {} {}'.format(default.backend_name, 'fp32'),
                          lambda: default)]
        if default.backend_name == 'openvino' and not args.no_throughput:
            video_configs.append(('openvino fp32, THROUGHPUT hint, 2 streams',
                                  lambda: stylize.Stylizer(model_path, streams=2)))
        video_shares = {}
        for height, width in ((480, 640), (720, 1280)):
            if height > 480:  # THROUGHPUT: at one size only, to keep the run short
                video_configs = video_configs[:1]
            clip = os.path.join(tmp, 'clip{}.mp4'.format(height))
            make_clip(clip, args.video_frames, width, height)
            print('\nvideo {}x{}, {} frames, generate.py defaults (padding 50, '
                  'median 3), encoding {}:'.format(
                      width, height, args.video_frames,
                      'with ffmpeg' if video.find_ffmpeg() else 'with OpenCV'))
            for label, make in video_configs:
                alone, end_to_end = video_rates(clip, tmp, make())
                video_shares.setdefault(label, []).append(end_to_end / alone)
                print('  {}: Stylizer.stylize alone {:.3f} frames/s, end to end {:.3f} '
                      'frames/s = {:.0f}% of it'.format(label, alone, end_to_end,
                                                        100 * end_to_end / alone))

        # The speed goals, from the figures above (on a busy machine the
        # shares of the peak are the comparable part).
        print('\ngoals:')
        fp32 = padded.get(('auto', 'fp32'))
        if fp32:
            print('  CPU default ({} fp32), 640x480 + padding 50: {:.0f}% of the sgemm '
                  'peak (goal >= 80%)'.format(default.backend_name, 100 * fp32[1]))
        if ('openvino', 'bf16') in padded and ('openvino', 'fp32') in padded:
            print('  bf16 {:.2f}x faster than fp32 at 640x480 + padding 50 (goal >= 1.6x; '
                  'PSNR goal >= 40 dB on a trained net: see above)'.format(
                      padded['openvino', 'fp32'][0] / padded['openvino', 'bf16'][0]))
        for label, shares in video_shares.items():
            print('  video end to end, {}: {} of Stylizer.stylize alone (goal >= 90%)'
                  .format(label, ' and '.join('{:.0f}%'.format(100 * x) for x in shares)))

        if not args.no_memory:
            print('\npeak memory (RSS of a fresh process) for one 1920x1080 frame, '
                  'padding 50:')
            for backend, precision in configs:
                megabytes, seconds = peak_memory_mb(model_path, backend, precision)
                print('  {:<17} {}  ({:.0f} s for the process)'.format(
                    backend + ' ' + precision,
                    'failed' if megabytes is None else '{:.0f} MB'.format(megabytes),
                    seconds))
        print('\nload average now {:.1f}; whole run {:.0f} s'.format(
            os.getloadavg()[0], time.perf_counter() - started))
    return 0


if __name__ == '__main__':
    sys.exit(main())
