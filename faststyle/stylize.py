"""Stylize frames with a fast-style model: the API behind generate.py.

    stylizer = Stylizer('models/style.model')
    out_frames = stylizer.stylize(frames)   # lists of HxWx3 uint8 RGB arrays

Each frame goes through CFNS's generate.py computation: symmetric padding,
the net, crop, truncation to uint8, a PIL median filter, optionally the
original colours (HSV). Frames are independent: a batch gives the same result
as one frame at a time (BatchNorm never shares statistics across frames).

Backends: the Chainer model itself, or the ONNX graph of onnx_graph.py built
in memory and run by OpenVINO, OpenCV's DNN module or onnxruntime (CPU only).
'auto' picks Chainer on a GPU and the fastest of these installed on the CPU.
"""

import collections
import os
import sys

import cv2
import numpy
from PIL import Image

import chainer

from faststyle import devices
from faststyle import images
from faststyle import onnx_graph
import net
from faststyle.errors import InputError

BACKENDS = ('auto', 'chainer', 'openvino', 'opencv', 'onnxruntime')
# Arithmetic of the net. bf16 (bfloat16: float32's range, 8 significant bits)
# exists only in the openvino backend, on CPUs with bfloat16 instructions.
PRECISIONS = ('fp32', 'bf16')
OPENVINO_PRECISIONS = {'fp32': 'f32', 'bf16': 'bf16'}
# Frame sizes whose compiled OpenVINO net is kept: compiling for a fixed size
# makes the net about 1.4x faster than one compiled for any size (measured),
# and a video has one size; a folder of photos would otherwise pile them up.
OPENVINO_CACHED_SIZES = 4
# Inference requests in flight for a list of frames: while one runs, Python
# pads the next frame and crops the last (1 stream: requests take turns on
# all cores, so the output is what one frame at a time gives).
OPENVINO_REQUESTS = 2
STATS = net.STATS
# The decoder halves the size twice; the net needs multiples of this.
SIZE_MULTIPLE = 4
# Bounds that keep one frame's memory bounded: OpenCV's median filter takes
# kernels up to 255, and padding beyond a few hundred pixels only adds cost.
MAX_MEDIAN_FILTER = 255
MAX_PADDING = 1000
# --content_scale: the net runs on the frame resized by this factor, and its
# output is resized back; beyond these the strokes are a few pixels or a
# few hundred, and the cost grows with the square.
MIN_CONTENT_SCALE = 0.1
MAX_CONTENT_SCALE = 4.0
MAX_THREADS = 4096  # the engines take a C int; far above any machine's cores
# generate.py's defaults, CFNS's: the padding cropped away after the net, and
# the median filter on the result (training previews use them too).
PADDING = 50
MEDIAN_FILTER = 3
MAX_PIXELS = images.MAX_PIXELS
# Peak memory of stylize() per pixel the net is given (the frame with its
# padding), by backend: the slope that benchmarks/memory_per_pixel.py
# measured between two frame sizes, rounded up (docs/reliability.md). A
# frame whose estimate exceeds the memory left is refused before the net runs.
BYTES_PER_PIXEL = {'openvino': 320, 'opencv': 1200, 'onnxruntime': 1100, 'chainer': 1150}


# cgroup v1 writes "no limit" as a large number rather than 'max'.
_CGROUP_UNLIMITED = 2 ** 60


def cgroup_memory_left(proc_cgroup='/proc/self/cgroup', root='/sys/fs/cgroup'):
    """Bytes the memory cgroups of this process still allow (the least over
    its cgroup and the ones above it, where a limit may be set: a SLURM job's
    or a container's), or None where no limit is found. cgroup v2 (the
    unified ``0::PATH`` line) and v1 (the ``memory`` controller's line)."""
    try:
        with open(proc_cgroup) as f:
            lines = [line.rstrip('\n').split(':', 2) for line in f]
    except OSError:
        return None
    left = []
    for fields in lines:
        if len(fields) != 3:
            continue
        hierarchy, controllers, path = fields
        if hierarchy == '0' and controllers == '':
            base, files = root, ('memory.max', 'memory.current')
        elif 'memory' in controllers.split(','):
            base, files = os.path.join(root, 'memory'), ('memory.limit_in_bytes',
                                                        'memory.usage_in_bytes')
        else:
            continue
        parts = [p for p in path.split('/') if p]
        for depth in range(len(parts), -1, -1):
            folder = os.path.join(base, *parts[:depth])
            try:
                with open(os.path.join(folder, files[0])) as f:
                    limit = f.read().strip()
                with open(os.path.join(folder, files[1])) as f:
                    usage = int(f.read())
                limit = _CGROUP_UNLIMITED if limit == 'max' else int(limit)
            except (OSError, ValueError):  # a file we cannot read bounds nothing
                continue
            if limit < _CGROUP_UNLIMITED:
                left.append(limit - usage)
    return min(left) if left else None


