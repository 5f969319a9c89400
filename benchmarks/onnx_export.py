"""faststyle/onnx_graph.py's graph against Chainer's own exporter (onnx_chainer).

    python -m benchmarks.onnx_export [--size 320x240] [--repeat 20]

faststyle/onnx_graph.py writes the ONNX graph from net.py's layer description
(FastStyleNet.layers) instead of tracing the net with onnx_chainer, which
Chainer 7 ships. This prints, for both layouts and both BatchNorm
statistics, on a RANDOM net (speed and graph shape do not depend on the
weights):

  * whether each exporter can export it at all, and why not;
  * the node count of each graph and the nodes that normalize;
  * whether the graph takes any frame size (dynamic height and width);
  * OpenVINO fp32 time per frame at --size for each graph (median of
    --repeat, LATENCY hint), and ours as a multiple of onnx_chainer's speed.

Timings are in one run on the same machine; the load average is printed
because the machine may be shared.
"""
import argparse
import collections
import os
import statistics
import time

from faststyle import chainer_compat  # noqa: F401  (before Chainer: numpy 2, Py 3.12+)

import chainer
import numpy

from faststyle import onnx_graph
import net
from faststyle import stylize


def tracing_export(model, x):
    """onnx_chainer's graph of ``model`` at ``x``'s shape, or the reason it fails."""
    import warnings
    import onnx_chainer
    try:
        with chainer.using_config('train', False), warnings.catch_warnings():
            warnings.simplefilter('ignore')  # "tested only with opset 7 ~ 11"
            return onnx_chainer.export(model, x, opset_version=onnx_graph.OPSET), None
    except Exception as error:  # the exporter's own refusal, reported as a figure
        return None, '{}: {}'.format(type(error).__name__, str(error).split('\n')[0][:90])


def describe(proto):
    ops = collections.Counter(node.op_type for node in proto.graph.node)
    weights = {tensor.name for tensor in proto.graph.initializer}
    image = next(i for i in proto.graph.input if i.name not in weights)
    dims = image.type.tensor_type.shape.dim
    dynamic = all(dim.dim_param for dim in dims[2:])
    norm = {op: n for op, n in ops.items()
            if op in ('InstanceNormalization', 'BatchNormalization', 'ReduceMean')}
    return '{} nodes, {}, {} size'.format(
        sum(ops.values()), ', '.join('{} {}'.format(n, op) for op, n in sorted(norm.items()))
        or 'no normalization nodes', 'any' if dynamic else 'fixed')


def openvino_ms(proto, x, repeat):
    backend = stylize.OpenVINOBackend(proto.SerializeToString(), precision='fp32')
    backend(x)  # compile and warm up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        backend(x)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--size', default='320x240', help='frame WIDTHxHEIGHT, multiples of 4')
    p.add_argument('--repeat', type=int, default=20, help='timed frames per graph')
    args = p.parse_args(argv)
    width, height = (int(v) for v in args.size.split('x'))
    print('load average {:.2f}; OpenVINO fp32 at {}x{}; RANDOM nets'.format(
        os.getloadavg()[0], width, height))
    x = numpy.random.RandomState(0).uniform(0, 255, (1, 3, height, width)).astype(numpy.float32)
    for arch in net.ARCHS:
        for stats in net.STATS:
            model = net.FastStyleNet(arch, stats=stats)
            ours = onnx_graph.to_onnx(model, stats)
            traced, why_not = tracing_export(model, x)
            print('\n{} layout, {} statistics'.format(arch, stats))
            print('  export_onnx.py : {}'.format(describe(ours)))
            print('  onnx_chainer   : {}'.format(describe(traced) if traced else
                                                 'cannot export ({})'.format(why_not)))
            if not traced:
                continue
            ours_ms = openvino_ms(ours, x, args.repeat)
            traced_ms = openvino_ms(traced, x, args.repeat)
            print('  OpenVINO ms/frame: export_onnx.py {:.1f}, onnx_chainer {:.1f} '
                  '(ours {:.2f}x as fast)'.format(ours_ms, traced_ms, traced_ms / ours_ms))


if __name__ == '__main__':
    main()
