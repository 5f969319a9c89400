"""The stability note's experiment, measured on video: does L_pop make video steady?

    python benchmarks/stability_experiment.py [--iterations 150] [--arch resize]
        [--image_size 128] [--size 160] [--frames 48] [--workdir DIR] [--json out.json]

From one --seed, on the same data and for the same number of steps, trains

  vanilla      lambda_noise 0 (exactly CFNS)
  stable       lambda_noise 1000, noise count scaled from the note's 1000 at 512x512
  per-batch    the same, with a new noise image every mini-batch
  stable-10%   lambda_noise raised so that L_pop is about 10 % of the loss, the
               share the note tuned to (at small image sizes the default gives only a
               few %); the lambda is extrapolated from the 'stable' run's L_pop share
               and printed

then stylizes the sample clip (sample_images/tubingen_pan.mp4) with every model,
with BatchNorm statistics of each frame ('image', CFNS's generate.py) and the
training averages ('running'), and prints one table: warping error (and the
source's), popping, flicker, the output's detail and the warping error and
flicker per unit of detail (stability.py's figures), the final style and content
loss of each net on the training images, L_pop's share of the training loss, and
seconds per training iteration.

The VGG16 loss network has RANDOM stand-in weights (the real ones cannot be
downloaded here): the nets learn whatever random features reward, not an artistic
style. The figures compare training settings; the images are no style.

Default data: crops of the photos the repo ships (sample_images/tubingen.jpg and
amber.jpg) at several scales, so the run needs nothing else; -d DIR trains on a
folder of images instead, cropped the CFNS way. Note that the clip is a pan over
tubingen.jpg, which the default data also contains.

Everything (weights, data, models, figures) goes into --workdir (default: a
temporary folder, deleted at the end unless --keep), never into models/.
"""
import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time

import numpy

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import chainer_compat  # noqa: F401,E402  (before Chainer: numpy 2, Py 3.12+)

import chainer  # NOQA: E402
from PIL import Image  # NOQA: E402

import dataset  # NOQA: E402
import losses  # NOQA: E402
import net  # NOQA: E402
import noise  # NOQA: E402
import npz  # NOQA: E402
import stability  # NOQA: E402
import stylize  # NOQA: E402
import train  # NOQA: E402
import vgg16  # NOQA: E402

SAMPLE_IMAGES = os.path.join(ROOT, 'sample_images')
DEFAULT_PHOTOS = ('tubingen.jpg', 'amber.jpg')
DEFAULT_STYLE = os.path.join(SAMPLE_IMAGES, 'style.jpg')
DEFAULT_CLIP = os.path.join(SAMPLE_IMAGES, 'tubingen_pan.mp4')
DEFAULT_LAMBDA = 1000.0
TARGET_SHARE = 0.10
STATS = ('image', 'running')


def say(*args):
    print(*args, flush=True)


# --- data -------------------------------------------------------------------------

def make_crops(photos, folder, size, per_photo, seed):
    """``per_photo`` square crops of each photo at random positions and scales
    (side 35-100 % of the short side), resized to ``size``: varied training
    images from the two shipped photos. Deterministic from ``seed``."""
    os.makedirs(folder, exist_ok=True)
    rng = numpy.random.RandomState(seed)
    for path in photos:
        image = dataset.open_rgb(path)
        width, height = image.size
        short = min(width, height)
        stem = os.path.splitext(os.path.basename(path))[0]
        for k in range(per_photo):
            side = int(short * rng.uniform(0.35, 1.0))
            left = rng.randint(0, width - side + 1)
            top = rng.randint(0, height - side + 1)
            crop = image.crop((left, top, left + side, top + side))
            crop.resize((size, size), Image.LANCZOS).save(
                os.path.join(folder, '{}_{:02d}.png'.format(stem, k)))
    return folder


# --- training ---------------------------------------------------------------------

