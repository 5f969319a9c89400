"""Video reading and writing: PyAV against OpenCV and the ffmpeg binary.

    python -m benchmarks.video_io [--frames 48] [--net_frames 16]

Prints, for a 640x480 and a 1280x720 clip (moving gradients plus noise, as
benchmarks/generate_speed.py makes them):
  * decoding alone: frames/s of OpenCV's VideoCapture and of PyAV (RGB
    arrays out, as the pipeline takes them);
  * encoding alone (H.264 CRF 18, preset fast, .mp4): frames/s of frames
    piped into an ffmpeg process and of PyAV in-process;
  * end to end with generate.py's default CPU stylizer (a random net,
    openvino fp32, padding 50, median 3) on the first ``--net_frames``
    frames: the share of Stylizer.stylize's own rate that the threaded
    pipeline keeps, with the fallback I/O (OpenCV reads, ffmpeg writes)
    and with PyAV. The Stylizer alone is timed right before and right
    after the pipeline, and the share taken of the mean, as the load of a
    shared machine drifts.

The machine may be shared: the load average is printed, and each share is
measured right after its Stylizer-alone rate, so both see the same load.
"""
import argparse
import contextlib
import os
import tempfile
import time

from faststyle import chainer_compat  # noqa: F401  (before Chainer: numpy 2, Py 3.12+)

from benchmarks.generate_speed import make_clip, make_model_file, video_rates
from faststyle import stylize
from faststyle import video


@contextlib.contextmanager
def fallback_io():
    """The pipeline as it runs without PyAV (OpenCV reads, ffmpeg writes)."""
    import_av = video.import_av
    video.import_av = lambda: None
    try:
        yield
    finally:
        video.import_av = import_av


def rate(count, function):
    start = time.perf_counter()
    function()
    return count / (time.perf_counter() - start)


def decode_all(reader):
    try:
        return sum(1 for _ in reader)
    finally:
        reader.close()


def encode_all(writer, frames):
    for frame in frames:
        writer.write(frame)
    writer.close()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--frames', type=int, default=48,
                        help='frames of each clip for decoding and encoding')
    parser.add_argument('--net_frames', type=int, default=12,
                        help='frames stylized end to end (about 1 s each at 640x480)')
    args = parser.parse_args(argv)
    av = video.import_av()
    if av is None:
        raise SystemExit('error: this benchmark compares PyAV: pip install av')
    ffmpeg = video.find_ffmpeg()
    if ffmpeg is None:
        raise SystemExit('error: no ffmpeg binary (pip install imageio-ffmpeg)')
    print('machine: {} CPUs, load average {}, PyAV {} (libavcodec {}), OpenCV {}'.format(
        os.cpu_count(), ' '.join('{:.1f}'.format(x) for x in os.getloadavg()),
        av.__version__, '.'.join(map(str, av.library_versions['libavcodec'])),
        video.cv2.__version__))
    with tempfile.TemporaryDirectory() as tmp:
        model = make_model_file(tmp, 'deconv')
        stylizer = stylize.Stylizer(model)
        print('stylizer: random net (deconv layout), backend {}, padding 50, median 3'
              .format(stylizer.backend_name))
        for width, height in ((640, 480), (1280, 720)):
            clip = os.path.join(tmp, 'clip{}.mp4'.format(width))
            make_clip(clip, args.frames, width, height)
            frames = list(video.OpenCVReader(clip))
            print('\n{}x{}, {} frames:'.format(width, height, len(frames)))
            print('  decode  OpenCV {:7.1f} frames/s   PyAV {:7.1f} frames/s'.format(
                rate(len(frames), lambda: decode_all(video.OpenCVReader(clip))),
                rate(len(frames), lambda: decode_all(video.AvReader(av, clip)))))
            out = os.path.join(tmp, 'out.mp4')
            print('  encode  ffmpeg pipe {:7.1f} frames/s   PyAV {:7.1f} frames/s'.format(
                rate(len(frames), lambda: encode_all(
                    video.FfmpegWriter(out, 25, width, height, ffmpeg), frames)),
                rate(len(frames), lambda: encode_all(
                    video.AvWriter(av, out, 25, width, height), frames))))
            short = os.path.join(tmp, 'short{}.mp4'.format(width))
            make_clip(short, args.net_frames, width, height)
            for label, context in (('OpenCV + ffmpeg', fallback_io), ('PyAV', None)):
                with (context() if context else contextlib.nullcontext()):
                    alone, end_to_end = video_rates(short, tmp, stylizer)
                # The load drifts: the Stylizer alone again, right after, and
                # the share taken of the mean of both.
                again = rate(args.net_frames, lambda: stylizer.stylize(
                    list(video.OpenCVReader(short))))
                print('  end to end, {:15s}: Stylizer.stylize alone {:.3f} and {:.3f} '
                      'frames/s, pipeline {:.3f} frames/s = {:.0f}% of their mean'.format(
                          label, alone, again, end_to_end,
                          200 * end_to_end / (alone + again)))
    print('\nload average now {}'.format(' '.join('{:.1f}'.format(x)
                                                  for x in os.getloadavg())))


if __name__ == '__main__':
    main()
