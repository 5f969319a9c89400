"""A one-node SLURM on this machine, for running the jobs/ scripts through sbatch.

munged, slurmctld and slurmd run as root from the Debian packages
(``slurm-wlm``, ``munge``; ``make slurm-test`` installs them), with their
key, configuration, state, spool and logs in one temporary folder and their
ports picked free, so nothing of a system-wide SLURM is read or touched.
The node has 2 CPUs and no GPU. Whatever keeps the cluster from coming up
raises ``ClusterError`` with the daemons' logs: the tests fail, never skip.
"""
import os
import shutil
import socket
import subprocess
import time

# tests/conftest.py, which pytest loads for tests/slurm too (a parent folder).
from conftest import stop_process

DAEMONS = ('munged', 'slurmctld', 'slurmd')
CLIENTS = ('sbatch', 'scontrol', 'scancel', 'squeue', 'sinfo')
INSTALL_HINT = ('run `make slurm-test`, which installs slurm-wlm and munge with apt-get, '
                'or install them yourself (Debian/Ubuntu: apt-get install slurm-wlm munge)')
CPUS = 2
# States after which a job (or array task) does not run again by itself.
FINISHED = {'COMPLETED', 'FAILED', 'CANCELLED', 'TIMEOUT', 'NODE_FAIL', 'OUT_OF_MEMORY',
            'BOOT_FAIL', 'DEADLINE', 'PREEMPTED'}
START_TIMEOUT = 60  # seconds for the node to become idle

