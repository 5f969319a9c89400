"""Reading and writing videos and cameras for generate.py, and the threaded
decode -> stylize -> encode pipeline.

Frames are HxWx3 uint8 RGB numpy arrays throughout. Videos are read with
OpenCV. They are written by an ffmpeg binary (from PATH, else the one the
imageio-ffmpeg package ships) when there is one: H.264 (VP9 for .webm, MPEG-4
part 2 for .avi) at any frame size, and the input's audio is copied in. With
no ffmpeg, OpenCV writes the video, without sound, and only even frame sizes.

Output goes to a temporary file in the output directory that is renamed at
the end, so a crash or Ctrl-C never leaves a broken file under the final name.
"""
import fractions
import functools
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import time

import cv2

from faststyle import tempfiles
from faststyle.errors import InputError

# OpenCV's FFmpeg backend prints libav's own errors (e.g. "EBML header parsing
# failed") on stderr; our one-line messages replace them. Read by OpenCV at its
# first video call; set the variable yourself to see them again.
os.environ.setdefault('OPENCV_FFMPEG_LOGLEVEL', '-8')  # AV_LOG_QUIET

VIDEO_EXTENSIONS = ('.mp4', '.avi', '.mov', '.mkv', '.webm')

# ffmpeg video encoder arguments per container; the quality settings keep the
# stylized texture (CRF 18 is near transparent for H.264).
_X264 = ['-c:v', 'libx264', '-preset', 'fast', '-crf', '18']
FFMPEG_VIDEO_CODECS = {
    '.mp4': _X264, '.mov': _X264, '.mkv': _X264,
    '.avi': ['-c:v', 'mpeg4', '-q:v', '2', '-vtag', 'XVID'],
    '.webm': ['-c:v', 'libvpx-vp9', '-crf', '31', '-b:v', '0', '-row-mt', '1',
              '-deadline', 'good', '-cpu-used', '4'],
}
# When the input's audio codec cannot be copied into the output container.
FFMPEG_AUDIO_FALLBACK = {'.mp4': 'aac', '.mov': 'aac', '.mkv': 'aac',
                         '.avi': 'libmp3lame', '.webm': 'libopus'}
OPENCV_FOURCCS = {'.mp4': 'mp4v', '.mov': 'mp4v', '.mkv': 'XVID', '.avi': 'MJPG',
                  '.webm': 'VP80'}


def _note(message):
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
def _say_once(message):
    """A note printed once per process, however many videos are written."""
    _note(message)


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


class VideoReader:
    """Frames of a video file (or camera) as RGB uint8 arrays.

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

    def __iter__(self):
        frame = self._first
        self._first = None
        while frame is not None:
            self.frames_read += 1
            yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            ok, frame = self.capture.read()
            if not ok:
                frame = None

    def shortfall(self):
        """A warning when fewer frames decoded than the header declares (a
        truncated or damaged file), else None."""
        if self.frame_count_hint and self.frames_read < self.frame_count_hint:
            return ('{}: only {} of the {} frames its header declares could be '
                    'decoded (truncated or damaged?)'.format(
                        self.name, self.frames_read, self.frame_count_hint))
        return None

    def close(self):
        self.capture.release()


class FfmpegWriter:
    """Pipes raw RGB frames into an ffmpeg encoder process."""

    def __init__(self, path, fps, width, height, ffmpeg):
        ext = os.path.splitext(path)[1].lower()
        # 4:2:0 chroma needs even sizes; 4:4:4 keeps odd sizes exact.
        pix_fmt = 'yuv420p' if width % 2 == 0 and height % 2 == 0 else 'yuv444p'
        rate = fractions.Fraction(fps).limit_denominator(1001)
        command = [ffmpeg, '-y', '-hide_banner', '-loglevel', 'error',
                   '-f', 'rawvideo', '-pix_fmt', 'rgb24',
                   '-s', '{}x{}'.format(width, height),
                   '-r', '{}/{}'.format(rate.numerator, rate.denominator),
                   '-i', '-', '-an'] + FFMPEG_VIDEO_CODECS[ext] + [
                       '-pix_fmt', pix_fmt, _ffmpeg_path(path)]
        self.path = path
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        # Drained by a thread so a chatty ffmpeg never blocks on a full pipe.
        self._stderr = []
        self._drain = threading.Thread(target=lambda: self._stderr.append(
            self.process.stderr.read()), daemon=True)
        self._drain.start()

    def write(self, frame):
        try:
            self.process.stdin.write(frame.tobytes())
        except BrokenPipeError:
            self._fail()

    def _fail(self):
        self.process.kill()
        self.process.wait()
        self._drain.join(5)
        message = b''.join(self._stderr).decode(errors='replace').strip()
        raise InputError('{}: ffmpeg could not encode the video: {}'.format(
            self.path, message.splitlines()[-1] if message else 'unknown error'))

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
    """cv2.VideoWriter, for when there is no ffmpeg binary."""

    def __init__(self, path, fps, width, height):
        ext = os.path.splitext(path)[1].lower()
        self.path = path
        self.writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*OPENCV_FOURCCS[ext]),
                                      fps, (width, height))
        if not self.writer.isOpened():
            raise InputError('{}: OpenCV cannot write {} videos here'.format(path, ext))

    def write(self, frame):
        self.writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))

    def close(self):
        self.writer.release()

    def abort(self):
        self.writer.release()


def open_writer(path, fps, width, height, ffmpeg):
    """The ffmpeg writer when that binary has the encoder, else OpenCV's."""
    ext = os.path.splitext(path)[1].lower()
    if ext not in VIDEO_EXTENSIONS:
        raise InputError('{}: unknown video extension (use one of {})'.format(
            path, ', '.join(VIDEO_EXTENSIONS)))
    if ffmpeg and FFMPEG_VIDEO_CODECS[ext][1] in ffmpeg_encoders(ffmpeg):
        return FfmpegWriter(path, fps, width, height, ffmpeg)
    if width % 2 or height % 2:
        _say_once('without ffmpeg, OpenCV writes even frame sizes only: odd widths '
                  'and heights lose their last column or row')
    return OpenCVWriter(path, fps, width, height)


