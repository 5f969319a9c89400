"""The jobs/ scripts through sbatch on a one-node SLURM (slurm_cluster.py), on CPU.

Run with ``make slurm-test`` (root; installs slurm-wlm and munge if missing).
``make test`` leaves this folder out (pyproject.toml, norecursedirs): without
SLURM these tests fail, they do not skip.

The jobs are submitted from a folder laid out like a checkout (the commands,
jobs/ and logs/ of this repository), as the scripts ask. Only command-line
options the scripts' comments tell users to adapt are overridden
(``--gpus=0`` and the CPU counts for a node without GPUs, the time limit);
the scripts run as they are.
"""
import json
import math
import os
import re
import sys
import time

import cv2
import numpy
import pytest
from PIL import Image

from conftest import ROOT, assert_same_arrays, write_image
from helpers_generate import make_frames, make_model, make_video_opencv
from slurm_cluster import ClusterError, OneNodeSlurm

STYLIZE = 'jobs/stylize_videos_array.sbatch'
TRAIN = 'jobs/train_multinode.sbatch'
# What every job gets: the Python running the tests, its mpiexec (the mpich
# wheel's, next to it), one thread per process on the 2 CPUs.
COMMON = {'PYTHON': sys.executable, 'OMP_NUM_THREADS': '1',
          'PATH': os.path.dirname(sys.executable) + os.pathsep + os.environ['PATH']}


@pytest.fixture(scope='module')
def slurm(tmp_path_factory):
    cluster = OneNodeSlurm(tmp_path_factory.mktemp('slurm'))
    try:
        cluster.start()
        failure = None
    except ClusterError as e:
        failure = str(e)
    if failure:  # outside the except block: the message alone, no chained traceback
        cluster.stop()
        pytest.fail('cannot start a one-node SLURM: {}'.format(failure), pytrace=False)
    yield cluster
    cluster.stop()


@pytest.fixture(scope='module')
def checkout(tmp_path_factory):
    """Where jobs are submitted from: the repository's commands, jobs/ and logs/."""
    root = tmp_path_factory.mktemp('checkout')
    for name in ('train.py', 'generate.py', 'jobs'):
        os.symlink(os.path.join(ROOT, name), str(root / name))
    # SLURM opens --output=logs/... before the script runs (so before its
    # mkdir -p logs): a clone must already have the folder.
    assert os.path.isdir(os.path.join(ROOT, 'logs')), 'the repository must keep logs/'
    (root / 'logs').mkdir()
    return root


def read(path):
    with open(str(path), errors='replace') as f:
        return f.read()


def by_task(records):
    return {int(r['ArrayTaskId']): r for r in records}


# --- stylize_videos_array.sbatch --------------------------------------------------

# Sorted, task k of 3 takes inputs k and k + 3: task 1 an image, then the
# long clip, during which it is cancelled.
# The long clip lasts long enough (several seconds even on a quiet machine) for
# the test to cancel its task while it is being written.
CLIPS = {'0_clip.mp4': 3, '2_clip.mp4': 3, '4_long_clip.mp4': 200}  # frames
PHOTOS = ('1_photo.png', '3_photo.jpg')
SHARDS = {0: ['0_clip.mp4', '3_photo.jpg'], 1: ['1_photo.png', '4_long_clip.mp4'],
          2: ['2_clip.mp4']}
STYLIZE_OPTIONS = ['--array=0-2', '--gpus=0', '--cpus-per-task=1', '--time=10']


def make_stylize_inputs(directory):
    directory.mkdir()
    for name, frames in CLIPS.items():
        make_video_opencv(directory / name, make_frames(frames, 24, 32, seed=frames), 10)
    for i, name in enumerate(PHOTOS):
        write_image(str(directory / name), (30, 22), seed=i)


def frame_count(path):
    capture = cv2.VideoCapture(str(path))
    count = 0
    while capture.read()[0]:
        count += 1
    capture.release()
    return count


def summary_lines(logs, name):
    """The lines generate.py prints when it has written stylized/NAME."""
    pattern = re.compile(r'^stylized/{}: '.format(re.escape(name)), re.M)
    return sum(len(pattern.findall(read(log))) for log in logs)


def stylize_logs(checkout, job_id):
    logs = [checkout / 'logs' / 'stylize-{}_{}.out'.format(job_id, k) for k in range(3)]
    for log in logs:
        assert log.exists(), sorted(os.listdir(str(checkout / 'logs')))
    return logs


