"""scripts.real_footage: the held-out frames are cut and scaled as documented."""
import numpy
from PIL import Image

from scripts import real_footage
from tests.helpers_generate import make_frames, make_video_opencv


def test_frames_are_cut_from_first_and_scaled_but_never_enlarged(tmp_path):
    frames = make_frames(6, 48, 64)
    clip = make_video_opencv(tmp_path / 'clip.mp4', frames, fps=10)
    wide = real_footage.write_frames(clip, str(tmp_path / 'wide'), 2, 3, 128)
    narrow = real_footage.write_frames(clip, str(tmp_path / 'narrow'), 2, 10, 32)
    assert (wide, narrow) == (3, 4)  # frames 2..4, and 2..5 when the clip ends first
    assert sorted(p.name for p in (tmp_path / 'wide').iterdir()) == [
        '0001.png', '0002.png', '0003.png']
    first = numpy.asarray(Image.open(tmp_path / 'wide' / '0001.png'), numpy.float32)
    assert first.shape == (48, 64, 3)
    errors = [numpy.abs(first - frame).mean() for frame in frames]
    assert numpy.argmin(errors) == 2
    assert Image.open(tmp_path / 'narrow' / '0001.png').size == (32, 24)
