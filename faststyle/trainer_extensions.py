"""Trainer extensions: CFNS-named model files, previews, a clean Ctrl-C."""
import os
import signal

import chainer
from chainer import training
from PIL import Image

from faststyle import npz
from faststyle import stylize
from faststyle import tempfiles
from faststyle.errors import Interrupted


class Snapshots:
    """Where a run's files go, CFNS-style: ``-o NAME`` -> models/NAME.model/.state."""

    def __init__(self, output):
        if output.endswith('.model'):
            self.stem = output[:-len('.model')]
        else:
            self.stem = os.path.join('models', output)
        self.last_saved = None  # what the latest successful save wrote
        # What this run saved besides NAME.model/.state, for the final message:
        self.epochs = []  # epochs whose NAME_EPOCH pair is on disk, oldest first
        self.removed_epochs = 0  # older pairs removed by --keep_snapshots
        self.checkpoints = []  # NAME_EPOCH_BATCH suffixes, in order

    @property
    def model_path(self):
        return self.stem + '.model'

    @property
    def state_path(self):
        return self.stem + '.state'

    @property
    def directory(self):
        return os.path.dirname(os.path.abspath(self.stem))

    @property
    def name(self):
        return os.path.basename(self.stem)

    def save(self, trainer, suffix=''):
        """Write the net (.model) and the whole trainer (.state), each atomically.

        The .state goes first and holds the model too, so whenever the
        process dies, the newest .state is a complete snapshot to resume.
        """
        model = trainer.updater.get_optimizer('main').target
        npz.save_npz(self.stem + suffix + '.state', trainer)
        self.last_saved = self.stem + suffix + '.state'
        npz.save_npz(self.stem + suffix + '.model', model)
        self.last_saved = self.stem + suffix + '.model and .state'
        return self.stem + suffix + '.model'

    def save_epoch(self, trainer, epoch, keep=None):
        """NAME_EPOCH.model/.state; with ``keep``, then remove this run's
        older epoch pairs beyond the newest ``keep``. Only pairs this run
        wrote are removed, and only once the new pair is complete, so the
        newest epoch snapshot always survives a crash."""
        self.save(trainer, '_{}'.format(epoch))
        self.epochs.append(epoch)
        while keep is not None and len(self.epochs) > keep:
            old = self.epochs.pop(0)
            self.removed_epochs += 1
            for ext in ('.state', '.model'):
                path = '{}_{}{}'.format(self.stem, old, ext)
                try:
                    os.remove(path)
                except FileNotFoundError:
                    pass
                except OSError as e:  # a leftover file is no reason to stop training
                    print('warning: could not remove {}: {}'.format(path, e))

    def save_checkpoint(self, trainer, epoch, batch):
        """NAME_EPOCH_BATCH.model/.state (CFNS's -c); never removed."""
        suffix = '_{}_{}'.format(epoch, batch)
        self.save(trainer, suffix)
        self.checkpoints.append(suffix)

    def written(self):
        """What this run has saved, in words: the final pair, then the
        per-epoch snapshots and checkpoints that are on disk."""
        parts = ['saved {} and {}'.format(self.model_path, self.state_path)]
        if self.epochs:
            parts.append('per-epoch snapshots: {} (.model/.state{})'.format(
                self.span(['_{}'.format(e) for e in self.epochs]),
                ', {} older removed by --keep_snapshots'.format(self.removed_epochs)
                if self.removed_epochs else ''))
        if self.checkpoints:
            parts.append('checkpoints: {} (.model/.state, {} pairs)'.format(
                self.span(self.checkpoints), len(self.checkpoints)))
        return '; '.join(parts)

    def span(self, suffixes):
        """'models/x_0..x_4': the first and the last of ``suffixes``."""
        first = self.stem + suffixes[0]
        return first if len(suffixes) == 1 else '{}..{}{}'.format(
            first, self.name, suffixes[-1])


# Savers run after every other extension of the iteration (the log included),
# so a snapshot holds the state of a finished iteration.
SAVER_PRIORITY = training.PRIORITY_READER - 1


class EpochLimit:
    """The trainer's stop trigger: stop when ``epochs`` epochs are done in all.

    Chainer's ``(N, 'epoch')`` trigger fires at the next multiple of N after
    the epoch it last saw, so a run resumed at or after its N epochs went on
    to 2N. This one reads the updater's epoch only: a resumed run stops at
    ``-e`` as a run that never stopped does.
    """

    def __init__(self, epochs):
        self.epochs = epochs

    def __call__(self, trainer):
        return trainer.updater.epoch_detail >= self.epochs

    def get_training_length(self):
        """For Chainer's ProgressBar."""
        return self.epochs, 'epoch'


def every_and_last(interval):
    """A trigger that fires every ``interval`` iterations and after the last
    one, so that a run shorter than the interval still logs its losses and
    writes a preview. Stateless: a resumed run fires where one that never
    stopped does."""
    def fires(trainer):
        return trainer.updater.iteration % interval == 0 or trainer.stop_trigger(trainer)
    return fires


def epoch_and_batch(trainer):
    """CFNS's (epoch, batch index in the epoch), both from 0, of the last update.

    An epoch is ``n_data // batchsize`` batches, as in CFNS (the remainder of
    the shuffled order is not used that epoch).
    """
    iterator = trainer.updater.get_iterator('main')
    per_epoch = len(iterator.dataset) // iterator.batch_size
    done = trainer.updater.iteration - 1
    return done // per_epoch, done % per_epoch


def is_checkpoint(trainer, interval):
    """CFNS's rule: save after batch ``i`` of an epoch when ``i % interval == 0``."""
    return interval > 0 and epoch_and_batch(trainer)[1] % interval == 0


