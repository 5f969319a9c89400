"""jobs/train_multinode.sbatch's time-limit handling, without SLURM.

A stand-in launcher and training process take the places of srun and
train.py; the stand-in sends the script SIGTERM itself, as SLURM's
--signal=B:TERM does, so each case is timed exactly. tests/slurm runs the
script for real under sbatch.
"""
import os
import shutil
import stat
import subprocess

import pytest

SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                      'jobs', 'train_multinode.sbatch')

pytestmark = pytest.mark.skipif(
    not all(shutil.which(tool) for tool in ('bash', 'pgrep', 'pkill', 'ps')),
    reason='needs bash and procps, as a cluster node has')

# The test writes down the batch script's process id once it has started.
SIGNAL_THE_SCRIPT = ('until [ -s "$SCRIPT_PID_FILE" ]; do sleep 0.01; done\n'
                     'kill -TERM "$(cat "$SCRIPT_PID_FILE")"\n')

TRAINING_THAT_HAS_ENDED = (
    '#!/bin/sh\n'
    "trap '' TERM\n"  # past its last step: the signal changes nothing
    + SIGNAL_THE_SCRIPT +
    'echo "training done"\n'
    'exit 0\n')

TRAINING_THAT_STOPS = (
    '#!/bin/sh\n'
    "trap 'echo \"interrupted; saved\"; kill $!; exit 130' TERM\n"  # train.py's contract
    + SIGNAL_THE_SCRIPT +
    'sleep 30 &\n'
    'wait\n'
    'exit 0\n')


def write_executable(path, text):
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def run_script(tmp_path, training, **variables):
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir(exist_ok=True)
    write_executable(bin_dir / 'srun', '#!/bin/sh\nshift\nexec "$@"\n')  # drops --kill-on-bad-exit
    write_executable(bin_dir / 'scontrol', '#!/bin/sh\necho "$@" >>"{}"\n'.format(
        tmp_path / 'scontrol.calls'))
    write_executable(tmp_path / 'training', training)
    env = dict(os.environ, PATH='{}:{}'.format(bin_dir, os.environ['PATH']),
               STYLE='style.jpg', LAUNCHER='srun', PYTHON=str(tmp_path / 'training'),
               SLURM_SUBMIT_DIR=str(tmp_path), SLURM_JOB_ID='77', **variables)
    pid_file = tmp_path / 'script.pid'
    env['SCRIPT_PID_FILE'] = str(pid_file)
    if pid_file.exists():
        pid_file.unlink()
    with subprocess.Popen(['bash', SCRIPT], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as script:
        pid_file.write_text(str(script.pid))
        stdout, stderr = script.communicate(timeout=60)
    result = subprocess.CompletedProcess(script.args, script.returncode, stdout, stderr)
    calls = tmp_path / 'scontrol.calls'
    requeues = calls.read_text().splitlines() if calls.exists() else []
    if calls.exists():
        calls.unlink()
    return result, requeues


def test_signal_as_training_ends_leaves_its_exit_status(tmp_path):
    # bash's wait, interrupted by the trap as the job ends, lost the
    # training's status or reported 143 for it; the job then showed FAILED.
    # The race goes either way, so the case runs many times.
    for _ in range(20):
        result, requeues = run_script(tmp_path, TRAINING_THAT_HAS_ENDED)
        assert result.returncode == 0, result.stdout + result.stderr
        assert 'training done' in result.stdout
        assert requeues == []


def test_signal_during_training_saves_and_requeues(tmp_path):
    result, requeues = run_script(tmp_path, TRAINING_THAT_STOPS)
    assert result.returncode == 130, result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        'time limit near: asking training to save and stop',
        'interrupted; saved',
        'saved models/style.state; requeueing job 77 to continue']
    assert requeues == ['requeue 77']


def test_signal_with_requeue_off_stops_without_requeueing(tmp_path):
    result, requeues = run_script(tmp_path, TRAINING_THAT_STOPS, REQUEUE='0')
    assert result.returncode == 130, result.stdout + result.stderr
    assert 'interrupted; saved' in result.stdout
    assert requeues == []
