"""A lent GPU's few minutes in one call: the GPU check, then every sample
model fine-tuned at 256 px at once, until a deadline (docs/gpu.md).

    sh scripts/with_chainer.sh wheel                          # here: .whl/ (Chainer)
    python -m scripts.gpu_lease pack --vgg vgg16.model        # here: .gpu/ (what travels)
    sh scripts/with_chainer.sh python3 -m scripts.gpu_lease run --seconds 520 --out $OUT
                                                              # there, .gpu and .whl carried

A device machine takes at most 64 MiB of working tree and gives back at most
8 files of 16 MiB each. So ``pack`` writes the VGG16 file (HED's, or
ImageNet's with ``run --lambda_feat 0.01 --lambda_style 0.002``) in float16
without conv5, which no loss uses (15 MB instead of 57), and the 256-px training
crops and the folders of targets (``--targets``) as JPEG. ``run`` restores a
float32 VGG16 file and the targets as PNG, runs benchmarks/gpu_check.sh,
fine-tunes each model of models/samples.json (or those of ``--models``) from
the shipped one (``-i``; from fresh weights with ``--from_scratch``) with the
recipe of models/README.md (a model with a target loss gets the targets of
its painting), stops them all at
the deadline (SIGTERM: each saves its snapshot), and copies to ``--out``
the newest epoch snapshot of each (the candy twins: the newest epoch both
reached) and one tarball of the logs. Each ``.state`` is larger than a
returned file may be, so the next training starts with ``-i``.
"""
import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time

import numpy
from PIL import Image

from faststyle import chainer_compat  # noqa: F401  (before Chainer: numpy 2, Py 3.12+)
from faststyle import cli
from faststyle import crops
from faststyle import vgg16_weights
from faststyle.errors import InputError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKED_VGG = 'vgg16_fp16.npz'
CROPS = 'content256'
TARGETS = 'targets'
UNUSED_LAYERS = ('conv5_1', 'conv5_2', 'conv5_3')  # the losses stop at relu4_3
IMAGE_SIZE = 256
RECIPE = ('--arch', 'resize', '--image_size', str(IMAGE_SIZE), '--crop_padding', '50')


def pack_vgg(source, target):
    """``source`` (a CFNS-layout VGG16 file) in float16, without conv5."""
    arrays = numpy.load(source, allow_pickle=False)
    packed = {key: arrays[key].astype(numpy.float16) if arrays[key].dtype == numpy.float32
              else arrays[key] for key in arrays.files if key.split('/')[0] not in UNUSED_LAYERS}
    vgg16_weights.save_arrays(target, packed)


def unpack_vgg(source, target):
    """A float32 VGG16 file in CFNS's layout from :func:`pack_vgg`'s, conv5
    zero (never read by the losses)."""
    arrays = numpy.load(source, allow_pickle=False)
    full = {key: arrays[key].astype(numpy.float32) if arrays[key].dtype == numpy.float16
            else arrays[key] for key in arrays.files}
    for name, n_in, n_out in vgg16_weights.LAYERS:
        if name in UNUSED_LAYERS:
            full[name + '/W'] = numpy.zeros((n_out, n_in, 3, 3), numpy.float32)
            full[name + '/b'] = numpy.zeros(n_out, numpy.float32)
    vgg16_weights.save_arrays(target, full)


def pack_crops(source, target, quality=93):
    """Every image of ``source`` as a JPEG in ``target``."""
    os.makedirs(target, exist_ok=True)
    for path in crops.list_images(source):
        name = os.path.splitext(os.path.basename(path))[0] + '.jpg'
        Image.open(path).convert('RGB').save(os.path.join(target, name), quality=quality)


