"""Measure how steady a stylized video is: warping error, flicker, popping.

    python stability.py clip.mp4 -m models/a.model -m models/b.model
    python stability.py clip.mp4 --stylized out.mp4 --json figures.json
    python stability.py frames/ --stylized out/ --flow_dir flow/

SOURCE is a video or a folder of frames (sorted by name, numbers in natural
order). Each -m model stylizes SOURCE (stylize.Stylizer, CFNS's computation);
each --stylized video or folder is measured as it is, made by any tool. The
table has one row per model or video and a row for SOURCE itself: no
stylization can be much steadier than its input.

Figures (all on the 0-255 scale; lower is steadier, except detail):

warp_mse   temporal warping error (Ruder et al. 2016; Lai et al. 2018): output
           frame t-1 warped onto frame t with the optical flow of the SOURCE
           (frame t to t-1), squared RGB error averaged over the channels and
           the reliable pixels (forward-backward consistent, not leaving the
           frame), then over the frame pairs.
flicker    mean absolute frame-to-frame change of the output (RGB, per
           channel) where the source stands still: source flow shorter than
           --still_flow pixels of a frame 320 pixels wide (scaled with the
           measuring width, so that the same motion is still at every --size)
           and source change below --still_change.
popping    models only: mean absolute change of the output when fresh sparse
           noise, of the kind the noise-stability loss trains with, is added
           to each input frame (--noise_count pixels, each channel uniform in
           [-range, range], seeded).
reliable / still   the share of pixels the two figures before were averaged over.
detail     how much fine detail the output has, not a steadiness figure: its
           mean squared spatial gradient, i.e. the squared differences of
           horizontally neighbouring and of vertically neighbouring pixels
           (RGB, per channel, 0-255), each direction averaged over the frame,
           the two averages averaged, then averaged over all frames. A flat
           output has 0 (and a warping error near 0).
warp/detail    warp_mse / detail: warping error per unit of detail, so that a
           flatter output does not pass for a steadier one (JSON key
           warp_per_detail; n/a, null in JSON, when detail is 0).
flicker/rms    flicker / sqrt(detail), likewise (JSON key flicker_per_rms_detail).

Besides steadiness, what the output still shows (faststyle/quality.py), so
that a picture that lost the scene or the style does not pass for a good one:

structure  how much of the scene's shapes the output keeps: correlation of
           the blurred edge strengths of source and output frame (1 = all,
           0 = none, as a flat frame), averaged over the frames.
style_dist with --style PAINTING: how far the output's textures and colours are
           from the painting's (CFNS's style loss, unweighted, with the VGG16
           of --vgg; the painting resized to the frame); lower is closer.
palette    with --style: how far the output's colours are from the painting's
           (the distance of Gaussians fitted to their CIELAB colours, in Lab
           units); the style distance with HED's edge-tuned features can
           miss that a picture has only one or two of the painting's colours.
"""
import itertools
import json
import math
import os
import re
import sys

from faststyle import chainer_compat  # noqa: F401  (before Chainer: numpy 2, Py 3.12+)

import cv2
import numpy

from faststyle import cli
from faststyle import devices
from faststyle import flow as flowlib
from faststyle import images
from faststyle import quality
from faststyle import stylize
from faststyle import tempfiles
from faststyle import video
from faststyle.errors import InputError
import noise
import vgg16
from noise import default_noise_count

# --still_flow is in pixels of a frame this wide: flow lengths scale with the
# frame, so a fixed threshold called 20 % of a clip's pixels still at full
# size and 90 % at --size 320. 320 is the sample clip's width, where the
# default (0.5) was chosen and the published flicker figures were measured.
STILL_REFERENCE_WIDTH = 320
# Aspect ratios of SOURCE and a --stylized video may differ this much (codecs
# round sizes to even numbers, tools to multiples of 4) before it is an error.
ASPECT_TOLERANCE = 0.03


# --- reading frames ------------------------------------------------------------

def natural_key(name):
    """'frame_10.png' after 'frame_9.png'."""
    return [int(part) if part.isdigit() else part.lower()
            for part in re.split(r'(\d+)', name)]


