"""Data-parallel training under ``mpiexec -n 2`` with the 'naive' communicator (CPU).

The reference for "N processes train like one" is written out here: the
same global batches, each process's part run through the real updater on
its own (BatchNormalization uses per-process batch statistics, as under
MPI), the gradients averaged as ChainerMN's allreduce does, one Adam step.
"""
import os
import shutil
import subprocess
import sys

import chainer
import numpy
import pytest
from PIL import Image

from conftest import ROOT, assert_same_arrays, model_arrays, write_image

from faststyle import dataset
import train
from faststyle import training
from faststyle.updater import StyleTransferUpdater

# mpi4py and mpich (mpiexec) are in requirements-dev.txt: without them these
# tests fail (an ImportError here, test_mpiexec_is_installed below); they are
# not skipped, which would hide a broken install.
import mpi4py  # noqa: E402,F401

MPIEXEC = os.path.join(os.path.dirname(sys.executable), 'mpiexec')
PROBE = os.path.join(ROOT, 'tests', 'multinode_probe.py')
TRAIN = os.path.join(ROOT, 'train.py')
TIMEOUT = 240  # seconds; a hang shows up as a timeout, not a stuck test run
PROCESSES = 2


def test_mpiexec_is_installed():
    assert shutil.which(MPIEXEC), (
        'no mpiexec next to {} (pip install -r requirements-dev.txt)'.format(
            sys.executable))


@pytest.fixture(scope='module')
def workdir(tmp_path_factory):
    """Five training images (5 over 2 processes: the split pads one), a style."""
    root = tmp_path_factory.mktemp('multinode')
    images = root / 'images'
    images.mkdir()
    for i in range(5):
        write_image(str(images / 'img{}.png'.format(i)), (40, 36), seed=i)
    write_image(str(root / 'style.jpg'), (48, 48), seed=99)
    return root


def train_args(workdir, vgg_path, *extra):
    return ['-s', str(workdir / 'style.jpg'), '-d', str(workdir / 'images'),
            '--vgg', vgg_path, '--image_size', '32', '-b', '2', '-e', '2',
            '--communicator', 'naive', '--no_progress', '--log_interval', '1',
            '--preview_interval', '0', '--lr', '0.01'] + list(extra)


def mpirun(cwd, script, args, timeout=TIMEOUT):
    command = [MPIEXEC, '-n', str(PROCESSES), sys.executable, script] + list(args)
    # The probe imports the repository's modules like the tests do.
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.run(command, cwd=str(cwd), capture_output=True, text=True,
                          timeout=timeout, env=env)


def rank_arrays(record, rank):
    prefix = 'rank{}/'.format(rank)
    return {key[len(prefix):]: record[key] for key in record.files
            if key.startswith(prefix) and key != prefix + 'paths'}


def is_parameter(key):
    return key.rsplit('/', 1)[-1] in ('W', 'b', 'gamma', 'beta')


@pytest.fixture(scope='module')
def two_rank_run(workdir, vgg_path):
    """One 2-process run of the real train.main(), recorded by the probe."""
    run_dir = workdir / 'run'
    run_dir.mkdir()
    result = mpirun(run_dir, PROBE, [str(run_dir / 'record.npz'), '--'] +
                    train_args(workdir, vgg_path, '-o', 'mpi'))
    assert result.returncode == 0, result.stdout + result.stderr
    return run_dir, numpy.load(str(run_dir / 'record.npz')), result


class ReplayIterator(chainer.dataset.Iterator):
    """Gives the updater the batches one process loaded, in that order."""

    def __init__(self, images, batch_size):
        self.images = images
        self.batch_size = batch_size
        self.position = 0
        self.epoch = 0

    def next(self):
        batch = self.images[self.position:self.position + self.batch_size]
        self.position += self.batch_size
        return batch


class GradientMeanOptimizer:
    """Stands in for ChainerMN's multi-node optimizer in one process.

    The updater calls ``update()`` once per process part; the N parts'
    gradients are summed in rank order and divided by N (the naive
    communicator's allreduce), then the real optimizer takes one step.
    """

    def __init__(self, optimizer, processes):
        self.optimizer = optimizer
        self.processes = processes
        self.pending = []

    @property
    def target(self):
        return self.optimizer.target

    def update(self):
        params = sorted(self.target.namedparams())
        self.pending.append([param.grad.copy() for _, param in params])
        if len(self.pending) < self.processes:
            return
        for i, (_, param) in enumerate(params):
            total = self.pending[0][i]
            for grads in self.pending[1:]:
                total = total + grads[i]
            param.grad = total / numpy.float32(self.processes)
        self.pending = []
        self.optimizer.update()


