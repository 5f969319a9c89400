"""The demo: the shipped sample models on the shipped photo and clip, and a short training.

    make demo            # or: python -m scripts.demo

1. stylizes sample_images/tubingen.jpg with the two sample models of the candy
   style (models/candy_vanilla.model, models/candy_stab.model, made by
   scripts/train_sample_models.py) and writes demo_output/compare.png:
   content | style | vanilla | stabilized;
   and demo_output/gallery.png: every shipped style on a real street frame
   (sample_images/street.jpg, never trained on);
2. stylizes the sample clip with both and writes demo_output/compare.mp4:
   source | vanilla | stabilized, and measures both with stability.py;
3. trains a net for a few minutes with the HED VGG16 loss network
   (vgg16.py --hed) to show that training runs; so short a run learns the
   style's colours, not its strokes.
"""
import argparse
import os
import subprocess
import sys
import time

from faststyle import chainer_compat  # noqa: F401  (before Chainer: numpy 2, Py 3.12+)

import cv2
import numpy

from faststyle import cli
from faststyle import images
from faststyle import tempfiles
from faststyle import video
from faststyle.errors import InputError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = 'demo_output'
STYLE = 'sample_images/candy.jpg'
CONTENT = 'sample_images/tubingen.jpg'
CLIP = 'sample_images/tubingen_pan.mp4'
MODELS = (('vanilla', 'models/candy_vanilla.model'),
          ('stabilized', 'models/candy_stab.model'))
STREET = 'sample_images/street.jpg'
GALLERY = (('candy', 'models/candy_stab.model'), ('mosaic', 'models/mosaic_stab.model'),
           ('udnie', 'models/udnie_stab.model'),
           ('rain princess', 'models/rain_princess_stab.model'),
           ('candy, vanilla twin', 'models/candy_vanilla.model'))
VGG = 'vgg16.model'
# The short training: a few minutes on 2 CPU cores.
DEMO_TRAINING_SIZE = 96


def run(*args):
    print('\n$ python {}'.format(' '.join(args)), flush=True)
    command = [sys.executable] + list(args)
    result = subprocess.run(command, cwd=ROOT)
    if result.returncode:
        sys.exit('error: demo step failed (exit status {}): python {}'.format(
            result.returncode, ' '.join(args)))


