"""Reading and writing videos for generate.py (faststyle/pipeline.py runs
them in threads around the net; faststyle/camera.py shows a live camera).

Frames are HxWx3 uint8 RGB numpy arrays throughout. With PyAV (the ``av``
package: FFmpeg's libraries in-process, in requirements.txt) a video is read
as a player shows it and written so that a player shows it the same way:

* frames are turned upright by the input's rotation tag (a phone's portrait
  clip is stored sideways with one), and the output, stylized upright, has
  no tag;
* each frame keeps its time stamp, so a clip of variable frame rate stays in
  step with its sound;
* the sample (pixel) aspect ratio is written to the output;
* the input's sound is copied in the same pass (re-encoded only when the
  output container cannot hold its codec).

H.264 (VP9 for .webm, MPEG-4 part 2 for .avi) at any frame size. Without
PyAV, OpenCV reads (without the rotation, time stamps and aspect ratio: a
note says so once) and an ffmpeg binary (from PATH, else imageio-ffmpeg's)
writes, adding the sound in a second run; with no ffmpeg either, OpenCV
writes, without sound and only even frame sizes.

Output goes to a temporary file in the output directory that is renamed at
the end, so a crash or Ctrl-C never leaves a broken file under the final name.
"""
import errno
import fractions
import functools
import math
import os
import re
import shutil
import subprocess
import sys
import threading

import cv2
import numpy

from faststyle import tempfiles
from faststyle.errors import InputError, WorkError

# OpenCV's FFmpeg backend prints libav's own errors (e.g. "EBML header parsing
# failed") on stderr; our one-line messages replace them. Read by OpenCV at its
# first video call; set the variable yourself to see them again.
os.environ.setdefault('OPENCV_FFMPEG_LOGLEVEL', '-8')  # AV_LOG_QUIET

VIDEO_EXTENSIONS = ('.mp4', '.avi', '.mov', '.mkv', '.webm')

# The video encoder per container, its options and its codec tag (None: the
# muxer's own), for PyAV and the ffmpeg binary alike; the quality settings
# keep the stylized texture (CRF 18 is near transparent for H.264; for MPEG-4
# part 2, qscale 2 is global_quality 2 x FF_QP2LAMBDA = 236).
_X264 = ('libx264', {'preset': 'fast', 'crf': '18'}, None)
VIDEO_ENCODERS = {
    '.mp4': _X264, '.mov': _X264, '.mkv': _X264,
    '.avi': ('mpeg4', {'flags': '+qscale', 'global_quality': '236'}, 'XVID'),
    '.webm': ('libvpx-vp9', {'crf': '31', 'b': '0', 'row-mt': '1', 'deadline': 'good',
                             'cpu-used': '4'}, None),
}


def ffmpeg_video_arguments(ext):
    """VIDEO_ENCODERS[ext] as ffmpeg command-line arguments."""
    codec, options, tag = VIDEO_ENCODERS[ext]
    arguments = ['-c:v', codec]
    for key, value in options.items():
        arguments += ['-' + key, value]
    return arguments + (['-tag:v', tag] if tag else [])


# Containers whose time stamps are per frame; AVI counts frames at one rate.
TIMESTAMPED_CONTAINERS = ('.mp4', '.mov', '.mkv', '.webm')
# When the input's audio codec cannot be copied into the output container.
FFMPEG_AUDIO_FALLBACK = {'.mp4': 'aac', '.mov': 'aac', '.mkv': 'aac',
                         '.avi': 'libmp3lame', '.webm': 'libopus'}
OPENCV_FOURCCS = {'.mp4': 'mp4v', '.mov': 'mp4v', '.mkv': 'XVID', '.avi': 'MJPG',
                  '.webm': 'VP80'}


def note(message):
    print('note: ' + message, file=sys.stderr)