def _fields(path):
    """'Name: value ...' lines of a /proc file as {name: first number}."""
    fields = {}
    try:
        with open(path) as f:
            for line in f:
                name, _, rest = line.partition(':')
                if rest.split() and rest.split()[0].isdigit():
                    fields[name] = int(rest.split()[0])
    except OSError:
        pass
    return fields


def available_memory():
    """Bytes this process can still take, or None where no source is known
    (not Linux): the least of the system's MemAvailable, what the memory
    cgroups allow (:func:`cgroup_memory_left`), and the address-space limit
    (``ulimit -v``) less the address space this process has."""
    left = []
    meminfo = _fields('/proc/meminfo')
    if 'MemAvailable' in meminfo:
        left.append(meminfo['MemAvailable'] * 1024)
    cgroup_left = cgroup_memory_left()
    if cgroup_left is not None:
        left.append(cgroup_left)
    try:
        import resource
        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
    except (ImportError, OSError, ValueError):
        soft = None
    if soft is not None and soft != resource.RLIM_INFINITY:
        size = _fields('/proc/self/status').get('VmSize')
        if size is not None:
            left.append(soft - size * 1024)
    return max(0, min(left)) if left else None


def padded_size(height, width, padding):
    """The (height, width) the net is given: the frame, ``padding`` on each
    side, then up to a multiple of SIZE_MULTIPLE (see pad_frame)."""
    return tuple(n + 2 * padding + (-(n + 2 * padding) % SIZE_MULTIPLE)
                 for n in (height, width))


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


class Backend:
    """What every backend offers: ``name``, ``__call__`` on a batch and
    :meth:`infer_each` on a stream of frames, which the Stylizer uses."""

    name = None
    # Whether the net's working memory is the machine's (the CPU) rather than
    # an accelerator's: only then does the Stylizer bound it by what is left.
    host_memory = True

    def __call__(self, batch):
        """(N, 3, H, W) float32 numpy -> (N, 3, H, W) float32 numpy."""
        raise NotImplementedError

    def frames_per_call(self, batch):
        """How many frames to hand to :meth:`infer_each` at once (``batch``
        per forward pass) so that the backend is kept busy."""
        return batch

    def frames_in_memory(self, batch):
        """How many frames' working memory a forward pass holds at its peak
        (``batch`` to a pass)."""
        return batch

    def infer_each(self, inputs, finish, batch=1):
        """Run each (3, H, W) float32 array of the iterable ``inputs`` (all one
        size), ``batch`` to a forward pass, and call ``finish(index, output)``
        with each (3, H, W) output, in order."""
        chunk = []
        for index, x in enumerate(inputs):
            chunk.append(x)
            if len(chunk) == batch:
                self._finish_chunk(chunk, index + 1 - len(chunk), finish)
                chunk = []
        if chunk:
            self._finish_chunk(chunk, index + 1 - len(chunk), finish)

    def _finish_chunk(self, chunk, start, finish):
        for i, y in enumerate(self(numpy.stack(chunk))):
            finish(start + i, y)


