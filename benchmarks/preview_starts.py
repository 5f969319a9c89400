"""How many starts of the live preview leave its window black.

    python -m benchmarks.preview_starts -m models/candy_stab.model \\
        [--starts 20] [--load 2] [--seconds 20]
    python -m benchmarks.preview_starts --plain [...]

Each start runs ``generate.py --camera CLIP -m MODEL --padding 4`` under its
own Xvfb, on a flat 160x120 clip made with ffmpeg, beside LOAD busy
processes. ``--plain`` starts a preview made of OpenCV alone instead: a
flat picture shown the way the preview shows frames, with 40 ms of busy
work a frame in place of the net. As the live-preview test does, it looks
for the window every 0.5 s and grabs the screen (ffmpeg's x11grab) once the
window is there; a start counts as black when the screen stays all black
for SECONDS.
Needs Xvfb, xdotool and ffmpeg (docs/generate.md, known problem).
"""
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy

from faststyle import cli
from faststyle import video
from faststyle.errors import EXIT_BAD_INPUT, InputError, WorkError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WINDOW_NAME = 'fast style'  # the start of camera.run_camera's window title
SCREEN = (640, 480)  # the virtual display's width and height
PLAIN_PREVIEW = """
import time
import cv2
import numpy
picture = numpy.full((120, 160, 3), (192, 96, 48), numpy.uint8)
cv2.namedWindow('fast style (plain)', cv2.WINDOW_NORMAL)
while True:
    cv2.imshow('fast style (plain)', picture)
    if cv2.waitKey(1) & 0xFF in (ord('q'), 27):
        break
    start = time.perf_counter()
    while time.perf_counter() - start < 0.04:
        pass
"""


@contextlib.contextmanager
def virtual_display():
    """An Xvfb of SCREEN's size for the block: yields the environment its
    clients run in (DISPLAY set, WAYLAND_DISPLAY dropped)."""
    read_end, write_end = os.pipe()
    # -noreset: by default an X server resets when its last client leaves,
    # and refuses connections meanwhile; screenshots and window searches
    # come and go, so a preview (re)started at such a moment failed with
    # "could not connect to display" (once in a CI run; with short clients
    # coming and going, 55 of 300 connections failed without -noreset, none
    # with it).
    xvfb = subprocess.Popen(['Xvfb', '-displayfd', str(write_end), '-screen', '0',
                             '{}x{}x24'.format(*SCREEN), '-nolisten', 'tcp', '-noreset'],
                            pass_fds=[write_end], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    os.close(write_end)
    try:
        env = dict(os.environ, DISPLAY=':' + os.read(read_end, 16).decode().strip())
        env.pop('WAYLAND_DISPLAY', None)
        yield env
    finally:
        # SIGTERM lets Xvfb remove its lock file and socket for the next run.
        xvfb.terminate()
        try:
            xvfb.wait(timeout=10)
        except subprocess.TimeoutExpired:
            xvfb.kill()
            xvfb.wait()
        os.close(read_end)


def preview_command(model, clip):
    return [sys.executable, os.path.join(REPO, 'generate.py'), '--camera', clip,
            '-m', model, '--padding', '4']


def start_preview(model, clip, env, **popen):
    """``generate.py --camera CLIP -m MODEL --padding 4`` started on the
    display of ``env``; ``popen``: more subprocess.Popen arguments."""
    return subprocess.Popen(preview_command(model, clip), env=env, **popen)


def screenshot(display, ffmpeg=None):
    """The X screen (SCREEN's size) as an RGB array, grabbed by ffmpeg
    (x11grab), no cursor; None if the grab failed."""
    width, height = SCREEN
    raw = subprocess.run([ffmpeg or video.find_ffmpeg(), '-loglevel', 'error',
                          '-f', 'x11grab', '-draw_mouse', '0',
                          '-video_size', '{}x{}'.format(width, height), '-i', display,
                          '-frames:v', '1', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-'],
                         capture_output=True).stdout
    if len(raw) != width * height * 3:
        return None
    return numpy.frombuffer(raw, numpy.uint8).reshape(height, width, 3)


def make_flat_clip(path, ffmpeg=None):
    """A 5-frame 160x120 H.264 clip of one flat colour (4:4:4, so the
    colour survives exactly) at ``path``: the preview's input."""
    subprocess.run([ffmpeg or video.find_ffmpeg(), '-y', '-loglevel', 'error', '-f', 'lavfi',
                    '-i', 'color=c=0x3060c0:size=160x120:rate=10', '-frames:v', '5',
                    '-c:v', 'libx264', '-pix_fmt', 'yuv444p', path], check=True)


def find_window(env):
    """The preview window's id once it is mapped, else None."""
    found = subprocess.run(['xdotool', 'search', '--onlyvisible', '--name', WINDOW_NAME],
                           env=env, capture_output=True, text=True).stdout.split()
    return found[0] if found else None


def start_is_black(command, env, seconds):
    """Start the preview ``command`` once: True if its screen stayed black for
    ``seconds``."""
    preview = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(0.5)
            if preview.poll() is not None:  # its own one-line error says why
                reason = (preview.stderr.read().strip().splitlines() or ['no message'])[-1]
                error = InputError if preview.returncode == EXIT_BAD_INPUT else WorkError
                raise error('the preview ended at its start: {}'.format(reason))
            if find_window(env) is None:
                continue
            screen = screenshot(env['DISPLAY'])
            if screen is not None and screen.max() > 0:
                return False
        return True
    finally:
        preview.kill()
        preview.wait()


def main(argv=None):
    parser = cli.ArgumentParser(description=__doc__.split('\n')[0])
    preview = parser.add_mutually_exclusive_group(required=True)
    preview.add_argument('-m', '--model', help='a .model file')
    preview.add_argument('--plain', action='store_true',
                         help='a preview made of OpenCV alone, no model')
    parser.add_argument('--starts', type=int, default=20, help='how many starts')
    parser.add_argument('--load', type=int, default=2,
                        help='busy processes beside the preview (0: none)')
    parser.add_argument('--seconds', type=float, default=20,
                        help='how long a start may show a black screen')
    args = parser.parse_args(argv)
    if args.starts < 1 or args.load < 0 or args.seconds <= 0:
        parser.error('--starts must be >= 1, --load >= 0, --seconds > 0')

    def body(_):
        if args.model and not os.path.isfile(args.model):
            raise InputError('{}: no such model file'.format(args.model))
        missing = [tool for tool in ('Xvfb', 'xdotool') if not shutil.which(tool)]
        if missing or not video.find_ffmpeg():
            raise InputError('needs {} (apt-get install xvfb xdotool; ffmpeg comes with '
                             'imageio-ffmpeg)'.format(', '.join(missing) or 'ffmpeg'))
        with tempfile.TemporaryDirectory() as folder:
            clip = os.path.join(folder, 'flat.mp4')
            make_flat_clip(clip)
            command = ([sys.executable, '-c', PLAIN_PREVIEW] if args.plain
                       else preview_command(args.model, clip))
            with virtual_display() as env:
                load = [subprocess.Popen([sys.executable, '-c', 'while True: pass'])
                        for _ in range(args.load)]
                try:
                    black = 0
                    for start in range(1, args.starts + 1):
                        if start_is_black(command, env, args.seconds):
                            black += 1
                            print('start {}: black'.format(start), flush=True)
                    print('{} of {} starts stayed black for {:g} s ({} busy processes '
                          'beside)'.format(black, args.starts, args.seconds, args.load))
                finally:
                    for process in load:
                        process.terminate()
                        process.wait()
    return cli.run_cli(body)


if __name__ == '__main__':
    sys.exit(main())