def labelled(rgb, text, height):
    """``rgb`` scaled to ``height`` rows with a caption strip above it."""
    h, w = rgb.shape[:2]
    scaled = images.resize(rgb, (max(1, round(w * height / h)), height))
    strip = numpy.full((24, scaled.shape[1], 3), 255, numpy.uint8)
    cv2.putText(strip, text, (6, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1,
                cv2.LINE_AA)
    return numpy.concatenate([strip, scaled], axis=0)


def side_by_side(panels, gap=4):
    height = max(p.shape[0] for p in panels)
    spacer = numpy.full((height, gap, 3), 255, numpy.uint8)
    row = []
    for panel in panels:
        row += [panel, spacer]
    return numpy.concatenate(row[:-1], axis=1)


def write_compare_image(stylized, path, height=288):
    def read(path):
        return images.read_rgb_array(path)
    panels = [labelled(read(CONTENT), 'content', height),
              labelled(read(STYLE), 'style (candy)', height)]
    panels += [labelled(read(p), name, height) for name, p in stylized]
    rgb = side_by_side(panels)
    cv2.imwrite(path, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def write_gallery(stylized, path, height=272, per_row=3):
    """The source frame and each style's output, captioned, ``per_row`` a row."""
    panels = [labelled(images.read_rgb_array(STREET), 'street frame (source)', height)]
    panels += [labelled(images.read_rgb_array(p), name, height) for name, p in stylized]
    rows = [side_by_side(panels[i:i + per_row]) for i in range(0, len(panels), per_row)]
    width = max(row.shape[1] for row in rows)
    gap = numpy.full((4, width, 3), 255, numpy.uint8)
    grid = []
    for row in rows:
        pad = numpy.full((row.shape[0], width - row.shape[1], 3), 255, numpy.uint8)
        grid += [numpy.concatenate([row, pad], axis=1), gap]
    rgb = numpy.concatenate(grid[:-1], axis=0)
    cv2.imwrite(path, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def write_compare_video(videos, path):
    """Source | each stylized video, frame by frame, captioned."""
    readers = [video.VideoReader(p) for _, p in videos]
    names = [name for name, _ in videos]
    try:
        with tempfiles.atomic_path(path) as tmp:
            writer = None
            for frames in zip(*readers):
                rgb = side_by_side([labelled(f, n, f.shape[0])
                                    for n, f in zip(names, frames)])
                rgb = rgb[:rgb.shape[0] // 2 * 2, :rgb.shape[1] // 2 * 2]
                if writer is None:
                    writer = video.open_writer(tmp, readers[0].fps or 24, rgb.shape[1],
                                               rgb.shape[0], video.find_ffmpeg())
                writer.write(numpy.ascontiguousarray(rgb))
            writer.close()
    finally:
        for reader in readers:
            reader.close()


def size_of(path):
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def main(argv=None):
    # No flags; --help shows what the demo does instead of running it.
    argparse.ArgumentParser(description=__doc__,
                            formatter_class=cli.RawDescriptionHelpFormatter).parse_args(argv)
    start = time.time()
    os.chdir(ROOT)
    missing = [p for _, p in MODELS + GALLERY if not os.path.isfile(p)]
    if missing:
        sys.exit('error: {} is missing; the sample models are part of the repository '
                 '(git lfs is not used: check your clone)'.format(missing[0]))
    os.makedirs(OUT, exist_ok=True)
    print(__doc__)

    # 1. one photo, both sample models
    stylized = []
    for name, model in MODELS:
        out = os.path.join(OUT, 'tubingen_{}.jpg'.format(name))
        run('generate.py', CONTENT, '-m', model, '-o', out)
        stylized.append((name, out))
    write_compare_image(stylized, os.path.join(OUT, 'compare.png'))
    print('wrote {}/compare.png'.format(OUT))
    street = []
    for name, model in GALLERY:
        out = os.path.join(OUT, 'street_{}.jpg'.format(os.path.basename(model)[:-6]))
        run('generate.py', STREET, '-m', model, '-o', out)
        street.append((name, out))
    write_gallery(street, os.path.join(OUT, 'gallery.png'))
    print('wrote {}/gallery.png'.format(OUT))

    # 2. the clip, both sample models, and how steady each is
    clips = [('source', CLIP)]
    for name, model in MODELS:
        out = os.path.join(OUT, 'tubingen_pan_{}.mp4'.format(name))
        run('generate.py', CLIP, '-m', model, '-o', out, '--no_progress')
        clips.append((name, out))
    write_compare_video(clips, os.path.join(OUT, 'compare.mp4'))
    print('wrote {}/compare.mp4 (source | vanilla | stabilized)'.format(OUT))
    run('stability.py', CLIP, '-m', MODELS[0][1], '-m', MODELS[1][1],
        '--json', os.path.join(OUT, 'stability.json'), '--no_progress')

    # 3. a short training with the HED loss network
    if not os.path.isfile(VGG):
        run('vgg16.py', '--hed', '-o', VGG)
    content = os.path.join(OUT, 'content_{}'.format(DEMO_TRAINING_SIZE))
    if not os.path.isdir(content):
        run('-m', 'scripts.content_crops', '-o', content, '--size', str(DEMO_TRAINING_SIZE))
    trained = os.path.join(OUT, 'candy_demo.model')
    run('train.py', '-s', STYLE, '-d', content, '--vgg', VGG, '--arch', 'resize',
        '--image_size', str(DEMO_TRAINING_SIZE), '-e', '1', '-o', trained,
        '--log_interval', '20', '--preview_interval', '50',
        '--preview_image', CONTENT)
    run('generate.py', CONTENT, '-m', trained, '-o', os.path.join(OUT, 'tubingen_demo_training.jpg'))
    # Keep what a user looks at: the model, its log and previews, not the
    # per-epoch copies and the optimizer state.
    for leftover in ('candy_demo_0.model', 'candy_demo_0.state', 'candy_demo.state'):
        path = os.path.join(OUT, leftover)
        if os.path.exists(path):
            os.remove(path)

    print('\nDemo done in {:.0f} s. demo_output/ holds {:.0f} MB:'.format(
        time.time() - start, size_of(OUT) / 1e6))
    for name in sorted(os.listdir(OUT)):
        print('  {:<32} {:>7.1f} MB'.format(name, size_of(os.path.join(OUT, name)) / 1e6))
    print('compare.png and compare.mp4 show the sample models (see models/README.md for '
          'how they were trained);\ncandy_demo.model trained for one epoch of {} crops '
          'at {} px only: it shows that training runs, not a finished style.\n'
          '{} (the HED VGG16 loss network, {:.0f} MB) is kept for your own trainings; '
          '`make clean` removes demo_output/.'.format(
              len(os.listdir(content)), DEMO_TRAINING_SIZE, VGG, size_of(VGG) / 1e6))


if __name__ == '__main__':
    try:
        main()
    except InputError as e:
        sys.exit('error: {}'.format(e))
