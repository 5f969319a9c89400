"""Reading and writing videos for generate.py (faststyle/pipeline.py runs
them in threads around the net; faststyle/camera.py shows a live camera).

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
import re
import shutil
import subprocess
import sys
import threading

import cv2

from faststyle import tempfiles
from faststyle.errors import InputError, WorkError

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
    """Pipes raw RGB frames into an ffmpeg encoder process writing ``path``;
    messages name ``name`` (the output the user gave) instead."""

    def __init__(self, path, fps, width, height, ffmpeg, name=None):
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
        self.name = name or path
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
    """cv2.VideoWriter, for when there is no ffmpeg binary."""

    def __init__(self, path, fps, width, height, name=None):
        ext = os.path.splitext(path)[1].lower()
        self.path = path
        self.writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*OPENCV_FOURCCS[ext]),
                                      fps, (width, height))
        if not self.writer.isOpened():
            raise InputError('{}: OpenCV cannot write {} videos here'.format(
                name or path, ext))

    def write(self, frame):
        self.writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))

    def close(self):
        self.writer.release()

    def abort(self):
        self.writer.release()


def open_writer(path, fps, width, height, ffmpeg, name=None):
    """The ffmpeg writer when that binary has the encoder, else OpenCV's.
    ``path`` is the file written, ``name`` the output messages name."""
    ext = os.path.splitext(path)[1].lower()
    if ext not in VIDEO_EXTENSIONS:
        raise InputError('{}: unknown video extension (use one of {})'.format(
            name or path, ', '.join(VIDEO_EXTENSIONS)))
    if ffmpeg and FFMPEG_VIDEO_CODECS[ext][1] in ffmpeg_encoders(ffmpeg):
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
