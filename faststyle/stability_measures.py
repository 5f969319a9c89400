"""Steadiness of stylized video: the figures of stability.py, frame by frame.

A source video (or folder of frames) is read at a measuring size; each
frame and the optical flow to the frame before go to every *row*: the source
itself (:class:`SourceRow`), a stylized video made by any tool
(:class:`VideoRow`), or a model stylizing the source (:class:`ModelRow`).
A row accounts its output frames in a :class:`RowTotals`, whose
``summary()`` gives the figures stability.py's help defines: warping error,
flicker, popping, detail and the figures per unit of detail, structure kept
and style distance.

    source = SourceFrames('clip.mp4', max_side=320)
    rows = [SourceRow('source'), ModelRow(stylizer, 'a.model')]
    measure(source, rows, SourceFlow('dis'))
    figures = [row.totals.summary() for row in rows]
"""
import itertools
import math
import os
import sys

import cv2
import numpy

from faststyle import cli
from faststyle import flow as flowlib
from faststyle import folders
from faststyle import images
from faststyle import quality
from faststyle import video
from faststyle.errors import InputError
import noise

# --still_flow is in pixels of a frame this wide: flow lengths scale with the
# frame, so a fixed threshold called 20 % of a clip's pixels still at full
# size and 90 % at --size 320. 320 is the sample clip's width, where the
# default (0.5) was chosen and the published flicker figures were measured.
STILL_REFERENCE_WIDTH = 320
# Aspect ratios of SOURCE and a --stylized video may differ this much (codecs
# round sizes to even numbers, tools to multiples of 4) before it is an error.
ASPECT_TOLERANCE = 0.03


# --- reading frames ------------------------------------------------------------

def frame_files(folder):
    """The image files of ``folder``, in frame order (numbers in natural order)."""
    paths = folders.list_files(folder, images.IMAGE_EXTENSIONS, key=folders.natural_key)
    if not paths:
        raise InputError('{}: no image files ({}) in this folder'.format(
            folder, ', '.join(images.IMAGE_EXTENSIONS)))
    return paths


def check_frame_names(source, stylized, max_frames=0):
    """InputError where a stylized folder named with the source folder's frame
    names (as generate.py writes them: every name one of the source's, the
    first the same) holds others in their places: paired by position, a
    missing frame would put every later one against the wrong source frame.
    A folder named otherwise (another tool's, or numbered from 1 where the
    source is from 0) is paired by position as it is; the first
    ``max_frames`` (0: all) are checked."""
    if not (os.path.isdir(source) and os.path.isdir(stylized)):
        return

    def stems(folder):
        return [os.path.splitext(os.path.basename(p))[0] for p in frame_files(folder)]
    ours, theirs = stems(source), stems(stylized)
    if theirs[0] != ours[0] or not set(theirs) <= set(ours):
        return
    pairs = list(zip(ours, theirs))[:max_frames or None]
    for number, (want, have) in enumerate(pairs, 1):
        if want != have:
            raise InputError('{}: its frame {} is {}, where the source has {}; a folder '
                             'named as the source\'s frames must hold them frame for '
                             'frame (is one missing?)'.format(stylized, number, have, want))


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
    return images.scaled_size(width, height, max_side / max(width, height))


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

    def __init__(self, name, kind, style_distance=None, texture_distance=None):
        self.name = name
        self.kind = kind
        self.style_distance = style_distance
        self.texture_distance = texture_distance
        self.structure_sum = 0.0
        self.style_sum = 0.0
        self.texture_sum = 0.0
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
        if self.texture_distance is not None:
            self.texture_sum += self.texture_distance(out)
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
            'texture_dist': (self.texture_sum / self.frames
                             if self.frames and self.texture_distance else None),
        }


# --- the table ------------------------------------------------------------------

# (title, summary key, format) of each column of the printed table.
TABLE_COLUMNS = (('name', 'name', '{}'), ('frames', 'frames', '{:d}'),
                 ('warp_mse', 'warp_mse', '{:.2f}'), ('reliable', 'reliable', '{:.1%}'),
                 ('flicker', 'flicker', '{:.3f}'), ('still', 'still', '{:.1%}'),
                 ('popping', 'popping', '{:.3f}'), ('detail', 'detail', '{:.2f}'),
                 ('warp/detail', 'warp_per_detail', '{:.3f}'),
                 ('flicker/rms', 'flicker_per_rms_detail', '{:.3f}'),
                 ('structure', 'structure', '{:.2f}'), ('style_dist', 'style_dist', '{:.0f}'),
                 ('palette', 'palette', '{:.1f}'), ('texture_dist', 'texture_dist', '{:.0f}'))


