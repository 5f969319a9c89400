"""How much a net repaints a frame when the camera moves by a few pixels.

    python -m benchmarks.shift_equivariance footage/street/0006.png [FRAME ...] \\
        -m models/candy_stab.model [-m ...] [--moves 0.5 1 2 3 4 8]

Each frame is stylized as generate.py does it (padding 50, median filter 3),
and so is the same frame with its first d rows and columns cut off: the
scene moved up and left by d pixels, as in a camera pan. On the pixels both
show, away from the moved frame's edges (--margin), a net whose strokes
follow the scene gives the same output; the figure is the RMS difference
(0-255 units), beside the output's own standard deviation for scale.

A pan moves most frames by a fraction of a pixel. A fractional d moves the
frame by d pixels down and right with a Fourier shift (exact for a
band-limited picture; the frame wraps around, which the margin leaves
out), rounded to 8 bits as a decoded frame is, and compares the moved
frame's output with the whole frame's output moved the same way.

The transform net halves the picture twice, so a move by a multiple of 4
pixels only moves its output along; a move by 1-3 pixels can repaint it,
and that is what the warping error of stability.py measures on video.
train.py --lambda_shift trains against it.
"""
import argparse

import numpy

from faststyle import cli
from faststyle import images
from faststyle import stylize


def fourier_shift(image, move):
    """``image`` (H, W, C) moved by ``move`` pixels down and right, wrapping
    around: each channel's spectrum times the phase ramp of the move."""
    height, width = image.shape[:2]
    phase = numpy.exp(-2j * numpy.pi * move * (numpy.fft.fftfreq(height)[:, None] +
                                               numpy.fft.fftfreq(width)[None, :]))
    spectrum = numpy.fft.fft2(image.astype(numpy.float64), axes=(0, 1))
    return numpy.fft.ifft2(spectrum * phase[:, :, None], axes=(0, 1)).real


def repaint(stylizer, frame, move, margin):
    """RMS difference between the stylized frame and the stylized frame moved
    by ``move`` pixels, on the pixels both show, ``margin`` in from the
    moved frame's edges; a fractional move is a Fourier shift of the frame,
    and the whole frame's output is moved the same way to compare."""
    if move == int(move):
        move = int(move)
        whole, moved = stylizer.stylize([frame, numpy.ascontiguousarray(frame[move:, move:])])
        same = whole[move:, move:].astype(numpy.float64)
    else:
        shifted = numpy.clip(numpy.rint(fourier_shift(frame, move)), 0, 255).astype(numpy.uint8)
        whole, moved = stylizer.stylize([frame, shifted])
        same = fourier_shift(whole, move)
    inside = (slice(margin, -margin), slice(margin, -margin))
    diff = same[inside] - moved[inside].astype(numpy.float64)
    return float(numpy.sqrt((diff ** 2).mean())), float(whole.std())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                     formatter_class=cli.HelpFormatter)
    parser.add_argument('frames', nargs='+', help='frames (image files)')
    parser.add_argument('-m', '--model', action='append', required=True,
                        help='a .model file (repeat for several)')
    parser.add_argument('--moves', type=float, nargs='+', default=[1, 2, 3, 4, 8],
                        help='moves in pixels; fractions are Fourier shifts')
    parser.add_argument('--margin', type=int, default=32,
                        help="pixels left out along the moved frame's edges, where "
                             'its mirrored padding (or a fractional move\'s wrap-around) '
                             'differs from the whole frame')
    args = parser.parse_args(argv)
    frames = [images.read_rgb_array(path) for path in args.frames]
    print('RMS difference (0-255) between the stylized frame and the stylized '
          'frame moved by d pixels; mean over {} frame(s)'.format(len(frames)))
    print('{:<36} {} {:>9}'.format(
        'model', ' '.join('{:>7}'.format('d={:g}'.format(d)) for d in args.moves), 'output sd'))
    for path in args.model:
        stylizer = stylize.Stylizer(path)
        rows = numpy.array([[repaint(stylizer, frame, move, args.margin) for move in args.moves]
                            for frame in frames]).mean(axis=0)
        print('{:<36} {} {:>9.1f}'.format(
            path, ' '.join('{:>7.1f}'.format(rms) for rms, _ in rows), rows[0][1]))


if __name__ == '__main__':
    main()