def frame_files(folder):
    # Regular files only: a FIFO named .jpg would hang the reader.
    names = [n for n in os.listdir(folder)
             if os.path.splitext(n)[1].lower() in images.IMAGE_EXTENSIONS
             and os.path.isfile(os.path.join(folder, n))]
    if not names:
        raise InputError('{}: no image files ({}) in this folder'.format(
            folder, ', '.join(images.IMAGE_EXTENSIONS)))
    return [os.path.join(folder, n) for n in sorted(names, key=natural_key)]


def iter_video(path):
    reader = video.VideoReader(path)
    try:
        yield from reader
        if reader.shortfall():
            print('warning: {}; measured {} frames'.format(
                reader.shortfall(), reader.frames_read), file=sys.stderr)
    finally:
        reader.close()


def iter_frames(path):
    """RGB uint8 frames of a video file or a folder of images."""
    if os.path.isdir(path):
        return (images.read_rgb_array(p) for p in frame_files(path))
    if not os.path.exists(path):
        raise InputError('{}: no such file or folder'.format(path))
    cli.check_regular_file(path, 'video')
    return iter_video(path)


def count_frames(path):
    """Frame count (a video's header may be approximate), or None if unknown."""
    if os.path.isdir(path):
        return len(frame_files(path))
    capture = cv2.VideoCapture(path)
    try:
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        capture.release()
    return count if count > 0 else None


def measuring_size(width, height, max_side):
    """(width, height) with the longer side at most ``max_side`` (0: as is)."""
    if not max_side or max(width, height) <= max_side:
        return width, height
    scale = max_side / max(width, height)
    return max(1, int(round(width * scale))), max(1, int(round(height * scale)))