def check_target_folders(folders):
    """{painting's SHA-256: folder} of the folders of targets; InputError for
    one made for crops other than RECIPE's, one without the painting's
    digest that :func:`targets_by_painting` needs, or two of one painting."""
    paintings = {}
    for folder in folders:
        settings = crops.read_target_settings(folder)
        if settings is None or 'style_image_sha256' not in settings:
            raise InputError('--targets {}: no {} naming its painting (scripts.teacher_targets '
                             'and scripts.style_targets write one)'.format(
                                 folder, crops.TARGET_SETTINGS))
        crops.check_target_settings(folder, IMAGE_SIZE, False)
        digest = settings['style_image_sha256']
        if digest in paintings:
            raise InputError('--targets {} and {} are of one painting: give one'.format(
                paintings[digest], folder))
        paintings[digest] = folder
    return paintings


def pack_targets(folders, target):
    """Each folder of targets (:func:`check_target_folders`) as JPEGs with its
    settings in ``target``/I."""
    if os.path.isdir(target):  # a folder of an earlier pack is not this one's
        shutil.rmtree(target)
    for index, folder in enumerate(folders):
        packed = os.path.join(target, str(index))
        pack_crops(folder, packed)
        shutil.copy(os.path.join(folder, crops.TARGET_SETTINGS), packed)


def unpack_targets(source, target):
    """{painting's SHA-256: folder of PNG targets under ``target``} from
    :func:`pack_targets`'s ``source`` (none if it is missing)."""
    folders = {}
    for name in sorted(os.listdir(source)) if os.path.isdir(source) else []:
        packed, unpacked = os.path.join(source, name), os.path.join(target, name)
        os.makedirs(unpacked, exist_ok=True)
        for path in crops.list_images(packed):
            Image.open(path).convert('RGB').save(os.path.join(
                unpacked, os.path.splitext(os.path.basename(path))[0] + '.png'))
        shutil.copy(os.path.join(packed, crops.TARGET_SETTINGS), unpacked)
        folders[crops.read_target_settings(unpacked)['style_image_sha256']] = unpacked
    return folders


def targets_by_painting(models, folders):
    """{model name: its painting's folder of targets} for each of ``models``
    (from :func:`samples`) trained with a target loss; InputError, before any
    training starts, for one whose painting has none among ``folders``
    (:func:`unpack_targets`)."""
    chosen = {}
    for name, painting, flags in models:
        options = dict(zip(flags[::2], map(float, flags[1::2])))
        if options.get('--lambda_target') or options.get('--lambda_target_style'):
            digest = crops.painting_digest(os.path.join(ROOT, painting))
            if digest not in folders:
                raise InputError('{} is trained towards targets of {}, and none were packed '
                                 '(gpu_lease pack --targets)'.format(name, painting))
            chosen[name] = folders[digest]
    return chosen


def newest_epochs(folder, names, twins=()):
    """{name: the newest epoch E with folder/NAME_E.model}; the ``twins`` among
    ``names`` all get the newest epoch every one of them reached. Names
    without one are left out."""
    twins = [t for t in twins if t in names]  # one twin trained alone is no pair
    epochs = {}
    for name in names:
        found = [int(m.group(1)) for m in (
            re.fullmatch(re.escape(name) + r'_(\d+)\.model', os.path.basename(p))
            for p in glob.glob(os.path.join(folder, name + '_*.model'))) if m]
        if found:
            epochs[name] = max(found)
    if twins and all(t in epochs for t in twins):
        common = min(epochs[t] for t in twins)
        epochs.update((t, common) for t in twins)
    else:
        for t in twins:
            epochs.pop(t, None)
    return epochs


def samples():
    """(name, painting, flags) of each shipped sample model: its own loss
    weights beside RECIPE's, the target losses' where it has them."""
    with open(os.path.join(ROOT, 'models', 'samples.json')) as f:
        models = json.load(f)['models']
    return [(name, entry['style_image'],
             ['--lambda_noise', str(entry['lambda_noise']),
              '--lambda_shift', str(entry.get('lambda_shift', 0.0)),
              '--lambda_tone', str(entry.get('lambda_tone', 0.0)),
              '--lambda_colour', str(entry.get('lambda_colour', 0.0)),
              # train.py takes these only with --targets, which run adds
              *[flag for key in ('lambda_target', 'lambda_target_style') if entry.get(key)
                for flag in ('--' + key, str(entry[key]))]])
            for name, entry in models.items()]


