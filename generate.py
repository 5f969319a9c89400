"""Stylize images, videos or a live camera with a fast-style model.

    python generate.py photo.jpg -m models/style.model -o out.jpg
    python generate.py clip.mp4 -m models/style.model -o out.mp4
    python generate.py photos/ clips/a.mov -m models/style.model -o stylized/
    python generate.py --camera 0 -m models/style.model

The flags and defaults of chainer-fast-neuralstyle's generate.py are kept
(-g, -m, -o, --median_filter, --padding, --keep_colors), and so is its output
for an image (per-image BatchNorm statistics, symmetric padding, uint8
truncation, PIL's median filter and HSV colours).
"""
import collections
import os
import sys
import time

from faststyle import chainer_compat  # noqa: F401  (before Chainer: numpy 2, Py 3.12+)

from PIL import Image

from faststyle import camera
from faststyle import cli
from faststyle import devices
from faststyle import folders
from faststyle import images
from faststyle import pipeline
from faststyle import stylize
from faststyle import tempfiles
from faststyle import video
from faststyle.errors import InputError, Interrupted, WorkError

# BatchNorm statistics used for videos unless --stats says otherwise. CFNS's
# per-image statistics for now; see README for the flicker measurements.
VIDEO_STATS = 'instance'
IMAGE_STATS = 'instance'
# Where several inputs go when -o is not given.
DEFAULT_OUT_DIRECTORY = 'stylized'
DEFAULT_MODEL = 'models/style.model'  # CFNS's -m default


def parse_args(argv):
    parser = cli.ArgumentParser(
        description='Stylize images, videos (with their sound) or a camera with a '
                    'fast-style model (CFNS-compatible).')
    parser.add_argument('input', nargs='*',
                        help='image files ({}), video files ({}, any case) or '
                             'directories of them'.format(
                                 ' '.join(images.IMAGE_EXTENSIONS), ' '.join(video.VIDEO_EXTENSIONS)))
    devices.add_device_arguments(parser)
    parser.add_argument('-m', '--model', default=DEFAULT_MODEL,
                        help='the .model file, CFNS or ours, either layout')
    parser.add_argument('-o', '--out', default=None,
                        help='output file, or a directory (one that exists, or '
                             'DIR/) to write it there under the input\'s name; with '
                             'several inputs or a directory, the output directory '
                             '(default: out.jpg for an image, '
                             'out.<ext> for a video, {}/ for several)'.format(
                                 DEFAULT_OUT_DIRECTORY))
    parser.add_argument('--keep_colors', action='store_true',
                        help='keep the hue and saturation of the input, take only '
                             'the brightness of the stylized result')
    stylize.add_arguments(parser, stats_default=None, stats_default_text=(
        IMAGE_STATS if IMAGE_STATS == VIDEO_STATS else
        '{} for images, {} for videos'.format(IMAGE_STATS, VIDEO_STATS)))
    parser.add_argument('--camera', type=camera.source, default=None, metavar='N',
                        help='stylize camera N live in a preview window (q or Esc '
                             'quits); needs a display. A video file or stream address '
                             'instead of N previews it, played in a loop')
    parser.add_argument('--window', choices=camera.WINDOW_KINDS, default=None,
                        help='what draws --camera\'s preview window: tk (Python\'s '
                             'tkinter) or opencv (OpenCV\'s window, which now and then '
                             'stays black: docs/generate.md); auto: tk where Python has '
                             'tkinter, else opencv (default: auto)')
    parser.add_argument('--shard', default=None, metavar='I/N', type=cli.shard,
                        help='process only inputs I, I+N, I+2N, ... of the sorted '
                             'input list (0 <= I < N), for array jobs')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace outputs that already exist in the output '
                             'directory (default: skip them, so a rerun finishes an '
                             'interrupted batch; outputs are only ever complete). A '
                             'file that -o names, or the default out.jpg (out.mp4 '
                             'etc. for a video), is always '
                             'replaced, as in CFNS; either way the output line says so')
    parser.add_argument('--no_progress', action='store_true',
                        help='no progress bar, nor --camera\'s frame counter (both are '
                             'shown only on a terminal anyway)')
    return parser.parse_args(argv)


def kind_of(path):
    ext = os.path.splitext(path)[1].lower()
    if ext in images.IMAGE_EXTENSIONS:
        return 'image'
    if ext in video.VIDEO_EXTENSIONS:
        return 'video'
    return None


def expand_inputs(paths):
    """Files from ``paths``: directories give their images and videos, sorted.
    Returns (files, several), ``several`` when the outputs go to a directory."""
    files = []
    for path in paths:
        if os.path.isdir(path):
            files.extend(folders.list_files(
                path, images.IMAGE_EXTENSIONS + video.VIDEO_EXTENSIONS))
        else:
            files.append(path)
    several = len(paths) > 1 or any(os.path.isdir(path) for path in paths)
    return files, several


