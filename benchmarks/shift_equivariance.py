"""How much a net repaints a frame when the camera moves by a few pixels.

    python -m benchmarks.shift_equivariance footage/street/0006.png [FRAME ...] \\
        -m models/candy_stab.model [-m ...] [--moves 0.5 1 2 3 4 8] \\
        [--warps zoom:2 turn:1 bend:2.5]

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

Scenes also grow, turn and bend on video (a zoom, a turning camera, a
walking figure). --warps moves the frame by such warps, each KIND:AMOUNT:
zoom:P (in by P percent about the centre), turn:D (D degrees about the
centre) or bend:A (a smooth random bend, each pixel moved by up to A
pixels, from a 5x5 grid of random moves, seeded, interpolated bicubically),
sampled bilinearly (faststyle.flow.warp, as stability.py warps), rounded
to 8 bits; the whole frame's output is warped the same way to compare.
"""
import argparse

import cv2
import numpy

from faststyle import cli
from faststyle import flow
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


WARP_KINDS = ('zoom', 'turn', 'bend')


def warp_flow(shape, kind, amount, seed=0):
    """The flow (H, W, 2) of a ``kind`` warp by ``amount`` on a frame of
    ``shape`` (H, W): each pixel's (dx, dy) to where it samples the frame, as
    faststyle.flow.warp takes it."""
    height, width = shape
    xs, ys = numpy.meshgrid(numpy.arange(width, dtype=numpy.float64),
                            numpy.arange(height, dtype=numpy.float64))
    dx, dy = xs - (width - 1) / 2, ys - (height - 1) / 2  # from the centre
    if kind == 'zoom':  # in by amount %: each pixel samples nearer the centre
        shrink = 1 / (1 + amount / 100) - 1
        moves = [dx * shrink, dy * shrink]
    elif kind == 'turn':
        cos, sin = numpy.cos(numpy.radians(amount)), numpy.sin(numpy.radians(amount))
        moves = [cos * dx - sin * dy - dx, sin * dx + cos * dy - dy]
    elif kind == 'bend':
        coarse = numpy.random.RandomState(seed).uniform(-amount, amount, (2, 5, 5))
        moves = [cv2.resize(c.astype(numpy.float32), (width, height),
                            interpolation=cv2.INTER_CUBIC) for c in coarse]
    else:
        raise ValueError('unknown warp {!r}'.format(kind))
    return numpy.stack(moves, axis=-1).astype(numpy.float32)


def rewarp(stylizer, frame, kind, amount, margin):
    """RMS difference between the stylized warped frame and the stylized
    frame warped the same way, ``margin`` in from the edges (where the warp
    samples outside the frame), and the stylized frame's standard deviation."""
    moves = warp_flow(frame.shape[:2], kind, amount)
    moved = numpy.clip(numpy.rint(flow.warp(frame, moves)), 0, 255).astype(numpy.uint8)
    whole, moved_output = stylizer.stylize([frame, moved])
    inside = (slice(margin, -margin), slice(margin, -margin))
    diff = flow.warp(whole, moves)[inside].astype(numpy.float64) - moved_output[inside]
    return float(numpy.sqrt((diff ** 2).mean())), float(whole.std())


def parse_warp(text):
    """'zoom:2' -> ('zoom', 2.0), for argparse."""
    kind, _, amount = text.partition(':')
    try:
        value = float(amount)
    except ValueError:
        value = None
    if kind not in WARP_KINDS or value is None or not numpy.isfinite(value):
        raise argparse.ArgumentTypeError(
            'a warp is KIND:AMOUNT with KIND one of {}, not {!r}'.format(
                ', '.join(WARP_KINDS), text))
    return kind, value


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                     formatter_class=cli.HelpFormatter)
    parser.add_argument('frames', nargs='+', help='frames (image files)')
    parser.add_argument('-m', '--model', action='append', required=True,
                        help='a .model file (repeat for several)')
    parser.add_argument('--moves', type=float, nargs='+', default=[1, 2, 3, 4, 8],
                        help='moves in pixels; fractions are Fourier shifts')
    parser.add_argument('--warps', type=parse_warp, nargs='*', default=[],
                        help='warps as KIND:AMOUNT: zoom:PERCENT, turn:DEGREES, '
                             'bend:PIXELS (see above)')
    parser.add_argument('--margin', type=int, default=32,
                        help="pixels left out along the moved frame's edges, where "
                             'its mirrored padding (or a fractional move\'s wrap-around) '
                             'differs from the whole frame')
    args = parser.parse_args(argv)
    frames = [images.read_rgb_array(path) for path in args.frames]
    print('RMS difference (0-255) between the stylized frame and the stylized '
          'frame moved by d pixels (or warped); mean over {} frame(s)'.format(len(frames)))
    names = ['d={:g}'.format(d) for d in args.moves] + [
        '{}:{:g}'.format(kind, amount) for kind, amount in args.warps]
    print('{:<36} {} {:>9}'.format(
        'model', ' '.join('{:>8}'.format(name) for name in names), 'output sd'))
    for path in args.model:
        stylizer = stylize.Stylizer(path)
        rows = numpy.array([
            [repaint(stylizer, frame, move, args.margin) for move in args.moves] +
            [rewarp(stylizer, frame, kind, amount, args.margin) for kind, amount in args.warps]
            for frame in frames]).mean(axis=0)
        print('{:<36} {} {:>9.1f}'.format(
            path, ' '.join('{:>8.1f}'.format(rms) for rms, _ in rows), rows[0][1]))


if __name__ == '__main__':
    main()