@functools.lru_cache(maxsize=None)
def find_ffmpeg():
    """Path of an ffmpeg binary (PATH first, then imageio-ffmpeg's), or None."""
    path = shutil.which('ffmpeg')
    if path:
        return path
    try:
        import imageio_ffmpeg
        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception:  # not installed, or no binary for this platform
        return None


@functools.lru_cache(maxsize=None)
def ffmpeg_encoders(ffmpeg):
    """Names of the encoders an ffmpeg binary has (builds differ)."""
    try:
        listing = subprocess.run([ffmpeg, '-hide_banner', '-encoders'],
                                 capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return frozenset()
    return frozenset(line.split()[1] for line in listing.splitlines()
                     if len(line.split()) > 1 and line.startswith(' '))


@functools.lru_cache(maxsize=None)
def say_once(message):
    """A note printed once per process, however many videos are written."""
    note(message)


# How the system words a failure to write a file whatever its content (glibc's,
# musl's and macOS's texts); ffmpeg ends its message with it. Such a failure
# says nothing about the streams: it is never taken for "this container cannot
# hold this codec".
_WRITE_ERROR = re.compile(r'No space left on device|Dis[ck] quota exceeded|'
                          r'Quota exceeded|Input/output error|I/O error|'
                          r'File too large|Read-only file system', re.IGNORECASE)


def write_error(ffmpeg_stderr):
    """The system's reason when ffmpeg could not write its output file (a
    full disk, an I/O error), else None."""
    match = _WRITE_ERROR.search(ffmpeg_stderr)
    return match.group(0) if match else None


def cannot_write(name, reason):
    """The WorkError for an output that could not be written; the caller
    removes its temporary file, so an earlier file of that name is kept."""
    return WorkError('{}: cannot write it ({}); an existing file of that name is '
                     'left as it was'.format(name, reason))


def _last_line(ffmpeg_stderr, path, name):
    """ffmpeg's last message line, naming the user's output, not our temporary file."""
    lines = ffmpeg_stderr.strip().splitlines()
    return lines[-1].replace(str(path), str(name)) if lines else 'unknown error'


def _ffmpeg_path(path):
    """A file name for ffmpeg's command line: 'file:' so that names starting
    with '-' or looking like a protocol ('http:...') stay plain files."""
    return 'file:' + str(path)


def audio_codecs(path, ffmpeg):
    """Codec names of the audio streams of ``path`` as ffmpeg reports them."""
    try:
        report = subprocess.run([ffmpeg, '-hide_banner', '-i', _ffmpeg_path(path)],
                                capture_output=True, text=True, timeout=60).stderr
    except (OSError, subprocess.SubprocessError):
        return []
    return re.findall(r'Stream #\S+.*?: Audio: (\w+)', report)


def temporary_path(final_path):
    """A new empty file next to ``final_path`` (same extension, hidden name)."""
    fd, path = tempfiles.make_temp(final_path)
    os.close(fd)
    return path


class OpenCVReader:
    """Frames of a video file (or camera) as RGB uint8 arrays, read by OpenCV
    (no rotation, time stamps or aspect ratio).

    Opening reads the first frame, so an unreadable or empty video fails here
    with InputError, before any output is created.
    """

    def __init__(self, source, name=None):
        self.name = name or str(source)
        if isinstance(source, str):
            # An absolute path: a name such as '2024-01-01T12:30:00.mp4' would
            # otherwise be taken by FFmpeg for a URL with the scheme '2024-...'.
            source = os.path.abspath(source)
        self.frames_read = 0
        self.capture = cv2.VideoCapture(source)
        if not self.capture.isOpened():
            raise InputError('{}: cannot open this video (unreadable, or not a '
                             'video format OpenCV can decode)'.format(self.name))
        ok, first = self.capture.read()
        if not ok or first is None:
            self.capture.release()
            raise InputError('{}: the video has no frames'.format(self.name))
        self._first = first
        self.height, self.width = first.shape[:2]
        fps = self.capture.get(cv2.CAP_PROP_FPS)
        self.fps = fps if fps and fps > 0 and fps < 1000 else None
        count = int(self.capture.get(cv2.CAP_PROP_FRAME_COUNT))
        # Only a hint for the progress bar: containers may not store it exactly.
        self.frame_count_hint = count if count > 0 else None

    # What OpenCV does not say about the stream.
    time_base = None
    sample_aspect = None
    frame_count_exact = True  # frame_count_hint is the header's count

    def __iter__(self):
        return (frame for frame, _ in self.frames_with_times())

    def frames_with_times(self):
        """(frame, None) pairs: OpenCV gives no time stamps."""
        frame = self._first
        self._first = None
        while frame is not None:
            self.frames_read += 1
            yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), None
            ok, frame = self.capture.read()
            if not ok:
                frame = None

    def shortfall(self):
        """A warning when fewer frames decoded than the header declares (a
        truncated or damaged file), else None. A count estimated from the
        duration (Matroska and WebM declare no count) is allowed 5 % and a
        frame of rounding."""
        hint = self.frame_count_hint
        if not hint:
            return None
        if self.frame_count_exact and self.frames_read < hint:
            return ('{}: only {} of the {} frames its header declares could be '
                    'decoded (truncated or damaged?)'.format(self.name, self.frames_read, hint))
        if not self.frame_count_exact and self.frames_read < hint - 1 - hint // 20:
            return ('{}: only {} of the about {} frames its duration declares could be '
                    'decoded (truncated or damaged?)'.format(self.name, self.frames_read, hint))
        return None

    def close(self):
        self.capture.release()


