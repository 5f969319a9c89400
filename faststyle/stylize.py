"""Stylize frames with a fast-style model: the API behind generate.py.

    stylizer = Stylizer('models/style.model')
    out_frames = stylizer.stylize(frames)   # lists of HxWx3 uint8 RGB arrays

Each frame goes through CFNS's generate.py computation: symmetric padding,
the net, crop, truncation to uint8, a PIL median filter, optionally the
original colours (HSV). Frames are independent: a batch gives the same result
as one frame at a time (BatchNorm never shares statistics across frames).
"""

import cv2
import numpy
from PIL import Image

import chainer

from faststyle import devices
from faststyle import images
import net
from faststyle.errors import InputError

BACKENDS = ('auto', 'chainer', 'opencv', 'onnxruntime')
STATS = net.STATS
# The decoder halves the size twice; the net needs multiples of this.
SIZE_MULTIPLE = 4
# Bounds that keep one frame's memory bounded: OpenCV's median filter takes
# kernels up to 255, and padding beyond a few hundred pixels only adds cost.
MAX_MEDIAN_FILTER = 255
MAX_PADDING = 1000
MAX_PIXELS = images.MAX_PIXELS


def pad_frame(frame, padding):
    """HxWx3 uint8 -> 3xH'xW' float32: ``padding`` symmetric on every side, as
    CFNS, then more at the bottom and right up to a multiple of 4 (same mode,
    so a size that is already a multiple gives exactly CFNS's input)."""
    height, width = frame.shape[:2]
    extra_h = -(height + 2 * padding) % SIZE_MULTIPLE
    extra_w = -(width + 2 * padding) % SIZE_MULTIPLE
    chw = numpy.asarray(frame, dtype=numpy.float32).transpose(2, 0, 1)
    if padding == 0 and extra_h == 0 and extra_w == 0:
        return numpy.ascontiguousarray(chw)
    return numpy.pad(chw, ((0, 0), (padding, padding + extra_h),
                           (padding, padding + extra_w)), 'symmetric')


def to_uint8(chw, padding, height, width):
    """Crop a 3xH'xW' net output back to HxWx3 uint8, truncating as CFNS's
    ``np.uint8(y)`` (after a clip, which the tanh output never needs)."""
    crop = chw[:, padding:padding + height, padding:padding + width]
    crop = numpy.clip(crop, 0, 255)
    return crop.transpose(1, 2, 0).astype(numpy.uint8)


def original_colors(original, stylized):
    """Hue and saturation of ``original``, value of ``stylized`` (CFNS's
    --keep_colors, through PIL's HSV)."""
    h, s, _ = Image.fromarray(original).convert('HSV').split()
    _, _, v = Image.fromarray(stylized).convert('HSV').split()
    return numpy.asarray(Image.merge('HSV', (h, s, v)).convert('RGB'))


def postprocess(original, stylized, median_filter, keep_colors):
    """CFNS's order: median filter on the stylized frame, then the colours.

    cv2.medianBlur gives exactly PIL's MedianFilter (borders included, checked
    in the tests) about 100x faster, and releases the GIL.
    """
    if median_filter > 1:
        stylized = cv2.medianBlur(numpy.ascontiguousarray(stylized), median_filter)
    if keep_colors:
        stylized = original_colors(original, stylized)
    return numpy.ascontiguousarray(stylized)


class ChainerBackend:
    """The Chainer model on any Chainer device (CPU, GPU via CuPy, iDeep)."""

    name = 'chainer'

    def __init__(self, model, device, fp16=False):
        self.device = devices.get_device(device)
        self.model = net.to_float16(model) if fp16 else model
        self.dtype = numpy.float16 if fp16 else numpy.float32
        self.model.to_device(self.device)

    def __call__(self, batch):
        """(N, 3, H, W) float32 numpy -> (N, 3, H, W) float32 numpy."""
        self.device.use()
        x = self.device.send(batch.astype(self.dtype, copy=False))
        with chainer.using_config('train', False), chainer.no_backprop_mode():
            y = self.model(x)
        return chainer.backend.CpuDevice().send(y.array).astype(numpy.float32, copy=False)


class OpenCVBackend:
    """The exported ONNX graph in OpenCV's DNN module (CPU)."""

    name = 'opencv'

    def __init__(self, onnx_bytes):
        self.net = cv2.dnn.readNetFromONNX(numpy.frombuffer(onnx_bytes, numpy.uint8))
        self.net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
        self.net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)

    def __call__(self, batch):
        self.net.setInput(batch)
        return self.net.forward()


class OnnxRuntimeBackend:
    """The exported ONNX graph in onnxruntime (CPU execution provider)."""

    name = 'onnxruntime'

    def __init__(self, onnx_bytes, threads=None):
        try:
            import onnxruntime
        except ImportError:
            raise InputError('backend onnxruntime needs the onnxruntime package: '
                             'pip install "onnxruntime<1.21"')
        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = onnxruntime.InferenceSession(
            onnx_bytes, options, providers=['CPUExecutionProvider'])

    def __call__(self, batch):
        return self.session.run(None, {'input': batch})[0]


def onnx_available():
    try:
        import onnx  # NOQA
    except ImportError:
        return False
    return True


