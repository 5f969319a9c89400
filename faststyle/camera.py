"""A live camera stylized in a preview window (generate.py --camera)."""
import contextlib
import os
import sys
import time

import cv2

from faststyle import cli
from faststyle import images
from faststyle import video
from faststyle.errors import InputError


def has_display():
    """Whether a preview window can open (X11 or Wayland on Linux)."""
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


WINDOW_KINDS = ('auto', 'tk', 'opencv')
# The keys that end the preview: Tk's name of each, with OpenCV's waitKey code.
QUIT_KEYS = {'q': ord('q'), 'Q': ord('Q'), 'Escape': 27}


def last_line(error):
    """``error``'s message shortened to its last line, for one error line."""
    lines = str(error).strip().splitlines()
    return lines[-1] if lines else type(error).__name__


class WindowError(Exception):
    """The preview window failed while the preview ran."""


class TkWindow:
    """The preview window drawn by Tk (Python's tkinter), the default:
    OpenCV's window (Qt) now and then loses its first map and stays black
    while the preview runs, Tk's did not (docs/generate.md, known problem).
    The picture fits the window as the user resizes it."""

    def __init__(self, title):
        import tkinter
        self._tkinter = tkinter
        self._root = tkinter.Tk()  # TclError without a display
        self._root.title(title)
        self._root.configure(background='black')
        self._label = tkinter.Label(self._root, borderwidth=0, highlightthickness=0,
                                    background='black')
        self._label.pack(fill='both', expand=True)
        self._photo = None
        self.open = True
        self._root.bind('<KeyPress>', self._key)
        # The close button (Tk's own handler destroys the window) or another
        # program destroying it.
        self._root.bind('<Destroy>', self._destroyed)

    def _key(self, event):
        if event.keysym in QUIT_KEYS:
            self.close()

    def _destroyed(self, event):
        if event.widget is self._root:  # not the label's own event
            self.open = False

    def _draw(self, rgb):
        height, width = rgb.shape[:2]
        room = self._label.winfo_width(), self._label.winfo_height()
        if (self._photo is not None and min(room) > 1  # 1x1: not mapped yet
                and room != (self._photo.width(), self._photo.height())):
            # The user resized the window: fit the frame into it.
            scale = min(room[0] / width, room[1] / height)
            width, height = images.scaled_size(width, height, scale)
            rgb = images.resize(rgb, (width, height))
        # A Tk photo image reads binary PPM data as it is: no Pillow needed.
        data = 'P6 {} {} 255\n'.format(width, height).encode() + rgb.tobytes()
        if self._photo is None:
            self._photo = self._tkinter.PhotoImage(data=data, format='PPM')
            self._label.configure(image=self._photo)
        else:
            self._photo.configure(data=data, format='PPM')

    def show(self, rgb):
        """Draw ``rgb`` (uint8 HxWx3) and handle the window's events: whether
        the window is still open (not closed, no q or Esc)."""
        try:
            if self.open:
                self._draw(rgb)
                self._root.update()
        except self._tkinter.TclError as e:
            if self.open:  # not the window's own end
                raise WindowError(str(e)) from None
        return self.open

    def close(self):
        if self.open:
            self.open = False
            try:
                self._root.destroy()
            except self._tkinter.TclError:
                pass  # the display went away: nothing left to close


class OpenCVWindow:
    """The preview window drawn by OpenCV's highgui (Qt in opencv-python)."""

    def __init__(self, title):
        self._title = title
        cv2.namedWindow(title, cv2.WINDOW_NORMAL)

    def show(self, rgb):
        cv2.imshow(self._title, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        key = cv2.waitKey(1) & 0xFF
        return key not in QUIT_KEYS.values() and cv2.getWindowProperty(
            self._title, cv2.WND_PROP_VISIBLE) >= 1

    def close(self):
        cv2.destroyAllWindows()


def window_kind(kind):
    """What draws a preview window of ``kind`` (WINDOW_KINDS) here, 'tk' or
    'opencv': 'auto' is Tk where Python has tkinter, else OpenCV's window.
    Asked before a camera opens, so that a missing tkinter is one error line
    at once."""
    if kind not in WINDOW_KINDS:
        raise ValueError('window kind {!r}: not one of {}'.format(kind, WINDOW_KINDS))
    if kind == 'opencv':
        return kind
    try:
        import tkinter  # noqa: F401 (only whether it is there)
    except ImportError:
        if kind == 'tk':
            raise InputError('--window tk: this Python has no tkinter; '
                             '--window opencv uses OpenCV\'s window')
        return 'opencv'
    return 'tk'


def open_window(title, kind='auto'):
    """A preview window of ``kind`` (WINDOW_KINDS; window_kind says which)."""
    if window_kind(kind) == 'opencv':
        return OpenCVWindow(title)
    import tkinter
    try:
        return TkWindow(title)
    except tkinter.TclError as e:
        # OpenCV's Qt would end the process on an unreachable display.
        raise InputError('cannot open the preview window ({}); --window opencv '
                         'uses OpenCV\'s'.format(last_line(e)))


def run_camera(index, stylize, title='fast style (q or Esc to quit)', progress=True,
               window='auto'):
    """Show camera ``index`` (or a video file, looped) stylized live in a
    preview window of kind ``window`` (open_window) until q, Esc or the
    window is closed. With ``progress``, a terminal counts the frames shown
    and their rate.

    Returns (frames, seconds)."""
    if not has_display():
        raise InputError('--camera needs a display for its preview window '
                         '(DISPLAY is not set)')
    window = window_kind(window)
    # A video file's name (not a stream address or a capture pipeline) that is not there.
    if (isinstance(index, str) and '://' not in index and not os.path.exists(index)
            and os.path.splitext(index)[1].lower() in video.VIDEO_EXTENSIONS):
        raise InputError('camera {}: no such file'.format(index))
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
    preview = None
    try:
        # The first frame (whose inference compiles the net) is stylized
        # before the window exists, so the window opens with a picture.
        out = stylize([next_frame()])[0]
        preview = open_window(title, window)
        while True:
            still_open = preview.show(out)
            frames += 1
            bar.update(1)
            if not still_open:
                break
            out = stylize([next_frame()])[0]
    except (cv2.error, WindowError) as e:
        raise InputError('camera {}: cannot show the preview window ({})'.format(
            index, last_line(e)))
    finally:
        bar.close()
        capture.release()
        if preview is not None:
            preview.close()
    return frames, time.perf_counter() - start
