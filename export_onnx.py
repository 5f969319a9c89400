"""Export a fast-style .model (CFNS or ours, either layout) to ONNX.

    python export_onnx.py models/style.model -o models/style.onnx [--stats instance]

The graph's input "input" is RGB float32 in [0, 255] of shape (N, 3, H, W),
H and W multiples of 4 (other sizes come back short of their last rows or
columns); its output "output" has the same shape and range. generate.py's
padding, cropping and median filter are not part of the graph. OpenVINO
runs it in bfloat16 on CPUs that have bfloat16 unless told f32
(INFERENCE_PRECISION_HINT). More: docs/generate.md; how the graph is
written: faststyle/onnx_graph.py.
"""
import sys

from faststyle import chainer_compat  # noqa: F401  (before Chainer: numpy 2, Py 3.12+)

from faststyle import cli
from faststyle import onnx_graph
from faststyle.errors import InputError
import net


def parse_args(argv):
    parser = cli.ArgumentParser(
        description='Export a fast-style .model (CFNS or ours) to ONNX.',
        epilog=__doc__.split('\n\n')[2], formatter_class=cli.RawDescriptionHelpFormatter)
    parser.add_argument('model', help='the .model file (CFNS or train.py output)')
    parser.add_argument('-o', '--out', default=None,
                        help='output .onnx file (default: the model path with .onnx)')
    parser.add_argument('--stats', choices=net.STATS, default='instance',
                        type=net.stats_name,
                        help="BatchNorm statistics baked into the graph: 'instance' = "
                             "each image's own (CFNS's generate.py), 'running' = the "
                             'averages from training')
    return parser.parse_args(argv)


def run(argv=None):
    args = parse_args(argv)
    out = args.out
    if out is None:
        out = (args.model[:-len('.model')] if args.model.endswith('.model')
               else args.model) + '.onnx'
    cli.check_writable(out, inputs=[args.model])  # before the model is converted
    if not out.lower().endswith('.onnx'):
        raise InputError('{}: the output must be an .onnx file'.format(out))
    arch = onnx_graph.export(args.model, out, args.stats)
    print('wrote {} ({} layout, {} statistics)'.format(out, arch, args.stats))


def main(argv=None):
    """The exit status of the command line (cli.run_cli)."""
    return cli.run_cli(run, argv)


if __name__ == '__main__':
    sys.exit(main())