def chosen(models, names):
    """The entries of ``models`` (from :func:`samples`) named in ``names``,
    all of them where ``names`` is empty."""
    unknown = sorted(set(names) - {name for name, _, _ in models})
    if unknown:
        raise InputError('--models: no sample model {} in models/samples.json'.format(
            ', '.join(unknown)))
    return [model for model in models if not names or model[0] in names]


def train_command(args, name, painting, flags, vgg, targets=None):
    """train.py's command line for one sample model: RECIPE, the model's own
    weights, and the content and style weights of ``args`` (HED's 30 and 5
    by default; about 3000 times smaller with ImageNet's VGG16,
    docs/training.md); its folder of ``targets`` where it has target losses;
    from the shipped net (``-i``) unless ``args.from_scratch``."""
    return [sys.executable, os.path.join(ROOT, 'train.py'), '-s',
            os.path.join(ROOT, painting), '-d', os.path.join(args.packed, CROPS),
            '--vgg', vgg, *RECIPE, '--lambda_feat', str(args.lambda_feat),
            '--lambda_style', str(args.lambda_style), *flags,
            *([] if targets is None else ['--targets', targets]), *overrides(args),
            *([] if args.from_scratch else ['-i', os.path.join(ROOT, 'models', name + '.model')]),
            '-o', os.path.join(args.work, name + '.model'), '-g', str(args.gpu), '-e', '200',
            '--log_interval', '50', '--preview_interval', '0', '--no_progress']


def overrides(args):
    """The flags of ``args`` that replace every model's own (train.py takes
    the last of a repeated flag)."""
    return [*(['--lambda_tone', str(args.lambda_tone)] if args.lambda_tone is not None else []),
            *(['--style_size', str(args.style_size)] if args.style_size is not None else [])]


def run(args):
    start = time.monotonic()
    models = chosen(samples(), args.models)
    os.makedirs(args.out, exist_ok=True)
    work = args.work
    os.makedirs(work, exist_ok=True)
    vgg = os.path.join(work, 'vgg16.model')
    unpack_vgg(os.path.join(args.packed, PACKED_VGG), vgg)
    targets = targets_by_painting(models, unpack_targets(os.path.join(args.packed, TARGETS),
                                                         os.path.join(work, TARGETS)))
    env = dict(os.environ, PYTHONUNBUFFERED='1', CHAINER_WARN_VERSION_MISMATCH='0',
               CHAINER_CUDNN='0')
    with open(os.path.join(args.out, 'gpu_check.txt'), 'w') as log:
        try:
            subprocess.run(['sh', os.path.join(ROOT, 'benchmarks', 'gpu_check.sh')], cwd=ROOT,
                           stdout=log, stderr=subprocess.STDOUT, env=env,
                           timeout=args.check_seconds)
        except subprocess.TimeoutExpired:
            log.write('\ngpu_check stopped after {} s\n'.format(args.check_seconds))
    trainings = []
    for name, painting, flags in models:
        command = train_command(args, name, painting, flags, vgg, targets.get(name))
        out = open(os.path.join(work, name + '.out'), 'w')
        trainings.append((subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                           env=env), out))
    # Leave time to stop them (each saves a snapshot) and to copy the results.
    time.sleep(max(0, args.seconds - 30 - (time.monotonic() - start)))
    for process, out in trainings:
        process.terminate()
    for process, out in trainings:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        out.close()
    names = [name for name, _, _ in models]
    for name, epoch in newest_epochs(work, names, twins=('candy_stab', 'candy_vanilla')).items():
        shutil.copy(os.path.join(work, '{}_{}.model'.format(name, epoch)),
                    os.path.join(args.out, '{}_256_e{}.model'.format(name, epoch)))
    with tarfile.open(os.path.join(args.out, 'train_logs.tgz'), 'w:gz') as tar:
        for path in sorted(glob.glob(os.path.join(work, '*.out'))
                           + glob.glob(os.path.join(work, '*.log'))):
            tar.add(path, arcname=os.path.basename(path))
    return 0