def copy_audio(video_path, audio_source, out_path, ffmpeg):
    """Mux ``video_path``'s video and ``audio_source``'s audio into ``out_path``.

    The audio is copied as is when the container takes its codec, else
    re-encoded. Returns True when ``out_path`` was written.
    """
    ext = os.path.splitext(out_path)[1].lower()
    base = [ffmpeg, '-y', '-hide_banner', '-loglevel', 'error',
            '-i', _ffmpeg_path(video_path), '-i', _ffmpeg_path(audio_source),
            '-map', '0:v:0', '-map', '1:a', '-c:v', 'copy']
    for audio_codec in ('copy', FFMPEG_AUDIO_FALLBACK[ext]):
        result = subprocess.run(base + ['-c:a', audio_codec, _ffmpeg_path(out_path)],
                                capture_output=True, text=True)
        if result.returncode == 0:
            return True
    _note('{}: could not copy the audio ({}); the video is written without '
          'sound'.format(audio_source, result.stderr.strip().splitlines()[-1:]))
    return False


_END = object()


def _put(q, item, stop):
    """Blocking put that gives up when ``stop`` is set (the consumer is gone)."""
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return
        except queue.Full:
            pass


def _get(q, stop):
    """Blocking get that returns _END when ``stop`` is set (the producer is gone)."""
    while True:
        try:
            return q.get(timeout=0.1)
        except queue.Empty:
            if stop.is_set():
                return _END