def test_stylize_array_covers_each_input_once_and_a_resubmission_redoes_the_rest(
        slurm, checkout, tmp_path):
    inputs = tmp_path / 'inputs'
    make_stylize_inputs(inputs)
    variables = dict(COMMON, INPUT=str(inputs), OUT='stylized', GPU='-1',
                     MODEL=make_model(tmp_path / 'style.model', 'deconv'))
    out = checkout / 'stylized'

    first = slurm.sbatch(STYLIZE, STYLIZE_OPTIONS, variables, checkout)
    # Cancel task 1 while it writes the long clip (its temporary file exists).
    deadline = time.monotonic() + 180
    while not (out.exists() and any('~4_long_clip-' in n for n in os.listdir(str(out)))):
        assert time.monotonic() < deadline, 'task 1 never started the long clip'
        time.sleep(0.05)
    slurm.run(['scancel', '{}_1'.format(first)])
    tasks = by_task(slurm.wait(first, timeout=180))
    assert {k: r['JobState'] for k, r in tasks.items()} == {
        0: 'COMPLETED', 1: 'CANCELLED', 2: 'COMPLETED'}
    first_logs = stylize_logs(checkout, first)
    done = sorted(os.listdir(str(out)))
    # The cancelled clip is not there, not even half-written or as a temporary file.
    assert done == ['0_clip.mp4', '1_photo.png', '2_clip.mp4', '3_photo.jpg'], (
        done, read(first_logs[1]))
    before = {name: os.stat(str(out / name)) for name in done}
    for k in (0, 2):
        assert 'done: {} written, 0 skipped, 0 failed'.format(len(SHARDS[k])) in read(
            first_logs[k])
    # scancel's SIGTERM reached generate.py, which removed its unfinished output.
    assert summary_lines([first_logs[1]], '1_photo.png') == 1, read(first_logs[1])
    assert 'interrupted (SIGTERM); unfinished outputs were removed' in read(first_logs[1])

    second = slurm.sbatch(STYLIZE, STYLIZE_OPTIONS, variables, checkout)
    tasks = by_task(slurm.wait(second, timeout=180))
    second_logs = stylize_logs(checkout, second)
    assert all(r['JobState'] == 'COMPLETED' for r in tasks.values()), [
        read(log) for log in second_logs]
    assert 'done: 0 written, 2 skipped, 0 failed' in read(second_logs[0])
    assert 'done: 1 written, 1 skipped, 0 failed' in read(second_logs[1])
    assert 'done: 0 written, 1 skipped, 0 failed' in read(second_logs[2])
    names = sorted(CLIPS) + sorted(PHOTOS)
    assert sorted(os.listdir(str(out))) == sorted(names)
    for name, stat in before.items():  # left as they were, not rewritten
        after = os.stat(str(out / name))
        assert (after.st_ino, after.st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns), name
    # Every input stylized exactly once over the two submissions.
    for name in names:
        assert summary_lines(first_logs + second_logs, name) == 1, name
    for name, frames in CLIPS.items():
        assert frame_count(out / name) == frames, name
    for name in PHOTOS:
        with Image.open(str(out / name)) as stylized, Image.open(str(inputs / name)) as source:
            assert stylized.size == source.size, name
            assert numpy.asarray(stylized).std() > 0, name


# --- train_multinode.sbatch -------------------------------------------------------

IMAGES = 40  # 20 per process: an epoch is 20 iterations of -b 1
TRAIN_OPTIONS = ['--nodes=1', '--ntasks-per-node=2', '--cpus-per-task=1',
                 '--gpus-per-node=0']
# The interrupted run must still be training when SLURM signals it. With
# --time=1 and --signal=B:TERM@5 the signal comes 25 to 55 s after the start
# (slurmctld looks at time limits every 30 s); the cancel, with the test
# cluster's OverTimeLimit=1, not before 120 s.
TRAINING_SECONDS = 75
TIME_LIMIT_OPTIONS = ['--time=1', '--signal=B:TERM@5']


@pytest.fixture(scope='module')
def training_inputs(tmp_path_factory, vgg_path):
    root = tmp_path_factory.mktemp('training')
    (root / 'images').mkdir()
    for i in range(IMAGES):
        write_image(str(root / 'images' / 'img{:02d}.png'.format(i)), (40, 36), seed=i)
    write_image(str(root / 'style.jpg'), (48, 48), seed=99)
    return root, vgg_path