def import_av():
    """The PyAV module, or None when it is not installed."""
    try:
        import av
    except ImportError:
        return None
    return av


def quarter_turns(display_matrix):
    """(turns, mirrored) that show a stored picture as FFmpeg's players do,
    from the 3x3 display matrix of a stream (nine int32, 16.16 fixed point):
    ``numpy.rot90(frame, turns)``, after a left-right flip when ``mirrored``.
    Angles are rounded to quarter turns, as players do. (The rule was read
    off ffmpeg's own output for all eight turns and flips; the tests check
    it against ffmpeg.)"""
    a, b, _, c, d = numpy.frombuffer(display_matrix, '<i4', 9)[:5] / 65536.0
    degrees = math.degrees(math.atan2(c, d))
    return int(round(degrees / 90.0)) % 4, bool(a * d - b * c < 0)


def display_matrix(frame):
    """The bytes of a PyAV frame's display matrix (its rotation tag), or None."""
    side_data = frame.side_data
    for item in side_data:
        # PyAV 19 iterates over the types, earlier versions over the entries.
        entry = item if hasattr(item, 'type') else side_data[item]
        if str(entry.type).endswith('DISPLAYMATRIX'):
            return bytes(entry)
    return None


class AvReader:
    """Frames of a video file as RGB uint8 arrays, read by PyAV and turned
    upright by the stream's rotation tag; each comes with its time stamp.

    Opening reads the first frame, so an unreadable or empty video fails here
    with InputError, before any output is created.
    """

    def __init__(self, av, path, name=None):
        self.av = av
        self.name = name or str(path)
        self.frames_read = 0
        try:
            self.container = av.open(os.path.abspath(path))
        except (av.FFmpegError, OSError, ValueError) as e:
            # FFmpeg's words, without its error number and the path said already.
            reason = getattr(e, 'strerror', None) or str(e)
            raise InputError('{}: cannot open this video ({})'.format(self.name, reason))
        try:
            if not self.container.streams.video:
                raise InputError('{}: the file has no video stream'.format(self.name))
            self.stream = self.container.streams.video[0]
            self.stream.thread_type = 'AUTO'  # frame threads: decoding keeps up
            self._frames = self._decode()
            self._first = next(self._frames, None)
            if self._first is None:
                raise InputError('{}: the video has no frames'.format(self.name))
        except BaseException:
            self.container.close()
            raise
        self.height, self.width = self._first[0].shape[:2]
        rate = self.stream.average_rate or self.stream.guessed_rate
        self.fps = float(rate) if rate and 0 < rate < 1000 else None
        self.time_base = self.stream.time_base
        sar = self.stream.codec_context.sample_aspect_ratio
        self.sample_aspect = sar if sar and sar > 0 and sar != 1 else None
        self.frame_count_exact = bool(self.stream.frames)
        self.frame_count_hint = self.stream.frames or self._frames_from_duration()

    def _frames_from_duration(self):
        """The frame count the stream's (or else the container's) duration
        and frame rate imply, or None."""
        if self.stream.duration and self.stream.time_base:
            seconds = float(self.stream.duration * self.stream.time_base)
        elif self.container.duration:
            seconds = self.container.duration / self.av.time_base
        else:
            return None
        if not self.fps:
            return None
        return int(round(seconds * self.fps)) or None

    def _decode(self):
        turns = mirrored = None
        try:
            for frame in self.container.decode(self.stream):
                if turns is None:  # the tag is the stream's: read it once
                    matrix = display_matrix(frame)
                    turns, mirrored = quarter_turns(matrix) if matrix else (0, False)
                rgb = frame.to_ndarray(format='rgb24')
                if mirrored:
                    rgb = rgb[:, ::-1]
                if turns:
                    rgb = numpy.rot90(rgb, turns)
                yield numpy.ascontiguousarray(rgb), frame.pts
        except self.av.FFmpegError:
            # A damaged or truncated file: what decoded is kept, and
            # shortfall() says how much is missing.
            return

    def __iter__(self):
        return (frame for frame, _ in self.frames_with_times())

    def frames_with_times(self):
        """(frame, time stamp in ``time_base`` units or None) pairs."""
        first, self._first = self._first, None
        if first is not None:
            self.frames_read += 1
            yield first
        for item in self._frames:
            self.frames_read += 1
            yield item

    shortfall = OpenCVReader.shortfall

    def close(self):
        self._frames.close()
        self.container.close()


