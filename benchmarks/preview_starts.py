"""How many starts of the live preview leave its window black.

    python -m benchmarks.preview_starts -m models/candy_stab.model \\
        [--window tk|opencv] [--starts 20] [--load 2] [--seconds 20]
    python -m benchmarks.preview_starts --plain [...]
    python -m benchmarks.preview_starts --plain --window opencv --window_manager openbox --restore

Each start runs ``generate.py --camera CLIP -m MODEL --padding 4 --window
WINDOW`` under its own Xvfb, on a flat 160x120 clip made with ffmpeg,
beside LOAD busy processes. ``--plain`` starts a preview made of the
preview's window alone instead (faststyle.camera's): a flat picture shown
the way the preview shows frames, with 40 ms of busy work a frame in place
of the net. As the live-preview test does, it looks for the window every
0.5 s and grabs the screen (ffmpeg's x11grab) once the window is there; a
start counts as black when the preview has not drawn in the window for
SECONDS (window_drawn). ``--window_manager`` runs one on the display, as
on a desktop; ``--restore`` then minimises and restores each black window,
as a user can, and counts those then drawn.
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

from faststyle import camera
from faststyle import cli
from faststyle import video
from faststyle.errors import EXIT_BAD_INPUT, InputError, WorkError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WINDOW_NAME = 'fast style'  # the start of camera.run_camera's window title
SCREEN = (640, 480)  # the virtual display's width and height
WINDOWS = tuple(kind for kind in camera.WINDOW_KINDS if kind != 'auto')
PLAIN_PREVIEW = """
import sys, time
import numpy
sys.path.insert(0, {repo!r})
from faststyle import camera, cli

def body(_):
    window = camera.open_window('fast style (plain)', {window!r})
    picture = numpy.full((120, 160, 3), (48, 96, 192), numpy.uint8)
    while window.show(picture):
        start = time.perf_counter()
        while time.perf_counter() - start < 0.04:
            pass

sys.exit(cli.run_cli(body))
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


def preview_command(model, clip, window='auto'):
    return [sys.executable, os.path.join(REPO, 'generate.py'), '--camera', clip,
            '-m', model, '--padding', '4', '--window', window]


def plain_preview_command(window):
    """A preview made of the preview window alone: a flat picture shown as
    the preview shows frames, 40 ms of busy work a frame in place of the net."""
    return [sys.executable, '-c', PLAIN_PREVIEW.format(repo=REPO, window=window)]


def start_preview(model, clip, env, window='auto', **popen):
    """``generate.py --camera CLIP -m MODEL --padding 4 --window WINDOW``
    started on the display of ``env``; ``popen``: more subprocess.Popen
    arguments."""
    return subprocess.Popen(preview_command(model, clip, window), env=env, **popen)


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


def window_area(env, window):
    """(x, y, width, height) of ``window`` on the screen."""
    geometry = dict(line.split('=') for line in subprocess.run(
        ['xdotool', 'getwindowgeometry', '--shell', window], env=env,
        capture_output=True, text=True).stdout.split())
    return tuple(int(geometry[key]) for key in ('X', 'Y', 'WIDTH', 'HEIGHT'))


def grab_window(env, window, ffmpeg=None):
    """The pixels of ``window`` on the screen (RGB), or None if the grab
    failed."""
    screen = screenshot(env['DISPLAY'], ffmpeg)
    if screen is None:
        return None
    x, y, width, height = window_area(env, window)
    return screen[max(y, 0):y + height, max(x, 0):x + width]


def window_drawn(env, window, kind):
    """Whether the preview has drawn in ``window`` (of ``kind``, 'tk' or
    'opencv'). A window never drawn in shows what lies behind it, black on a
    bare X server or a window manager's flat frame. OpenCV's (Qt) has a light
    grey background with the toolbar's dark icons; Tk's is all picture, and
    the preview's picture of the flat clip is not black."""
    area = grab_window(env, window)
    if area is None or not area.size:
        return False
    if kind == 'tk':
        # Most, not all: under a window manager xdotool's geometry can be off
        # by the title bar.
        return bool((area.max(axis=2) > 30).mean() > 0.5)
    return bool((area.min(axis=2) > 200).mean() > 0.3
                and (area.max(axis=2) < 50).mean() > 0.005)


