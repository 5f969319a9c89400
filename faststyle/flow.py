"""Optical flow for the stability metrics: computing it, Middlebury .flo I/O,
warping, and the occlusion check of Ruder et al. (2016).

Convention used everywhere in this project: ``flow_a_to_b`` is an (H, W, 2)
float32 array on the pixel grid of frame ``a`` holding (dx, dy) such that the
scene point at pixel ``x`` of ``a`` is at ``x + flow(x)`` in ``b``, i.e.
``a(x) ~ b(x + flow(x))``. That is what OpenCV's ``calc(a, b)`` returns, and
what a Middlebury ``.flo`` file stores.

So to warp frame ``b`` onto the grid of ``a`` one samples ``b`` at
``x + flow_a_to_b(x)`` (:func:`warp`); the stability metrics warp frame t-1
onto frame t with the *backward* flow ``flow_t_to_(t-1)``.
"""
import os
import re
import struct

import cv2
import numpy

from faststyle import tempfiles
from faststyle.errors import InputError

FLO_MAGIC = 202021.25  # "PIEH" read as a little-endian float32
METHODS = ('dis', 'farneback')
MIN_SIDE = 16  # OpenCV's DIS refuses frames under 12 pixels a side

# Ruder et al. (2016), "Artistic style transfer for videos", section 4.
CONSISTENCY_RELATIVE = 0.01
CONSISTENCY_ABSOLUTE = 0.5
BOUNDARY_RELATIVE = 0.01
BOUNDARY_ABSOLUTE = 0.002


# --- Middlebury .flo files ----------------------------------------------------

def write_flo(path, flow):
    """Write an (H, W, 2) flow as a Middlebury .flo file (atomically)."""
    flow = numpy.asarray(flow, dtype='<f4')
    if flow.ndim != 3 or flow.shape[2] != 2:
        raise ValueError('flow must have shape (H, W, 2), got {}'.format(flow.shape))
    height, width = flow.shape[:2]

    def write(f):
        f.write(struct.pack('<fii', FLO_MAGIC, width, height))
        f.write(numpy.ascontiguousarray(flow).tobytes())
    tempfiles.atomic_write(path, write)


def read_flo(path):
    """Read a Middlebury .flo file into an (H, W, 2) float32 array."""
    try:
        with open(path, 'rb') as f:
            header = f.read(12)
            data = f.read()
    except OSError as e:
        raise InputError('{}: cannot read ({})'.format(path, e.strerror or e))
    if len(header) < 12:
        raise InputError('{}: not a .flo file (too short)'.format(path))
    magic, width, height = struct.unpack('<fii', header)
    if magic != numpy.float32(FLO_MAGIC):
        raise InputError('{}: not a .flo file (bad magic number)'.format(path))
    if not (0 < width < 1 << 16 and 0 < height < 1 << 16):
        raise InputError('{}: .flo header has an impossible size {}x{}'.format(
            path, width, height))
    expected = width * height * 2 * 4
    if len(data) != expected:
        raise InputError('{}: .flo file of {}x{} should hold {} bytes of flow, '
                         'has {}'.format(path, width, height, expected, len(data)))
    flow = numpy.frombuffer(data, dtype='<f4').reshape(height, width, 2)
    return flow.astype(numpy.float32)


# --- computing flow -----------------------------------------------------------

class FlowEstimator:
    """Dense flow between two RGB uint8 frames with OpenCV (DIS or Farneback).

    ``estimator(a, b)`` returns ``flow_a_to_b`` (see the module docstring).
    DIS (Kroeger et al. 2016, OpenCV's 'medium' preset) is fast and accurate
    on natural video; Farneback is the classic alternative.
    """

    def __init__(self, method='dis'):
        if method not in METHODS:
            raise ValueError('flow method must be one of {}'.format(METHODS))
        self.method = method
        self._dis = None
        if method == 'dis':
            self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)

    def __call__(self, frame_a, frame_b):
        gray_a = cv2.cvtColor(frame_a, cv2.COLOR_RGB2GRAY)
        gray_b = cv2.cvtColor(frame_b, cv2.COLOR_RGB2GRAY)
        if self.method == 'dis':
            flow = self._dis.calc(gray_a, gray_b, None)
        else:
            # Five levels and the larger polynomial neighbourhood (OpenCV's
            # recommended poly_n=7 with poly_sigma=1.5) follow fast pans that
            # the usual levels=3, winsize=15 loses on small frames.
            flow = cv2.calcOpticalFlowFarneback(
                gray_a, gray_b, None, pyr_scale=0.5, levels=5, winsize=21,
                iterations=5, poly_n=7, poly_sigma=1.5, flags=0)
        return flow.astype(numpy.float32)


# --- warping and occlusion ----------------------------------------------------

