"""A live camera stylized in a preview window (generate.py --camera)."""
import contextlib
import os
import sys
import time

import cv2

from faststyle import cli
from faststyle.errors import InputError


def has_display():
    """Whether cv2.imshow can open a window (X11/Wayland on Linux)."""
    if sys.platform.startswith('linux'):
        return bool(os.environ.get('DISPLAY') or os.environ.get('WAYLAND_DISPLAY'))
    return True


def source(text):
    """--camera's value: a camera number, or a video file or stream address
    to preview a style on (played in a loop)."""
    return int(text) if text.isdigit() else text


@contextlib.contextmanager
def opencv_log_silenced():
    """OpenCV's own log off, then back to its level (its functions moved
    from cv2 to cv2.utils.logging in OpenCV 4.12)."""
    logging = getattr(getattr(cv2, 'utils', None), 'logging', None)
    if logging is None or not hasattr(logging, 'setLogLevel'):
        logging = cv2
    level = logging.getLogLevel()
    logging.setLogLevel(0)  # LOG_LEVEL_SILENT
    try:
        yield
    finally:
        logging.setLogLevel(level)


def run_camera(index, stylize, window='fast style (q or Esc to quit)', progress=True):
    """Show camera ``index`` (or a video file, looped) stylized live until q,
    Esc or the window is closed. With ``progress``, a terminal counts the
    frames shown and their rate: it tells that the preview runs even where
    its window stays black (docs/generate.md, known problem).

    Returns (frames, seconds)."""
    if not has_display():
        raise InputError('--camera needs a display for its preview window '
                         '(DISPLAY is not set)')
    # OpenCV logs its own lines when a camera cannot be opened; ours says it.
    with opencv_log_silenced():
        capture = cv2.VideoCapture(index)
    if not capture.isOpened():
        raise InputError('camera {}: cannot open it'.format(index))

    def next_frame():
        ok, frame = capture.read()
        if not ok and not isinstance(index, int) and frames:
            # A file ended: play it again, as a preview does.
            capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = capture.read()
        if not ok:
            raise InputError('camera {}: no more frames'.format(index))
        return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)

    frames = 0
    start = time.perf_counter()
    bar = cli.progress_bar(None, 'camera {}'.format(index), progress, leave=False)
    try:
        # The first frame (whose inference compiles the net) is stylized
        # before the window exists, so the window opens with a picture.
        # Now and then Qt never draws in its window while the preview runs
        # (docs/generate.md, known problem): not understood.
        out = stylize([next_frame()])[0]
        cv2.namedWindow(window, cv2.WINDOW_NORMAL)
        while True:
            cv2.imshow(window, cv2.cvtColor(out, cv2.COLOR_RGB2BGR))
            frames += 1
            bar.update(1)
            key = cv2.waitKey(1) & 0xFF
            if key in (ord('q'), 27) or cv2.getWindowProperty(
                    window, cv2.WND_PROP_VISIBLE) < 1:
                break
            out = stylize([next_frame()])[0]
    except cv2.error as e:
        raise InputError('camera {}: cannot show the preview window ({})'.format(
            index, str(e).strip().splitlines()[-1]))
    finally:
        bar.close()
        capture.release()
        cv2.destroyAllWindows()
    return frames, time.perf_counter() - start