def names_directory(out):
    """Whether ``-o`` names a directory: one that exists, or any path that
    ends in a separator (made when the first output is written)."""
    return out.endswith(('/', os.sep)) or os.path.isdir(out)


def plan_outputs(files, several, out):
    """(input, output) pairs; outputs in a directory when ``several``."""
    if not several:
        path = files[0]
        if out is None:
            ext = '.jpg' if kind_of(path) != 'video' else os.path.splitext(path)[1].lower()
            out = 'out' + ext
        elif names_directory(out):
            out = os.path.join(out, os.path.basename(path))
        return [(path, out)]
    directory = out or DEFAULT_OUT_DIRECTORY
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise InputError('{}: with several inputs, -o must be a directory'.format(directory))
    head, name = os.path.split(directory)
    # 'x' + name: '.jpg' alone is an extension too, not a hidden name.
    stem = os.path.splitext('x' + name)[0]
    if not os.path.exists(directory) and kind_of('x' + name):
        # A file's name: making a directory of it would surprise.
        raise InputError('{}: with several inputs, -o must be a directory, not a file '
                         'name (e.g. -o {}/)'.format(
                             directory, os.path.join(head, stem[1:] or 'out')))
    pairs, seen = [], {}
    for path in files:
        target = os.path.join(directory, os.path.basename(path))
        if target in seen:
            raise InputError('{} and {} would both be written to {}'.format(
                seen[target], path, target))
        if os.path.exists(target) and os.path.samefile(path, target):
            # Said once, before any work (each file was refused on its own,
            # and the summary's '--overwrite redoes it' led nowhere).
            raise InputError('{}: -o is the inputs\' own folder, and the outputs would '
                             'replace them; give another -o'.format(directory))
        seen[target] = path
        pairs.append((path, target))
    return pairs


def write_image(frame, path):
    """Save atomically, in the format the extension names (PIL's defaults, as CFNS)."""
    fmt = Image.registered_extensions().get(os.path.splitext(path)[1].lower())
    if fmt is None:
        raise InputError('{}: unknown image extension'.format(path))
    image = Image.fromarray(frame)
    if path.lower().endswith('.pgm'):  # PIL writes a colour image as P6 whatever the name
        image = image.convert('L')
    tempfiles.atomic_write(path, lambda f: image.save(f, format=fmt))


def check_pair(in_path, out_path):
    """Clear errors before any work: missing input, unknown or mismatched types."""
    kind = kind_of(in_path)
    cli.check_regular_file(in_path)
    if kind is None:
        raise InputError('{}: unknown extension (images: {}; videos: {})'.format(
            in_path, ' '.join(images.IMAGE_EXTENSIONS), ' '.join(video.VIDEO_EXTENSIONS)))
    if kind_of(out_path) != kind:
        raise InputError('{}: the output of {} {} must be {} file ({})'.format(
            out_path, 'a' if kind == 'video' else 'an', kind,
            'a video' if kind == 'video' else 'an image',
            ' '.join(video.VIDEO_EXTENSIONS if kind == 'video' else images.IMAGE_EXTENSIONS)))
    # run() checked each output directory once, leftovers removed; listing it
    # again for each of thousands of outputs would cost as much as the work.
    cli.check_writable(out_path, remove_orphans=False, inputs=[in_path])
    return kind


class Stylizers:
    """One Stylizer per BatchNorm statistics mode, made when first needed."""

    def __init__(self, args):
        self.args = args
        self.made = {}

    def get(self, stats):
        if stats not in self.made:
            stylizer = stylize.from_args(self.args, self.args.model, stats,
                                         keep_colors=self.args.keep_colors)
            if stylizer.backend_note:
                print('note: ' + stylizer.backend_note, file=sys.stderr)
            self.made[stats] = stylizer
        return self.made[stats]


def process(stylizers, args, in_path, out_path):
    """Stylize one input into ``out_path`` and print a summary line (which
    says when an earlier file was replaced)."""
    replaced = ' (replaced the earlier file)' if os.path.exists(out_path) else ''
    try:
        _process(stylizers, args, in_path, out_path, replaced)
    except OSError as e:  # e.g. the output directory cannot be created or written
        raise WorkError('{}: cannot write it ({})'.format(out_path, e.strerror or e))


def replaces_existing(args, several):
    """The one rule for outputs that exist: replaced when the command names
    the file (-o FILE, or CFNS's default out.jpg, for one input), else, in
    an output directory, skipped unless --overwrite."""
    return args.overwrite or (not several and not (args.out and names_directory(args.out)))