def pack(args):
    if not os.path.isfile(args.vgg):
        raise InputError('{}: no such VGG16 file; {}'.format(args.vgg, vgg16_weights.HOW_TO_GET))
    packed = check_target_folders(args.targets)
    os.makedirs(args.packed, exist_ok=True)
    pack_vgg(args.vgg, os.path.join(args.packed, PACKED_VGG))
    pack_crops(args.crops, os.path.join(args.packed, CROPS))
    pack_targets(args.targets, os.path.join(args.packed, TARGETS))
    for name, painting, flags in samples():
        try:
            targets_by_painting([(name, painting, flags)], packed)
        except InputError as e:
            print('warning: {}; leave it out of run --models'.format(e))
    print('wrote {}: carry it (and .whl) to the GPU machine'.format(args.packed))
    return 0


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                formatter_class=cli.HelpFormatter)
    p.add_argument('--packed', default=os.path.join(ROOT, '.gpu'),
                   help='folder of what travels (ignored by git)')
    sub = p.add_subparsers(dest='command', required=True)
    packing = sub.add_parser('pack', help='here: write --packed')
    packing.add_argument('--vgg', default='vgg16.model',
                         help="the VGG16 file: HED's (vgg16.py --hed) or ImageNet's "
                              '(vgg16.py --keras_onnx; then give run its weights)')
    packing.add_argument('--crops', default='content256',
                         help='the 256-px crops (python -m scripts.content_crops --size 256)')
    packing.add_argument('--targets', nargs='+', default=[], metavar='DIR',
                         help="folders of targets of those crops (scripts.teacher_targets "
                              "--image_size 256), one per painting: each model trained with "
                              "a target loss (models/samples.json) gets its painting's")
    running = sub.add_parser('run', help='there: the check and the trainings')
    running.add_argument('--seconds', type=int, default=520, help='the whole run')
    running.add_argument('--check_seconds', type=int, default=230,
                         help='at most this long for gpu_check.sh')
    running.add_argument('--gpu', type=int, default=0, help='GPU id')
    running.add_argument('--out', default=os.environ.get('OUT', 'gpu_out'),
                         help='what comes back (default: $OUT)')
    running.add_argument('--work', default='/tmp/gpu_lease', help='snapshots and logs')
    running.add_argument('--models', nargs='+', default=[], metavar='NAME',
                         help='only these sample models (default: every one of '
                              'models/samples.json); fewer share the GPU, so each '
                              'takes more steps')
    running.add_argument('--lambda_feat', type=float, default=30.0,
                         help="content weight; 30 is for HED's VGG16, about 0.01 for "
                              "ImageNet's (docs/training.md)")
    running.add_argument('--lambda_style', type=float, default=5.0,
                         help="style weight; 5 is for HED's VGG16, about 0.002 for ImageNet's")
    running.add_argument('--from_scratch', action='store_true',
                         help="train each net from fresh weights (train.py's seed 0), not "
                              'from the shipped one: a net that learned a grade of the scene '
                              'keeps it for hundreds of steps (docs/training.md)')
    running.add_argument('--lambda_tone', type=float, default=None,
                         help="the tone loss's weight for every model (default: each model's "
                              "own, from models/samples.json); at 0 a painting's shapes come "
                              "into the optimum of ImageNet's losses (docs/training.md)")
    running.add_argument('--style_size', type=int, default=None,
                         help="train.py's --style_size for every model (default: train.py's, "
                              'the crop size)')
    args = p.parse_args(argv)
    # Refused here, not by each training on the lent machine after its start.
    if getattr(args, 'style_size', None) is not None and args.style_size < 16:
        p.error('--style_size must be at least 16')
    return args


def body(argv):
    args = parse_args(argv)
    return pack(args) if args.command == 'pack' else run(args)


def main(argv=None):
    return cli.run_cli(body, argv)


if __name__ == '__main__':
    sys.exit(main())