def drawn_within(env, window, kind, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if window_drawn(env, window, kind):
            return True
        time.sleep(0.5)
    return False


def start_once(command, env, kind, seconds, restore=False):
    """Start the preview ``command`` (its window of ``kind``) once: None if
    it drew in its window within ``seconds``; else, with ``restore``,
    whether it drew once the window was minimised and restored (False
    without ``restore``)."""
    preview = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + seconds
        window = None
        while time.monotonic() < deadline:
            time.sleep(0.5)
            if preview.poll() is not None:  # its own one-line error says why
                reason = (preview.stderr.read().strip().splitlines() or ['no message'])[-1]
                error = InputError if preview.returncode == EXIT_BAD_INPUT else WorkError
                raise error('the preview ended at its start: {}'.format(reason))
            window = window or find_window(env)
            if window is not None and window_drawn(env, window, kind):
                return None
        if not restore or window is None:
            return False
        # What a user can do on a desktop: the window manager unmaps the
        # window and maps it again, and Qt draws on the new map.
        for action in ('windowminimize', 'windowactivate'):
            subprocess.run(['xdotool', action, '--sync', window], env=env,
                           capture_output=True, timeout=10)
        return drawn_within(env, window, kind, 5)
    finally:
        preview.kill()
        preview.wait()


def main(argv=None):
    parser = cli.ArgumentParser(description=__doc__.split('\n')[0])
    preview = parser.add_mutually_exclusive_group(required=True)
    preview.add_argument('-m', '--model', help='a .model file')
    preview.add_argument('--plain', action='store_true',
                         help='a preview made of the preview window alone: no model, '
                              'no net')
    parser.add_argument('--window', choices=WINDOWS, default='tk',
                        help="what draws the preview's window, as generate.py --window "
                             "(default: tk, what generate.py's auto picks where Python has "
                             "tkinter)")
    parser.add_argument('--starts', type=int, default=20, help='how many starts')
    parser.add_argument('--load', type=int, default=2,
                        help='busy processes beside the preview (0: none)')
    parser.add_argument('--seconds', type=float, default=20,
                        help='how long a start may show a black window')
    parser.add_argument('--window_manager', metavar='COMMAND',
                        help='a window manager to run on the display, e.g. openbox '
                             '(default: none, a bare X server)')
    parser.add_argument('--restore', action='store_true',
                        help='minimise and restore each black window, as a user can, '
                             'and count those then drawn (needs --window_manager)')
    args = parser.parse_args(argv)
    if args.starts < 1 or args.load < 0 or args.seconds <= 0:
        parser.error('--starts must be >= 1, --load >= 0, --seconds > 0')
    if args.restore and not args.window_manager:
        parser.error('--restore needs --window_manager: without one, nothing minimises')

    def body(_):
        if args.model and not os.path.isfile(args.model):
            raise InputError('{}: no such model file'.format(args.model))
        missing = [tool for tool in ('Xvfb', 'xdotool', args.window_manager)
                   if tool and not shutil.which(tool)]
        if missing or not video.find_ffmpeg():
            raise InputError('needs {} (apt-get install xvfb xdotool, and the window '
                             'manager; ffmpeg comes with imageio-ffmpeg)'.format(
                                 ', '.join(missing) or 'ffmpeg'))
        with tempfile.TemporaryDirectory() as folder:
            clip = os.path.join(folder, 'flat.mp4')
            make_flat_clip(clip)
            command = (plain_preview_command(args.window) if args.plain
                       else preview_command(args.model, clip, args.window))
            with virtual_display() as env:
                helpers = [subprocess.Popen([sys.executable, '-c', 'while True: pass'])
                           for _ in range(args.load)]
                if args.window_manager:
                    helpers.append(subprocess.Popen([args.window_manager], env=env,
                                                    stdout=subprocess.DEVNULL,
                                                    stderr=subprocess.DEVNULL))
                    time.sleep(2)  # its own start, before the first window
                try:
                    black = restored = 0
                    for start in range(1, args.starts + 1):
                        drawn_after = start_once(command, env, args.window, args.seconds,
                                                 args.restore)
                        if drawn_after is not None:
                            black += 1
                            restored += drawn_after
                            print('start {}: black{}'.format(start, '' if not args.restore else
                                  ', then drawn after minimise and restore' if drawn_after
                                  else ', still after minimise and restore'), flush=True)
                    print('{} of {} starts stayed black for {:g} s ({} window, {} busy '
                          'processes beside, {}){}'.format(
                              black, args.starts, args.seconds, args.window, args.load,
                              args.window_manager or 'no window manager',
                              '; {} of them drawn after minimise and restore'.format(restored)
                              if args.restore else ''))
                finally:
                    for process in helpers:
                        process.terminate()
                        process.wait()
    return cli.run_cli(body)


if __name__ == '__main__':
    sys.exit(main())