def train_variables(training_inputs, name, epochs):
    root, vgg_path = training_inputs
    return dict(COMMON, STYLE=str(root / 'style.jpg'), DATASET=str(root / 'images'),
                NAME=name, COMMUNICATOR='naive', GPU='-1', BATCH='1', LR='0.01',
                EPOCHS=str(epochs), CHECKPOINT='0',
                EXTRA_ARGS='--vgg {} --image_size 32 --preview_interval 0 '
                           '--log_interval 20 --keep_snapshots 1'.format(vgg_path))


def train_log(checkout, job_id):
    return read(checkout / 'logs' / 'fast-style-{}.out'.format(job_id))


def state_iteration(path):
    with numpy.load(str(path)) as state:
        return int(state['updater/iteration'])


@pytest.fixture(scope='module')
def short_training(slurm, checkout, training_inputs):
    """Two epochs, well within the time limit; also measures the speed."""
    job = slurm.sbatch(TRAIN, TRAIN_OPTIONS + ['--time=10'],
                       train_variables(training_inputs, 'short', 2), checkout)
    record, = slurm.wait(job, timeout=300)
    log = train_log(checkout, job)
    assert (record['JobState'], record['ExitCode'], record['Restarts']) == (
        'COMPLETED', '0:0', '0'), log
    with open(str(checkout / 'models' / 'short.log')) as f:
        reports = json.load(f)
    return log, reports


def test_train_multinode_trains_with_two_processes(short_training, checkout):
    log, reports = short_training
    assert 'naive communicator: 2 processes (2 per node)' in log
    assert '40 iterations, 2 epochs' in log
    assert 'saved models/short.model' in log
    assert 'resuming' not in log
    assert [r['iteration'] for r in reports] == [20, 40]
    assert reports[-1]['main/loss'] < 0.8 * reports[0]['main/loss']
    assert state_iteration(checkout / 'models' / 'short.state') == 40


def test_train_multinode_saves_requeues_and_resumes_exactly(
        slurm, checkout, training_inputs, short_training):
    _, reports = short_training
    seconds_per_epoch = reports[-1]['elapsed_time'] / 2
    epochs = max(3, math.ceil(TRAINING_SECONDS / seconds_per_epoch))
    iterations = epochs * IMAGES // 2
    interrupted = slurm.sbatch(TRAIN, TRAIN_OPTIONS + TIME_LIMIT_OPTIONS,
                               train_variables(training_inputs, 'requeued', epochs), checkout)
    reference = slurm.sbatch(TRAIN, TRAIN_OPTIONS + ['--time=30'],
                             train_variables(training_inputs, 'reference', epochs), checkout)
    timeout = 8 * TRAINING_SECONDS + 120
    record, = slurm.wait(interrupted, timeout=timeout)
    log = train_log(checkout, interrupted)
    assert (record['JobState'], record['ExitCode']) == ('COMPLETED', '0:0'), log
    requeues = int(record['Restarts'])
    assert requeues >= 1, log
    assert log.count('time limit near: asking training to save and stop') == requeues, log
    assert log.count('saved models/requeued.state; requeueing job {} to continue'.format(
        interrupted)) == requeues, log
    resumed_at = [int(i) for i in re.findall(
        r'^resumed from models/requeued\.state: iteration (\d+)$', log, re.M)]
    assert len(resumed_at) == requeues, log
    # Each run went on from where the previous one stopped, mid-training.
    assert resumed_at == sorted(resumed_at) and 0 < resumed_at[0] and resumed_at[-1] < iterations
    assert state_iteration(checkout / 'models' / 'requeued.state') == iterations

    record, = slurm.wait(reference, timeout=timeout)
    reference_log = train_log(checkout, reference)
    assert (record['JobState'], record['ExitCode'], record['Restarts']) == (
        'COMPLETED', '0:0', '0'), reference_log
    assert 'interrupted' not in reference_log
    assert state_iteration(checkout / 'models' / 'reference.state') == iterations
    # No step lost or repeated across the requeues: the weights bit for bit.
    # The BatchNormalization running averages (only generate.py --stats
    # running uses them) agree to float32 rounding: each stop averaged them
    # over the processes mid-epoch, the uninterrupted run only at epoch ends;
    # the same linear updates, rounded in another order.
    assert_same_arrays(str(checkout / 'models' / 'requeued.model'),
                       str(checkout / 'models' / 'reference.model'),
                       rounding_only=('/avg_mean', '/avg_var'))
