"""Rebuild the sample clip: a pan and zoom over a shipped photo, with sensor noise.

    python -m scripts.make_sample_clip                  # sample_images/tubingen_pan.mp4
    python -m scripts.make_sample_clip --flow_dir flow/ # also the exact optical flow

The camera moves over a still photo, so the true motion of every pixel is
known exactly: ``--flow_dir`` writes it as Middlebury .flo files in the
layout ``stability.py --flow_dir`` reads, which checks the computed flow and
the warping error. Each frame gets fresh Gaussian "sensor" noise, as a real
camera would, so nothing in the clip is perfectly still. The clip is
deterministic: the same flags give the same frames (the .mp4's bytes depend
on the ffmpeg build).

Motion (fractions of ``--frames``): hold, pan right, zoom in, hold.
"""
import argparse
import os
import sys

from faststyle import chainer_compat  # noqa: F401  (before Chainer: numpy 2, Py 3.12+)

import cv2
import numpy
from PIL import Image

from faststyle import cli
from faststyle import flow as flowlib
from faststyle import images
from faststyle import tempfiles
from faststyle.errors import InputError

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_PHOTO = os.path.join(HERE, 'sample_images', 'tubingen.jpg')
DEFAULT_OUT = os.path.join(HERE, 'sample_images', 'tubingen_pan.mp4')

# Camera key poses in the photo's pixels (tubingen.jpg is 1024x768):
# view centre (x, y) and view width; the view has the clip's aspect ratio.
START = (380.0, 390.0, 720.0)
PANNED = (640.0, 360.0, 720.0)
ZOOMED = (600.0, 330.0, 420.0)
HOLD_FRACTION = 0.125  # of the frames, still at the start and at the end
BLUR_PIXELS = 0.7  # camera softness, in clip pixels


def smoothstep(s):
    """Ease in and out, so the speed changes like a hand-moved camera."""
    return s * s * (3.0 - 2.0 * s)


def camera_path(n_frames):
    """(centre x, centre y, view width) in photo pixels for each frame."""
    hold = max(1, int(round(n_frames * HOLD_FRACTION)))
    moving = n_frames - 2 * hold
    pan = moving // 2
    zoom = moving - pan
    poses = []
    for t in range(n_frames):
        if t < hold:
            a, b, s, log_width = START, START, 0.0, False
        elif t < hold + pan:
            a, b, s, log_width = START, PANNED, (t - hold + 1) / pan, False
        elif t < hold + pan + zoom:
            a, b, s, log_width = PANNED, ZOOMED, (t - hold - pan + 1) / zoom, True
        else:
            a, b, s, log_width = ZOOMED, ZOOMED, 0.0, False
        s = smoothstep(s)
        cx = a[0] + (b[0] - a[0]) * s
        cy = a[1] + (b[1] - a[1]) * s
        # A zoom looks uniform when the width changes geometrically.
        width = (a[2] * (b[2] / a[2]) ** s) if log_width else a[2] + (b[2] - a[2]) * s
        poses.append((cx, cy, width))
    return poses


def frame_to_photo(pose, size):
    """2x3 affine matrix taking a clip pixel (x, y) to photo pixels."""
    width, height = size
    cx, cy, view_width = pose
    scale = view_width / width
    # Pixel centres: the clip's centre pixel coordinate maps to the view centre.
    x0, y0 = (width - 1) / 2.0, (height - 1) / 2.0
    return numpy.array([[scale, 0.0, cx - scale * x0],
                        [0.0, scale, cy - scale * y0]])


def exact_flow(pose_a, pose_b, size):
    """flow_a_to_b: where each pixel of frame a is in frame b (flow.py convention)."""
    width, height = size
    a = frame_to_photo(pose_a, size)
    b = frame_to_photo(pose_b, size)
    xs, ys = numpy.meshgrid(numpy.arange(width, dtype=numpy.float64),
                            numpy.arange(height, dtype=numpy.float64))
    photo_x = a[0, 0] * xs + a[0, 2]
    photo_y = a[1, 1] * ys + a[1, 2]
    bx = (photo_x - b[0, 2]) / b[0, 0]
    by = (photo_y - b[1, 2]) / b[1, 1]
    return numpy.stack([bx - xs, by - ys], axis=2).astype(numpy.float32)


def load_photo(path):
    try:
        return images.read_rgb_array(path)
    except InputError as e:
        raise InputError('cannot read the photo: {}'.format(e))


def render_frame(photo, pose, size, t, noise_sigma, seed):
    """Frame t of the clip as an RGB uint8 array of ``size`` (width, height)."""
    matrix = frame_to_photo(pose, size)
    # Low-pass the photo before sampling it: no aliasing, and the slight
    # softness of a real video camera (a blur of 0.7 clip pixels). A sharper
    # clip would make bilinear warping itself, not the motion, dominate the
    # warping error of the source.
    photo = cv2.GaussianBlur(photo, (0, 0), BLUR_PIXELS * matrix[0, 0])
    frame = cv2.warpAffine(photo.astype(numpy.float32), matrix, size,
                           flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                           borderMode=cv2.BORDER_REFLECT)
    if noise_sigma > 0:
        # One generator per frame: any frame can be rebuilt alone.
        rng = numpy.random.RandomState([seed, t])
        frame += rng.normal(0.0, noise_sigma, size=frame.shape).astype(numpy.float32)
    return numpy.clip(numpy.rint(frame), 0, 255).astype(numpy.uint8)


