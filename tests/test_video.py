"""faststyle/video.py: reading videos."""
import cv2
import numpy
import pytest

from faststyle import video


def test_a_truncated_video_is_reported(tmp_path):
    full = str(tmp_path / 'full.avi')
    writer = cv2.VideoWriter(full, cv2.VideoWriter_fourcc(*'MJPG'), 10, (32, 24))
    rng = numpy.random.RandomState(0)
    for _ in range(40):
        writer.write(rng.randint(0, 255, (24, 32, 3)).astype(numpy.uint8))
    writer.release()
    data = open(full, 'rb').read()
    cut = str(tmp_path / 'cut.avi')
    open(cut, 'wb').write(data[:len(data) * 55 // 100])
    reader = video.VideoReader(cut)
    frames = sum(1 for _ in reader)
    assert 0 < frames < 40
    assert reader.shortfall() == ('{}: only {} of the 40 frames its header declares '
                                  'could be decoded (truncated or damaged?)'.format(
                                      cut, frames))


@pytest.mark.parametrize('ext, codec', [('mkv', 'libx264'), ('webm', 'libvpx-vp9')])
def test_a_truncated_video_without_a_frame_count_is_reported(tmp_path, ext, codec):
    """Matroska and WebM declare a duration, not a frame count: the count
    is estimated from it, and a whole file gives no warning."""
    av = video.import_av()
    full = str(tmp_path / ('full.' + ext))
    container = av.open(full, 'w')
    stream = container.add_stream(codec, rate=10)
    stream.width, stream.height, stream.pix_fmt = 32, 24, 'yuv420p'
    rng = numpy.random.RandomState(0)
    for _ in range(40):
        frame = av.VideoFrame.from_ndarray(
            rng.randint(0, 255, (24, 32, 3)).astype(numpy.uint8), format='rgb24')
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    reader = video.VideoReader(full)
    assert sum(1 for _ in reader) == 40 and reader.shortfall() is None
    cut = str(tmp_path / ('cut.' + ext))
    data = open(full, 'rb').read()
    open(cut, 'wb').write(data[:len(data) * 55 // 100])
    reader = video.VideoReader(cut)
    frames = sum(1 for _ in reader)
    assert 0 < frames < 38
    assert reader.shortfall() == ('{}: only {} of the about 40 frames its duration declares '
                                  'could be decoded (truncated or damaged?)'.format(cut, frames))


def test_a_video_named_like_a_url_is_read(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    writer = cv2.VideoWriter('2024-01-01T12:30:00.avi', cv2.VideoWriter_fourcc(*'MJPG'),
                             10, (16, 16))
    for _ in range(3):
        writer.write(numpy.zeros((16, 16, 3), numpy.uint8))
    writer.release()
    assert sum(1 for _ in video.VideoReader('2024-01-01T12:30:00.avi')) == 3