def VideoReader(source, name=None):
    """A reader of ``source`` (a file; an int is a camera): PyAV's when it is
    installed, else OpenCV's, which says once what it loses."""
    av = None if isinstance(source, int) else import_av()
    if av is None:
        if not isinstance(source, int):
            say_once('PyAV is not installed (pip install av): videos are read by '
                     'OpenCV, so rotation tags, variable frame timing and the pixel '
                     'aspect ratio are not kept')
        return OpenCVReader(source, name)
    return AvReader(av, source, name)


# How the system words a failed write, as errno values (PyAV raises OSError).
WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EFBIG, errno.EROFS)


class AvWriter:
    """Writes ``path`` with PyAV: the frames with their time stamps, the
    sample aspect ratio, and the audio of ``audio_source`` interleaved with
    the video, in one pass. Messages name ``name``, the output the user gave.

    ``time_base``: the unit of the time stamps given to write() (the input's);
    None, or an AVI output, numbers the frames at ``fps`` instead.
    """

    adds_audio = True
    # Closing the container under a write would free what the encoder (which
    # runs without the GIL) is using: abort() waits until no thread writes.
    abort_while_writing = False

    def __init__(self, av, path, fps, width, height, name=None, time_base=None,
                 sample_aspect=None, audio_source=None):
        self.av = av
        self.path = path
        self.name = name or path
        ext = os.path.splitext(path)[1].lower()
        codec, options, tag = VIDEO_ENCODERS[ext]
        rate = fractions.Fraction(fps).limit_denominator(1001)
        self.timestamped = time_base is not None and ext in TIMESTAMPED_CONTAINERS
        self.time_base = time_base if self.timestamped else 1 / rate
        self.frame_step = max(1, round(1 / (rate * self.time_base)))
        self.last_pts = None
        self.frames = 0
        self.audio_in = None
        self.audio = []  # (input stream, output stream, how: 'copy' or an encoder)
        self.container = self._guard(lambda: av.open(path, 'w'))
        try:
            self.stream = self.container.add_stream(codec, rate=rate)
            self.stream.width, self.stream.height = width, height
            # 4:2:0 chroma needs even sizes; 4:4:4 keeps odd sizes exact
            # where the encoder has it (MPEG-4 part 2 rounds the chroma up).
            formats = [f.name for f in av.Codec(codec, 'w').video_formats or ()]
            self.stream.pix_fmt = ('yuv444p' if (width % 2 or height % 2) and
                                   'yuv444p' in formats else 'yuv420p')
            self.stream.options = dict(options)
            self.stream.codec_context.time_base = self.time_base
            self.stream.time_base = self.time_base
            if tag:
                self.stream.codec_context.codec_tag = tag
            if sample_aspect:
                self.stream.codec_context.sample_aspect_ratio = sample_aspect
            if audio_source:
                self._add_audio(audio_source)
        except BaseException:
            self.abort()
            raise

    def _guard(self, step):
        """``step()``, with PyAV's write failures as one-line errors."""
        try:
            return step()
        except OSError as e:
            if e.errno in WRITE_ERRNOS:  # a full disk: the work failed, the input was fine
                raise cannot_write(self.name, os.strerror(e.errno))
            raise WorkError('{}: cannot write it ({})'.format(
                self.name, (e.strerror or str(e)).replace(str(self.path), str(self.name))))
        except (self.av.FFmpegError, ValueError) as e:
            raise InputError('{}: cannot encode the video ({})'.format(
                self.name, str(e).replace(str(self.path), str(self.name))))

    def _add_audio(self, source):
        av = self.av
        self.audio_in = av.open(os.path.abspath(source))
        supported = self.container.supported_codecs
        fallback = FFMPEG_AUDIO_FALLBACK[os.path.splitext(self.path)[1].lower()]
        for stream in self.audio_in.streams.audio:
            if stream.codec_context.name in supported:
                add = getattr(self.container, 'add_stream_from_template', None)
                out = (add(stream) if add else  # PyAV 13+; before: template=
                       self.container.add_stream(template=stream))
                self.audio.append((stream, out, 'copy'))
            elif fallback in av.codecs_available:
                # Opus takes 48, 24, 16, 12 or 8 kHz: the nearest rate it has.
                rates = av.Codec(fallback, 'w').audio_rates
                rate = (min(rates, key=lambda r: abs(r - stream.rate))
                        if rates and stream.rate not in rates else stream.rate)
                out = self.container.add_stream(fallback, rate=rate)
                if stream.layout.name in ('mono', 'stereo') or fallback != 'libmp3lame':
                    out.layout = stream.layout.name
                else:  # MP3 holds at most two channels
                    out.layout = 'stereo'
                self.audio.append((stream, out, fallback))
            else:
                note('{}: cannot copy its audio into {} (no {} encoder); the video is '
                     'written without sound'.format(source, self.name, fallback))
        if not self.audio:
            self.audio_in.close()
            self.audio_in = None
        else:
            self._audio_packets = self.audio_in.demux(
                *[stream for stream, _, _ in self.audio])
            self._pending_audio = None

    def _mux_audio_until(self, seconds):
        """Mux the input's audio up to ``seconds`` (None: all of it), so that
        sound and picture are interleaved in the file as players read it."""
        if self.audio_in is None:
            return
        outputs = {stream.index: (out, how) for stream, out, how in self.audio}
        while True:
            packet = self._pending_audio or next(self._audio_packets, None)
            self._pending_audio = None
            if packet is None:
                break
            if packet.dts is None and packet.size == 0:
                continue  # the demuxer's end marker
            if (seconds is not None and packet.pts is not None and
                    packet.pts * packet.time_base > seconds):
                self._pending_audio = packet
                return
            out, how = outputs[packet.stream.index]
            if how == 'copy':
                packet.stream = out
                self.container.mux(packet)
            else:
                for frame in packet.decode():
                    frame.pts = None
                    self.container.mux(out.encode(frame))
        # The input's sound has ended (it may end before the picture): flush
        # the audio encoders once and stop reading it; an encoder flushed a
        # second time refuses ('End of file').
        for _, out, how in self.audio:
            if how != 'copy':
                self.container.mux(out.encode(None))
        self._close_input()

    def write(self, frame, pts=None):
        def step():
            image = self.av.VideoFrame.from_ndarray(frame, format='rgb24')
            if not self.timestamped:
                stamp = self.frames
            elif pts is not None:
                stamp = pts
            else:  # a frame without a stamp (raw streams): one frame after the last
                stamp = 0 if self.last_pts is None else self.last_pts + self.frame_step
            if self.last_pts is not None and stamp <= self.last_pts:
                stamp = self.last_pts + 1  # encoders need increasing stamps
            self.last_pts = stamp
            image.pts = stamp
            image.time_base = self.time_base
            if self.audio_in is not None:
                self._mux_audio_until(stamp * self.time_base)
            self.container.mux(self.stream.encode(image))
            self.frames += 1
        self._guard(step)

    def close(self):
        def step():
            self.container.mux(self.stream.encode(None))
            if self.audio_in is not None:
                self._mux_audio_until(None)
            self.container.close()
        try:
            self._guard(step)
        finally:
            self._close_input()

    def _close_input(self):
        if self.audio_in is not None:
            self.audio_in.close()
            self.audio_in = None

    def abort(self):
        self._close_input()
        container = getattr(self, 'container', None)
        if container is not None:
            try:
                container.close()
            except Exception:  # a failing disk fails again: the file is removed anyway
                pass