def stylize_video(in_path, out_path, stylize, batch=1, progress=True,
                  ffmpeg='auto', queue_size=16):
    """Stylize every frame of ``in_path`` into ``out_path``; returns a summary dict.

    ``stylize`` maps a list of frames to a list of stylized frames; it is
    called with up to ``batch`` frames. Decoding and encoding run in their own
    threads, with bounded queues, so they overlap with ``stylize``.
    ``ffmpeg``: 'auto' (find one), a path, or None (OpenCV only, no audio).
    """
    if os.path.exists(out_path) and os.path.samefile(in_path, out_path):
        raise InputError('{}: refusing to overwrite the input video'.format(out_path))
    if os.path.splitext(out_path)[1].lower() not in VIDEO_EXTENSIONS:
        raise InputError('{}: the output of a video must be a video file ({})'.format(
            out_path, ', '.join(VIDEO_EXTENSIONS)))
    if ffmpeg == 'auto':
        ffmpeg = find_ffmpeg()
        if ffmpeg is None:
            _say_once('no ffmpeg binary found (pip install imageio-ffmpeg, or put '
                      'ffmpeg on PATH): videos are written without sound')
    start = time.perf_counter()
    reader = VideoReader(in_path)
    fps = reader.fps
    if fps is None:
        fps = 30.0
        _note('{}: the frame rate is unknown; writing 30 frames/s'.format(in_path))
    video_tmp = temporary_path(out_path)
    muxed_tmp = None
    writer = None
    writer_closed = False
    bar = None
    # Any thread that fails records its exception and sets ``stop``; the
    # others then wind down and the main thread re-raises it.
    stop = threading.Event()
    failures = []
    decoded = queue.Queue(queue_size)
    stylized = queue.Queue(queue_size)
    threads = []

    def decode():
        try:
            for frame in reader:
                _put(decoded, frame, stop)
                if stop.is_set():
                    return
            _put(decoded, _END, stop)
        except Exception as e:
            failures.append(e)
            stop.set()

    def encode():
        try:
            while True:
                frame = _get(stylized, stop)
                if frame is _END:
                    break
                writer.write(frame)
                bar.update(1)
        except Exception as e:
            failures.append(e)
            stop.set()

    try:
        writer = open_writer(video_tmp, fps, reader.width, reader.height, ffmpeg)
        bar = _progress_bar(reader.frame_count_hint, os.path.basename(in_path), progress)
        threads = [threading.Thread(target=decode, daemon=True, name='decode'),
                   threading.Thread(target=encode, daemon=True, name='encode')]
        for thread in threads:
            thread.start()
        frames_done = 0
        finished = False
        while not finished and not stop.is_set():
            chunk = []
            while len(chunk) < batch:
                frame = _get(decoded, stop)
                if frame is _END:
                    finished = True
                    break
                chunk.append(frame)
            if chunk:
                for out in stylize(chunk):
                    _put(stylized, out, stop)
                frames_done += len(chunk)
        _put(stylized, _END, stop)
        threads[1].join()
        if failures:
            raise failures[0]
        writer.close()
        writer_closed = True
        bar.close()

        audio = False
        if ffmpeg and audio_codecs(in_path, ffmpeg):
            muxed_tmp = temporary_path(out_path)
            audio = copy_audio(video_tmp, in_path, muxed_tmp, ffmpeg)
        os.replace(muxed_tmp if audio else video_tmp, out_path)
        shortfall = reader.shortfall()
        if shortfall:
            print('warning: {}; {} has {} frames'.format(shortfall, out_path, frames_done),
                  file=sys.stderr)
        return {'frames': frames_done, 'seconds': time.perf_counter() - start,
                'width': reader.width, 'height': reader.height, 'fps': fps,
                'audio': audio}
    finally:
        stop.set()
        if writer is not None and not writer_closed:
            writer.abort()  # also unblocks an encoder thread stuck in write()
        if bar is not None:
            bar.close()
        for thread in threads:
            thread.join()
        reader.close()
        for path in (video_tmp, muxed_tmp):
            if path:
                tempfiles.remove_quietly(path)


def _progress_bar(total, name, enabled):
    from tqdm import tqdm
    # disable=None: only on a terminal, so logs of batch jobs stay readable.
    return tqdm(total=total, desc=name, unit='frame', dynamic_ncols=True,
                disable=None if enabled else True)


def has_display():
    """Whether cv2.imshow can open a window (X11/Wayland on Linux)."""
    if sys.platform.startswith('linux'):
        return bool(os.environ.get('DISPLAY') or os.environ.get('WAYLAND_DISPLAY'))
    return True


def run_camera(index, stylize, window='fast style (q or Esc to quit)'):
    """Show camera ``index`` stylized live until q, Esc or the window is closed.

    Returns (frames, seconds)."""
    if not has_display():
        raise InputError('--camera needs a display for its preview window '
                         '(DISPLAY is not set)')
    capture = cv2.VideoCapture(index)
    if not capture.isOpened():
        raise InputError('camera {}: cannot open it'.format(index))
    frames = 0
    start = time.perf_counter()
    try:
        cv2.namedWindow(window, cv2.WINDOW_NORMAL)
        while True:
            ok, frame = capture.read()
            if not ok:
                raise InputError('camera {}: no more frames'.format(index))
            rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            out = stylize([rgb])[0]
            cv2.imshow(window, cv2.cvtColor(out, cv2.COLOR_RGB2BGR))
            frames += 1
            key = cv2.waitKey(1) & 0xFF
            if key in (ord('q'), 27) or cv2.getWindowProperty(
                    window, cv2.WND_PROP_VISIBLE) < 1:
                break
    except cv2.error as e:
        raise InputError('camera {}: cannot show the preview window ({})'.format(
            index, str(e).strip().splitlines()[-1]))
    finally:
        capture.release()
        cv2.destroyAllWindows()
    return frames, time.perf_counter() - start