class Run:
    """One training configuration and what it produced."""

    def __init__(self, name, lambda_noise, per_batch=False, note=''):
        self.name = name
        self.lambda_noise = lambda_noise
        self.per_batch = per_batch
        self.note = note
        self.model_path = None
        self.noise_count = None
        self.seconds_per_iteration = None
        self.history = []          # per iteration: loss terms
        self.final = {}            # losses of the final net on the training images

    def recent(self, key, fraction=0.2):
        """Mean of ``key`` over the last ``fraction`` of the iterations."""
        values = [h[key] for h in self.history]
        tail = values[-max(1, int(len(values) * fraction)):]
        return float(numpy.mean(tail)) if tail else None

    def summary(self):
        return {
            'name': self.name, 'lambda_noise': self.lambda_noise,
            'noise_per_batch': self.per_batch, 'noise_count': self.noise_count,
            'note': self.note, 'model': self.model_path,
            'seconds_per_iteration': self.seconds_per_iteration,
            'pop_share_last20': self.recent('pop_share'),
            'final': self.final, 'history': self.history,
        }


def scalar(value):
    if isinstance(value, chainer.Variable):
        value = value.array
    return float(chainer.backend.CpuDevice().send(value)) if not isinstance(
        value, float) else value


def train_run(run, options, data_dir, vgg_path, workdir, device, log=say):
    """Train ``run`` for ``options.iterations`` steps; fills its history and timing."""
    run.model_path = os.path.join(workdir, run.name + '.model')
    argv = ['-s', options.style, '-d', data_dir, '--vgg', vgg_path,
            '--image_size', str(options.image_size), '--arch', options.arch,
            '--lambda_noise', repr(float(run.lambda_noise)),
            '--lambda_style', repr(options.lambda_style),
            '--lambda_tv', repr(options.lambda_tv),
            '--seed', str(options.seed), '-o', run.model_path,
            '--no_progress', '--preview_interval', '0']
    if options.noise_count:
        argv += ['--noise_count', str(options.noise_count)]
    if run.per_batch:
        argv.append('--noise_per_batch')
    args = train.parse_args(argv)
    run.noise_count = args.noise_count if run.lambda_noise else None
    data, _ = dataset.open_dataset(data_dir, options.image_size)
    trainer, vgg = train.build_trainer(args, device, data)
    updater = trainer.updater
    times = []
    log_every = max(1, options.iterations // 5)
    for i in range(options.iterations):
        observation = {}
        start = time.perf_counter()
        with trainer.reporter.scope(observation):
            updater.update()
        times.append(time.perf_counter() - start)
        run.history.append({key.split('/', 1)[1]: scalar(value)
                            for key, value in observation.items()
                            if key.startswith('main/')})
        if (i + 1) % log_every == 0 or i + 1 == options.iterations:
            h = run.history[-1]
            log('  {:<10} it {:>4}  loss {:10.4g}  style {:10.4g}  content {:10.4g}  '
                'pop {:9.3g} ({:5.1%})  {:.2f} s/it'.format(
                    run.name, i + 1, h['loss'], h['loss_style'], h['loss_feat'],
                    h['loss_pop'], h['pop_share'], numpy.mean(times[-log_every:])))
    # The first step pays for allocations; leave it out when there are others.
    run.seconds_per_iteration = float(numpy.mean(times[1:] if len(times) > 1 else times))
    model = updater.get_optimizer('main').target
    npz.save_npz(run.model_path, model)  # the .model only (no trainer was run)
    run.final = final_losses(model, vgg, updater.style_grams, data, options, device)
    return run


def final_losses(model, vgg, grams, data, options, device):
    """Content, style, TV loss of the trained net on every training image
    (per-image BatchNorm statistics, as in training with batch 1), and the
    noise sensitivity MSE(net(x), net(x + N)) for the default noise image."""
    count = options.noise_count or noise.default_noise_count(options.image_size)
    fixed_noise = device.send(noise.make_noise(1, options.image_size, count, 30.0, 0))
    stats, model.stats = model.stats, 'image'
    sums = {'loss_feat': 0.0, 'loss_style': 0.0, 'loss_tv': 0.0, 'noise_mse': 0.0}
    try:
        with chainer.using_config('train', False), chainer.no_backprop_mode():
            for i in range(len(data)):
                x = device.send(data[i][None])
                y = model(x)
                feat, style, tv = losses.perceptual_losses(
                    vgg, x, y, grams, 1.0, options.lambda_style, options.lambda_tv)
                sums['loss_feat'] += scalar(feat)
                sums['loss_style'] += scalar(style)
                sums['loss_tv'] += scalar(tv)
                sums['noise_mse'] += scalar(chainer.functions.mean_squared_error(
                    y, model(x + fixed_noise)))
    finally:
        model.stats = stats
    return {key: value / len(data) for key, value in sums.items()}


def choose_lambda(stable_run, target=TARGET_SHARE):
    """lambda_noise for a ~``target`` share, from the 'stable' run: L_pop / rest
    over its last 20 % of iterations, scaled linearly. The net answers a larger
    lambda by becoming steadier, so the share reached is usually below target."""
    pops = numpy.array([h['loss_pop'] for h in stable_run.history])
    rests = numpy.array([h['loss'] - h['loss_pop'] for h in stable_run.history])
    tail = max(1, len(pops) // 5)
    ratio = float(numpy.mean(pops[-tail:]) / numpy.mean(rests[-tail:]))
    wanted = target / (1 - target)
    raw = stable_run.lambda_noise * wanted / ratio
    # Two significant digits: a readable figure to pass to train.py.
    digits = -int(math.floor(math.log10(raw))) + 1
    chosen = round(raw, digits)
    note = ('lambda_noise {:g} = {:g} x ({:.3f} / {:.4f}): the stable run\'s L_pop / '
            'other losses over its last {} iterations was {:.4f} (share {:.1%}); '
            '{:.0%} share needs a ratio of {:.3f}'.format(
                chosen, stable_run.lambda_noise, wanted, ratio, tail, ratio,
                ratio / (1 + ratio), target, wanted))
    return chosen, note


# --- measuring ------------------------------------------------------------------

class ExperimentRow(stability.ModelRow):
    """stability.ModelRow that measures popping on the first few frames only."""

    def __init__(self, stylizer, name, popping_frames, noise_seed=1):
        super().__init__(stylizer, name, True, 0, 30.0, noise_seed)
        self.popping_frames = popping_frames

    def add(self, src, pair, t):
        self.popping = t < self.popping_frames
        super().add(src, pair, t)


def measure_models(runs, options, log=say):
    """stability.py's figures for every model and BatchNorm statistics, in one
    pass over the clip (the source flow is computed once)."""
    source = stability.SourceFrames(options.clip, options.size, options.frames)
    rows = [stability.SourceRow('source')]
    for run in runs:
        for stats in options.stats:
            stylizer = stylize.Stylizer(run.model_path, device=options.device,
                                        backend=options.backend, stats=stats)
            row = ExperimentRow(stylizer, run.name, options.popping_frames)
            row.run, row.stats = run, stats
            rows.append(row)
    log('measuring {} rows on {} ({}x{}, {} frames, popping on the first {}, backend {})'
        .format(len(rows) - 1, options.clip, source.size[0], source.size[1],
                options.frames or 'all', options.popping_frames,
                rows[-1].stylizer.backend_name))
    frames = stability.measure(source, rows, stability.SourceFlow(options.flow))
    return rows, frames, source.size


# --- output ---------------------------------------------------------------------

COLUMNS = ('model', 'lambda', 'BN stats', 'warp_mse', 'popping', 'flicker', 'detail',
           'warp/detail', 'flicker/rms', 'style', 'content', 'L_pop share', 's/it')


def cell(value, fmt):
    return 'n/a' if value is None else fmt.format(value)


def measured_cells(f, popping=True):
    """warp_mse .. flicker/rms of a stability.py summary (detail: stability.py's
    mean squared spatial gradient of the output)."""
    return [cell(f['warp_mse'], '{:.2f}'),
            cell(f['popping'], '{:.3f}') if popping else '',
            cell(f['flicker'], '{:.3f}'), cell(f['detail'], '{:.2f}'),
            cell(f['warp_per_detail'], '{:.3f}'),
            cell(f['flicker_per_rms_detail'], '{:.3f}')]


def table_rows(rows):
    out = []
    for row in rows:
        f = row.figures.summary()
        if isinstance(row, stability.SourceRow):
            out.append(['source (clip)', '', ''] + measured_cells(f, popping=False) +
                       ['', '', '', ''])
            continue
        run = row.run
        share = run.recent('pop_share')
        out.append([
            run.name, '{:g}'.format(run.lambda_noise), row.stats] + measured_cells(f) + [
            '{:.4g}'.format(run.final['loss_style']),
            '{:.4g}'.format(run.final['loss_feat']),
            '{:.1%}'.format(share) if run.lambda_noise else '-',
            '{:.2f}'.format(run.seconds_per_iteration)])
    return out


def format_table(rows):
    cells = table_rows(rows)
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(COLUMNS)]

    def line(values):
        return '| ' + ' | '.join(v.ljust(w) if i < 3 else v.rjust(w)
                                 for i, (v, w) in enumerate(zip(values, widths))) + ' |'
    rule = '|' + '|'.join('-' * (w + 2) if i < 3 else '-' * (w + 1) + ':'
                          for i, w in enumerate(widths)) + '|'
    return '\n'.join([line(COLUMNS), rule] + [line(r) for r in cells])


def document(options, runs, rows, frames, size, lambda_note, started):
    return {
        'warning': 'made with RANDOM stand-in VGG16 weights: no artistic style',
        'settings': {key: value for key, value in vars(options).items()
                     if key not in ('json',)},
        'clip': {'path': options.clip, 'frames': frames, 'size': list(size)},
        'lambda_choice': lambda_note,
        'runs': [run.summary() for run in runs],
        'rows': [dict(row.figures.summary(),
                      model=getattr(getattr(row, 'run', None), 'name', 'source'),
                      stats=getattr(row, 'stats', None)) for row in rows],
        'seconds_total': time.time() - started,
    }


# --- the command line -------------------------------------------------------------

def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        epilog='RANDOM stand-in VGG16 weights: the trained nets are no style.',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--iterations', '-n', type=int, default=150,
                   help='training steps per run (batch 1); 150 keeps the default '
                        'run near 30 minutes on 2 cores, docs/stability.md used 300')
    p.add_argument('--image_size', type=int, default=128, help='training crop size')
    p.add_argument('--arch', choices=net.ARCHS, default='resize',
                   help="transform net decoder ('resize': CFNS resize-conv branch)")
    p.add_argument('--seed', type=int, default=0, help='weights and data order')
    p.add_argument('--dataset', '-d', default=None,
                   help='folder of training images (default: crops of the shipped '
                        'photos sample_images/tubingen.jpg and amber.jpg)')
    p.add_argument('--crops', type=int, default=16,
                   help='default data: crops per shipped photo')
    p.add_argument('--style', '-s', default=DEFAULT_STYLE, help='style image')
    p.add_argument('--lambda_style', type=float, default=5.0)
    p.add_argument('--lambda_tv', type=float, default=1e-6)
    p.add_argument('--noise_count', type=int, default=0,
                   help='noisy pixels in training (default: 1000 at 512x512, scaled '
                        'with the area)')
    p.add_argument('--lambda_10', type=float, default=0,
                   help="the 'stable-10%%' run's lambda_noise (default: extrapolated "
                        "from the 'stable' run to a 10 %% share)")
    p.add_argument('--runs', nargs='+',
                   default=['vanilla', 'stable', 'per-batch', 'stable-10%'],
                   choices=['vanilla', 'stable', 'per-batch', 'stable-10%'],
                   help='which runs')
    p.add_argument('--clip', default=DEFAULT_CLIP, help='video or folder of frames')
    p.add_argument('--size', type=int, default=160,
                   help='measure with the longer side of the frames at this size')
    p.add_argument('--frames', type=int, default=48,
                   help='measure the first N frames (0: all)')
    p.add_argument('--popping_frames', type=int, default=8,
                   help='popping: on the first N frames')
    p.add_argument('--stats', nargs='+', choices=STATS, default=list(STATS),
                   help='BatchNorm statistics at generation')
    p.add_argument('--flow', choices=('dis', 'farneback'), default='dis')
    p.add_argument('--backend', default='auto', help='stylize.py backend')
    p.add_argument('--device', default='@numpy', help='Chainer device')
    p.add_argument('--workdir', default=None,
                   help='models, data and weights go here (default: a temporary '
                        'folder, removed at the end)')
    p.add_argument('--keep', action='store_true',
                   help='keep the temporary work folder')
    p.add_argument('--json', help='write every figure to this JSON file')
    args = p.parse_args(argv)
    if args.iterations < 1 or args.image_size % 4 or args.image_size < 16:
        p.error('--iterations must be >= 1 and --image_size a multiple of 4 (>= 16)')
    if 'stable-10%' in args.runs and not args.lambda_10 and 'stable' not in args.runs:
        p.error("the 'stable-10%' run needs the 'stable' run or --lambda_10")
    if args.frames == 1:
        p.error('--frames must be at least 2')
    return args