class FfmpegWriter:
    """Pipes raw RGB frames into an ffmpeg encoder process writing ``path``;
    messages name ``name`` (the output the user gave) instead."""

    # abort() kills the encoder, which unblocks a write() into its full pipe.
    abort_while_writing = True

    adds_audio = False

    def __init__(self, path, fps, width, height, ffmpeg, name=None):
        ext = os.path.splitext(path)[1].lower()
        # 4:2:0 chroma needs even sizes; 4:4:4 keeps odd sizes exact.
        pix_fmt = 'yuv420p' if width % 2 == 0 and height % 2 == 0 else 'yuv444p'
        rate = fractions.Fraction(fps).limit_denominator(1001)
        command = [ffmpeg, '-y', '-hide_banner', '-loglevel', 'error',
                   '-f', 'rawvideo', '-pix_fmt', 'rgb24',
                   '-s', '{}x{}'.format(width, height),
                   '-r', '{}/{}'.format(rate.numerator, rate.denominator),
                   '-i', '-', '-an'] + ffmpeg_video_arguments(ext) + [
                       '-pix_fmt', pix_fmt, _ffmpeg_path(path)]
        self.path = path
        self.name = name or path
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        # Drained by a thread so a chatty ffmpeg never blocks on a full pipe.
        self._stderr = []
        self._drain = threading.Thread(target=lambda: self._stderr.append(
            self.process.stderr.read()), daemon=True)
        self._drain.start()

    def write(self, frame, pts=None):
        """``pts`` is ignored: frames are written at one rate."""
        try:
            self.process.stdin.write(frame.tobytes())
        except BrokenPipeError:
            self._fail()

    def _fail(self):
        self.process.kill()
        self.process.wait()
        self._drain.join(5)
        message = b''.join(self._stderr).decode(errors='replace')
        reason = write_error(message)
        if reason:  # a full disk: the work failed, the input was fine
            raise cannot_write(self.name, reason)
        raise InputError('{}: ffmpeg could not encode the video: {}'.format(
            self.name, _last_line(message, self.path, self.name)))

    def close(self):
        try:
            self.process.stdin.close()
        except BrokenPipeError:
            pass
        if self.process.wait() != 0:
            self._fail()
        self._drain.join(5)

    def abort(self):
        self.process.kill()
        self.process.wait()
        try:
            # Else frames left in the pipe's buffer are flushed into the dead
            # process when it is garbage-collected (Python 3.13 warns).
            self.process.stdin.close()
        except BrokenPipeError:
            pass