def reference_training(workdir, vgg_path, paths_per_rank, steps):
    """One process, the same global batches, the gradient mean written out."""
    args = train.parse_args(train_args(workdir, vgg_path, '-o', 'reference'))
    device = chainer.get_device('@numpy')
    train_data, _ = dataset.open_dataset(args.dataset, args.image_size)
    # build_trainer seeds and builds the net exactly as each rank does.
    trainer, vgg = training.build_trainer(args, device, train_data)
    optimizer = GradientMeanOptimizer(trainer.updater.get_optimizer('main'), PROCESSES)
    style = dataset.load_style(args.style_image, args.image_size)
    updaters = []
    for paths in paths_per_rank:
        loader = dataset.ImageDataset(list(paths), args.image_size)
        images = [loader.get_example(i) for i in range(len(paths))]
        updaters.append(StyleTransferUpdater(
            ReplayIterator(images, args.batchsize), optimizer, vgg, style, device, args))
    def weights():
        return {name.lstrip('/'): param.array.copy()
                for name, param in optimizer.target.namedparams()}
    initial = weights()
    for _ in range(steps):
        for one_process in updaters:
            one_process.update_core()
    return initial, weights()


def test_ranks_end_identical_and_match_one_process(two_rank_run, workdir, vgg_path):
    run_dir, record, result = two_rank_run
    rank0, rank1 = rank_arrays(record, 0), rank_arrays(record, 1)
    assert sorted(rank0) == sorted(rank1)
    for key in rank0:  # weights and BN running averages, bit for bit
        numpy.testing.assert_array_equal(rank0[key], rank1[key], err_msg=key)

    paths = [record['rank{}/paths'.format(r)] for r in range(PROCESSES)]
    # 5 images over 2 processes: 3 each (one shared); an epoch is 3 // 2 = 1
    # batch of 2 (CFNS: n_data // batchsize batches), 2 epochs.
    assert [len(p) for p in paths] == [4, 4]
    assert set(paths[0]) | set(paths[1]) == set(
        str(workdir / 'images' / 'img{}.png'.format(i)) for i in range(5))
    steps = len(paths[0]) // 2

    initial, reference = reference_training(workdir, vgg_path, paths, steps)
    assert sorted(reference) == sorted(k for k in rank0 if is_parameter(k))
    moved = max(float(numpy.abs(reference[k] - initial[k]).max()) for k in reference)
    assert moved > 1e-3  # the comparison below is not between two untrained nets
    for key, expected in reference.items():
        numpy.testing.assert_array_equal(rank0[key], expected, err_msg=key)


def test_only_rank_0_writes_one_set_of_files(two_rank_run):
    run_dir, record, result = two_rank_run
    assert sorted(os.listdir(str(run_dir / 'models'))) == [
        'mpi.log', 'mpi.model', 'mpi.state', 'mpi_0.model', 'mpi_0.state',
        'mpi_1.model', 'mpi_1.state']
    saved = model_arrays(str(run_dir / 'models' / 'mpi.model'))
    final = rank_arrays(record, 0)
    assert sorted(saved) == sorted(final)
    for key in saved:
        numpy.testing.assert_array_equal(saved[key], final[key], err_msg=key)
    assert result.stdout.count('saved models/mpi.model') == 1
    assert result.stdout.count('training images per process') == 1


def test_resume_continues_the_group_run_exactly(two_rank_run, workdir, vgg_path):
    run_dir, record, _ = two_rank_run
    resume_dir = workdir / 'resume'
    (resume_dir / 'models').mkdir(parents=True)
    shutil.copy(str(run_dir / 'models' / 'mpi_0.state'), str(resume_dir / 'models'))
    saved_at = int(numpy.load(str(resume_dir / 'models' / 'mpi_0.state'))['updater/iteration'])
    assert saved_at == 1  # the end of epoch 0

    result = mpirun(resume_dir, TRAIN, train_args(
        workdir, vgg_path, '-o', 'resumed', '-r', 'models/mpi_0.state'))
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'resumed from models/mpi_0.state: iteration 1' in result.stdout
    state = numpy.load(str(resume_dir / 'models' / 'resumed.state'))
    assert int(state['updater/iteration']) == 2
    # The same weights as the uninterrupted run: no step lost or repeated.
    assert_same_arrays(str(resume_dir / 'models' / 'resumed.model'),
                       str(run_dir / 'models' / 'mpi.model'))


