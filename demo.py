"""The main job on what the repository ships, in a few minutes on a CPU.

1. writes STAND-IN VGG16 weights (random, in CFNS's vgg16.model layout),
2. trains a small stabilized net (noise loss on) on sample_images/,
3. stylizes a sample image and the sample video clip with it,
4. measures how steady the video is (stability.py).

With random VGG16 weights the net learns no artistic style: this shows that
every step runs, not what a style looks like. For real styles get the VGG16
weights (setup_model.sh) and train on a large photo set such as MSCOCO.
"""
import os
import subprocess
import sys
import time

import chainer_compat  # noqa: F401  (before Chainer: numpy 2, Py 3.12+)

ROOT = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(ROOT, 'demo_output')


def run(script, *args):
    command = [sys.executable, os.path.join(ROOT, script)] + [str(a) for a in args]
    print('\n$ python {} {}'.format(script, ' '.join(str(a) for a in args)), flush=True)
    subprocess.run(command, cwd=ROOT, check=True)


def main():
    start = time.time()
    os.makedirs(OUT, exist_ok=True)
    vgg = os.path.join('demo_output', 'vgg16_random_stand_in.model')
    model = os.path.join('demo_output', 'demo.model')
    print(__doc__)
    run('vgg16.py', '--random', '-o', vgg)
    run('train.py', '-s', 'sample_images/style.jpg', '-d', 'sample_images',
        '--vgg', vgg, '--arch', 'resize', '--image_size', '96', '-e', '10',
        '--lr', '0.01', '-o', model, '--log_interval', '10', '--preview_interval', '25')
    run('generate.py', 'sample_images/tubingen.jpg', '-m', model,
        '-o', 'demo_output/tubingen_demo.jpg')
    run('generate.py', 'sample_images/tubingen_pan.mp4', '-m', model,
        '-o', 'demo_output/tubingen_pan_demo.mp4')
    run('stability.py', 'sample_images/tubingen_pan.mp4',
        '--stylized', 'demo_output/tubingen_pan_demo.mp4')
    print('\nDemo done in {:.0f} s. Outputs in demo_output/: the model, training '
          'previews, a stylized image and video.\nThey were made with RANDOM '
          'stand-in VGG16 weights, so they show no artistic style. For real '
          'styles run `sh setup_model.sh` (downloads VGG16) and train on a large '
          'photo set, e.g. `python train.py -s style.jpg -d mscoco/ -g 0`.'.format(
              time.time() - start))


if __name__ == '__main__':
    try:
        main()
    except subprocess.CalledProcessError as e:
        sys.exit('error: demo step failed (exit status {})'.format(e.returncode))
