"""Small models, images and videos for the generate.py and export_onnx.py tests."""
import os
import subprocess

import numpy

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import chainer  # NOQA: E402
import cv2  # NOQA: E402

import net  # NOQA: E402


# A layout for the tests of every runtime: the resize net with dilated
# residual blocks (train.py --res_dilation).
DILATED = 'resize, dilated'
TEST_DILATION = (1, 2, 4, 2, 1)


def make_model(path, arch, seed=0):
    """A random FastStyleNet saved the CFNS way (serializers.save_npz), with
    BatchNorm gamma/beta/averages perturbed so 'instance' and 'running' differ.
    ``arch`` is one of net.ARCHS or DILATED."""
    rng = numpy.random.RandomState(seed)
    numpy.random.seed(seed)  # Chainer's initializers draw from numpy's global state
    model = (net.FastStyleNet('resize', dilation=TEST_DILATION) if arch == DILATED
             else net.FastStyleNet(arch))
    for _, link in model.namedlinks():
        if isinstance(link, chainer.links.BatchNormalization):
            size = link.gamma.shape[0]
            link.gamma.array[:] = rng.uniform(0.5, 1.5, size)
            link.beta.array[:] = rng.uniform(-0.5, 0.5, size)
            link.avg_mean[:] = rng.uniform(-0.5, 0.5, size)
            link.avg_var[:] = rng.uniform(0.5, 2.0, size)
    chainer.serializers.save_npz(str(path), model)
    return str(path)


def make_frames(count, height, width, seed=0):
    """Smooth colourful frames (a moving gradient plus noise), HxWx3 uint8 RGB."""
    rng = numpy.random.RandomState(seed)
    y, x = numpy.mgrid[0:height, 0:width].astype(numpy.float32)
    frames = []
    for t in range(count):
        r = 127 + 100 * numpy.sin(x / 5.0 + t * 0.3)
        g = 127 + 100 * numpy.cos(y / 4.0 - t * 0.2)
        b = 127 + 100 * numpy.sin((x + y) / 7.0)
        image = numpy.stack([r, g, b], axis=2) + rng.normal(0, 8, (height, width, 3))
        frames.append(numpy.clip(image, 0, 255).astype(numpy.uint8))
    return frames


def make_video_opencv(path, frames, fps):
    """A test video written with cv2.VideoWriter (mp4v, even sizes only)."""
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'mp4v'), fps,
                             (width, height))
    assert writer.isOpened()
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return str(path)


def ffmpeg_exe():
    """imageio-ffmpeg's binary. The package is a requirement (requirements.txt):
    when it is missing or broken this raises, so the video tests fail instead
    of being skipped."""
    import imageio_ffmpeg
    return imageio_ffmpeg.get_ffmpeg_exe()


def make_video_ffmpeg(path, width, height, frames, fps, audio=True,
                      video_codec=('-c:v', 'libx264', '-pix_fmt', 'yuv444p'),
                      audio_codec=('-c:a', 'aac'), audio_seconds=None):
    """A test pattern video, optionally with a 440 Hz sine sound track (as
    long as the picture, or ``audio_seconds``)."""
    seconds = audio_seconds or frames / fps
    command = [ffmpeg_exe(), '-y', '-hide_banner', '-loglevel', 'error',
               '-f', 'lavfi', '-i', 'testsrc=size={}x{}:rate={}'.format(width, height, fps)]
    if audio:
        command += ['-f', 'lavfi', '-i', 'sine=frequency=440:duration={}'.format(seconds)]
    command += ['-frames:v', str(frames)] + list(video_codec)
    command += list(audio_codec) if audio else ['-an']
    subprocess.run(command + [str(path)], check=True)
    return str(path)


def read_video(path):
    """(frames as RGB arrays, fps, width, height) as OpenCV reads them."""
    capture = cv2.VideoCapture(str(path))
    assert capture.isOpened(), path
    fps = capture.get(cv2.CAP_PROP_FPS)
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    capture.release()
    height, width = frames[0].shape[:2] if frames else (0, 0)
    return frames, fps, width, height


def has_audio(path):
    """Whether ffmpeg lists an audio stream in ``path``."""
    report = subprocess.run([ffmpeg_exe(), '-hide_banner', '-i', str(path)],
                            capture_output=True, text=True).stderr
    return 'Audio:' in report