def test_resume_with_another_process_count_is_refused(two_rank_run, workdir, vgg_path):
    run_dir, _, _ = two_rank_run
    args = train_args(workdir, vgg_path, '-o', 'single', '-r',
                      str(run_dir / 'models' / 'mpi_0.state'))
    command = [MPIEXEC, '-n', '1', sys.executable, TRAIN] + args
    result = subprocess.run(command, cwd=str(workdir), capture_output=True,
                            text=True, timeout=TIMEOUT)
    assert result.returncode != 0
    # Epochs of 3 // 2 batches of 2 per process there, 5 // 2 batches of 2 here.
    assert 'epochs of 2 images per process, this run has 4' in result.stderr
    assert 'Traceback' not in result.stderr


def test_an_error_on_rank_0_alone_ends_the_job(workdir, vgg_path, tmp_path):
    # Only rank 0 loads the preview image; rank 1 would wait for it forever.
    missing = str(tmp_path / 'missing.jpg')
    result = mpirun(tmp_path, TRAIN, train_args(
        workdir, vgg_path, '--preview_interval', '1', '--preview_image', missing),
        timeout=60)
    assert result.returncode == 1
    assert result.stderr.count('error: preview image {} does not exist'.format(missing)) == 1
    assert 'Traceback' not in result.stderr


def test_the_default_preview_is_the_first_image_of_the_whole_set(workdir, vgg_path,
                                                                 tmp_path):
    """Rank 0 holds a shuffled share of the images; its previews still show
    the first image of the whole dataset, as one process's do."""
    images = tmp_path / 'images'
    images.mkdir()
    # Only the first image is wide, so the preview's size tells which it shows.
    for i in range(4):
        write_image(str(images / 'img{}.png'.format(i)), (64 if i == 0 else 40, 36), seed=i)
    result = mpirun(tmp_path, TRAIN, train_args(workdir, vgg_path, '-d', str(images),
                                                '-e', '1', '--preview_interval', '1',
                                                '-o', 'p'))
    assert result.returncode == 0, result.stderr
    previews = sorted((tmp_path / 'models' / 'p_preview').iterdir())
    assert [p.name for p in previews] == ['iter_0000001.jpg']
    wide = dataset.load_preview(str(images / 'img0.png'), 32)
    assert Image.open(str(previews[0])).size == (wide.shape[1], wide.shape[0]) == (512, 288)


def test_a_nan_on_one_rank_stops_every_rank(workdir, vgg_path):
    run_dir = workdir / 'nan'
    run_dir.mkdir()
    result = mpirun(run_dir, PROBE, [str(run_dir / 'record.npz'), '--nan_on_rank', '1',
                                     '--at_iteration', '2', '--'] +
                    train_args(workdir, vgg_path, '-o', 'nan', '-e', '3'))
    assert result.returncode == 1, result.stdout + result.stderr
    assert 'non-finite in 1 of 2 processes at iteration 2' in result.stderr
    assert result.stderr.count('error:') == 1
    assert not os.path.exists(str(run_dir / 'models' / 'nan.model'))


def test_a_signal_to_one_rank_stops_the_group_with_a_snapshot(workdir, vgg_path):
    run_dir = workdir / 'signal'
    run_dir.mkdir()
    result = mpirun(run_dir, PROBE, [str(run_dir / 'record.npz'), '--signal_rank', '1',
                                     '--at_iteration', '2', '--'] +
                    train_args(workdir, vgg_path, '-o', 'stopped', '-e', '3'))
    assert result.returncode == 130, result.stdout + result.stderr
    assert 'interrupted (a signal to another process at iteration 2)' in result.stdout
    state = numpy.load(str(run_dir / 'models' / 'stopped.state'))
    assert int(state['updater/iteration']) == 2


def test_communicator_without_mpi4py_is_a_clear_error(tmp_path, workdir, vgg_path):
    shim = tmp_path / 'shim' / 'mpi4py'
    shim.mkdir(parents=True)
    (shim / '__init__.py').write_text("raise ImportError('No module named mpi4py')\n")
    env = dict(os.environ, PYTHONPATH=str(shim.parent))
    result = subprocess.run([sys.executable, TRAIN] + train_args(workdir, vgg_path),
                            cwd=str(tmp_path), env=env, capture_output=True,
                            text=True, timeout=TIMEOUT)
    assert result.returncode == 2  # bad input (errors.py)
    assert 'error: --communicator needs mpi4py' in result.stderr
    assert 'pip install -r requirements-mpi.txt' in result.stderr
    assert 'Traceback' not in result.stderr
