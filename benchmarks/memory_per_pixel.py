"""Peak memory per pixel of Stylizer.stylize, per CPU backend.

    python -m benchmarks.memory_per_pixel [--sizes 700x500 1400x1000]

For each backend, a fresh process stylizes one frame of each size with
generate.py's defaults (padding 50, median 3) and reports its peak resident
memory (VmHWM). The slope between the two sizes, in bytes per pixel the net
is given (the frame with its padding), is what each further pixel costs;
stylize.BYTES_PER_PIXEL holds these figures rounded up, and Stylizer refuses
a frame whose estimate exceeds the memory the machine has left.
"""
import argparse
import os
import subprocess
import sys
import tempfile

from faststyle import chainer_compat  # noqa: F401  (before Chainer: numpy 2, Py 3.12+)

from benchmarks.generate_speed import REPO, make_model_file
from faststyle import stylize

CHILD = r'''
import numpy
from faststyle import stylize
stylizer = stylize.Stylizer({model!r}, backend={backend!r}, padding={padding})
frame = numpy.random.RandomState(0).randint(0, 256, ({height}, {width}, 3)).astype(numpy.uint8)
stylizer.stylize([frame])
print([line.split()[1] for line in open('/proc/self/status')
       if line.startswith('VmHWM:')][0])
'''


def peak_kib(model, backend, width, height, padding):
    code = CHILD.format(model=model, backend=backend, width=width, height=height,
                        padding=padding)
    result = subprocess.run([sys.executable, '-c', code], cwd=REPO, capture_output=True,
                            text=True, check=True)
    return int(result.stdout.split()[-1])


def size(text):
    width, height = (int(part) for part in text.split('x'))
    return width, height


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--sizes', type=size, nargs=2, default=[(700, 500), (1400, 1000)],
                        metavar='WxH', help='the two frame sizes (before padding)')
    parser.add_argument('--backends', nargs='+',
                        default=['openvino', 'opencv', 'onnxruntime', 'chainer'])
    args = parser.parse_args(argv)
    padding = stylize.PADDING
    padded = [(w + 2 * padding) * (h + 2 * padding) for w, h in args.sizes]
    print('{} CPUs, load average {}; padding {}: the net is given {} and {} pixels'.format(
        os.cpu_count(), ' '.join('{:.1f}'.format(x) for x in os.getloadavg()), padding,
        *padded))
    with tempfile.TemporaryDirectory() as tmp:
        model = make_model_file(tmp, 'deconv')
        for backend in args.backends:
            peaks = [peak_kib(model, backend, w, h, padding) for w, h in args.sizes]
            slope = (peaks[1] - peaks[0]) * 1024 / (padded[1] - padded[0])
            print('{:12s} peak {:6.0f} MB and {:6.0f} MB: {:4.0f} bytes a pixel '
                  '(stylize.BYTES_PER_PIXEL: {})'.format(
                      backend, peaks[0] / 1024, peaks[1] / 1024, slope,
                      stylize.BYTES_PER_PIXEL.get(backend)))


if __name__ == '__main__':
    main()