def sample_grid(flow):
    """Absolute sampling coordinates ``x + flow(x)`` as two float32 maps."""
    height, width = flow.shape[:2]
    xs, ys = numpy.meshgrid(numpy.arange(width, dtype=numpy.float32),
                            numpy.arange(height, dtype=numpy.float32))
    return xs + flow[..., 0], ys + flow[..., 1]


def inside_frame(flow):
    """True where ``x + flow(x)`` lands inside the frame (bilinear-safe)."""
    height, width = flow.shape[:2]
    map_x, map_y = sample_grid(flow)
    return (map_x >= 0) & (map_x <= width - 1) & (map_y >= 0) & (map_y <= height - 1)


def warp(image, flow):
    """Sample ``image`` at ``x + flow(x)`` (bilinear): image b seen on a's grid.

    ``image`` may be uint8 or float, with any number of channels; the result
    is float32. Points that fall outside are filled by replicating the border
    (and should be masked with :func:`inside_frame`).
    """
    map_x, map_y = sample_grid(flow)
    return cv2.remap(numpy.asarray(image, dtype=numpy.float32), map_x, map_y,
                     interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def reliable_mask(backward, forward, motion_boundaries=False):
    """Pixels of frame t whose flow to frame t-1 can be trusted.

    ``backward`` is ``flow_t_to_(t-1)`` (on t's grid), ``forward`` is
    ``flow_(t-1)_to_t`` (on t-1's grid). Following Ruder et al. (2016), a
    pixel is occluded (disoccluded) when the forward flow, warped to frame t,
    is not about the opposite of the backward flow:

        |w~ + w^|^2 > 0.01 (|w~|^2 + |w^|^2) + 0.5,   w~(x) = w(x + w^(x));

    with ``motion_boundaries`` also where the backward flow changes fast:

        |grad u^|^2 + |grad v^|^2 > 0.01 |w^|^2 + 0.002.

    Pixels that move out of the frame are unreliable too: there is nothing
    in frame t-1 to compare them with.
    """
    if backward.shape != forward.shape:
        raise ValueError('forward and backward flow differ in shape: {} vs {}'.format(
            forward.shape, backward.shape))
    forward_at_t = warp(forward, backward)
    sum_sq = numpy.sum((forward_at_t + backward) ** 2, axis=2)
    norms = numpy.sum(forward_at_t ** 2, axis=2) + numpy.sum(backward ** 2, axis=2)
    reliable = sum_sq <= CONSISTENCY_RELATIVE * norms + CONSISTENCY_ABSOLUTE
    reliable &= inside_frame(backward)
    if motion_boundaries:
        gradient = numpy.zeros(backward.shape[:2], dtype=numpy.float32)
        for channel in range(2):
            dy, dx = numpy.gradient(backward[..., channel])
            gradient += dx ** 2 + dy ** 2
        reliable &= gradient <= (BOUNDARY_RELATIVE * numpy.sum(backward ** 2, axis=2)
                                 + BOUNDARY_ABSOLUTE)
    return reliable


# --- folders of .flo files ----------------------------------------------------

def flo_names(t):
    """File names of the flow between frames t-1 and t (0-based t >= 1).

    The names are those of Ruder et al.'s artistic-videos scripts, with
    1-based frame numbers: ``forward_{t}_{t+1}.flo`` is flow from frame t-1 to
    frame t (on t-1's grid), ``backward_{t+1}_{t}.flo`` from frame t to t-1.
    """
    return ('forward_{}_{}.flo'.format(t, t + 1),
            'backward_{}_{}.flo'.format(t + 1, t))


class FlowFolder:
    """Reads the (forward, backward) flow of each frame pair from .flo files."""

    def __init__(self, folder):
        if not os.path.isdir(folder):
            raise InputError('{}: no such folder of .flo files'.format(folder))
        self.folder = folder
        if not any(re.match(r'(forward|backward)_\d+_\d+\.flo$', name)
                   for name in os.listdir(folder)):
            raise InputError('{}: holds no forward_I_J.flo / backward_J_I.flo '
                             'files'.format(folder))

    def pair(self, t, shape):
        """(forward, backward) flow between frames t-1 and t, checked against shape."""
        flows = []
        for name in flo_names(t):
            path = os.path.join(self.folder, name)
            if not os.path.isfile(path):
                raise InputError('{}: missing (the flow folder must hold forward_I_J.flo '
                                 'and backward_J_I.flo for every pair of frames, '
                                 '1-based)'.format(path))
            flow = read_flo(path)
            if flow.shape[:2] != tuple(shape):
                raise InputError('{}: flow is {}x{} but the frames are {}x{}'.format(
                    path, flow.shape[1], flow.shape[0], shape[1], shape[0]))
            flows.append(flow)
        return tuple(flows)


def write_flow_pair(folder, t, forward, backward):
    """Write the flow between frames t-1 and t under the names of :func:`flo_names`."""
    os.makedirs(folder, exist_ok=True)
    for name, flow in zip(flo_names(t), (forward, backward)):
        write_flo(os.path.join(folder, name), flow)