def make_backend(name, model, device, stats, threads=None, fp16=False):
    """The backend ``name`` for ``model``; 'auto' is the fastest correct one:
    Chainer on a GPU, OpenCV's DNN on the exported graph on the CPU (about 3x
    faster than Chainer there), Chainer when the onnx package is missing.
    Returns (backend, note): the note says why 'auto' fell back, or ''.
    ``fp16``: float16 inference, Chainer on a GPU only (on the CPU it is
    slower than float32 and the ONNX backends are float32)."""
    device = devices.get_device(device)
    on_cpu = device.xp is numpy
    if fp16 and (on_cpu or name not in ('auto', 'chainer')):
        raise InputError('--fp16 needs the chainer backend on a GPU (-g N), not '
                         'backend {} on {}'.format(name, device))
    note = ''
    chose_automatically = name == 'auto'
    if name == 'auto':
        if not on_cpu:
            name = 'chainer'
        elif onnx_available():
            name = 'opencv'
        else:
            name = 'chainer'
            note = ('the onnx package is not installed, so the slower chainer backend '
                    'is used on the CPU (pip install "onnx<1.18" for the opencv one)')
    if name == 'chainer':
        return ChainerBackend(model, device, fp16), note
    if not on_cpu:
        raise InputError('backend {} runs on the CPU only; use --backend chainer '
                         'with device {}'.format(name, device))
    import export_onnx
    onnx_bytes = export_onnx.to_onnx(model, stats).SerializeToString()
    if name == 'opencv':
        if threads:
            cv2.setNumThreads(threads)
        try:
            return OpenCVBackend(onnx_bytes), note
        except cv2.error as e:
            if not chose_automatically:
                raise InputError('OpenCV {} cannot load the exported graph: {}'.format(
                    cv2.__version__, str(e).strip().splitlines()[-1]))
            return ChainerBackend(model, device), (
                'OpenCV {} cannot run the exported graph, so the slower chainer '
                'backend is used'.format(cv2.__version__))
    return OnnxRuntimeBackend(onnx_bytes, threads), note


class Stylizer:
    """Stylize lists of HxWx3 uint8 RGB frames with one model.

    model_path   a .model file written by CFNS or train.py (never unpickled)
    device       Chainer device specifier ('@numpy', '@cupy:0', ...)
    backend      'chainer', 'opencv', 'onnxruntime' or 'auto'
    stats        BatchNorm statistics: 'image' (CFNS) or 'running'
    padding      symmetric padding on each side before the net (CFNS: 50)
    median_filter  PIL median filter size after the net, 0 = none (CFNS: 3)
    keep_colors  keep the hue and saturation of the input (CFNS's flag)
    batch        frames per forward pass
    threads      CPU threads for the opencv/onnxruntime backends (None: theirs)
    fp16         float16 inference (chainer backend on a GPU only)
    """

    def __init__(self, model_path, device='@numpy', backend='auto', stats='image',
                 padding=50, median_filter=3, keep_colors=False, batch=1,
                 threads=None, fp16=False):
        if stats not in STATS:
            raise InputError('stats must be one of {}, not {!r}'.format(STATS, stats))
        if backend not in BACKENDS:
            raise InputError('backend must be one of {}, not {!r}'.format(BACKENDS, backend))
        if padding < 0 or median_filter < 0 or batch < 1:
            raise InputError('padding and median_filter must be >= 0 and batch >= 1')
        if median_filter and median_filter % 2 == 0:
            raise InputError('median_filter must be odd (PIL), not {}'.format(median_filter))
        if median_filter > MAX_MEDIAN_FILTER or padding > MAX_PADDING:
            raise InputError('median_filter must be at most {} and padding at most {}, '
                             'not {} and {}'.format(MAX_MEDIAN_FILTER, MAX_PADDING,
                                                    median_filter, padding))
        self.padding = padding
        self.median_filter = median_filter
        self.keep_colors = keep_colors
        self.batch = batch
        self.stats = stats
        model = net.load_model(model_path, stats=stats)
        self.arch = model.arch
        self.backend, self.backend_note = make_backend(backend, model, device, stats,
                                                       threads, fp16)

    @property
    def backend_name(self):
        return self.backend.name

    def infer(self, frames):
        """The net on ``frames`` (same-size list), in batches; raw uint8 results."""
        height, width = frames[0].shape[:2]
        padded = (height + 2 * self.padding + 3) * (width + 2 * self.padding + 3)
        if padded > MAX_PIXELS:
            raise InputError('a {}x{} frame with padding {} is {:.0f} megapixels, more '
                             'than the {:.0f} the net is given at most'.format(
                                 width, height, self.padding, padded / 1e6,
                                 MAX_PIXELS / 1e6))
        results = []
        for start in range(0, len(frames), self.batch):
            chunk = frames[start:start + self.batch]
            x = numpy.stack([pad_frame(f, self.padding) for f in chunk])
            y = self.backend(x)
            results.extend(to_uint8(out, self.padding, height, width) for out in y)
        return results

    def stylize(self, frames):
        """List of HxWx3 uint8 RGB arrays -> stylized list, same shapes."""
        frames = [check_frame(f) for f in frames]
        stylized = [None] * len(frames)
        # Frames of one size go through the net together; sizes may differ.
        by_shape = {}
        for i, frame in enumerate(frames):
            by_shape.setdefault(frame.shape, []).append(i)
        for indices in by_shape.values():
            raw = self.infer([frames[i] for i in indices])
            for i, out in zip(indices, raw):
                stylized[i] = postprocess(frames[i], out, self.median_filter,
                                          self.keep_colors)
        return stylized


def check_frame(frame):
    frame = numpy.asarray(frame)
    if frame.dtype != numpy.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise InputError('frames must be HxWx3 uint8 RGB arrays, got {} {}'.format(
            frame.dtype, frame.shape))
    if frame.shape[0] < 1 or frame.shape[1] < 1:
        raise InputError('empty frame of shape {}'.format(frame.shape))
    return frame
