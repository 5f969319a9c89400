"""Training a fast style-transfer net: its configuration and the trainer.

    config = TrainConfig(style_image='style.jpg', dataset='photos/', image_size=128)
    train(config)      # models/style.model and models/style.state

:class:`TrainConfig` holds every setting of a run, each with its default
(CFNS's, plus the noise-stability loss); train.py's flags are its fields.
:func:`build_trainer` makes the model, optimizer, updater and Chainer trainer
from it; :func:`train` runs them as train.py does, on one process or over MPI.
"""
import collections
import dataclasses
import functools
import math
import os
import sys
from typing import Optional, Tuple

import chainer
import numpy
from chainer import training as chainer_training
from chainer.training import extensions as chainer_extensions

from faststyle import cli
from faststyle import crops
from faststyle import dataset
from faststyle import devices
from faststyle import multinode
from faststyle import npz
from faststyle import stylize
from faststyle import trainer_extensions
from faststyle import vgg16_weights
from faststyle.errors import InputError, Interrupted, WorkError
from faststyle.updater import DivergedError, StyleTransferUpdater
import net
import noise
import vgg16


MAX_STYLE_SIZE = 4096
# The coarse style loss's reduced crop and painting: VGG16's three poolings
# leave relu4_3 a pixel of 8.
MIN_COARSE_SIZE = 8


