"""Train a fast style-transfer net that does not "pop" on video.

CFNS's command line, files and defaults, plus the noise-stability loss:

    python train.py -s style.jpg -d dataset/ -g 0 -o mystyle
"""
import collections
import functools
import math
import os
import sys

from faststyle import chainer_compat  # noqa: F401  (before Chainer: numpy 2, Py 3.12+)

import chainer
import numpy
from chainer import training
from chainer.training import extensions as chainer_extensions

from faststyle import cli
from faststyle import dataset
from faststyle import devices
from faststyle import trainer_extensions
from faststyle import multinode
import net
import noise
from faststyle import npz
import vgg16
from faststyle import vgg16_weights
from faststyle.errors import InputError, WorkError
from faststyle.updater import DivergedError, StyleTransferUpdater


def parse_args(argv=None):
    p = cli.ArgumentParser(
        description='Train a fast style-transfer net (CFNS) with the '
                    'noise-stability loss L_pop = lambda_noise * '
                    'MSE(net(x), net(x + N)).')
    devices.add_device_arguments(p)
    p.add_argument('--dataset', '-d', default='dataset',
                   help='directory of training images, read recursively '
                        '(jpg, jpeg, png, bmp, webp); CFNS used MSCOCO 80k')
    p.add_argument('--style_image', '-s', required=True, help='style image')
    p.add_argument('--batchsize', '-b', type=int, default=1, help='batch size')
    p.add_argument('--initmodel', '-i', default=None,
                   help='start from the weights of this .model (CFNS or ours)')
    p.add_argument('--resume', '-r', default=None,
                   help='resume from a .state snapshot (model, optimizer, '
                        'iteration, noise image); a CFNS .state restores the '
                        'optimizer only (give the model with -i)')
    p.add_argument('--output', '-o', default=None,
                   help='NAME writes models/NAME.model and models/NAME.state; '
                        'a path ending in .model is used as given (default: the '
                        'style image file name without extension, as CFNS)')
    p.add_argument('--lambda_tv', type=float, default=1e-6,
                   help='weight of the total-variation loss')
    p.add_argument('--lambda_feat', type=float, default=None,
                   help='weight of the content (relu3_3 feature) loss (default: '
                        '1.0 as CFNS, or 30 when --vgg was converted from HED by '
                        'vgg16.py --hed, whose features need it to keep the scene)')
    p.add_argument('--lambda_style', type=float, default=5.0,
                   help='weight of the style (Gram matrix) loss')
    p.add_argument('--epoch', '-e', type=int, default=2,
                   help='passes over the dataset')
    p.add_argument('--lr', '-l', type=float, default=1e-3,
                   help='Adam learning rate')
    p.add_argument('--checkpoint', '-c', type=int, default=0,
                   help='save models/NAME_EPOCH_BATCH.model/.state after the '
                        'batches of each epoch whose 0-based index is a multiple '
                        'of this (CFNS; 0: never)')
    cli.add_flag(p, '--keep_snapshots', type=int, default=None, metavar='N',
                 help='keep only the newest N of the per-epoch snapshots '
                      'NAME_EPOCH.model/.state that this run writes (about 28 MB '
                      'each pair): an older pair is removed once a newer one is '
                      'saved whole; NAME.model/.state and the -c checkpoints are '
                      'never removed (default: keep all, as CFNS)')
    p.add_argument('--image_size', type=int, default=256,
                   help='training crop size (a multiple of 4)')
    cli.add_flag(p, '--scale_crops', action='store_true',
                 help='scale each dataset image so that its short side is '
                      '--image_size before the centre crop, so that a crop shows '
                      'the middle of the whole picture (default: off, CFNS\'s rule: '
                      'centre-crop without scaling, enlarging only images smaller '
                      'than the crop; a 720p frame at --image_size 128 then trains '
                      'on a small patch of it)')
    p.add_argument('--loss_margin', type=int, default=None,
                   help='compute every loss on the crop without this many '
                        'pixels along each edge, so that the net cannot score '
                        'by painting the style into a frame along the borders, '
                        'which generate.py crops away (default: an eighth of '
                        '--image_size; 0: the whole crop, as CFNS)')
    p.add_argument('--vgg', default='vgg16.model',
                   help='VGG16 weights in CFNS layout (see setup_model.sh)')
    p.add_argument('--vgg_preprocessing', choices=vgg16_weights.PREPROCESSING,
                   default=None,
                   help="VGG16 input: 'cfns' = RGB minus 120 (CFNS), 'caffe' "
                        '= BGR minus the ImageNet mean (what the weights expect) '
                        "(default: what --vgg records ('caffe' for a file from "
                        "vgg16.py --hed), else 'cfns')")
    p.add_argument('--arch', choices=net.ARCHS, default='deconv',
                   help="decoder: 'deconv' (CFNS master) or 'resize' (CFNS "
                        'resize-conv branch: no checkerboard)')
    p.add_argument('--lambda_noise', type=float, default=1000.0,
                   help='weight of the stability loss L_pop (0: exactly CFNS)')
    p.add_argument('--noise_range', type=float, default=30.0,
                   help='noisy pixels are uniform in [-range, range] (0-255 scale)')
    p.add_argument('--noise_count', type=int, default=None,
                   help='number of noisy pixels (default: 1000 at 512x512, '
                        'scaled with the image area)')
    p.add_argument('--noise_seed', type=cli.seed, default=0,
                   help='seed of the fixed noise image')
    p.add_argument('--noise_per_batch', action='store_true',
                   help='draw a new noise image every mini-batch (for comparison; '
                        'Rainy & de Berker found one fixed image works as well)')
    p.add_argument('--communicator', choices=multinode.COMMUNICATORS, default=None,
                   help='train over MPI processes with this ChainerMN '
                        'communicator (start with mpiexec -n N; pure_nccl on GPUs, '
                        'non_cuda_aware for GPUs with NCCL but an MPI without CUDA '
                        'support, naive on CPU); the effective batch is N x '
                        '--batchsize; see docs/cluster.md')
    p.add_argument('--seed', type=cli.seed, default=0,
                   help='seed for initial weights and data order')
    p.add_argument('--log_interval', type=int, default=100,
                   help='print and log the losses every this many iterations')
    p.add_argument('--preview_interval', type=int, default=1000,
                   help='write a stylized preview image every this many '
                        'iterations (0: never): the whole --preview_image, its '
                        'long side scaled to 512 pixels (or --image_size if '
                        'larger), run as generate.py runs the net (padding, '
                        'median filter), into models/NAME_preview/')
    p.add_argument('--preview_image', default=None,
                   help='content image for previews (default: the first '
                        'dataset image)')
    p.add_argument('--no_progress', action='store_true',
                   help='no progress bar (e.g. in batch-job logs)')
    args = p.parse_args(argv)
    if args.image_size < 16 or args.image_size % 4:
        p.error('--image_size must be a multiple of 4 and at least 16')
    if args.loss_margin is None:
        args.loss_margin = args.image_size // 8
    if not 0 <= args.loss_margin <= args.image_size // 4:
        p.error('--loss_margin must be in 0..{} (a quarter of --image_size)'.format(
            args.image_size // 4))
    for flag in ('batchsize', 'epoch', 'log_interval', 'keep_snapshots'):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            p.error('--{} must be at least 1'.format(flag))
    if args.lambda_feat is None:
        args.lambda_feat = vgg16_weights.default_content_weight(args.vgg)
    for flag in ('lambda_tv', 'lambda_feat', 'lambda_style', 'lambda_noise',
                 'noise_range', 'lr'):
        value = getattr(args, flag)
        if not (math.isfinite(value) and value >= 0):
            p.error('--{} must be a finite number >= 0, not {}'.format(flag, value))
    if args.output is None:
        args.output = os.path.splitext(os.path.basename(args.style_image))[0]
    if args.noise_count is None:
        args.noise_count = noise.default_noise_count(args.image_size)
    if not 0 < args.noise_count <= args.image_size ** 2:
        p.error('--noise_count must be in 1..{}'.format(args.image_size ** 2))
    return args


def get_device(args, comm=None):
    """--device, else -g; under MPI each process takes GPU ``intra_rank``."""
    gpu = args.gpu if comm is None or args.gpu < 0 else multinode.gpu_for_process(comm)
    device = devices.get_device(devices.specifier(gpu, args.device), 'train')
    device.use()
    return device


def build_trainer(args, device, train_data, comm=None, snapshots=None):
    """Model, optimizer, updater and trainer with every extension, ready to run.

    ``snapshots`` (trainer_extensions.Snapshots, default: the one of
    ``args.output``) is where the savers write; the caller keeps it to save
    at the end and to say what was saved."""
    numpy.random.seed(args.seed)
    model = net.FastStyleNet(args.arch)
    if args.initmodel:
        model = net.load_model(args.initmodel)
        if model.arch != args.arch:
            print('note: {} is a {} net; training that layout'.format(
                args.initmodel, model.arch))
            # What follows (the summary and its notes) speaks of this layout.
            args.arch = model.arch
    model.to_device(device)
    optimizer = chainer.optimizers.Adam(alpha=args.lr)
    if comm is None:
        optimizer.setup(model)
    else:
        optimizer = multinode.setup_optimizer(optimizer, model, comm)

    vgg = vgg16.load_vgg(args.vgg, args.vgg_preprocessing)
    vgg.to_device(device)
    style = dataset.load_style(args.style_image, args.image_size)
    order = dataset.ReproducibleShuffle(args.seed, len(train_data), args.batchsize)
    iterator = chainer.iterators.SerialIterator(
        train_data, args.batchsize, order_sampler=order)
    make_updater = (StyleTransferUpdater if comm is None else
                    functools.partial(multinode.MultiNodeUpdater, comm=comm))
    updater = make_updater(
        iterator, optimizer, vgg, style, device, args.image_size,
        args.lambda_feat, args.lambda_style, args.lambda_tv, args.lambda_noise,
        args.noise_count, args.noise_range, args.noise_seed, args.noise_per_batch,
        loss_margin=args.loss_margin)

    if snapshots is None:
        snapshots = trainer_extensions.Snapshots(args.output)
    trainer = training.Trainer(updater, (args.epoch, 'epoch'), out=snapshots.directory)
    if comm is None:
        trainer.extend(trainer_extensions.StopOnSignal(snapshots))
    else:
        # Collective extensions: on every rank, with the same triggers.
        trainer.extend(multinode.average_before_snapshots(model, comm, args.checkpoint))
        trainer.extend(multinode.CollectiveStopOnSignal(snapshots, model, comm))
        if comm.rank != 0:
            return trainer, vgg  # only rank 0 writes files and prints
    trainer.extend(trainer_extensions.epoch_snapshot(snapshots, args.keep_snapshots))
    if args.checkpoint > 0:
        trainer.extend(trainer_extensions.checkpoint_snapshot(snapshots, args.checkpoint))
    log_trigger = (args.log_interval, 'iteration')
    trainer.extend(chainer_extensions.LogReport(
        trigger=log_trigger, filename=snapshots.name + '.log'))
    trainer.extend(chainer_extensions.PrintReport(
        ['epoch', 'iteration', 'main/loss', 'main/loss_feat', 'main/loss_style',
         'main/loss_tv', 'main/loss_pop', 'main/pop_share', 'elapsed_time'],
        out=trainer_extensions.CleanLog(sys.stdout)), trigger=log_trigger)
    # On a terminal only: in a file or a batch-job log its cursor escapes are noise.
    if not args.no_progress and sys.stdout.isatty():
        trainer.extend(chainer_extensions.ProgressBar(update_interval=1))
    if args.preview_interval > 0:
        preview = dataset.load_preview(args.preview_image or dataset.first_path(train_data),
                                       args.image_size)
        trainer.extend(
            trainer_extensions.Preview(preview, snapshots.stem + '_preview'),
            trigger=(args.preview_interval, 'iteration'))
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
        noise = trainer.updater.noise
        if noise is not None and 'updater/noise' not in arrays:
            # A snapshot trained without L_pop, continued with it: the noise
            # image is the one --noise_seed draws (it is saved from now on).
            arrays = collections.ChainMap(arrays, {'updater/noise': noise})
            note = '; it was trained without L_pop, which starts now'
        npz.load_arrays(arrays, trainer, source=path)
        return 'iteration {}{}'.format(trainer.updater.iteration, note)
    optimizer = trainer.updater.get_optimizer('main')
    check_cfns_state(arrays, optimizer.target, path)
    npz.load_arrays(arrays, optimizer, strict=False, source=path)
    return 'optimizer state only (a CFNS .state)'


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


def describe(args, train_data, skipped, vgg, comm=None):
    print('{} training images{} ({} unreadable, skipped){}'.format(
        len(train_data), '' if comm is None else ' per process', len(skipped),
        ': first {}'.format(skipped[0]) if skipped else ''))
    if comm is not None:
        print('{} communicator: {}'.format(
            args.communicator, multinode.describe_group(comm, args.batchsize)))
    iterations = args.epoch * (len(train_data) // args.batchsize)  # as CFNS
    print('{} iterations, {} epochs, {} net, L_pop: lambda {:g}, {} noisy pixels '
          'in +-{:g}{}'.format(iterations, args.epoch, args.arch, args.lambda_noise,
                               args.noise_count, args.noise_range,
                               ', new each batch' if args.noise_per_batch else ''))
    print('losses: content {:g}, style {:g}, total variation {:g}, on the crop without '
          '{} px along each edge'.format(args.lambda_feat, args.lambda_style,
                                          args.lambda_tv, args.loss_margin))
    if args.lambda_noise and args.arch == 'deconv':
        print('note: in our measurements L_pop steadied video with --arch resize, '
              'not with the deconv net (docs/stability.md)')
    if vgg.is_stand_in:
        print('WARNING: {} holds RANDOM stand-in VGG16 weights, so this run will '
              'not learn a style; {}.'.format(args.vgg, vgg16_weights.HOW_TO_GET))


def open_training_data(args, comm):
    """The dataset; under MPI rank 0 reads the directory and scatters it.

    Whoever reads it notes when CFNS's unscaled crops would be small
    patches of the images (their sizes come from the headers already read)."""
    train_data, skipped = None, None
    if multinode.is_writer(comm):
        train_data, skipped = dataset.open_dataset(args.dataset, args.image_size,
                                                   args.scale_crops)
        note = '' if args.scale_crops else dataset.patch_note(train_data.sizes,
                                                              args.image_size)
        if note:
            print('note: ' + note)
    if comm is None:
        return train_data, skipped
    import chainermn
    return chainermn.scatter_dataset(train_data, comm, shuffle=True,
                                     seed=args.seed), skipped


def check_outputs(args, snapshots):
    """Before any work: can the model, the snapshot, the log and the
    previews be written where -o says?"""
    for path in (snapshots.model_path, snapshots.state_path):
        cli.check_writable(path)
    if args.preview_interval > 0:
        cli.check_writable_directory(snapshots.stem + '_preview', 'preview folder')


def main(argv=None):
    """The command line; exits with 2 for bad input, 1 for a failure during
    training, 130 when interrupted (see cli.py)."""
    status = cli.run_cli(run, argv)
    if status:
        sys.exit(status)


def run(argv=None):
    args = parse_args(argv)
    snapshots = trainer_extensions.Snapshots(args.output)
    comm = None
    trainer = None
    try:
        if args.communicator:
            comm = multinode.create_communicator(args.communicator)
            multinode.abort_on_uncaught_exceptions()
        if multinode.is_writer(comm):
            check_outputs(args, snapshots)
        device = get_device(args, comm)
        train_data, skipped = open_training_data(args, comm)
        trainer, vgg = build_trainer(args, device, train_data, comm, snapshots)
        if multinode.is_writer(comm):
            describe(args, train_data, skipped, vgg, comm)
        if args.resume:
            state = resume(trainer, args.resume, per_process=comm is not None)
            if multinode.is_writer(comm):
                print('resumed from {}: {}'.format(args.resume, state))
        # Our own exceptions get a one-line message below, not the loop's traceback.
        trainer.run(show_loop_exception_msg=False)
    except InputError as e:
        if comm is not None:  # maybe this rank only: the others would hang
            multinode.abort(comm, 'error: {}'.format(e))
        print('error: {}'.format(e), file=sys.stderr)
        return 2
    except WorkError as e:  # a snapshot could not be written (full disk, ...)
        raise WorkError('{}; training stopped at iteration {}; {}'.format(
            e, trainer.updater.iteration if trainer else 0, last_saved(snapshots)))
    except DivergedError as e:  # under MPI all ranks raise it together
        hint = ('try a lower --lr' if trainer.updater.iteration > 0 else
                'it did at the first step: check the style image, --vgg and -i')
        sys.exit('error: {}; training stopped and nothing was saved for this '
                 'iteration (the last snapshot is intact); {}'.format(e, hint)
                 if multinode.is_writer(comm) else 1)
    except trainer_extensions.Interrupted as e:  # under MPI all ranks raise it together
        if multinode.is_writer(comm):
            print('\ninterrupted ({}); saved {} and {}; continue with -r {}'.format(
                e, snapshots.model_path, snapshots.state_path, snapshots.state_path))
        sys.exit(130)
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


if __name__ == '__main__':
    main()
