"""Train the shipped sample models: a vanilla and a stabilized net of one style.

    python -m scripts.train_sample_models                 # about 3.5 hours on 2 CPU cores
    python -m scripts.train_sample_models -g 0 --image_size 256   # on a GPU

Both nets are trained by train.py with the HED loss network (vgg16.py
--hed) on the crops of scripts/content_crops.py. To fit a CPU budget the
twins share a start: a vanilla net is trained for ``--base_epochs``; then two
copies resume its snapshot (weights, Adam's moments, data order) and train on
to ``--base_epochs + --epochs`` epochs, one without and one with the
noise-stability loss (``--lambda_noise``; several values give more
stabilized twins). Resuming, not ``-i``, matters: a
fresh Adam undoes much of a trained net in its first hundred steps. The
shared start, once it has written its model, is skipped when the script is
run again, so a start stopped with Ctrl-C (train.py then saves its snapshot
under the final name) counts as done: this is how to shorten it to fit
the time you have (a twin stopped so goes on from its snapshot when the
script is run again). A twin that has written its model but has fewer epochs
than ``--base_epochs + --epochs`` resumes its own snapshot: run again with a
larger ``--epochs`` (and ``--only``) to train the twins on. The finished
nets are written, compressed, to models/NAME_vanilla.model,
models/NAME_stab.model (the first lambda) and models/NAME_stabLAMBDA.model
(any others), with a models/NAME_sample.json that records how they were
made, including the iterations each phase really ran. Its defaults made
the earlier candy pair; the current sample models were trained by train.py
directly, with the commands in models/README.md and models/samples.json.
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy

from faststyle import chainer_compat  # noqa: F401  (before Chainer: numpy 2, Py 3.12+)
from faststyle import cli
from faststyle import npz
from faststyle import tempfiles

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def train_command(args, output, epochs, lambda_noise, resume=None):
    command = [sys.executable, 'train.py', '-s', args.style, '-d', args.content,
               '--vgg', args.vgg, '--arch', args.arch, '--image_size',
               str(args.image_size), '-e', str(epochs), '-o', output,
               '--lambda_noise', str(lambda_noise), '-g', str(args.gpu),
               '--log_interval', '50', '--preview_interval', '500', '--no_progress']
    if resume:
        command += ['-r', resume]
    return command


def state_path(model_path):
    """The snapshot train.py writes next to ``model_path``."""
    return model_path[:-len('.model')] + '.state'


def iterations_done(model_path):
    """The iterations of the run that wrote ``model_path`` (from its .state)."""
    return int(npz.open_npz(state_path(model_path))['updater/iteration'])


def epochs_done(model_path):
    """The whole epochs of the run that wrote ``model_path`` (from its .state)."""
    return int(npz.open_npz(state_path(model_path))['updater/iterator:main/epoch'])


def ship(model_path, shipped_path):
    """The same arrays, zip-compressed: the repository's copy of a model. A
    shipped file that already holds these arrays is left as it is (a zip's
    bytes change with its time stamps, and the repository keeps every version)."""
    arrays = npz.open_npz(model_path)
    if os.path.isfile(shipped_path):
        shipped = npz.open_npz(shipped_path)
        if set(shipped) == set(arrays) and all(
                numpy.array_equal(shipped[key], arrays[key]) for key in arrays):
            return
    tempfiles.atomic_write(shipped_path, lambda f: numpy.savez_compressed(
        f, **{key: arrays[key] for key in arrays}))


def twin_names(lambdas):
    """{'vanilla': 0, 'stab': first lambda, 'stab<lambda>': each other one}."""
    twins = {'vanilla': 0.0, 'stab': lambdas[0]}
    twins.update(('stab{:g}'.format(value), value) for value in lambdas[1:])
    return twins


def twins_to_train(twins, only, total_epochs, base_model, model_of):
    """(kind, model path, snapshot to resume) of each twin that needs training:
    a missing twin starts from the shared start's snapshot, a twin with fewer
    than ``total_epochs`` goes on from its own; ``only`` (None: all) picks twins."""
    todo = []
    for kind in twins:
        if only and kind not in only:
            continue
        model = model_of(kind)
        if not os.path.isfile(model):
            todo.append((kind, model, state_path(base_model)))
        elif epochs_done(model) < total_epochs:
            todo.append((kind, model, state_path(model)))
    return todo


def run_phases(phases, threads):
    """Run (name, command, log) triples in parallel; fail if any fails."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads),
               OPENBLAS_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    running = []
    for name, command, log in phases:
        print('$ {} > {}'.format(' '.join(command), log), flush=True)
        running.append((name, subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=open(log, 'w'), stderr=subprocess.STDOUT)))
    for name, process in running:
        if process.wait() != 0:
            sys.exit('error: training {} failed (exit status {}); see its log'.format(
                name, process.returncode))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                formatter_class=cli.HelpFormatter)
    p.add_argument('-s', '--style', default='sample_images/candy.jpg', help='style image')
    p.add_argument('--name', default=None,
                   help='model name (default: the style image file name)')
    p.add_argument('--work', default='sample_training',
                   help='directory for crops, logs, snapshots and previews')
    p.add_argument('--vgg', default='vgg16.model',
                   help='loss network; written by vgg16.py --hed when missing')
    p.add_argument('--arch', default='resize', choices=('resize', 'deconv'),
                   help='transform net layout')
    p.add_argument('--image_size', type=int, default=128, help='training crop size')
    p.add_argument('--base_epochs', type=int, default=10,
                   help='epochs of the shared vanilla start')
    p.add_argument('--epochs', type=int, default=24,
                   help='epochs of each twin after the shared start')
    p.add_argument('--lambda_noise', type=float, nargs='+', default=[200.0],
                   help='weight of the stability loss for the stabilized twin; '
                        'more values train more twins (NAME_stabLAMBDA)')
    p.add_argument('--only', nargs='+', metavar='TWIN', default=None,
                   help='train only these twins, e.g. vanilla stab (default: all); '
                        'the others are shipped as they are')
    p.add_argument('-g', '--gpu', type=int, default=-1, help='GPU id (-1: CPU)')
    p.add_argument('--threads', type=int, default=os.cpu_count() or 1,
                   help='CPU threads in all (the twins get half each)')
    args = p.parse_args(argv)
    name = args.name or os.path.splitext(os.path.basename(args.style))[0]
    os.chdir(ROOT)
    os.makedirs(args.work, exist_ok=True)
    args.content = os.path.join(args.work, 'content_{}'.format(args.image_size))
    start = time.time()
    if not os.path.isdir(args.content):
        subprocess.run([sys.executable, '-m', 'scripts.content_crops', '-o', args.content,
                        '--size', str(args.image_size)], check=True)
    if not os.path.isfile(args.vgg):
        subprocess.run([sys.executable, 'vgg16.py', '--hed', '-o', args.vgg], check=True)

    def path(stem):
        return os.path.join(args.work, stem)

    base = path('{}_base.model'.format(name))
    if not os.path.isfile(base):
        run_phases([('base', train_command(args, base, args.base_epochs, 0),
                     path('base.log'))], args.threads)
    twins = twin_names(args.lambda_noise)
    todo = [(kind, train_command(args, model, args.base_epochs + args.epochs,
                                 twins[kind], resume), path('{}.log'.format(kind)))
            for kind, model, resume in twins_to_train(
                twins, args.only, args.base_epochs + args.epochs, base,
                lambda kind: path('{}_{}.model'.format(name, kind)))]
    run_phases(todo, max(1, args.threads // len(todo)) if todo else 1)
    os.makedirs('models', exist_ok=True)
    tempfiles.clean_orphans('models')  # once, before the files it ships there
    for kind in twins:
        ship(path('{}_{}.model'.format(name, kind)),
             os.path.join('models', '{}_{}.model'.format(name, kind)))
    record = {'style': args.style, 'arch': args.arch, 'image_size': args.image_size,
              'loss_network': 'HED VGG16 (vgg16.py --hed), caffe preprocessing',
              'content': 'scripts/content_crops.py --size {}'.format(args.image_size),
              'iterations_shared_start': iterations_done(base),
              'iterations_after_start': {kind: iterations_done(
                  path('{}_{}.model'.format(name, kind))) - iterations_done(base)
                  for kind in twins},
              'batchsize': 1, 'lr': 1e-3, 'seed': 0,
              'lambda_noise': twins, 'device': 'gpu {}'.format(args.gpu)
              if args.gpu >= 0 else 'cpu',
              'command': 'python -m scripts.train_sample_models ' + ' '.join(argv or sys.argv[1:])}
    tempfiles.atomic_write(os.path.join('models', '{}_sample.json'.format(name)),
                           lambda f: f.write(json.dumps(record, indent=1).encode()))
    print('wrote {} in {:.0f} min'.format(', '.join(
        'models/{}_{}.model'.format(name, kind) for kind in twins), (time.time() - start) / 60))


if __name__ == '__main__':
    main()