def _process(stylizers, args, in_path, out_path, replaced=''):
    kind = check_pair(in_path, out_path)
    if kind == 'image':
        start = time.perf_counter()
        frame = images.read_rgb_array(in_path)
        result = stylizers.get(args.stats or IMAGE_STATS).stylize([frame])[0]
        write_image(result, out_path)
        print('{}: {}x{} in {:.2f} s{}'.format(out_path, frame.shape[1], frame.shape[0],
                                              time.perf_counter() - start, replaced))
        return
    stylizer = stylizers.get(args.stats or VIDEO_STATS)
    summary = pipeline.stylize_video(in_path, out_path, stylizer.stylize,
                                  batch=stylizer.frames_per_call,
                                  progress=not args.no_progress)
    print('{}: {} frames in {:.1f} s ({:.2f} frames/s), {}x{} at {:.3f} frames/s, {}{}'
          .format(out_path, summary['frames'], summary['seconds'],
                  summary['frames'] / max(summary['seconds'], 1e-9),
                  summary['width'], summary['height'], summary['fps'],
                  'with sound' if summary['audio'] else 'no sound', replaced))


def run(argv=None):
    """Everything but the error printing; returns the exit status."""
    args = parse_args(argv)
    if args.batch < 1:
        raise InputError('--batch must be at least 1')
    if args.model == DEFAULT_MODEL and not os.path.exists(DEFAULT_MODEL):
        raise InputError('{}: no such file; name a model with -m, e.g. -m '
                         'models/candy_stab.model'.format(DEFAULT_MODEL))
    stylizers = Stylizers(args)
    if args.camera is not None:
        if args.input:
            raise InputError('give either --camera or input files, not both')
        if args.out:
            raise InputError('--camera shows a preview and writes nothing; -o is for '
                             'input files')
        try:
            frames, seconds = camera.run_camera(
                args.camera, stylizers.get(args.stats or VIDEO_STATS).stylize,
                progress=not args.no_progress, window=args.window or 'auto')
        except KeyboardInterrupt as e:
            # The preview writes no file, so there is nothing unfinished to remove.
            print('\ninterrupted ({}); camera {}: preview closed'.format(
                str(e) or 'SIGINT', args.camera), file=sys.stderr)
            raise Interrupted()
        print('camera {}: {} frames in {:.1f} s ({:.2f} frames/s)'.format(
            args.camera, frames, seconds, frames / max(seconds, 1e-9)))
        return 0
    if not args.input:
        raise InputError('no input: give image or video files, a directory, or --camera N')
    if args.window:
        raise InputError('--window is for --camera\'s preview window')
    files, several = expand_inputs(args.input)
    if not files:
        nested = any(os.path.isdir(path) and any(entry.is_dir() for entry in os.scandir(path))
                     for path in args.input)
        raise InputError('no image or video files in {}{}'.format(
            ' '.join(args.input), ' (subfolders are not read)' if nested else ''))
    if args.shard:
        index, count = args.shard
        files = sorted(files)[index::count]
        several = True
    pairs = plan_outputs(files, several, args.out)
    # Before any model is loaded or frame stylized: can the outputs be written?
    by_directory = collections.defaultdict(list)
    for _, out in pairs:
        by_directory[os.path.dirname(os.path.abspath(out))].append(out)
    for directory, outs in sorted(by_directory.items()):
        cli.check_writable_directory(directory, path=outs[0] if len(outs) == 1 else None)
    # Load the model now, so a bad model is one error, not one per input.
    any_video = any(kind_of(path) == 'video' for path in files)
    stylizers.get(args.stats or (VIDEO_STATS if any_video else IMAGE_STATS))
    failed = skipped = work_failed = 0
    replace = replaces_existing(args, several)
    for in_path, out_path in pairs:
        if not replace and os.path.exists(out_path):
            skipped += 1
            if not several:
                print('{}: exists, skipped (--overwrite replaces it)'.format(out_path))
            continue
        try:
            process(stylizers, args, in_path, out_path)
        except (InputError, WorkError, MemoryError) as e:
            # One bad input never ends the batch.
            failed += 1
            work_failed += not isinstance(e, InputError)
            if isinstance(e, MemoryError):
                e = '{}: out of memory{}'.format(in_path, ' ({})'.format(e) if str(e) else '')
            print('error: {}'.format(e), file=sys.stderr)
    if several:
        print('done: {} written, {} skipped, {} failed{}'.format(
            len(pairs) - skipped - failed, skipped, failed,
            ' (skipped: the output exists; --overwrite redoes it)' if skipped else ''))
    if failed:
        return 2 if failed > work_failed else 1
    return 0


def main(argv=None):
    """The exit status of the command line (cli.run_cli)."""
    return cli.run_cli(run, argv)


if __name__ == '__main__':
    sys.exit(main())