class ChainerBackend(Backend):
    """The Chainer model on any Chainer device (CPU, GPU via CuPy, iDeep)."""

    name = 'chainer'

    def __init__(self, model, device, fp16=False):
        self.device = devices.get_device(device)
        self.host_memory = self.device.xp is numpy
        self.model = net.to_float16(model) if fp16 else model
        self.dtype = numpy.float16 if fp16 else numpy.float32
        self.model.to_device(self.device)
        # Elements a col2im buffer may hold (net.COL2IM_LIMIT): a batch that
        # would pass it is run in parts. None: no limit (the CPU).
        self.col2im_limit = None if self.host_memory else net.COL2IM_LIMIT

    def __call__(self, batch):
        self.device.use()
        frames_per_pass = len(batch)
        if self.col2im_limit is not None:
            per_frame = self.model.col2im_elements_per_pixel() * batch.shape[2] * batch.shape[3]
            frames_per_pass = int((self.col2im_limit - 1) // per_frame)
            if frames_per_pass < 1:
                raise InputError(
                    '{}x{} frames (padding included) are too large for the {} net on a '
                    'GPU: Chainer\'s kernels index at most {:.0f} pixels a frame; scale the '
                    'video down first'.format(
                        batch.shape[3], batch.shape[2], self.model.arch,
                        (self.col2im_limit - 1) // self.model.col2im_elements_per_pixel()))
        return numpy.concatenate([self._forward(batch[start:start + frames_per_pass])
                                  for start in range(0, len(batch), frames_per_pass)])

    def _forward(self, batch):
        x = self.device.send(batch.astype(self.dtype, copy=False))
        with chainer.using_config('train', False), chainer.no_backprop_mode():
            y = self.model(x)
        return chainer.backend.CpuDevice().send(y.array).astype(numpy.float32, copy=False)


class OpenCVBackend(Backend):
    """The exported ONNX graph in OpenCV's DNN module (CPU)."""

    name = 'opencv'

    def __init__(self, onnx_bytes):
        self.net = cv2.dnn.readNetFromONNX(numpy.frombuffer(onnx_bytes, numpy.uint8))
        self.net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
        self.net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)

    def __call__(self, batch):
        self.net.setInput(batch)
        return self.net.forward()


class OnnxRuntimeBackend(Backend):
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


def import_openvino():
    """The openvino module, or None when it is missing (or too old to have
    the top-level API, 2023.1+), imported without OpenVINO's usage telemetry.

    ``import openvino`` loads its model-conversion tool, which, unless the
    user has opted out with ``opt_in_out --opt_out``, starts a process (a
    fork, in a process that already runs threads) to send an event to Google
    Analytics, on every import: stylizing a video must not report anything
    anywhere. While ``openvino_telemetry`` cannot be imported, the tool takes
    its own no-op stub; afterwards the package imports again as usual, and
    one a program has already imported is left alone.
    """
    block = 'openvino_telemetry' not in sys.modules
    if block:
        sys.modules['openvino_telemetry'] = None  # its import raises ImportError
    try:
        import openvino
        openvino.Core
    except (ImportError, AttributeError):
        return None
    finally:
        if block and sys.modules.get('openvino_telemetry', 0) is None:
            del sys.modules['openvino_telemetry']
    return openvino


def cpu_has_bf16(core):
    """Whether OpenVINO can run bfloat16 on this CPU (AVX512_BF16 or AMX)."""
    return 'BF16' in core.get_property('CPU', 'OPTIMIZATION_CAPABILITIES')


class OpenVINOBackend(Backend):
    """The exported ONNX graph in OpenVINO's CPU plugin.

    The precision is always set explicitly: on a CPU with bfloat16
    instructions OpenVINO's own default is bf16, which moves pixels by up to
    ~28 of 255 on a random net, so fp32 must never be left to the default.
    The net is compiled for each frame size (cached), and frames go through a
    few asynchronous requests so that padding and cropping overlap the net.
    """

    name = 'openvino'

    def __init__(self, onnx_bytes, precision='fp32', threads=None, streams=None):
        openvino = import_openvino()
        if openvino is None:
            raise InputError('backend openvino needs the openvino package: '
                             'pip install openvino')
        self.openvino = openvino
        self.core = openvino.Core()
        if precision == 'bf16' and not cpu_has_bf16(self.core):
            raise InputError('--precision bf16 needs a CPU with bfloat16 instructions '
                             '(AVX512_BF16 or AMX); this one has none: use fp32')
        self.precision = precision
        self.onnx_bytes = onnx_bytes
        self.core.read_model(onnx_bytes)  # fails here, not at the first frame
        # LATENCY: one stream using every core. THROUGHPUT with ``streams``
        # runs that many frames side by side, each on fewer cores (measured
        # slower than LATENCY on 2 cores; kept for the benchmark and bigger CPUs).
        self.config = {'INFERENCE_PRECISION_HINT': OPENVINO_PRECISIONS[precision],
                       'PERFORMANCE_HINT': 'THROUGHPUT' if streams else 'LATENCY'}
        if streams:
            self.config['NUM_STREAMS'] = streams
        if threads:
            self.config['INFERENCE_NUM_THREADS'] = threads
        self.requests = max(OPENVINO_REQUESTS, streams or 0)
        # (height, width) -> (compiled net, its inference requests)
        self.compiled = collections.OrderedDict()

    def requests_for(self, height, width):
        """Inference requests of the net compiled for (1, 3, height, width)."""
        key = (height, width)
        if key in self.compiled:
            self.compiled.move_to_end(key)
            return self.compiled[key][1]
        model = self.core.read_model(self.onnx_bytes)
        model.reshape([1, 3, height, width])
        compiled = self.core.compile_model(model, 'CPU', self.config)
        self.compiled[key] = compiled, [compiled.create_infer_request()
                                        for _ in range(self.requests)]
        while len(self.compiled) > OPENVINO_CACHED_SIZES:
            self.compiled.popitem(last=False)
        return self.compiled[key][1]

    def frames_per_call(self, batch):
        """Enough frames to keep the requests busy while Python pads and crops."""
        return max(batch, 2 * self.requests)

    def frames_in_memory(self, batch):
        """One: a request takes one frame, and the requests share one plan."""
        return 1

    def infer_each(self, inputs, finish, batch=1):
        """:meth:`Backend.infer_each`, one frame to a request whatever
        ``batch``. ``inputs`` is read lazily and the requests take frames in
        turn, so making the next input and finishing the last overlap the
        running requests. The output array is reused once ``finish`` returns.

        Results are collected in this thread with request.wait(), which
        releases the GIL. (OpenVINO's AsyncInferQueue runs Python callbacks
        in its own threads instead; that deadlocked when a compiled net was
        freed, holding the GIL, while one of them waited for it.)"""
        try:
            self._infer_each(inputs, finish)
        except RuntimeError as e:
            # OpenVINO reports a failed allocation as its own RuntimeError
            # ("Failed to allocate ..."), not as MemoryError.
            if not is_allocation_failure(e):
                raise
            raise MemoryError('OpenVINO could not allocate its memory ({})'.format(
                last_line(e)))

    def _infer_each(self, inputs, finish):
        requests = None
        pending = collections.deque()  # (index, request), oldest first

        def finish_oldest():
            index, request = pending.popleft()
            request.wait()
            finish(index, request.get_output_tensor(0).data[0])

        try:
            for index, x in enumerate(inputs):
                if requests is None:
                    requests = self.requests_for(*x.shape[1:])
                request = requests[index % len(requests)]
                if len(pending) == len(requests):
                    finish_oldest()  # this request's previous frame
                request.start_async({0: x[None]})
                pending.append((index, request))
            while pending:
                finish_oldest()
        finally:  # also when making an input or finish fails: none left running
            for _, request in pending:
                request.wait()

    def __call__(self, batch):
        out = numpy.empty_like(batch)

        def finish(index, y):
            out[index] = y
        self.infer_each(batch, finish)
        return out


def last_line(error):
    """The last line of an engine's multi-line message (the reason)."""
    lines = str(error).strip().splitlines()
    return lines[-1].strip() if lines else type(error).__name__


def is_allocation_failure(error):
    """Whether an engine's RuntimeError says that memory ran out."""
    text = str(error).lower()
    return any(words in text for words in ('failed to allocate', 'bad_alloc',
                                           'out of memory', 'cannot allocate'))


def onnx_available():
    try:
        import onnx  # NOQA
    except ImportError:
        return False
    return True


def cpu_backend_choice():
    """The CPU backend 'auto' picks and, if not the fastest, why: (name, note)."""
    if not onnx_available():
        return 'chainer', ('the onnx package is not installed, so the slower chainer '
                           'backend is used on the CPU (pip install "onnx<1.18" and '
                           'openvino for the fast one)')
    if import_openvino() is None:
        return 'opencv', ('the openvino package is not installed, so the slower opencv '
                          'backend is used on the CPU (pip install openvino)')
    return 'openvino', ''


class GraphLoadError(Exception):
    """A runtime cannot load the exported graph (e.g. an operation it lacks)."""

    def __init__(self, runtime, error):
        self.runtime = runtime
        self.reason = last_line(error)
        super().__init__('{} cannot load the exported graph: {}'.format(
            runtime, self.reason))


# What 'auto' falls back to when a runtime cannot load the graph.
FALLBACKS = {'openvino': 'opencv', 'opencv': 'chainer'}


def choose_backend(name, device, precision='fp32', fp16=False):
    """The backend to build for ``name`` on ``device`` (a chainer Device) and
    a note on why 'auto' did not pick the fastest, or '': 'auto' is Chainer
    on a GPU; on the CPU OpenVINO on the exported graph (about 1.8x OpenCV's
    DNN and 4x Chainer at fp32, measured), else OpenCV, else Chainer when
    the onnx package is missing. InputError for a combination that cannot run."""
    if name not in BACKENDS:
        raise InputError('backend must be one of {}, not {!r}'.format(BACKENDS, name))
    if precision not in PRECISIONS:
        raise InputError('precision must be one of {}, not {!r}'.format(
            PRECISIONS, precision))
    on_cpu = device.xp is numpy
    if fp16 and (on_cpu or name not in ('auto', 'chainer')):
        raise InputError('--fp16 needs the chainer backend on a GPU (-g N), not '
                         'backend {} on {}'.format(name, device))
    note = ''
    chose_automatically = name == 'auto'
    if name == 'auto':
        if not on_cpu:
            name = 'chainer'
        else:
            name, note = cpu_backend_choice()
    if precision != 'fp32' and name != 'openvino':
        raise InputError('--precision {} needs the openvino backend on the CPU{}'.format(
            precision, ' (pip install openvino)' if chose_automatically and on_cpu
            else '; this is {} on {}'.format(name, device)))
    if name != 'chainer' and not on_cpu:
        raise InputError('backend {} runs on the CPU only; use --backend chainer '
                         'with device {}'.format(name, device))
    return name, note


def build_backend(name, model, device, stats, threads=None, precision='fp32',
                  streams=None, fp16=False):
    """The backend ``name`` (as :func:`choose_backend` gives it) for
    ``model``; the ONNX backends get the graph exported once, in the layout
    their runtime runs fastest. GraphLoadError when the runtime refuses it."""
    if name == 'chainer':
        return ChainerBackend(model, device, fp16)
    if name == 'openvino':
        graph = onnx_graph.to_onnx(model, stats, space_to_depth=True).SerializeToString()
        try:
            return OpenVINOBackend(graph, precision, threads, streams)
        except RuntimeError as e:  # OpenVINO's own errors, e.g. an op it lacks
            raise GraphLoadError('OpenVINO', e)
    graph = onnx_graph.to_onnx(model, stats).SerializeToString()
    if name == 'opencv':
        if threads:
            cv2.setNumThreads(threads)
        try:
            return OpenCVBackend(graph)
        except cv2.error as e:
            raise GraphLoadError('OpenCV ' + cv2.__version__, e)
    return OnnxRuntimeBackend(graph, threads)


def make_backend(name, model, device, stats, threads=None, precision='fp32',
                 streams=None, fp16=False):
    """The backend ``name`` for ``model`` (:func:`choose_backend`, then
    :func:`build_backend`); where 'auto' picked a runtime that cannot load
    the graph, the next slower one (FALLBACKS). Returns (backend, note): the
    note says why 'auto' fell back, or ''. ``fp16``: float16 inference,
    Chainer on a GPU only (on the CPU it is slower than float32 and the ONNX
    backends run their own precisions)."""
    device = devices.get_device(device)
    chosen, note = choose_backend(name, device, precision, fp16)
    while True:
        try:
            return build_backend(chosen, model, device, stats, threads, precision,
                                 streams, fp16), note
        except GraphLoadError as e:
            if name != 'auto' or precision != 'fp32':
                raise InputError(str(e))
            chosen = FALLBACKS[chosen]
            note = ('{} cannot run the exported graph, so the slower {} backend is '
                    'used'.format(e.runtime, chosen))


def add_arguments(parser, stats_default='instance', stats_default_text=None):
    """The stylizing flags, declared once for generate.py and stability.py."""
    parser.add_argument('--padding', type=int, default=PADDING,
                        help='symmetric padding added around each frame before the '
                             'net and cropped after, against border artefacts')
    parser.add_argument('--content_scale', type=float, default=1.0,
                        help='run the net on each frame resized by this factor '
                             '(--padding is added to the resized frame) and resize '
                             'its output back: below 1 the strokes are larger on the '
                             'frame, the picture softer and the net faster (0.5 at '
                             '720p: 0.30x the pixels with the padding, 3.4x as fast '
                             'in docs/benchmarks.md), above 1 smaller ({:g}..{:g}; '
                             '1 = as CFNS)'.format(
                                 MIN_CONTENT_SCALE, MAX_CONTENT_SCALE))
    parser.add_argument('--median_filter', type=int, default=MEDIAN_FILTER,
                        help='size of the median filter applied to the result, 0 for '
                             'none')
    parser.add_argument('--stats', choices=STATS, default=stats_default,
                        type=net.stats_name,
                        help="BatchNorm statistics: 'instance' = each frame's own, as "
                             "CFNS's generate.py; 'running' = the averages from "
                             'training (default: {})'.format(
                                 stats_default_text or stats_default))
    parser.add_argument('--batch', type=int, default=1,
                        help='video frames per forward pass; helps on a GPU, '
                             'results do not depend on it')
    parser.add_argument('--backend', choices=BACKENDS, default='auto',
                        help='inference engine: chainer (CPU or GPU); openvino, '
                             'opencv or onnxruntime on the exported ONNX graph (CPU '
                             'only); auto = chainer on a GPU, on the CPU openvino '
                             '(fastest), else opencv, else chainer')
    parser.add_argument('--precision', choices=PRECISIONS, default='fp32',
                        help='arithmetic of the net: fp32, or bf16 (bfloat16; needs a '
                             'CPU with AVX512_BF16 or AMX: 2.0-4.1x fp32\'s speed with '
                             'AMX in docs/benchmarks.md; openvino '
                             'backend only; changes pixels slightly, see '
                             'docs/generate.md)')
    parser.add_argument('--threads', type=int, default=None,
                        help='CPU threads for the openvino/opencv/onnxruntime '
                             'backends (default: all cores)')
    parser.add_argument('--fp16', action='store_true',
                        help='float16 inference on a GPU with the chainer backend '
                             '(refused on the CPU)')


def from_args(args, model_path, stats=None, keep_colors=False):
    """The Stylizer that the flags of :func:`add_arguments` (and -g/--device) ask for."""
    return Stylizer(model_path, device=devices.specifier(args.gpu, args.device),
                    backend=args.backend, stats=stats or args.stats,
                    padding=args.padding, median_filter=args.median_filter,
                    content_scale=args.content_scale, keep_colors=keep_colors,
                    batch=args.batch, threads=args.threads, precision=args.precision,
                    fp16=args.fp16)


class Stylizer:
    """Stylize lists of HxWx3 uint8 RGB frames with one model.

    model_path   a .model file written by CFNS or train.py (never unpickled)
    device       Chainer device specifier ('@numpy', '@cupy:0', ...)
    backend      'chainer', 'openvino', 'opencv', 'onnxruntime' or 'auto'
    stats        BatchNorm statistics: 'instance' (CFNS; 'image' in earlier
                 builds, still accepted) or 'running'
    padding      symmetric padding on each side before the net (CFNS: 50)
    median_filter  PIL median filter size after the net, 0 = none (CFNS: 3)
    content_scale  the net runs on each frame resized by this factor, its
                 output resized back before the median filter (images.resize);
                 1 = CFNS
    keep_colors  keep the hue and saturation of the input (CFNS's flag)
    batch        frames per forward pass (openvino: always one per request)
    threads      CPU threads for the ONNX backends (None: theirs)
    precision    'fp32' or 'bf16' (openvino on a CPU with bfloat16 only)
    streams      openvino only: None = one stream on all cores (LATENCY);
                 N = N frames side by side (THROUGHPUT hint, N streams)
    fp16         float16 inference (chainer backend on a GPU only)
    """

    def __init__(self, model_path, device='@numpy', backend='auto', stats='instance',
                 padding=PADDING, median_filter=MEDIAN_FILTER, keep_colors=False, batch=1,
                 threads=None, precision='fp32', streams=None, fp16=False,
                 content_scale=1.0):
        # Each named as its generate.py flag, with the value given.
        for name, value, highest in (('padding', padding, MAX_PADDING),
                                     ('median_filter', median_filter, MAX_MEDIAN_FILTER)):
            if not 0 <= value <= highest:
                raise InputError('{} must be in 0..{}, not {}'.format(name, highest, value))
        if not MIN_CONTENT_SCALE <= content_scale <= MAX_CONTENT_SCALE:
            raise InputError('content_scale must be in {:g}..{:g}, not {:g}'.format(
                MIN_CONTENT_SCALE, MAX_CONTENT_SCALE, content_scale))
        if batch < 1:
            raise InputError('batch must be at least 1, not {}'.format(batch))
        if median_filter and median_filter % 2 == 0:
            raise InputError('median_filter must be odd (PIL), not {}'.format(median_filter))
        if threads is not None and not 1 <= threads <= MAX_THREADS:
            raise InputError('threads must be in 1..{}, not {}'.format(MAX_THREADS, threads))
        self.padding = padding
        self.median_filter = median_filter
        self.content_scale = content_scale
        self.keep_colors = keep_colors
        self.batch = batch
        self.memory_checked = set()  # padded frame sizes (pixels) found to fit
        model = net.load_model(model_path, stats=stats)  # checks stats
        self.stats = model.stats
        self.arch = model.arch
        self.backend, self.backend_note = make_backend(
            backend, model, device, self.stats, threads, precision, streams, fp16)
        self.precision = precision

    @property
    def backend_name(self):
        return self.backend.name

    @property
    def frames_per_call(self):
        """How many video frames to hand to ``stylize`` at once: ``batch``, or
        more where the backend keeps several in flight (openvino); results
        never depend on it."""
        return self.backend.frames_per_call(self.batch)

    def infer(self, frames):
        """The net on ``frames`` (same-size list), in batches, each resized by
        content_scale on the way in and back on the way out; raw uint8
        results of the frames' size."""
        height, width = frames[0].shape[:2]
        net_width, net_height = images.scaled_size(width, height, self.content_scale)
        padded_height, padded_width = padded_size(net_height, net_width, self.padding)
        padded = padded_height * padded_width
        # Both checks before any frame is resized: a large --content_scale
        # is refused before it takes the memory it would need.
        described = 'a {}x{} frame{}'.format(
            width, height, '' if self.content_scale == 1 else
            ' at --content_scale {:g} ({}x{} for the net)'.format(
                self.content_scale, net_width, net_height))
        if padded > MAX_PIXELS:
            raise InputError('{} with padding {} is {:.0f} megapixels, more than the '
                             '{:.0f} the net is given at most'.format(
                                 described, self.padding, padded / 1e6, MAX_PIXELS / 1e6))
        self.check_memory(described, padded)
        results = [None] * len(frames)

        def finish(index, y):
            # Back to the frame's size here, so that the median filter and
            # --keep_colors (postprocess) work at full size, as in CFNS.
            results[index] = images.resize(
                to_uint8(y, self.padding, net_height, net_width), (width, height))
        self.backend.infer_each(
            (pad_frame(images.resize(f, (net_width, net_height)), self.padding)
             for f in frames), finish, self.batch)
        return results

    def memory_needed(self, padded_pixels):
        """Bytes stylize() takes at its peak for frames of ``padded_pixels``
        (with padding): as many frames as the backend holds at once
        (Backend.frames_in_memory: a batch, or one with OpenVINO)."""
        return (BYTES_PER_PIXEL[self.backend_name] * padded_pixels *
                self.backend.frames_in_memory(self.batch))

    def check_memory(self, described, padded_pixels):
        """InputError, before the net runs, when the frame (``described`` as
        'a WxH frame ...' for the message) needs more memory than the
        machine has left (see available_memory). Checked once a
        frame size, so that a video is refused at its first frame, not after
        work began; not on a GPU, whose memory is its own."""
        if not self.backend.host_memory or padded_pixels in self.memory_checked:
            return
        self.memory_checked.add(padded_pixels)
        needed = self.memory_needed(padded_pixels)
        left = available_memory()
        if left is not None and needed > left:
            raise InputError(
                '{} needs about {:.1f} GB with the {} backend ({} bytes a '
                'pixel with padding {}); this machine has {:.1f} GB left: shrink it{}'
                .format(described, needed / 1e9, self.backend_name,
                        BYTES_PER_PIXEL[self.backend_name], self.padding, left / 1e9,
                        '' if self.backend.frames_in_memory(self.batch) == 1
                        else ' or lower --batch'))

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
