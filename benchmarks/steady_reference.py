"""What warping error per unit of detail a picture with no strokes of its own scores.

    python -m benchmarks.steady_reference footage/street footage/bigbuckbunny \\
        [--amounts 0 1 2 4] [--denoise] [--max_frames 12] [--size N]

Each row is the source with one fixed filter applied to every frame on its
own: unsharp masking by AMOUNT (frame + AMOUNT * (frame - its Gaussian blur
of sigma 1 px)), then generate.py's median filter of 3, as every model's
output gets. Such a filter paints no strokes of its own that could
appear, vanish or be repainted as the scene moves (it still passes the
source's own noise on, sharpened, unless --denoise takes it out first
with OpenCV's non-local means); what warping error it still gets is what
stability.py counts for motion that the flow and the warp do not follow
exactly (sub-pixel sampling, occlusions, the flow's own errors). It grows with the
detail, and not in proportion: per unit of detail it rose from 0.12 to
0.17 with sharpening on this project's street clip and fell from 0.11 to
0.08 on Big Buck Bunny (docs/stability.md). A stylized row is only as
much steadier than another per unit of detail as their distances above
this reference, at their own detail, allow.

The measure is stability.py's, frame for frame (source flow by OpenCV's
DIS, the same masks); AMOUNT 0 is the source through the median filter
alone.
"""
import math
import sys

import cv2
import numpy

from faststyle import cli
from faststyle import stability_measures
from faststyle import stylize

BLUR_SIGMA = 1.0
DENOISE_STRENGTH = 5  # non-local means h (luma and colour): codec noise, not texture


def steady_filter(frame, amount, median_filter=stylize.MEDIAN_FILTER, denoise=False):
    """``frame`` (uint8 RGB), denoised first if asked, unsharp-masked by
    ``amount`` with a Gaussian of BLUR_SIGMA px, rounded to uint8, then
    median-filtered as generate.py filters a model's output."""
    if denoise:
        frame = cv2.fastNlMeansDenoisingColored(numpy.ascontiguousarray(frame), None,
                                                DENOISE_STRENGTH, DENOISE_STRENGTH, 7, 21)
    image = frame.astype(numpy.float32)
    blurred = cv2.GaussianBlur(image, (0, 0), BLUR_SIGMA)
    sharpened = numpy.clip(numpy.rint(image + amount * (image - blurred)), 0, 255)
    return stylize.postprocess(frame, sharpened.astype(numpy.uint8), median_filter,
                               keep_colors=False)


class SteadyFilterRow:
    """A table row of the source through :func:`steady_filter`."""

    def __init__(self, amount, median_filter=stylize.MEDIAN_FILTER, denoise=False):
        self.amount = amount
        self.median_filter = median_filter
        self.denoise = denoise
        self.totals = stability_measures.RowTotals(
            '{}sharpened x{:g}'.format('denoised, ' if denoise else '', amount),
            'steady filter')

    def add(self, src, pair, t):
        self.totals.add(steady_filter(src, self.amount, self.median_filter, self.denoise),
                        pair, source=src)


def measure_clip(path, amounts, max_frames=0, size=0, median_filter=stylize.MEDIAN_FILTER,
                 denoise=False):
    """The summaries of the source row and of one steady row per amount."""
    rows = [stability_measures.SourceRow('source: {}'.format(path))]
    rows += [SteadyFilterRow(amount, median_filter, denoise) for amount in amounts]
    source = stability_measures.SourceFrames(path, max_side=size, max_frames=max_frames)
    stability_measures.measure(source, rows, stability_measures.SourceFlow('dis'))
    return [row.totals.summary() for row in rows]


def main(argv=None):
    parser = cli.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('clips', nargs='+', help='source videos or folders of frames')
    parser.add_argument('--amounts', type=float, nargs='+', default=[0, 1, 2, 4],
                        help='unsharp-mask amounts, one steady row each')
    parser.add_argument('--denoise', action='store_true',
                        help="denoise each frame first (OpenCV's non-local means), so that "
                             "the source's own noise, which a steady net may smooth away, "
                             'is not sharpened with the picture')
    cli.add_flag(parser, '--max_frames', type=int, default=12,
                 help='measure only the first N frames')
    parser.add_argument('--size', type=int, default=0,
                        help='shrink frames so the longer side is at most this many pixels')
    args = parser.parse_args(argv)
    if args.max_frames < 0 or args.size < 0:
        parser.error('--max_frames and --size must be >= 0')
    if not all(math.isfinite(amount) for amount in args.amounts):
        parser.error('--amounts must be finite numbers')

    def body(_):
        for path in args.clips:
            rows = measure_clip(path, args.amounts, args.max_frames, args.size,
                                denoise=args.denoise)
            print(path)
            print(stability_measures.format_table(
                rows, keys=('warp_mse', 'detail', 'warp_per_detail')))
    return cli.run_cli(body)


if __name__ == '__main__':
    sys.exit(main())