def main(argv=None):
    options = parse_args(argv)
    started = time.time()
    os.environ.setdefault('OPENCV_FFMPEG_LOGLEVEL', '-8')
    temporary = options.workdir is None
    workdir = tempfile.mkdtemp(prefix='stability_experiment_') if temporary \
        else options.workdir
    os.makedirs(workdir, exist_ok=True)
    print('work folder: {}'.format(workdir))
    print('WARNING: RANDOM stand-in VGG16 weights (the real ones are not available '
          'here): the nets learn no artistic style; the figures compare settings.')
    try:
        device = chainer.get_device(options.device)
        device.use()
        vgg_path = os.path.join(workdir, 'vgg16_random.model')
        vgg16.save_arrays(vgg_path, vgg16.random_weights(options.seed))
        if options.dataset:
            data_dir = options.dataset
        else:
            data_dir = make_crops([os.path.join(SAMPLE_IMAGES, p) for p in DEFAULT_PHOTOS],
                                  os.path.join(workdir, 'data'), options.image_size,
                                  options.crops, options.seed)
        data_count = len(dataset.list_images(data_dir))
        print('{} net, {} training images from {}, {} iterations at {}x{}, seed {}'.format(
            options.arch, data_count, data_dir, options.iterations,
            options.image_size, options.image_size, options.seed))

        wanted = [name for name in ('vanilla', 'stable', 'per-batch', 'stable-10%')
                  if name in options.runs]
        runs = []
        lambda_note = None
        by_name = {}
        for name in wanted:
            if name == 'vanilla':
                run = Run(name, 0.0)
            elif name == 'stable':
                run = Run(name, DEFAULT_LAMBDA)
            elif name == 'per-batch':
                run = Run(name, DEFAULT_LAMBDA, per_batch=True)
            else:
                if options.lambda_10:
                    value = options.lambda_10
                    lambda_note = 'lambda_noise {:g} given with --lambda_10'.format(value)
                else:
                    value, lambda_note = choose_lambda(by_name['stable'])
                print('stable-10%: ' + lambda_note)
                run = Run(name, value, note=lambda_note)
            print('training {} (lambda_noise {:g}{})'.format(
                name, run.lambda_noise, ', new noise each batch' if run.per_batch else ''),
                flush=True)
            train_run(run, options, data_dir, vgg_path, workdir, device)
            runs.append(run)
            by_name[name] = run
            print('  final on the training images: style {:.4g}, content {:.4g}, '
                  'noise MSE {:.4g}; L_pop share (last 20 %) {}'.format(
                      run.final['loss_style'], run.final['loss_feat'],
                      run.final['noise_mse'],
                      '{:.1%}'.format(run.recent('pop_share')) if run.lambda_noise
                      else '-'), flush=True)

        rows, frames, size = measure_models(runs, options)
        print()
        print('{} net, {} iterations at {}px, seed {}; clip {} frames at {}x{}; RANDOM '
              'stand-in VGG16 weights'.format(options.arch, options.iterations,
                                               options.image_size, options.seed,
                                               frames, size[0], size[1]))
        print(format_table(rows))
        if lambda_note:
            print('stable-10%: ' + lambda_note)
        print('total {:.0f} s'.format(time.time() - started))
        if options.json:
            text = json.dumps(document(options, runs, rows, frames, size, lambda_note,
                                       started), indent=2) + '\n'
            npz.atomic_write(options.json, lambda f: f.write(text.encode('utf-8')))
            print('wrote {}'.format(options.json))
    finally:
        if temporary and not options.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        elif temporary:
            print('kept {}'.format(workdir))
    return 0


if __name__ == '__main__':
    sys.exit(main())