class OpenCVWriter:
    """cv2.VideoWriter, for when there is neither PyAV nor an ffmpeg binary."""

    adds_audio = False
    abort_while_writing = False  # releasing it under a write would free its buffers

    def __init__(self, path, fps, width, height, name=None):
        ext = os.path.splitext(path)[1].lower()
        self.path = path
        self.writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*OPENCV_FOURCCS[ext]),
                                      fps, (width, height))
        if not self.writer.isOpened():
            raise InputError('{}: OpenCV cannot write {} videos here'.format(
                name or path, ext))

    def write(self, frame, pts=None):
        """``pts`` is ignored: frames are written at one rate."""
        self.writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))

    def close(self):
        self.writer.release()

    def abort(self):
        self.writer.release()


def open_writer(path, fps, width, height, ffmpeg, name=None, time_base=None,
                sample_aspect=None, audio_source=None):
    """PyAV's writer when it is installed (it adds ``audio_source``'s sound
    itself: ``writer.adds_audio``), else the ffmpeg binary's when it has the
    encoder, else OpenCV's. ``path`` is the file written, ``name`` the output
    messages name."""
    ext = os.path.splitext(path)[1].lower()
    if ext not in VIDEO_EXTENSIONS:
        raise InputError('{}: unknown video extension (use one of {})'.format(
            name or path, ', '.join(VIDEO_EXTENSIONS)))
    av = import_av()
    if av is not None:
        return AvWriter(av, path, fps, width, height, name, time_base, sample_aspect,
                        audio_source)
    if ffmpeg and VIDEO_ENCODERS[ext][0] in ffmpeg_encoders(ffmpeg):
        return FfmpegWriter(path, fps, width, height, ffmpeg, name)
    if width % 2 or height % 2:
        say_once('without ffmpeg, OpenCV writes even frame sizes only: odd widths '
                  'and heights lose their last column or row')
    return OpenCVWriter(path, fps, width, height, name)


