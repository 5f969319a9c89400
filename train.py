"""Train a fast style-transfer net that does not "pop" on video.

CFNS's command line, files and defaults, plus the noise-stability loss:

    python train.py -s style.jpg -d dataset/ -g 0 -o mystyle
"""
import sys

from faststyle import chainer_compat  # noqa: F401  (before Chainer: numpy 2, Py 3.12+)

from faststyle import cli
from faststyle import devices
from faststyle import images
from faststyle import multinode
from faststyle import training
from faststyle import vgg16_weights
from faststyle.errors import InputError
import net


def parse_args(argv=None):
    p = cli.ArgumentParser(
        description='Train a fast style-transfer net (CFNS) with the '
                    'noise-stability loss L_pop = lambda_noise * '
                    'MSE(net(x), net(x + N)).',
        interrupted='once training has begun, the .model and .state of the last '
                    'finished step are saved: go on with -r NAME.state')
    devices.add_device_arguments(p)
    p.add_argument('--dataset', '-d',
                   help='directory of training images, read recursively ({}); '
                        'CFNS used MSCOCO 80k'.format(
                            ', '.join(ext[1:] for ext in images.IMAGE_EXTENSIONS)))
    p.add_argument('--style_image', '-s', required=True, help='style image')
    p.add_argument('--batchsize', '-b', type=int, help='batch size')
    p.add_argument('--initmodel', '-i',
                   help='start from the weights of this .model (CFNS or ours)')
    p.add_argument('--resume', '-r',
                   help='resume from a .state snapshot (model, optimizer, '
                        'iteration, noise image); a CFNS .state restores the '
                        'optimizer only (give the model with -i)')
    p.add_argument('--output', '-o',
                   help='NAME writes models/NAME.model and models/NAME.state; '
                        'a path ending in .model is used as given (default: the '
                        'style image file name without extension, as CFNS)')
    p.add_argument('--lambda_tv', type=float,
                   help='weight of the total-variation loss')
    p.add_argument('--lambda_feat', type=float,
                   help='weight of the content (relu3_3 feature) loss (default: '
                        '1.0 as CFNS, or 30 when --vgg was converted from HED by '
                        'vgg16.py --hed, whose features need it to keep the scene)')
    p.add_argument('--lambda_style', type=float,
                   help='weight of the style (Gram matrix) loss')
    p.add_argument('--lambda_colour', '--lambda_color', type=float,
                   help='weight of the colour loss: how far the colour histogram '
                        'of the output is from the style image\'s, along six '
                        'colour axes (0: off, as CFNS); the Gram '
                        'matrices of a loss network converted from HED barely '
                        'see colour, see docs/training.md')
    p.add_argument('--lambda_tone', type=float,
                   help='weight of the tone loss: how far each output pixel\'s '
                        'brightness is from the style image\'s brightness at the '
                        'rank of its input pixel\'s (the input\'s lights and darks '
                        'kept in place, in the painting\'s tones; 0: off). '
                        'With --lambda_colour it keeps the painting\'s darks from '
                        'collecting as blots in skies and roads')
    p.add_argument('--lambda_shift', type=float,
                   help='weight of the shift loss (0: off): how far the output '
                        'of each crop moved by 1-3 pixels, as a camera pan moves '
                        'the scene, is from the output moved along; the net '
                        'halves the picture twice and can repaint its strokes '
                        'for such a move, which shows as warping error on video '
                        '(one more pass of the net a step)')
    p.add_argument('--targets', metavar='DIR',
                   help='a folder of per-crop style targets, at the crop\'s path '
                        'in -d, as .png (python -m scripts.style_targets: each crop '
                        'optimised against the losses; or scripts.teacher_targets: '
                        'each crop as an arbitrary-style net paints it); with '
                        '--lambda_target the net\'s output of each crop is also '
                        'pulled towards its target, the optimum that the losses '
                        'alone take thousands of steps to approach '
                        '(docs/training.md)')
    p.add_argument('--lambda_target', type=float,
                   help='weight of the target loss (0: off; needs --targets): '
                        'the content loss (relu3_3) of the output against its '
                        'target instead of the crop; on --lambda_feat\'s scale')
    p.add_argument('--lambda_target_style', type=float,
                   help='weight of the target style loss (0: off; needs --targets): '
                        'the style loss of the output against the Gram matrices of '
                        'its own target, which keeps the targets\' contrast and '
                        'colours where the target loss alone paints their average; '
                        'on --lambda_style\'s scale')
    cli.add_flag(p, '--target_pixels', action='store_true',
                 help='the target loss compares pixels (mean squared error, 0-255) '
                      'instead of relu3_3: for targets from a teacher (python -m '
                      'scripts.teacher_targets), whose strokes lie where the crop '
                      'puts them')
    cli.add_flag(p, '--balance_style_layers', action='store_true',
                 help='weight each style layer so that it counts as much as '
                      'relu1_2 (by the mean square of the style image\'s Gram '
                      'matrices); without it (CFNS) the deeper layers of a loss '
                      'network converted from HED count 1e2 to 1e7 times less, '
                      'and only fine texture and tints are learned')
    p.add_argument('--lambda_coarse_style', type=float,
                   help='weight of the coarse style loss (0: off): the style loss '
                        'of the output reduced to 1/--coarse_shrink of its size '
                        'against the style image reduced alike, so that the same '
                        'layers see the painting\'s larger shapes (planes, cells) '
                        'and not only its fine texture and tints; one more pass '
                        'of VGG16 a step, on the small image. Experimental: it '
                        'brought udnie no nearer at 720p, whose painting\'s '
                        'planes are wider than the net\'s 110-px window '
                        '(docs/training.md); tried at 5, the style weight')
    p.add_argument('--coarse_shrink', type=int, metavar='K',
                   help='the factor K that --lambda_coarse_style reduces by (the '
                        'mean of each K x K block; at least 2, and the reduced '
                        'crop and style image need at least 8 px)')
    p.add_argument('--epoch', '-e', type=int,
                   help='passes over the dataset, in all: a run resumed with -r '
                        'goes on until it has trained this many (from a CFNS '
                        '.state, which holds no place in the data: this many more)')
    p.add_argument('--lr', '-l', type=float,
                   help='Adam learning rate')
    p.add_argument('--checkpoint', '-c', type=int,
                   help='save models/NAME_EPOCH_BATCH.model/.state after the '
                        'batches of each epoch whose 0-based index is a multiple '
                        'of this (CFNS; 0: never)')
    cli.add_flag(p, '--keep_snapshots', type=int, metavar='N',
                 help='keep only the newest N of the per-epoch snapshots '
                      'NAME_EPOCH.model/.state that this run writes (about 28 MB '
                      'each pair): an older pair is removed once a newer one is '
                      'saved whole; NAME.model/.state and the -c checkpoints are '
                      'never removed (default: keep all, as CFNS)')
    p.add_argument('--image_size', type=int,
                   help='training crop size (a multiple of 4)')
    p.add_argument('--style_size', type=int,
                   help='side of the square the style image is resized to '
                        '(default: --image_size, as CFNS); larger shows the '
                        'painting\'s strokes larger against the crop')
    cli.add_flag(p, '--scale_crops', action='store_true',
                 help='scale each dataset image so that its short side is '
                      '--image_size before the centre crop, so that a crop shows '
                      'the middle of the whole picture (default: off, CFNS\'s rule: '
                      'centre-crop without scaling, enlarging only images smaller '
                      'than the crop; a 720p frame at --image_size 128 then trains '
                      'on a small patch of it)')
    p.add_argument('--loss_margin', type=int,
                   help='compute every loss on the crop without this many '
                        'pixels along each edge, so that the net cannot score '
                        'by painting the style into a frame along the borders, '
                        'which generate.py crops away (default: an eighth of '
                        '--image_size, or 0 with --crop_padding; 0: the whole '
                        'crop, as CFNS)')
    p.add_argument('--crop_padding', type=int,
                   help='run the net on each crop mirrored this many pixels '
                        'outward, as generate.py --padding does, and take the '
                        'losses on the crop: its pixels then never see the '
                        'zero-padded edge, as most of a video frame\'s do not '
                        '(even; 50, generate.py\'s default, costs about 2.5x the time per '
                        'step at 128 px; with it, --loss_margin defaults to 0) '
                        '(default: 0, as CFNS)')
    p.add_argument('--vgg',
                   help='VGG16 weights in CFNS layout (see setup_model.sh)')
    p.add_argument('--vgg_preprocessing', choices=vgg16_weights.PREPROCESSING,
                   help="VGG16 input: 'cfns' = RGB minus 120 (CFNS), 'caffe' "
                        '= BGR minus the ImageNet mean (what the weights expect) '
                        "(default: what --vgg records ('caffe' for a file from "
                        "vgg16.py --hed), else 'cfns')")
    p.add_argument('--arch', choices=net.ARCHS,
                   help="decoder: 'deconv' (CFNS master) or 'resize' (CFNS "
                        'resize-conv branch: no checkerboard)')
    p.add_argument('--res_dilation', type=int, nargs=net.RESIDUAL_BLOCKS, metavar='RATE',
                   help='the {} residual blocks\' dilation rates (1..{}; e.g. 1 2 4 2 1): '
                        'each block\'s convolutions read the quarter-size feature map '
                        'RATE pixels apart (4 x RATE input pixels), which '
                        'widens the window each output pixel is painted from '
                        '(110 px at CFNS\'s 1 1 1 1 1, 190 at 1 2 4 2 1) with the same '
                        'weights; recorded in the model, which CFNS would run at '
                        'rate 1. Experimental (docs/training.md). '
                        '(default: the rates of -i\'s model, else CFNS\'s)'.format(
                            net.RESIDUAL_BLOCKS, net.MAX_DILATION))
    p.add_argument('--lambda_noise', type=float,
                   help='weight of the stability loss L_pop (0: exactly CFNS)')
    p.add_argument('--noise_range', type=float,
                   help='noisy pixels are uniform in [-range, range] (0-255 scale)')
    p.add_argument('--noise_count', type=int,
                   help='number of noisy pixels (default: 1000 at 512x512, '
                        'scaled with the image area)')
    p.add_argument('--noise_seed', type=cli.seed,
                   help='seed of the fixed noise image')
    p.add_argument('--noise_per_batch', action='store_true',
                   help='draw a new noise image every mini-batch (for comparison; '
                        'Rainy & de Berker found one fixed image works as well)')
    p.add_argument('--communicator', choices=multinode.COMMUNICATORS,
                   help='train over MPI processes with this ChainerMN '
                        'communicator (start with mpiexec -n N; pure_nccl on GPUs, '
                        'non_cuda_aware for GPUs with NCCL but an MPI without CUDA '
                        'support, naive on CPU); the effective batch is N x '
                        '--batchsize; see docs/cluster.md')
    p.add_argument('--seed', type=cli.seed,
                   help='seed for initial weights and data order')
    p.add_argument('--log_interval', type=int,
                   help='print and log the losses every this many iterations, '
                        'and after the last')
    p.add_argument('--preview_interval', type=int,
                   help='write a stylized preview image every this many '
                        'iterations and after the last (0: never): the whole '
                        '--preview_image, its '
                        'long side scaled to 512 pixels (or --image_size if '
                        'larger), run as generate.py runs the net (padding, '
                        'median filter), into models/NAME_preview/')
    p.add_argument('--preview_image',
                   help='content image for previews (default: the first '
                        'dataset image)')
    p.add_argument('--no_progress', action='store_true',
                   help='no progress bar (e.g. in batch-job logs)')
    p.set_defaults(**training.defaults())
    try:
        return training.TrainConfig(**vars(p.parse_args(argv)))
    except InputError as e:
        p.error(str(e))


def main(argv=None):
    """The exit status of the command line (cli.run_cli)."""
    return cli.run_cli(run, argv)


def run(argv=None):
    training.train(parse_args(argv))


if __name__ == '__main__':
    sys.exit(main())
