"""How much of a stylized video is a pattern fixed to the pixel grid.

    python -m benchmarks.grid_pattern -m A.model [-m B.model ...] [--clip CLIP]
        [--size 320] [--frames 48] [--median_filter 3]

A transposed convolution with stride 2 (the deconv layout's d1, d2) can
leave a checkerboard: texture with a period of 2 or 4 output pixels, laid on
the pixel grid instead of on the content. When the camera pans, that texture
stays where it is while the picture moves, so the warping error (which moves
the previous frame along the source's flow) counts it as change. This prints,
for the source clip and each model's stylization of it (stylize.Stylizer,
generate.py's defaults), averaged over the frames:

  grid share   the share of the frame's spectral energy (grey, mean removed)
               at the 15 frequencies whose periods are 1, 2 or 4 pixels in
               both directions (x and y in {0, 1/4, 1/2, 3/4} cycles per
               pixel, but not both 0), where a grid-locked pattern of period
               2 or 4 puts all of its energy
  x uniform    that share divided by 15 / (pixels - 1), the share of a
               spectrum with the same energy at every frequency: how many
               times more than its fair share the grid frequencies hold
  static       the share of the output's detail (stability.py's: mean
               squared neighbour difference) left in the average of all frames, against that of
               the source: a pattern that does not move with a panning
               picture survives averaging, texture that moves with it blurs
"""
import argparse
import itertools
import os

from faststyle import chainer_compat  # noqa: F401  (before Chainer: numpy 2, Py 3.12+)

import numpy

from faststyle import images
from faststyle import stylize
from faststyle import stability_measures

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def grey(frame):
    return frame.astype(numpy.float64) @ numpy.array([0.299, 0.587, 0.114])


def grid_share(frame):
    """Share of the spectral energy at periods 1, 2, 4 in x and y (not DC)."""
    g = grey(frame)
    g = g[:g.shape[0] // 4 * 4, :g.shape[1] // 4 * 4]
    power = numpy.abs(numpy.fft.fft2(g - g.mean())) ** 2
    h, w = g.shape
    rows = [0, h // 4, h // 2, 3 * h // 4]
    cols = [0, w // 4, w // 2, 3 * w // 4]
    grid = sum(power[r, c] for r in rows for c in cols) - power[0, 0]
    return grid / power.sum(), 15 / (h * w - 1)


def figures(frames):
    shares = [grid_share(f) for f in frames]
    share = numpy.mean([s for s, _ in shares])
    uniform = shares[0][1]
    mean_frame = numpy.mean([f.astype(numpy.float64) for f in frames], axis=0)
    static = (stability_measures.spatial_detail(mean_frame) /
              numpy.mean([stability_measures.spatial_detail(f) for f in frames]))
    return share, share / uniform, static


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('-m', '--model', action='append', required=True, help='a .model; repeat')
    p.add_argument('--clip', default=os.path.join(ROOT, 'sample_images', 'tubingen_pan.mp4'))
    p.add_argument('--size', type=int, default=320,
                   help='longer side of the frames at most this (0: as they are)')
    p.add_argument('--frames', type=int, default=48, help='the first N frames (0: all)')
    p.add_argument('--median_filter', type=int, default=3, help="generate.py's default")
    args = p.parse_args(argv)
    frames = list(itertools.islice(stability_measures.iter_frames(args.clip), args.frames or None))
    size = stability_measures.measuring_size(frames[0].shape[1], frames[0].shape[0], args.size)
    frames = [images.resize(frame, size) for frame in frames]
    print('{} frames at {}x{}, median filter {}'.format(
        len(frames), frames[0].shape[1], frames[0].shape[0], args.median_filter))
    print('| video | grid share | x uniform | static |')
    print('| --- | ---: | ---: | ---: |')
    share, factor, static = figures(frames)
    print('| source | {:.4f} | {:.1f} | {:.3f} |'.format(share, factor, static))
    for path in args.model:
        stylizer = stylize.Stylizer(path, median_filter=args.median_filter)
        share, factor, static = figures(stylizer.stylize(frames))
        print('| {} ({}) | {:.4f} | {:.1f} | {:.3f} |'.format(
            os.path.basename(path), stylizer.arch, share, factor, static))


if __name__ == '__main__':
    main()