def cell(value, fmt):
    """``value`` formatted, or n/a where a figure has no value (no reliable
    pixel, no detail to divide by, no style given)."""
    return 'n/a' if value is None else fmt.format(value)


def format_table(results, keys=None):
    """Summaries (RowTotals.summary) as an aligned text table: the name, then
    the columns whose summary key is in ``keys`` (None: every column)."""
    columns = [c for c in TABLE_COLUMNS if c[1] == 'name' or keys is None or c[1] in keys]
    rows = [[cell(r[key], fmt) for _, key, fmt in columns] for r in results]
    widths = [max(len(title), *(len(row[i]) for row in rows))
              for i, (title, _, _) in enumerate(columns)]
    lines = ['  '.join(title.ljust(w) if i == 0 else title.rjust(w)
                       for i, ((title, _, _), w) in enumerate(zip(columns, widths)))]
    for row in rows:
        lines.append('  '.join(text.ljust(w) if i == 0 else text.rjust(w)
                               for i, (text, w) in enumerate(zip(row, widths))))
    return '\n'.join(lines)


# --- the rows: where the output frames come from ---------------------------------

class SourceRow:
    """The source measured against itself."""

    def __init__(self, name, style_distance=None, texture_distance=None):
        self.totals = RowTotals(name, 'source', style_distance, texture_distance)

    def add(self, src, pair, t):
        self.totals.add(src, pair, source=src)


class VideoRow:
    """A stylized video or folder made by any tool, read alongside the source."""

    def __init__(self, path, size, style_distance=None, texture_distance=None):
        self.path = path
        self.size = size
        self.frames = iter_frames(path)
        self.totals = RowTotals(path, 'video', style_distance, texture_distance)

    def add(self, src, pair, t):
        try:
            frame = next(self.frames)
        except StopIteration:
            raise InputError('{}: ends after {} frames, before the source does '
                             '(use --max_frames to measure fewer)'.format(self.path, t))
        check_aspect(self.path, frame, self.size)
        self.totals.add(images.resize(frame, self.size), pair, source=src)


def check_aspect(path, frame, size):
    aspect = frame.shape[1] / frame.shape[0]
    wanted = size[0] / size[1]
    if abs(aspect / wanted - 1) > ASPECT_TOLERANCE:
        raise InputError('{}: frames are {}x{}, {:.2f} wide to 1 high, the source\'s '
                         '{:.2f}; not a stylized version of it'.format(
                             path, frame.shape[1], frame.shape[0], aspect, wanted))


class ModelRow:
    """A model stylizing the source, also with fresh sparse noise added.

    ``popping_frames``: measure popping (which doubles the stylizing) on the
    first this many frames only; None: on every frame, 0: never."""

    def __init__(self, stylizer, name, popping_frames=None, noise_count=0,
                 noise_range=30.0, noise_seed=1, style_distance=None,
                 texture_distance=None):
        self.stylizer = stylizer
        self.popping_frames = popping_frames
        self.noise_count = noise_count
        self.noise_range = noise_range
        self.noise_seed = noise_seed
        self.totals = RowTotals(name, 'model', style_distance, texture_distance)

    def add(self, src, pair, t):
        if self.popping_frames is not None and t >= self.popping_frames:
            out, = self.stylizer.stylize([src])
            self.totals.add(out, pair, source=src)
            return
        height, width = src.shape[:2]
        count = self.noise_count or noise.default_noise_count(height, width)
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
        if min(self.size) < flowlib.MIN_SIDE:
            raise InputError('{}: frames measured at {}x{}; the optical flow needs at '
                             'least {} pixels a side (see --size)'.format(
                                 path, self.size[0], self.size[1], flowlib.MIN_SIDE))

    def __iter__(self):
        for t, frame in enumerate(itertools.chain([self._first], self._frames)):
            if self.max_frames and t >= self.max_frames:
                return
            if frame.shape != self.shape:
                raise InputError('{}: frame {} is {}x{}, the first is {}x{}'.format(
                    self.path, t + 1, frame.shape[1], frame.shape[0],
                    self.shape[1], self.shape[0]))
            yield images.resize(frame, self.size)