SLURM_CONF = """\
ClusterName=faststyle-test
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# cred_expire is also how long a requeued job waits before it may start
# again (default 120 s); sched_interval how often pending jobs are looked at.
AuthInfo=socket={munge_socket},cred_expire=10
SchedulerType=sched/builtin
SchedulerParameters=sched_interval=2
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
# No cgroups (containers often have none): processes are tracked by parent.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
JobRequeue=1
ReturnToService=2
KillWait=10
# A job past its time limit is cancelled only a minute later. slurmctld
# looks at time limits every 30 s and may send the --signal warning and the
# cancel in the same pass; the requeue test needs the warning to come first.
OverTimeLimit=1
# Finished jobs stay visible to scontrol this long (seconds).
MinJobAge=3600
InactiveLimit=0
# The node has what this file says, whatever the machine has.
SlurmdParameters=config_overrides
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd.log
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN
PartitionName=test Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


class ClusterError(Exception):
    """The one-node cluster could not be started or did not answer."""


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def parse_records(text):
    """``scontrol show -o`` output: one dict of KEY=VALUE per line."""
    records = []
    for line in text.splitlines():
        fields = {}
        for token in line.split():
            key, _, value = token.partition('=')
            fields[key] = value
        if fields:
            records.append(fields)
    return records


class OneNodeSlurm:
    """Start with :meth:`start`, stop with :meth:`stop`; ``env`` is what the
    clients (and the jobs, which inherit it through sbatch) need."""

    def __init__(self, root):
        self.root = str(root)
        self.host = socket.gethostname()
        self.conf = os.path.join(self.root, 'slurm.conf')
        self.env = dict(os.environ, SLURM_CONF=self.conf)
        self.processes = {}

    def log_tail(self, lines=15):
        parts = []
        log_dir = os.path.join(self.root, 'log')
        for name in sorted(os.listdir(log_dir)) if os.path.isdir(log_dir) else []:
            with open(os.path.join(log_dir, name), errors='replace') as f:
                tail = f.read().splitlines()[-lines:]
            parts.append('--- {}:\n{}'.format(name, '\n'.join(tail)))
        return '\n'.join(parts)

    def fail(self, message):
        raise ClusterError('{}\n{}'.format(message, self.log_tail()))

    def start(self):
        missing = [name for name in DAEMONS + CLIENTS if not shutil.which(name)]
        if missing:
            raise ClusterError('SLURM is not installed (no {} on the PATH): {}'.format(
                ', '.join(missing), INSTALL_HINT))
        if os.geteuid() != 0:
            raise ClusterError('the one-node SLURM runs its daemons as root (slurmd '
                               'starts jobs as their user); run `make slurm-test` as root')
        for sub in ('munge', 'run', 'state', 'spool', 'log'):
            os.makedirs(os.path.join(self.root, sub), exist_ok=True)
        os.chmod(os.path.join(self.root, 'munge'), 0o700)
        key = os.path.join(self.root, 'munge', 'munge.key')
        with open(key, 'wb') as f:
            f.write(os.urandom(1024))
        os.chmod(key, 0o600)
        munge_socket = os.path.join(self.root, 'run', 'munge.socket')
        with open(self.conf, 'w') as f:
            f.write(SLURM_CONF.format(
                host=self.host, root=self.root, munge_socket=munge_socket, cpus=CPUS,
                ctld_port=free_port(), slurmd_port=free_port()))
        # -f: munged refuses to run as root otherwise.
        self.spawn('munged', ['munged', '-F', '-f', '--key-file', key,
                              '--socket', munge_socket,
                              '--pid-file', os.path.join(self.root, 'run', 'munged.pid'),
                              '--seed-file', os.path.join(self.root, 'munge', 'seed'),
                              '--log-file', os.path.join(self.root, 'log', 'munged.log')])
        self.wait_until(lambda: os.path.exists(munge_socket), 'munged made no socket')
        self.spawn('slurmctld', ['slurmctld', '-D', '-i', '-f', self.conf])
        self.spawn('slurmd', ['slurmd', '-D', '-N', self.host, '-f', self.conf])
        self.wait_until(lambda: self.node_state() == 'idle',
                        'the node did not become idle in {} s'.format(START_TIMEOUT))

    def spawn(self, name, command):
        out = open(os.path.join(self.root, 'log', name + '.out'), 'wb')
        self.processes[name] = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=self.env)
        out.close()

    def wait_until(self, condition, message, timeout=START_TIMEOUT):
        deadline = time.monotonic() + timeout
        while not condition():
            dead = [name for name, p in self.processes.items() if p.poll() is not None]
            if dead:
                self.fail('{} exited while the cluster was starting'.format(', '.join(dead)))
            if time.monotonic() > deadline:
                self.fail(message)
            time.sleep(0.5)

    def node_state(self):
        try:
            result = self.run(['sinfo', '-h', '-n', self.host, '-o', '%T'], check=False)
        except subprocess.TimeoutExpired:  # slurmctld not answering yet
            return ''
        return result.stdout.strip()

    def run(self, command, check=True, env=None, cwd=None):
        result = subprocess.run(command, capture_output=True, text=True, timeout=60,
                                env=env or self.env, cwd=cwd)
        if check and result.returncode != 0:
            self.fail('{} failed ({}): {}'.format(' '.join(command), result.returncode,
                                                  result.stderr.strip()))
        return result

    def sbatch(self, script, options, variables, cwd):
        """Submit ``script`` from ``cwd`` with ``options``; ``variables`` are
        exported to the job (sbatch passes the environment on). Returns the
        job id."""
        env = dict(self.env, **variables)
        result = self.run(['sbatch', '--parsable'] + list(options) + [script], env=env,
                          cwd=str(cwd))
        return result.stdout.strip().split(';')[0]

    def jobs(self, job_id):
        """The records of a job, or of each task of an array job."""
        result = self.run(['scontrol', 'show', 'job', '-o', str(job_id)])
        return parse_records(result.stdout)

    def wait(self, job_id, timeout):
        """Wait until the job (every task of an array) has finished; its records."""
        deadline = time.monotonic() + timeout
        while True:
            records = self.jobs(job_id)
            if records and all(r['JobState'] in FINISHED for r in records):
                return records
            if time.monotonic() > deadline:
                self.run(['scancel', str(job_id)], check=False)
                self.fail('job {} not finished after {} s: {}'.format(
                    job_id, timeout, [(r.get('ArrayTaskId'), r['JobState']) for r in records]))
            time.sleep(1)

    def stop(self):
        """Cancel what still runs, then end the daemons (the processes started here)."""
        if 'slurmctld' in self.processes and self.processes['slurmctld'].poll() is None:
            self.run(['scancel', '--partition', 'test'], check=False)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and self.run(
                    ['squeue', '-h'], check=False).stdout.strip():
                time.sleep(1)
        for name in ('slurmd', 'slurmctld', 'munged'):
            process = self.processes.pop(name, None)
            if process is None or process.poll() is not None:
                continue
            stop_process(process, 20)