def epoch_snapshot(snapshots, keep=None):
    """After each epoch: models/NAME_EPOCH.model and .state, as CFNS; with
    ``keep``, only the newest ``keep`` of the pairs this run wrote are kept."""
    @training.make_extension(trigger=(1, 'epoch'), priority=SAVER_PRIORITY)
    def save_epoch(trainer):
        epoch, _ = epoch_and_batch(trainer)
        snapshots.save_epoch(trainer, epoch, keep)
    return save_epoch


def checkpoint_snapshot(snapshots, interval):
    """models/NAME_EPOCH_BATCH.model and .state at CFNS's checkpoints.

    The trigger is stateless (a function of the iteration), so a resumed run
    saves at the same batches as one that never stopped.
    """
    @training.make_extension(trigger=lambda trainer: is_checkpoint(trainer, interval),
                             priority=SAVER_PRIORITY)
    def save_checkpoint(trainer):
        snapshots.save_checkpoint(trainer, *epoch_and_batch(trainer))
    return save_checkpoint


class Preview(training.Extension):
    """Stylize one fixed picture now and then, to watch training.

    The picture is stylized as generate.py does it with its defaults
    (stylize.py's padding, crop and median filter), so a preview shows what
    a user of the model would get, not the training crop.
    """

    priority = training.PRIORITY_WRITER

    def __init__(self, frame, directory):
        self.frame = frame  # HxWx3 uint8 RGB (dataset.load_preview)
        self.directory = directory

    def __call__(self, trainer):
        model = trainer.updater.get_optimizer('main').target
        device = trainer.updater.device
        height, width = self.frame.shape[:2]
        x = stylize.pad_frame(self.frame, stylize.PADDING)[None]
        with chainer.using_config('train', False), chainer.no_backprop_mode():
            # Per-image statistics: previews leave the running averages alone.
            y = model(device.send(x))
        out = stylize.to_uint8(chainer.backend.CpuDevice().send(y.array)[0],
                               stylize.PADDING, height, width)
        image = Image.fromarray(stylize.postprocess(self.frame, out,
                                                    stylize.MEDIAN_FILTER, False))
        path = os.path.join(self.directory,
                            'iter_{:07d}.jpg'.format(trainer.updater.iteration))
        tempfiles.atomic_write(path, lambda f: image.save(f, format='JPEG', quality=92))


class PopShareNote(training.Extension):
    """Once, after the first STEPS steps: a note when L_pop was so small a
    share of the loss (their mean) that it cannot steady anything. (A new
    net's first step is no guide: its L_pop starts large.)

    The content and style losses scale with the loss network's features:
    with ImageNet's VGG16 they came out about 3000 times HED's on the same
    crops, and L_pop at --lambda_noise 1000 fell from about 1.5 % of the
    loss to 0.001 % (docs/training.md). The stabilization was tuned at
    about 10 %."""

    trigger = 1, 'iteration'
    STEPS = 20
    LOWEST = 1e-3  # a mean share under this is reported
    AIM = 1e-2  # the share the suggested factor brings it to

    def __init__(self, lambda_noise):
        self.lambda_noise = lambda_noise
        self.shares = [] if lambda_noise else None

    def __call__(self, trainer):
        if self.shares is None or 'main/pop_share' not in trainer.observation:
            return
        self.shares.append(trainer.observation['main/pop_share'])  # a float (the updater's)
        if len(self.shares) < self.STEPS:
            return
        share = sum(self.shares) / len(self.shares)
        self.shares = None  # said once
        if share < self.LOWEST:
            # At least AIM / LOWEST = 10, written out to two digits: 1600x.
            factor = int(float('{:.2g}'.format(self.AIM / max(share, 1e-12))))
            print('note: L_pop was {:.2g} % of the loss over the first {} steps (--lambda_noise '
                  '{:g}), too little to steady video: with this loss network raise '
                  '--lambda_noise, or lower --lambda_feat and --lambda_style, about {}x '
                  '(docs/training.md)'.format(100 * share, self.STEPS, self.lambda_noise,
                                              factor))


class StopOnSignal(training.Extension):
    """Turn Ctrl-C (SIGINT) or SIGTERM into a snapshot and a clean stop.

    The signal only sets a flag; the snapshot is taken after the current
    iteration completes, so it is never a half-updated state. A second
    Ctrl-C stops at once. A signal during the last iteration lets the run
    finish as usual: its work is done (a batch job stopped at its time
    limit then ends complete, not to be requeued for nothing).
    """

    trigger = (1, 'iteration')
    priority = SAVER_PRIORITY - 1  # after the other savers

    def __init__(self, snapshots):
        self.snapshots = snapshots
        self.signal_name = None
        self.previous = {}

    def initialize(self, trainer):
        for signum in (signal.SIGINT, signal.SIGTERM):
            self.previous[signum] = signal.signal(signum, self.request_stop)

    def request_stop(self, signum, frame):
        if self.signal_name is not None:
            raise KeyboardInterrupt
        self.signal_name = signal.Signals(signum).name

    def __call__(self, trainer):
        if self.signal_name is not None and not trainer.stop_trigger(trainer):
            self.snapshots.save(trainer)
            raise Interrupted('{} at iteration {}'.format(
                self.signal_name, trainer.updater.iteration))

    def finalize(self):
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        self.previous = {}


class CleanLog:
    """stdout for Chainer's PrintReport, without its cursor escape code
    (ESC [J, "erase below") when the output is a file or a batch-job log."""

    ERASE_BELOW = '\033[J'

    def __init__(self, stream):
        self.stream = stream

    def write(self, text):
        if not self.stream.isatty():
            text = text.replace(self.ERASE_BELOW, '')
        return self.stream.write(text)

    def flush(self):
        self.stream.flush()