@dataclasses.dataclass
class TrainConfig:
    """One training run. Defaults are CFNS's, plus the noise-stability loss.

    Five defaults depend on other settings and are filled in when left None:
    ``output`` (the style image's file name without extension, as CFNS),
    ``style_size`` (``image_size``, as CFNS),
    ``lambda_feat`` (30 for a loss network converted from HED, whose
    features need it to keep the scene, else CFNS's 1.0), ``loss_margin``
    (an eighth of ``image_size``) and ``noise_count`` (1000 at 512x512,
    scaled with the area). An impossible value is an InputError.
    """

    style_image: str
    dataset: str = 'dataset'
    batchsize: int = 1
    initmodel: Optional[str] = None
    resume: Optional[str] = None
    output: Optional[str] = None
    # The weights of the losses.
    lambda_tv: float = 1e-6
    lambda_feat: Optional[float] = None
    lambda_style: float = 5.0
    lambda_noise: float = 1000.0
    lambda_colour: float = 0.0
    lambda_tone: float = 0.0
    lambda_shift: float = 0.0
    # Per-crop targets (scripts/style_targets.py, scripts/teacher_targets.py),
    # their loss's weight, and whether it compares pixels rather than relu3_3.
    targets: Optional[str] = None
    lambda_target: float = 0.0
    target_pixels: bool = False
    lambda_target_style: float = 0.0
    balance_style_layers: bool = False
    lambda_coarse_style: float = 0.0
    coarse_shrink: int = 4
    epoch: int = 2
    lr: float = 1e-3
    checkpoint: int = 0
    keep_snapshots: Optional[int] = None
    image_size: int = 256
    style_size: Optional[int] = None
    scale_crops: bool = False
    loss_margin: Optional[int] = None
    crop_padding: int = 0
    vgg: str = 'vgg16.model'
    vgg_preprocessing: Optional[str] = None
    arch: str = 'deconv'
    # The residual blocks' rates (net.py); None: -i's own, else CFNS's.
    res_dilation: Optional[Tuple[int, ...]] = None
    # The fixed sparse noise image of L_pop.
    noise_range: float = 30.0
    noise_count: Optional[int] = None
    noise_seed: int = 0
    noise_per_batch: bool = False
    communicator: Optional[str] = None
    seed: int = 0
    log_interval: int = 100
    preview_interval: int = 1000
    preview_image: Optional[str] = None
    no_progress: bool = False
    gpu: int = -1
    device: Optional[str] = None

    def __post_init__(self):
        crops.check_crop_size(self.image_size)
        if self.style_size is None:
            self.style_size = self.image_size
        # The style's VGG16 features are computed whole: at 4096 px relu1_2
        # alone is 4 GB.
        if not 16 <= self.style_size <= MAX_STYLE_SIZE:
            raise InputError('--style_size must be in 16..{}'.format(MAX_STYLE_SIZE))
        if not 0 <= self.crop_padding <= stylize.MAX_PADDING or self.crop_padding % 2:
            raise InputError('--crop_padding must be an even number in 0..{} (the net '
                             'takes sizes in multiples of 4; generate.py --padding '
                             'goes to {} too)'.format(stylize.MAX_PADDING, stylize.MAX_PADDING))
        if self.loss_margin is None:
            # A padded crop has no edge for the net to paint along.
            self.loss_margin = 0 if self.crop_padding else self.image_size // 8
        if not 0 <= self.loss_margin <= self.image_size // 4:
            raise InputError('--loss_margin must be in 0..{} (a quarter of '
                             '--image_size)'.format(self.image_size // 4))
        for name in ('batchsize', 'epoch', 'log_interval', 'keep_snapshots'):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise InputError('--{} must be at least 1'.format(name))
        if self.lambda_feat is None:
            self.lambda_feat = vgg16_weights.default_content_weight(self.vgg)
        for name in ('lambda_tv', 'lambda_feat', 'lambda_style', 'lambda_coarse_style',
                     'lambda_noise',
                     'lambda_colour', 'lambda_tone', 'lambda_shift', 'lambda_target',
                     'lambda_target_style', 'noise_range', 'lr'):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise InputError('--{} must be a finite number >= 0, not {}'.format(
                    name, value))
        if bool(self.targets) != bool(self.lambda_target or self.lambda_target_style):
            raise InputError('--targets goes with --lambda_target or --lambda_target_style: '
                             'the targets and the weight of a loss towards them')
        if self.target_pixels and not self.lambda_target:
            raise InputError("--target_pixels is for --lambda_target's loss towards --targets")
        if self.coarse_shrink < 2:
            raise InputError('--coarse_shrink must be at least 2 (1 is the style loss itself)')
        smallest = min(self.image_size - 2 * self.loss_margin, self.style_size)
        if self.lambda_coarse_style and smallest // self.coarse_shrink < MIN_COARSE_SIZE:
            raise InputError(
                '--coarse_shrink {} leaves {} px of the {}-px {}: at least {} are needed '
                '(a smaller --coarse_shrink, a larger --image_size or --style_size, '
                'or a smaller --loss_margin)'.format(
                    self.coarse_shrink, smallest // self.coarse_shrink, smallest,
                    'style image' if smallest == self.style_size else 'crop the losses see',
                    MIN_COARSE_SIZE))
        if self.lr == 0:
            raise InputError('--lr must be more than 0 (at 0 nothing is learnt)')
        if self.preview_interval < 0:
            raise InputError('--preview_interval must be >= 0 (0: no previews)')
        if self.output is None:
            self.output = os.path.splitext(os.path.basename(self.style_image))[0]
        if self.noise_count is None:
            self.noise_count = noise.default_noise_count(self.image_size)
        if not 0 < self.noise_count <= self.image_size ** 2:
            raise InputError('--noise_count must be in 1..{}'.format(self.image_size ** 2))
        if self.res_dilation is not None:
            try:
                self.res_dilation = net.check_dilation(self.res_dilation)
            except InputError as e:
                raise InputError('--res_dilation: {}'.format(e))
        for name, choices in (('arch', net.ARCHS), ('communicator', multinode.COMMUNICATORS),
                              ('vgg_preprocessing', vgg16_weights.PREPROCESSING)):
            value = getattr(self, name)
            if value is not None and value not in choices:
                raise InputError('--{} must be one of {}, not {!r}'.format(
                    name, ', '.join(choices), value))


def defaults():
    """{setting: default} of every TrainConfig field that has one (train.py's
    flags take them from here)."""
    return {field.name: field.default for field in dataclasses.fields(TrainConfig)
            if field.default is not dataclasses.MISSING}


def get_device(config, comm=None):
    """--device, else -g; under MPI each process takes GPU ``intra_rank``."""
    gpu = config.gpu if comm is None or config.gpu < 0 else multinode.gpu_for_process(comm)
    device = devices.get_device(devices.specifier(gpu, config.device), 'train')
    device.use()
    return device


def check_col2im(config):
    """InputError unless a training step's column buffers stay under what
    Chainer's CUDA col2im can index (net.COL2IM_LIMIT): the net runs on the
    crop with --crop_padding on each side, VGG16 on the crop."""
    side = config.image_size + 2 * config.crop_padding
    per_crop = max(
        net.FastStyleNet(config.arch).col2im_elements_per_pixel(backward=True) * side ** 2,
        vgg16.COL2IM_ELEMENTS_PER_PIXEL * config.image_size ** 2)
    most = int((net.COL2IM_LIMIT - 1) // per_crop)
    if config.batchsize > most:
        raise InputError(
            '-b {} with --image_size {} and --crop_padding {} ({} net) is more than '
            "Chainer's GPU kernels can index in one step (2**31 elements); {}".format(
                config.batchsize, config.image_size, config.crop_padding, config.arch,
                'use -b {} or less'.format(most) if most else 'use a smaller --image_size'))


def build_trainer(config, device, train_data, comm=None, snapshots=None):
    """Model, optimizer, updater and trainer with every extension, ready to run.

    ``train_data``: an ImageDataset, or under MPI this process's share of one
    (then previews need ``config.preview_image``, which :func:`train` sets).

    ``snapshots`` (trainer_extensions.Snapshots, default: the one of
    ``config.output``) is where the savers write; the caller keeps it to save
    at the end and to say what was saved."""
    if device.xp is numpy:
        devices.keep_freed_memory()
    numpy.random.seed(config.seed)
    model = net.FastStyleNet(config.arch, dilation=config.res_dilation or net.CFNS_DILATION)
    if config.initmodel:
        model = net.load_model(config.initmodel, dilation=config.res_dilation)
        if model.arch != config.arch:
            print('note: {} is a {} net; training that layout'.format(
                config.initmodel, model.arch))
            # What follows (the summary and its notes) speaks of this layout.
            config.arch = model.arch
    config.res_dilation = model.dilation
    model.to_device(device)
    optimizer = chainer.optimizers.Adam(alpha=config.lr)
    if comm is None:
        optimizer.setup(model)
    else:
        optimizer = multinode.setup_optimizer(optimizer, model, comm)

    vgg = vgg16.load_vgg(config.vgg, config.vgg_preprocessing)
    vgg.to_device(device)
    style = dataset.load_style(config.style_image, config.style_size)
    order = dataset.ReproducibleShuffle(config.seed, len(train_data), config.batchsize)
    iterator = chainer.iterators.SerialIterator(
        train_data, config.batchsize, order_sampler=order)
    make_updater = (StyleTransferUpdater if comm is None else
                    functools.partial(multinode.MultiNodeUpdater, comm=comm))
    updater = make_updater(iterator, optimizer, vgg, style, device, config)

    if snapshots is None:
        snapshots = trainer_extensions.Snapshots(config.output)
    trainer = chainer_training.Trainer(updater, trainer_extensions.EpochLimit(config.epoch),
                                       out=snapshots.directory)
    if comm is None:
        trainer.extend(trainer_extensions.StopOnSignal(snapshots))
    else:
        # Collective extensions: on every rank, with the same triggers.
        trainer.extend(multinode.average_before_snapshots(model, comm, config.checkpoint))
        trainer.extend(multinode.CollectiveStopOnSignal(snapshots, model, comm))
        if comm.rank != 0:
            return trainer, vgg  # only rank 0 writes files and prints
    trainer.extend(trainer_extensions.epoch_snapshot(snapshots, config.keep_snapshots))
    trainer.extend(trainer_extensions.PopShareNote(config.lambda_noise))
    if config.checkpoint > 0:
        trainer.extend(trainer_extensions.checkpoint_snapshot(snapshots, config.checkpoint))
    log_trigger = trainer_extensions.every_and_last(config.log_interval)
    trainer.extend(chainer_extensions.LogReport(
        trigger=log_trigger, filename=snapshots.name + '.log'))
    # The printed table has a column for each loss in use (the .log has them all):
    # all of them make it about 200 characters wide.
    weighted = [('loss_coarse_style', config.lambda_coarse_style),
                ('loss_colour', config.lambda_colour), ('loss_tone', config.lambda_tone),
                ('loss_target', config.lambda_target),
                ('loss_target_style', config.lambda_target_style),
                ('loss_pop', config.lambda_noise),
                ('loss_shift', config.lambda_shift),
                ('pop_share', config.lambda_noise)]
    trainer.extend(chainer_extensions.PrintReport(
        ['epoch', 'iteration', 'main/loss', 'main/loss_feat', 'main/loss_style', 'main/loss_tv']
        + ['main/' + name for name, weight in weighted if weight] + ['elapsed_time'],
        out=trainer_extensions.CleanLog(sys.stdout)), trigger=log_trigger)
    # On a terminal only: in a file or a batch-job log its cursor escapes are noise.
    if not config.no_progress and sys.stdout.isatty():
        trainer.extend(chainer_extensions.ProgressBar(update_interval=1))
    if config.preview_interval > 0:
        preview = dataset.load_preview(config.preview_image or train_data.paths[0],
                                       config.image_size)
        trainer.extend(
            trainer_extensions.Preview(preview, snapshots.stem + '_preview'),
            trigger=trainer_extensions.every_and_last(config.preview_interval))
    return trainer, vgg


def resume(trainer, path, per_process=False):
    """Load a .state: ours restores everything, a CFNS one the optimizer only.

    The kind is told from what the file holds: ours has the trainer's
    ``updater/...`` entries, CFNS's is a Chainer Adam serialization (``t``,
    ``epoch`` and ``m``/``v`` of every parameter). Anything else, a .model
    above all, is refused: training from scratch over it would lose it.
    So is a .state of another dataset, or under MPI (``per_process``) of
    another number of processes: its data order could not continue.
    """
    arrays = npz.open_npz(path)
    iterator = trainer.updater.get_iterator('main')
    if any(key.startswith('updater/') for key in arrays):
        check_dilation_of_state(arrays, trainer.updater.get_optimizer('main').target, path)
        order_key = 'updater/iterator:main/order'
        if order_key in arrays:
            saved = arrays.header(order_key)[0]
            # An epoch uses n_data - n_data % batchsize images (CFNS).
            epoch_size = iterator.order_sampler.epoch_size
            if tuple(saved) != (epoch_size,):
                raise InputError(
                    '{}: its data order is for epochs of {} images{}, this run has {}; '
                    'resume with the same -d and -b{}, or start from its weights with '
                    '-i'.format(path, saved[0] if saved else 0,
                                ' per process' if per_process else '', epoch_size,
                                ' and as many processes' if per_process else ''))
        note = ''
        noise_image = trainer.updater.noise
        if noise_image is not None and 'updater/noise' not in arrays:
            # A snapshot trained without L_pop, continued with it: the noise
            # image is the one --noise_seed draws (it is saved from now on).
            arrays = collections.ChainMap(arrays, {'updater/noise': noise_image})
            note = '; it was trained without L_pop, which starts now'
        try:
            npz.load_arrays(arrays, trainer, source=path)
        except InputError as e:  # an array of another shape, or one missing
            raise InputError('{}; a .state resumes with the flags of the run that wrote it '
                             '(--arch, --res_dilation, --image_size, -b, the L_pop '
                             'flags)'.format(e))
        return 'iteration {}{}'.format(trainer.updater.iteration, note)
    optimizer = trainer.updater.get_optimizer('main')
    check_cfns_state(arrays, optimizer.target, path)
    npz.load_arrays(arrays, optimizer, strict=False, source=path)
    return 'optimizer state only (a CFNS .state)'


def check_dilation_of_state(arrays, model, path):
    """InputError unless our .state ``arrays`` trained a net at ``model``'s
    residual rates: a file at CFNS's rates has no entry for them, which a
    load would not miss."""
    key = 'updater/model:main/' + net.DILATION_KEY
    recorded = net.recorded_dilation(
        {net.DILATION_KEY: arrays[key]} if key in arrays else {}, path)
    if recorded != model.dilation:
        raise InputError('{}: it trained a net with residual dilation {}, this run has {}; '
                         'resume with --res_dilation {}'.format(
                             path, *[net.dilation_text(rates) for rates in
                                     (recorded, model.dilation, recorded)]))


def check_cfns_state(arrays, model, path):
    """InputError unless ``arrays`` is an Adam state for ``model``'s parameters."""
    params = {name.lstrip('/'): param for name, param in model.namedparams()}
    moments = [key for key in arrays if key.rsplit('/', 1)[-1] in ('m', 'v', 'vhat')]
    if 't' not in arrays or not moments:
        looks = ('a .model (network weights): start from it with -i, not -r'
                 if 'c1/W' in arrays else
                 'not a .state snapshot of train.py or CFNS (no optimizer state)')
        raise InputError('{}: {}'.format(path, looks))
    for key in moments:
        param = params.get(key.rsplit('/', 1)[0])
        if param is None:
            raise InputError('{}: {} belongs to no parameter of the {} net'.format(
                path, key, model.arch))
        if tuple(arrays.header(key)[0]) != tuple(param.shape):
            raise InputError('{}: {} has shape {}, the parameter has {}'.format(
                path, key, tuple(arrays.header(key)[0]), tuple(param.shape)))


def describe(config, train_data, skipped, vgg, comm=None):
    print('{}{}{}'.format(
        cli.counted(len(train_data), 'training image'), '' if comm is None else ' per process',
        '; {} unreadable, skipped: first {}'.format(len(skipped), skipped[0]) if skipped
        else ''))
    if comm is not None:
        print('{} communicator: {}'.format(
            config.communicator, multinode.describe_group(comm, config.batchsize)))
    iterations = config.epoch * (len(train_data) // config.batchsize)  # as CFNS
    print('{}, {}, {} net{}, L_pop: lambda {:g}, {} noisy pixels '
          'in +-{:g}{}'.format(cli.counted(iterations, 'iteration'),
                               cli.counted(config.epoch, 'epoch'), config.arch,
                               '' if config.res_dilation in (None, net.CFNS_DILATION) else
                               ' (residual dilation {})'.format(
                                   net.dilation_text(config.res_dilation)),
                               config.lambda_noise,
                               config.noise_count, config.noise_range,
                               ', new each batch' if config.noise_per_batch else ''))
    print('losses: content {:g}, style {:g}{}{}, total variation {:g}{}{}{}{}{}, on {}'.format(
        config.lambda_feat, config.lambda_style,
        ' (layers balanced)' if config.balance_style_layers else '',
        ', style at 1/{} size {:g}'.format(config.coarse_shrink, config.lambda_coarse_style)
        if config.lambda_coarse_style else '', config.lambda_tv,
        ', colour {:g}'.format(config.lambda_colour) if config.lambda_colour else '',
        ', tone {:g}'.format(config.lambda_tone) if config.lambda_tone else '',
        ', shift {:g}'.format(config.lambda_shift) if config.lambda_shift else '',
        ', target {:g}{} (the targets in {})'.format(
            config.lambda_target, ', pixels' if config.target_pixels else '', config.targets)
        if config.lambda_target else '',
        ', target style {:g} (the targets in {})'.format(config.lambda_target_style,
                                                        config.targets)
        if config.lambda_target_style else '',
        'the crop without {} px along each edge'.format(config.loss_margin)
        if config.loss_margin else 'the whole crop'))
    if config.crop_padding:
        print('each crop is mirrored {} px outward before the net, as generate.py '
              '--padding does'.format(config.crop_padding))
    if config.lambda_noise and config.arch == 'deconv':
        print('note: in our measurements L_pop steadied video with --arch resize, '
              'not with the deconv net (docs/stability.md)')
    if vgg.is_stand_in:
        print('WARNING: {} holds RANDOM stand-in VGG16 weights, so this run will '
              'not learn a style; {}.'.format(config.vgg, vgg16_weights.HOW_TO_GET))


# What open_training_data gives: the dataset of this process, the files it
# skipped and the first image of the whole set (the default preview); the
# last two on the process that read the directory only.
TrainingData = collections.namedtuple('TrainingData', 'data skipped first_path')


def open_training_data(config, comm):
    """The TrainingData; under MPI rank 0 reads the directory and scatters it.

    Whoever reads it notes when CFNS's unscaled crops would be small
    patches of the images (their sizes come from the headers already read)."""
    train_data, skipped, first_path = None, None, None
    if multinode.is_writer(comm):
        train_data, skipped = dataset.open_dataset(config.dataset, config.image_size,
                                                   config.scale_crops, config.targets)
        first_path = train_data.paths[0]
        note = '' if config.scale_crops else dataset.patch_note(train_data.sizes,
                                                              config.image_size)
        if note:
            print('note: ' + note)
    if comm is not None:
        import chainermn
        train_data = chainermn.scatter_dataset(train_data, comm, shuffle=True,
                                               seed=config.seed)
    return TrainingData(train_data, skipped, first_path)


def check_before_work(config, snapshots):
    """Before any work: can the model, the snapshot, the log and the
    previews be written where -o says? Are the style image and the VGG16
    weights there (before a large dataset is scanned)?"""
    for path in (snapshots.model_path, snapshots.state_path):
        # Not -r's .state: resuming a run saves over its own snapshot.
        cli.check_writable(path, inputs=[config.vgg, config.initmodel])
    if config.preview_interval > 0:
        cli.check_writable_directory(snapshots.stem + '_preview', 'preview folder')
    dataset.open_user_image(config.style_image, 'style image')
    vgg16.check_vgg_path(config.vgg)


def replaced_note(config, snapshots):
    """A note when this run will save over a model that it does not resume
    (CFNS replaces it without a word; a forgotten -o or -r loses a training),
    else ''."""
    if not os.path.exists(snapshots.model_path):
        return ''
    if (config.resume and os.path.exists(snapshots.state_path)
            and os.path.samefile(config.resume, snapshots.state_path)):
        return ''
    hint = ''
    if not config.resume and os.path.exists(snapshots.state_path):
        hint = '; -r {} resumes its run'.format(snapshots.state_path)
    return 'note: {} exists and this run will replace it (-o names another output{})'.format(
        snapshots.model_path, hint)


def train(config):
    """Train as train.py does: check the outputs, read the data, build the
    trainer, resume, run, save; on one process, or over MPI with
    ``config.communicator``. Bad input is an InputError (under MPI it aborts
    the job), a failure a WorkError, a clean stop on a signal Interrupted,
    each saying what was kept; cli.run_cli turns them into exit statuses."""
    snapshots = trainer_extensions.Snapshots(config.output)
    comm = None
    trainer = None
    try:
        if config.communicator:
            comm = multinode.create_communicator(config.communicator)
            multinode.abort_on_uncaught_exceptions()
        if multinode.is_writer(comm):
            check_before_work(config, snapshots)
            note = replaced_note(config, snapshots)
            if note:
                print(note)
        device = get_device(config, comm)
        if device.xp is not numpy:
            check_col2im(config)
        train_data, skipped, first_path = open_training_data(config, comm)
        if config.preview_image is None and first_path is not None:
            config = dataclasses.replace(config, preview_image=first_path)
        trainer, vgg = build_trainer(config, device, train_data, comm, snapshots)
        if multinode.is_writer(comm):
            describe(config, train_data, skipped, vgg, comm)
        if config.resume:
            state = resume(trainer, config.resume, per_process=comm is not None)
            if trainer.stop_trigger(trainer):
                raise InputError('{}: its training has reached epoch {:g}, and -e counts '
                                 'epochs in all: give a larger -e than {} to go on'.format(
                                     config.resume, trainer.updater.epoch_detail,
                                     config.epoch))
            if multinode.is_writer(comm):
                print('resumed from {}: {}'.format(config.resume, state))
        # Our own exceptions get a one-line message below, not the loop's traceback.
        trainer.run(show_loop_exception_msg=False)
    except InputError as e:
        if comm is not None:  # maybe this rank only: the others would hang
            multinode.abort(comm, 'error: {}'.format(e))
        raise
    except WorkError as e:  # a snapshot could not be written (full disk, ...)
        raise WorkError('{}; training stopped at iteration {}; {}'.format(
            e, trainer.updater.iteration if trainer else 0, last_saved(snapshots)))
    except DivergedError as e:  # under MPI all ranks raise it together
        hint = ('try a lower --lr' if trainer.updater.iteration > 0 else
                'it did at the first step: check the style image, --vgg and -i')
        # One message for the whole group: the other ranks fail silently.
        raise WorkError('{}; training stopped and nothing was saved for this '
                        'iteration (the last snapshot is intact); {}'.format(e, hint)
                        if multinode.is_writer(comm) else '')
    except Interrupted as e:  # under MPI all ranks raise it together
        if multinode.is_writer(comm):
            # The same flags: without its -o a resumed run saves under the
            # style's name.
            print('\ninterrupted ({}); saved {} and {}; continue with the same flags '
                  'and -r {}'.format(e, snapshots.model_path, snapshots.state_path,
                                     snapshots.state_path))
        raise
    if multinode.is_writer(comm):
        try:
            snapshots.save(trainer)
            print(snapshots.written())
        except WorkError as e:
            raise WorkError('{}; training finished but its final save failed; {}'.format(
                e, last_saved(snapshots)))


def last_saved(snapshots):
    """Which snapshot survives a failed save, in words."""
    path = snapshots.last_saved
    return ('the last complete snapshot is {}'.format(path) if path else
            'no snapshot of this run was saved')