def render_clip(photo, n_frames, size, noise_sigma, seed):
    """(frames, poses): the clip's frames and the camera pose of each."""
    poses = camera_path(n_frames)
    frames = [render_frame(photo, pose, size, t, noise_sigma, seed)
              for t, pose in enumerate(poses)]
    return frames, poses


def write_exact_flow(folder, poses, size):
    """Forward and backward flow of every pair, named as stability.py reads them."""
    for t in range(1, len(poses)):
        forward = exact_flow(poses[t - 1], poses[t], size)
        backward = exact_flow(poses[t], poses[t - 1], size)
        flowlib.write_flow_pair(folder, t, forward, backward)


def write_mp4(path, frames, fps, crf):
    """H.264 (yuv420p) through the ffmpeg of imageio-ffmpeg, atomically."""
    try:
        import imageio_ffmpeg
    except ImportError:
        raise InputError('writing the .mp4 needs imageio-ffmpeg '
                         '(pip install -r requirements-dev.txt)')
    height, width = frames[0].shape[:2]
    with tempfiles.atomic_path(path) as tmp:  # absolute: no name is taken for a URL
        writer = imageio_ffmpeg.write_frames(
            tmp, (width, height), fps=fps, codec='libx264', quality=None,
            pix_fmt_out='yuv420p', macro_block_size=1, ffmpeg_log_level='error',
            output_params=['-crf', str(crf), '-preset', 'slow', '-tune', 'grain',
                           '-map_metadata', '-1', '-fflags', '+bitexact',
                           '-flags:v', '+bitexact'])
        writer.send(None)
        for frame in frames:
            writer.send(numpy.ascontiguousarray(frame))
        writer.close()


def write_pngs(folder, frames):
    os.makedirs(folder, exist_ok=True)
    for t, frame in enumerate(frames):
        Image.fromarray(frame).save(os.path.join(folder, 'frame_{:04d}.png'.format(t + 1)))


def parse_size(text):
    try:
        width, height = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise argparse.ArgumentTypeError('size must look like 320x240')
    if width < 16 or height < 16 or width % 2 or height % 2:
        raise argparse.ArgumentTypeError('width and height must be even and >= 16')
    return width, height


def parse_args(argv):
    parser = cli.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('-o', '--out', default=DEFAULT_OUT,
                        help='the .mp4 to write (default: %(default)s); "" for none')
    parser.add_argument('--photo', default=DEFAULT_PHOTO,
                        help='the still photo the camera moves over (default: '
                             'sample_images/tubingen.jpg; the camera poses are '
                             'chosen for its 1024x768)')
    parser.add_argument('--frames', type=int, default=48,
                        help='number of frames')
    parser.add_argument('--size', type=parse_size, default=(320, 240),
                        help='frame size WIDTHxHEIGHT (default: 320x240)')
    parser.add_argument('--fps', type=int, default=24,
                        help='frame rate of the .mp4')
    parser.add_argument('--noise', type=float, default=3.0,
                        help='standard deviation of the per-frame Gaussian sensor '
                             'noise, 0-255 scale')
    parser.add_argument('--seed', type=cli.seed, default=0,
                        help='seed of the sensor noise')
    parser.add_argument('--crf', type=int, default=14,
                        help='x264 quality, lower is better')
    cli.add_flag(parser, '--flow_dir',
                 help='also write the exact optical flow here as .flo files '
                      '(forward_I_J.flo, backward_J_I.flo; 1-based)')
    cli.add_flag(parser, '--frames_dir',
                 help='also write the frames here as lossless PNGs '
                      '(frame_0001.png, ...)')
    args = parser.parse_args(argv)
    if args.frames < 2:
        parser.error('--frames must be at least 2')
    return args


def main(argv=None):
    args = parse_args(argv)
    return cli.run_cli(lambda _: run(args))


def run(args):
    if args.out:
        cli.check_writable(args.out)
    for folder in (args.frames_dir, args.flow_dir):
        if folder:
            cli.check_writable_directory(folder, 'output folder')
    photo = load_photo(args.photo)
    frames, poses = render_clip(photo, args.frames, args.size, args.noise, args.seed)
    if args.out:
        write_mp4(args.out, frames, args.fps, args.crf)
        print('wrote {} ({} frames, {}x{})'.format(args.out, len(frames), *args.size))
    if args.frames_dir:
        write_pngs(args.frames_dir, frames)
        print('wrote {} frames to {}'.format(len(frames), args.frames_dir))
    if args.flow_dir:
        write_exact_flow(args.flow_dir, poses, args.size)
        print('wrote the exact flow of {} frame pairs to {}'.format(
            len(frames) - 1, args.flow_dir))
    return 0


if __name__ == '__main__':
    sys.exit(main())