def copy_audio(video_path, audio_source, out_path, ffmpeg, name=None):
    """Mux ``video_path``'s video and ``audio_source``'s audio into ``out_path``.

    The audio is copied as is when the container takes its codec, else
    re-encoded. Returns True when ``out_path`` was written, False (with a
    note) when the sound fits neither way. A failure to write (a full disk)
    raises WorkError naming ``name``, the output the user gave: a silent
    video must not replace an earlier output because the disk is full.
    """
    name = name or out_path
    ext = os.path.splitext(out_path)[1].lower()
    base = [ffmpeg, '-y', '-hide_banner', '-loglevel', 'error',
            '-i', _ffmpeg_path(video_path), '-i', _ffmpeg_path(audio_source),
            '-map', '0:v:0', '-map', '1:a', '-c:v', 'copy']
    for audio_codec in ('copy', FFMPEG_AUDIO_FALLBACK[ext]):
        result = subprocess.run(base + ['-c:a', audio_codec, _ffmpeg_path(out_path)],
                                capture_output=True, text=True)
        if result.returncode == 0:
            return True
        reason = write_error(result.stderr)
        if reason:
            raise cannot_write(name, reason)
    note('{}: could not copy the audio ({}); the video is written without '
         'sound'.format(audio_source, _last_line(result.stderr, out_path, name)))
    return False