def resize(frame, size):
    """To (width, height), area-averaging when shrinking (no aliasing)."""
    if (frame.shape[1], frame.shape[0]) == tuple(size):
        return frame
    shrinking = size[0] < frame.shape[1]
    return cv2.resize(frame, tuple(size),
                      interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


# --- the three figures ---------------------------------------------------------

def add_noise(frame, noise):
    return numpy.clip(numpy.rint(frame.astype(numpy.float32) + noise), 0, 255).astype(
        numpy.uint8)


def warping_error(previous_out, out, backward_flow, reliable):
    """Mean squared RGB error (0-255) between ``out`` and ``previous_out``
    warped onto it with ``backward_flow`` (t -> t-1), over ``reliable``
    pixels; NaN when no pixel is reliable."""
    if not reliable.any():
        return float('nan')
    warped = flowlib.warp(previous_out, backward_flow)
    squared = (out.astype(numpy.float32) - warped) ** 2
    return float(numpy.mean(squared[reliable]))


def still_mask(previous_src, src, backward_flow, max_flow, max_change):
    """Where the source does not move: flow shorter than ``max_flow`` pixels
    and mean RGB change below ``max_change`` (which keeps sensor noise in
    and anything that really changes out)."""
    length = numpy.sqrt(numpy.sum(backward_flow ** 2, axis=2))
    change = numpy.mean(numpy.abs(src.astype(numpy.float32) - previous_src), axis=2)
    return (length < max_flow) & (change < max_change)


def still_flow_pixels(still_flow, width):
    """--still_flow (pixels at STILL_REFERENCE_WIDTH) in pixels of a frame
    ``width`` pixels wide."""
    return still_flow * width / STILL_REFERENCE_WIDTH


def absolute_change(a, b, mask=None):
    """(sum, count) over the pixels in ``mask`` of |a - b| averaged over RGB."""
    difference = numpy.mean(numpy.abs(a.astype(numpy.float32) - b.astype(numpy.float32)),
                            axis=2)
    if mask is not None:
        difference = difference[mask]
    return float(numpy.sum(difference, dtype=numpy.float64)), difference.size


def spatial_detail(frame):
    """Mean squared spatial gradient of one RGB frame (0-255 scale): the mean
    over channels and pixel pairs of the squared difference of horizontal
    neighbours, the same of vertical neighbours, and the mean of the two."""
    frame = frame.astype(numpy.float64)
    horizontal = frame[:, 1:] - frame[:, :-1]
    vertical = frame[1:] - frame[:-1]
    return float(sum(numpy.mean(d ** 2) if d.size else 0.0
                     for d in (horizontal, vertical)) / 2)


def per_detail(value, detail, power=1.0):
    """``value`` / ``detail`` ** ``power``; None when either is unknown or the
    detail is 0 (a flat output: no unit of detail to divide by)."""
    if value is None or detail is None or detail <= 0:
        return None
    return value / detail ** power


class PairGeometry:
    """What the source says about frames t-1 -> t: flow and the two masks."""

    def __init__(self, backward, reliable, still):
        self.backward = backward
        self.reliable = reliable
        self.still = still


class RowTotals:
    """Running sums of one table row's figures (a model, a video, the source),
    and the figures they give (:meth:`summary`)."""

    def __init__(self, name, kind, style_distance=None):
        self.name = name
        self.kind = kind
        self.style_distance = style_distance
        self.structure_sum = 0.0
        self.style_sum = 0.0
        self.palette_sum = 0.0
        self.pair_warp_mse = []
        self.reliable_pixels = 0
        self.flicker_sum = 0.0
        self.still_pixels = 0
        self.popping_sum = 0.0
        self.popping_pixels = 0
        self.pixels = 0
        self.detail_sum = 0.0
        self.frames = 0
        self._previous = None

    def add(self, out, pair=None, noisy_out=None, source=None):
        """Account frame t of this row (``pair`` is None for the first frame;
        ``source``, the source frame, gives the structure kept)."""
        if pair is not None:
            self.pair_warp_mse.append(
                warping_error(self._previous, out, pair.backward, pair.reliable))
            self.reliable_pixels += int(pair.reliable.sum())
            total, count = absolute_change(out, self._previous, pair.still)
            self.flicker_sum += total
            self.still_pixels += count
            self.pixels += out.shape[0] * out.shape[1]
        if noisy_out is not None:
            total, count = absolute_change(noisy_out, out)
            self.popping_sum += total
            self.popping_pixels += count
        self.detail_sum += spatial_detail(out)
        if source is not None:
            self.structure_sum += quality.structure_kept(source, out)
        if self.style_distance is not None:
            self.style_sum += self.style_distance(out)
            self.palette_sum += self.style_distance.palette(out)
        self._previous = out
        self.frames += 1

    def summary(self):
        valid = [e for e in self.pair_warp_mse if not math.isnan(e)]
        warp_mse = float(numpy.mean(valid)) if valid else None
        flicker = self.flicker_sum / self.still_pixels if self.still_pixels else None
        detail = self.detail_sum / self.frames if self.frames else None
        return {
            'name': self.name,
            'kind': self.kind,
            'frames': self.frames,
            'warp_mse': warp_mse,
            'reliable': self.reliable_pixels / self.pixels if self.pixels else None,
            'flicker': flicker,
            'still': self.still_pixels / self.pixels if self.pixels else None,
            'popping': (self.popping_sum / self.popping_pixels
                        if self.popping_pixels else None),
            'warp_mse_per_pair': [None if math.isnan(e) else e for e in self.pair_warp_mse],
            'detail': detail,
            'warp_per_detail': per_detail(warp_mse, detail),
            'flicker_per_rms_detail': per_detail(flicker, detail, 0.5),
            'structure': self.structure_sum / self.frames if self.frames else None,
            'style_dist': (self.style_sum / self.frames
                           if self.frames and self.style_distance else None),
            'palette': (self.palette_sum / self.frames
                        if self.frames and self.style_distance else None),
        }


# --- the rows: where the output frames come from ---------------------------------

class SourceRow:
    """The source measured against itself."""

    def __init__(self, name, style_distance=None):
        self.totals = RowTotals(name, 'source', style_distance)

    def add(self, src, pair, t):
        self.totals.add(src, pair, source=src)


class VideoRow:
    """A stylized video or folder made by any tool, read alongside the source."""

    def __init__(self, path, size, style_distance=None):
        self.path = path
        self.size = size
        self.frames = iter_frames(path)
        self.totals = RowTotals(path, 'video', style_distance)

    def add(self, src, pair, t):
        try:
            frame = next(self.frames)
        except StopIteration:
            raise InputError('{}: ends after {} frames, before the source does '
                             '(use --max_frames to measure fewer)'.format(self.path, t))
        check_aspect(self.path, frame, self.size)
        self.totals.add(resize(frame, self.size), pair, source=src)


def check_aspect(path, frame, size):
    aspect = frame.shape[1] / frame.shape[0]
    wanted = size[0] / size[1]
    if abs(aspect / wanted - 1) > ASPECT_TOLERANCE:
        raise InputError('{}: frames are {}x{}, the source is {}:{}; not a stylized '
                         'version of it'.format(path, frame.shape[1], frame.shape[0],
                                                size[0], size[1]))


class ModelRow:
    """A model stylizing the source, also with fresh sparse noise added."""

    def __init__(self, stylizer, path, popping, noise_count, noise_range, noise_seed,
                 style_distance=None):
        self.stylizer = stylizer
        self.popping = popping
        self.noise_count = noise_count
        self.noise_range = noise_range
        self.noise_seed = noise_seed
        self.totals = RowTotals(path, 'model', style_distance)

    def add(self, src, pair, t):
        if not self.popping:
            out, = self.stylizer.stylize([src])
            self.totals.add(out, pair, source=src)
            return
        height, width = src.shape[:2]
        count = self.noise_count or default_noise_count(height, width)
        # A generator per frame from (seed, t): the same noise for every model
        # and any --max_frames; an array seed never equals train.py's int seed.
        rng = numpy.random.RandomState([self.noise_seed, t])
        noisy = add_noise(src, noise.sparse_noise(height, width, count, self.noise_range,
                                                     rng).transpose(1, 2, 0))
        out, noisy_out = self.stylizer.stylize([src, noisy])
        self.totals.add(out, pair, noisy_out, source=src)


# --- the measurement -------------------------------------------------------------

class SourceFlow:
    """Forward and backward flow of each source pair: computed, or from .flo files."""

    def __init__(self, method='dis', flow_dir=None, write_dir=None):
        self.folder = flowlib.FlowFolder(flow_dir) if flow_dir else None
        self.estimator = None if flow_dir else flowlib.FlowEstimator(method)
        self.write_dir = write_dir

    def __call__(self, previous_src, src, t):
        if self.folder is not None:
            return self.folder.pair(t, src.shape[:2])
        forward = self.estimator(previous_src, src)
        backward = self.estimator(src, previous_src)
        if self.write_dir:
            flowlib.write_flow_pair(self.write_dir, t, forward, backward)
        return forward, backward


def measure(source_frames, rows, source_flow, motion_boundaries=False,
            still_flow=0.5, still_change=12.0, progress=None):
    """Feed each source frame (and the flow to the one before) to every row.

    ``source_frames`` yields RGB uint8 frames of one size; each row has
    ``add(src, pair, t)`` and ``totals`` (a RowTotals). ``still_flow`` is in
    pixels of a frame STILL_REFERENCE_WIDTH wide. Returns the number of frames.
    """
    previous = None
    t = 0
    for t, src in enumerate(source_frames):
        pair = None
        if previous is not None:
            forward, backward = source_flow(previous, src, t)
            reliable = flowlib.reliable_mask(backward, forward, motion_boundaries)
            still = still_mask(previous, src, backward,
                               still_flow_pixels(still_flow, src.shape[1]), still_change)
            pair = PairGeometry(backward, reliable, still)
        for row in rows:
            row.add(src, pair, t)
        previous = src
        if progress is not None:
            progress.update(1)
    frames = t + 1 if previous is not None else 0
    if frames < 2:
        raise InputError('the source has {} frame(s); measuring needs at least 2'.format(
            frames))
    return frames


class SourceFrames:
    """The source's frames at the measuring size (known from the first frame)."""

    def __init__(self, path, max_side=0, max_frames=0):
        self.path = path
        self.max_frames = max_frames
        self._frames = iter_frames(path)
        self._first = next(self._frames, None)
        if self._first is None:
            raise InputError('{}: no frames'.format(path))
        self.shape = self._first.shape
        self.size = measuring_size(self.shape[1], self.shape[0], max_side)

    def __iter__(self):
        for t, frame in enumerate(itertools.chain([self._first], self._frames)):
            if self.max_frames and t >= self.max_frames:
                return
            if frame.shape != self.shape:
                raise InputError('{}: frame {} is {}x{}, the first is {}x{}'.format(
                    self.path, t + 1, frame.shape[1], frame.shape[0],
                    self.shape[1], self.shape[0]))
            yield resize(frame, self.size)


# --- the command line -------------------------------------------------------------

def format_table(results):
    columns = [('name', 'name', '{}'), ('frames', 'frames', '{:d}'),
               ('warp_mse', 'warp_mse', '{:.2f}'), ('reliable', 'reliable', '{:.1%}'),
               ('flicker', 'flicker', '{:.3f}'), ('still', 'still', '{:.1%}'),
               ('popping', 'popping', '{:.3f}'), ('detail', 'detail', '{:.2f}'),
               ('warp/detail', 'warp_per_detail', '{:.3f}'),
               ('flicker/rms', 'flicker_per_rms_detail', '{:.3f}'),
               ('structure', 'structure', '{:.2f}'), ('style_dist', 'style_dist', '{:.0f}'),
               ('palette', 'palette', '{:.1f}')]
    rows = [[('n/a' if r[key] is None else fmt.format(r[key])) for _, key, fmt in columns]
            for r in results]
    widths = [max(len(title), *(len(row[i]) for row in rows))
              for i, (title, _, _) in enumerate(columns)]
    lines = ['  '.join(title.ljust(w) if i == 0 else title.rjust(w)
                       for i, ((title, _, _), w) in enumerate(zip(columns, widths)))]
    for row in rows:
        lines.append('  '.join(cell.ljust(w) if i == 0 else cell.rjust(w)
                               for i, (cell, w) in enumerate(zip(row, widths))))
    return '\n'.join(lines)


def to_json(results, args, frames, size):
    return {
        'source': args.source,
        'frames': frames,
        'size': list(size),
        'flow': ('.flo files in ' + args.flow_dir) if args.flow_dir else args.flow,
        'settings': {
            'motion_boundaries': args.motion_boundaries,
            'still_flow': args.still_flow,
            'still_flow_pixels': still_flow_pixels(args.still_flow, size[0]),
            'still_change': args.still_change,
            'noise_count': args.noise_count or default_noise_count(size[1], size[0]),
            'noise_range': args.noise_range, 'noise_seed': args.noise_seed,
            'stats': args.stats, 'backend': args.backend, 'precision': args.precision,
            'padding': args.padding,
            'style': args.style, 'vgg': args.vgg if args.style else None,
            'median_filter': args.median_filter,
        },
        'rows': results,
    }


def write_json(path, document):
    text = json.dumps(document, indent=2, allow_nan=False) + '\n'
    tempfiles.atomic_write(path, lambda f: f.write(text.encode('utf-8')))


def parse_args(argv):
    parser = cli.ArgumentParser(
        description='\n\n'.join(__doc__.split('\n\n')[:2]),
        epilog=__doc__.split('\n\n', 2)[2],
        formatter_class=cli.RawDescriptionHelpFormatter)
    parser.add_argument('source', help='the source video, or a folder of its frames')
    parser.add_argument('-m', '--model', action='append', default=[],
                        help='stylize SOURCE with this .model and measure it; repeat '
                             'for more models')
    parser.add_argument('--stylized', action='append', default=[],
                        help='measure this stylized video or folder of frames (made '
                             'from SOURCE by any tool, frame for frame; frames past '
                             "the source's end are ignored); repeat for more")
    parser.add_argument('--json', help='also write the figures to this JSON file')
    cli.add_flag(parser, '--max_frames', type=int, default=0,
                 help='measure only the first N frames (default: all)')
    parser.add_argument('--size', type=int, default=0,
                        help='shrink frames so the longer side is at most this many '
                             'pixels before measuring and stylizing (default: as is)')
    parser.add_argument('--flow', choices=flowlib.METHODS, default='dis',
                        help="optical flow of the source: OpenCV's DIS or Farneback")
    cli.add_flag(parser, '--flow_dir',
                 help='read the source flow from Middlebury .flo files instead: '
                      'forward_I_J.flo (frame I to J=I+1) and backward_J_I.flo (J to '
                      'I), frames numbered from 1, at the measuring size')
    cli.add_flag(parser, '--write_flow',
                 help='write the computed source flow to this folder (same layout)')
    cli.add_flag(parser, '--motion_boundaries', action='store_true',
                 help="also leave out motion boundaries (Ruder et al.'s second test) "
                      'from the warping error')
    cli.add_flag(parser, '--still_flow', type=float, default=0.5,
                 help='flicker: source flow below this many pixels of a frame {} '
                      'pixels wide counts as still; scaled with the measuring width '
                      '(1.0 at 640, 2.0 at 1280), so the still share is comparable '
                      'across sizes'.format(STILL_REFERENCE_WIDTH))
    cli.add_flag(parser, '--still_change', type=float, default=12.0,
                 help='flicker: and the source pixel changes by less than this (mean '
                      'RGB, 0-255; above the sensor noise of typical video)')
    parser.add_argument('--style', metavar='PAINTING',
                        help='also measure the style distance of every row to this '
                             'style image')
    parser.add_argument('--vgg', default='vgg16.model',
                        help='VGG16 weights for --style (CFNS layout; see vgg16.py)')
    cli.add_flag(parser, '--no_popping', action='store_true',
                 help='skip the popping figure (halves the stylizing time)')
    cli.add_flag(parser, '--noise_count', type=int, default=0,
                 help='popping: noisy pixels per frame (default: 1000 per 512x512, '
                      'scaled with the frame area, as the stability note)')
    cli.add_flag(parser, '--noise_range', type=float, default=30.0,
                 help='popping: each noisy channel is uniform in [-range, range]')
    cli.add_flag(parser, '--noise_seed', type=cli.seed, default=1,
                 help='popping: seed of the noise')
    devices.add_device_arguments(parser, 'the models')
    stylize.add_arguments(parser)  # the stylizing flags, as generate.py
    cli.add_flag(parser, '--no_progress', action='store_true', help='no progress bar')
    args = parser.parse_args(argv)
    if args.max_frames < 0 or args.size < 0 or args.noise_count < 0:
        parser.error('--max_frames, --size and --noise_count must not be negative')
    if args.max_frames == 1:
        parser.error('--max_frames must be at least 2 (the figures compare frame pairs)')
    if args.noise_range < 0 or args.still_flow < 0 or args.still_change < 0:
        parser.error('--noise_range, --still_flow and --still_change must not be negative')
    if args.flow_dir and args.write_flow:
        parser.error('--write_flow writes computed flow; it cannot go with --flow_dir')
    return args


def make_stylizers(args):
    """A stylize.Stylizer per -m model."""
    if not args.model:
        return []
    return [stylize.from_args(args, path) for path in args.model]


def make_style_distance(args):
    """quality.StyleDistance to --style with the VGG16 of --vgg."""
    painting = numpy.asarray(images.open_rgb(args.style))
    vgg = vgg16.load_vgg(args.vgg)
    if vgg.is_stand_in:
        print('WARNING: {} holds RANDOM stand-in VGG16 weights: the style distance '
              'says nothing about a style'.format(args.vgg), file=sys.stderr)
    device = devices.get_device(devices.specifier(args.gpu, args.device))
    vgg.to_device(device)
    return quality.StyleDistance(vgg, painting, device)


def run(args):
    """Measure SOURCE against every model and video; returns the JSON document."""
    for path in args.stylized:
        if not os.path.exists(path):
            raise InputError('{}: no such file or folder'.format(path))
    source = SourceFrames(args.source, args.size, args.max_frames)
    size = source.size
    style_distance = make_style_distance(args) if args.style else None
    rows = [SourceRow('source: ' + args.source, style_distance)]
    for stylizer, path in zip(make_stylizers(args), args.model):
        rows.append(ModelRow(stylizer, path, not args.no_popping, args.noise_count,
                             args.noise_range, args.noise_seed, style_distance))
    rows.extend(VideoRow(path, size, style_distance) for path in args.stylized)
    source_flow = SourceFlow(args.flow, args.flow_dir, args.write_flow)

    total = count_frames(args.source)
    if args.max_frames:
        total = min(total, args.max_frames) if total else args.max_frames
    from tqdm import tqdm
    with tqdm(total=total, unit='frame', desc='measuring', file=sys.stderr,
              disable=True if args.no_progress else None, leave=False) as progress:
        frame_count = measure(source, rows, source_flow, args.motion_boundaries,
                              args.still_flow, args.still_change, progress)
    return to_json([row.totals.summary() for row in rows], args, frame_count, size)


def check_outputs(args):
    """Before any frame is measured: can --json and --write_flow be written?"""
    if args.json:
        cli.check_writable(args.json, 'JSON file')
    if args.write_flow:
        cli.check_writable_directory(args.write_flow, 'flow folder')


def main(argv=None):
    args = parse_args(argv)

    def measure_and_report(_):
        check_outputs(args)
        document = run(args)
        print(format_table(document['rows']))  # kept even if the JSON fails
        if args.json:
            write_json(args.json, document)
        return 0
    return cli.run_cli(measure_and_report)


if __name__ == '__main__':
    sys.exit(main())
