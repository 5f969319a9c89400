"""Measure how steady a stylized video is: warping error, flicker, popping.

    python stability.py clip.mp4 -m models/a.model -m models/b.model
    python stability.py clip.mp4 --stylized out.mp4 --json figures.json
    python stability.py frames/ --stylized out/ --flow_dir flow/

SOURCE is a video or a folder of frames (sorted by name, numbers in natural
order). Each -m model stylizes SOURCE (stylize.Stylizer, CFNS's computation);
each --stylized video or folder is measured as it is, made by any tool. The
table has one row per model or video and a row for SOURCE itself: no
stylization can be much steadier than its input.

Figures (all on the 0-255 scale; lower is steadier, except detail):

warp_mse   temporal warping error (Ruder et al. 2016; Lai et al. 2018): output
           frame t-1 warped onto frame t with the optical flow of the SOURCE
           (frame t to t-1), squared RGB error averaged over the channels and
           the reliable pixels (forward-backward consistent, not leaving the
           frame), then over the frame pairs.
flicker    mean absolute frame-to-frame change of the output (RGB, per
           channel) where the source stands still: source flow shorter than
           --still_flow pixels of a frame 320 pixels wide (scaled with the
           measuring width, so that the same motion is still at every --size)
           and source change below --still_change.
popping    models only: mean absolute change of the output when fresh sparse
           noise, of the kind the noise-stability loss trains with, is added
           to each input frame (--noise_count pixels, each channel uniform in
           [-range, range], seeded).
reliable / still   the share of pixels the two figures before were averaged over.
detail     how much fine detail the output has, not a steadiness figure: its
           mean squared spatial gradient, i.e. the squared differences of
           horizontally neighbouring and of vertically neighbouring pixels
           (RGB, per channel, 0-255), each direction averaged over the frame,
           the two averages averaged, then averaged over all frames. A flat
           output has 0 (and a warping error near 0).
warp/detail    warp_mse / detail: warping error per unit of detail, so that a
           flatter output does not pass for a steadier one (JSON key
           warp_per_detail; n/a, null in JSON, when detail is 0).
flicker/rms    flicker / sqrt(detail), likewise (JSON key flicker_per_rms_detail).

Besides steadiness, what the output still shows (faststyle/quality.py), so
that a picture that lost the scene or the style does not pass for a good one:

structure  how much of the scene's shapes the output keeps: correlation of
           the blurred edge strengths of source and output frame (1 = all,
           0 = none, as a flat frame), averaged over the frames.
style_dist with --style PAINTING: how far the output's textures and colours are
           from the painting's (CFNS's style loss, unweighted, with the VGG16
           of --vgg; the painting resized to the frame); lower is closer.
palette    with --style: how far the output's colours are from the painting's
           (the distance of Gaussians fitted to their CIELAB colours, in Lab
           units); the style distance with HED's edge-tuned features can
           miss that a picture has only one or two of the painting's colours.
texture_dist with --style and --texture_vgg VGG: the style distance again, with
           a second VGG16. HED's (the usual --vgg) puts nearly all of it in
           relu1_2, the colours: a colour grade of the scene scores well.
           ImageNet's VGG16 (vgg16.py --keras_onnx) puts it in relu2_2 and
           relu3_3, the painting's strokes and textures, which a colour grade
           does not have.
"""
import json
import math
import os
import sys

from faststyle import chainer_compat  # noqa: F401  (before Chainer: numpy 2, Py 3.12+)

import numpy

from faststyle import cli
from faststyle import devices
from faststyle import flow as flowlib
from faststyle import folders
from faststyle import images
from faststyle import quality
from faststyle import stability_measures
from faststyle import stylize
from faststyle import tempfiles
from faststyle.errors import InputError
import noise
import vgg16


# --- the command line -------------------------------------------------------------

def to_json(results, args, frames, size):
    return {
        'source': args.source,
        'frames': frames,
        'size': list(size),
        'flow': ('.flo files in ' + args.flow_dir) if args.flow_dir else args.flow,
        'settings': {
            'motion_boundaries': args.motion_boundaries,
            'still_flow': args.still_flow,
            'still_flow_pixels': stability_measures.still_flow_pixels(args.still_flow,
                                                                      size[0]),
            'still_change': args.still_change,
            'noise_count': args.noise_count or noise.default_noise_count(size[1], size[0]),
            'noise_range': args.noise_range, 'noise_seed': args.noise_seed,
            'stats': args.stats, 'backend': args.backend, 'precision': args.precision,
            'padding': args.padding, 'content_scale': args.content_scale,
            'style': args.style, 'vgg': args.vgg if args.style else None,
            'texture_vgg': args.texture_vgg,
            'median_filter': args.median_filter,
        },
        'rows': results,
    }


def write_json(path, document):
    text = json.dumps(document, indent=2, allow_nan=False) + '\n'
    tempfiles.atomic_write(path, lambda f: f.write(text.encode('utf-8')))


def parse_args(argv):
    parser = cli.ArgumentParser(
        description='\n\n'.join(__doc__.split('\n\n')[:2]),
        epilog=__doc__.split('\n\n', 2)[2],
        formatter_class=cli.RawDescriptionHelpFormatter)
    parser.add_argument('source', help='the source video, or a folder of its frames')
    parser.add_argument('-m', '--model', action='append', default=[],
                        help='stylize SOURCE with this .model and measure it; repeat '
                             'for more models')
    parser.add_argument('--stylized', action='append', default=[],
                        help='measure this stylized video or folder of frames (made '
                             'from SOURCE by any tool, frame for frame; frames past '
                             "the source's end are ignored); repeat for more")
    parser.add_argument('--json', help='also write the figures to this JSON file')
    cli.add_flag(parser, '--max_frames', type=int, default=0,
                 help='measure only the first N frames, at least 2 (default: 0, '
                      'all)')
    parser.add_argument('--size', type=int, default=0,
                        help='shrink frames so the longer side is at most this many '
                             'pixels before measuring and stylizing (default: as is)')
    parser.add_argument('--flow', choices=flowlib.METHODS, default='dis',
                        help="optical flow of the source: OpenCV's DIS or Farneback")
    cli.add_flag(parser, '--flow_dir',
                 help='read the source flow from Middlebury .flo files instead: '
                      'forward_I_J.flo (frame I to J=I+1) and backward_J_I.flo (J to '
                      'I), frames numbered from 1, at the measuring size')
    cli.add_flag(parser, '--write_flow',
                 help='write the computed source flow to this folder (same layout)')
    cli.add_flag(parser, '--motion_boundaries', action='store_true',
                 help="also leave out motion boundaries (Ruder et al.'s second test) "
                      'from the warping error')
    cli.add_flag(parser, '--still_flow', type=float, default=0.5,
                 help='flicker: source flow below this many pixels of a frame {} '
                      'pixels wide counts as still; scaled with the measuring width '
                      '(1.0 at 640, 2.0 at 1280), so the still share is comparable '
                      'across sizes'.format(stability_measures.STILL_REFERENCE_WIDTH))
    cli.add_flag(parser, '--still_change', type=float, default=12.0,
                 help='flicker: and the source pixel changes by less than this (mean '
                      'RGB, 0-255; above the sensor noise of typical video)')
    parser.add_argument('--style', metavar='PAINTING',
                        help='also measure the style distance of every row to this '
                             'style image')
    parser.add_argument('--vgg', default='vgg16.model',
                        help='VGG16 weights for --style (CFNS layout; see vgg16.py)')
    cli.add_flag(parser, '--texture_vgg', metavar='VGG',
                 help="with --style, also the style distance with these VGG16 weights "
                      "(texture_dist), e.g. ImageNet's (vgg16.py --keras_onnx), which "
                      'sees strokes and textures where the HED weights see mostly colour')
    cli.add_flag(parser, '--no_popping', action='store_true',
                 help='skip the popping figure (halves the stylizing time)')
    cli.add_flag(parser, '--noise_count', type=int, default=0,
                 help='popping: noisy pixels per frame (default, or 0: 1000 per '
                      '512x512, scaled with the frame area, as train.py\'s noise image)')
    cli.add_flag(parser, '--noise_range', type=float, default=30.0,
                 help='popping: each noisy channel is uniform in [-range, range]')
    cli.add_flag(parser, '--noise_seed', type=cli.seed, default=1,
                 help='popping: seed of the noise')
    devices.add_device_arguments(parser, 'the models')
    stylize.add_arguments(parser)  # the stylizing flags, as generate.py
    cli.add_flag(parser, '--no_progress', action='store_true', help='no progress bar')
    args = parser.parse_args(argv)
    if args.max_frames < 0 or args.size < 0 or args.noise_count < 0:
        parser.error('--max_frames, --size and --noise_count must not be negative')
    if args.max_frames == 1:
        parser.error('--max_frames must be at least 2 (the figures compare frame pairs)')
    if not all(math.isfinite(value) and value >= 0
               for value in (args.noise_range, args.still_flow, args.still_change)):
        parser.error('--noise_range, --still_flow and --still_change must be finite '
                     'numbers >= 0')
    if args.texture_vgg and not args.style:
        parser.error('--texture_vgg measures a style distance: give --style PAINTING too')
    if args.flow_dir and args.write_flow:
        parser.error('--write_flow writes computed flow; it cannot go with --flow_dir')
    return args


def make_stylizers(args):
    """A stylize.Stylizer per -m model."""
    if not args.model:
        return []
    return [stylize.from_args(args, path) for path in args.model]


def make_style_distance(args, painting, vgg_path):
    """quality.StyleDistance to ``painting`` (--style's RGB array) with the
    VGG16 weights at ``vgg_path``."""
    vgg = vgg16.load_vgg(vgg_path)
    if vgg.is_stand_in:
        print('WARNING: {} holds RANDOM stand-in VGG16 weights: the style distance '
              'says nothing about a style'.format(vgg_path), file=sys.stderr)
    device = devices.get_device(devices.specifier(args.gpu, args.device))
    vgg.to_device(device)
    return quality.StyleDistance(vgg, painting, device)


def run(args):
    """Measure SOURCE against every model and video; returns the JSON document."""
    for path in args.stylized:
        if not os.path.exists(path):
            raise InputError('{}: no such file or folder'.format(path))
        stability_measures.check_frame_names(args.source, path, args.max_frames)
    source = stability_measures.SourceFrames(args.source, args.size, args.max_frames)
    size = source.size
    painting = numpy.asarray(images.open_rgb(args.style)) if args.style else None
    style_distance = make_style_distance(args, painting, args.vgg) if args.style else None
    texture_distance = (make_style_distance(args, painting, args.texture_vgg)
                        if args.texture_vgg else None)
    rows = [stability_measures.SourceRow('source: ' + args.source, style_distance,
                                         texture_distance)]
    for stylizer, path in zip(make_stylizers(args), args.model):
        rows.append(stability_measures.ModelRow(
            stylizer, path, popping_frames=0 if args.no_popping else None,
            noise_count=args.noise_count, noise_range=args.noise_range,
            noise_seed=args.noise_seed, style_distance=style_distance,
            texture_distance=texture_distance))
    rows.extend(stability_measures.VideoRow(path, size, style_distance, texture_distance)
                for path in args.stylized)
    source_flow = stability_measures.SourceFlow(args.flow, args.flow_dir, args.write_flow)

    total = stability_measures.count_frames(args.source)
    if args.max_frames:
        total = min(total, args.max_frames) if total else args.max_frames
    with cli.progress_bar(total, 'measuring', not args.no_progress, leave=False) as progress:
        frame_count = stability_measures.measure(
            source, rows, source_flow, args.motion_boundaries, args.still_flow,
            args.still_change, progress)
    return to_json([row.totals.summary() for row in rows], args, frame_count, size)


def check_outputs(args):
    """Before any frame is measured: can --json and --write_flow be written?"""
    if args.json:
        # A folder's frames and flow files are inputs too, one by one (the
        # folder may also hold an earlier JSON, which is no input).
        inputs = [args.source, args.style, args.vgg, args.texture_vgg, *args.model,
                  *args.stylized]
        for folder in (args.source, *args.stylized):
            inputs.extend(folders.list_files(folder, images.IMAGE_EXTENSIONS))
        if args.flow_dir:
            inputs.extend(folders.list_files(args.flow_dir, ('.flo',)))
        cli.check_writable(args.json, 'JSON file', inputs=inputs)
    if args.write_flow:
        cli.check_writable_directory(args.write_flow, 'flow folder')


def measure_and_report(argv=None):
    """The command: check the outputs, measure (:func:`run`), print the table,
    write the JSON."""
    args = parse_args(argv)
    check_outputs(args)
    document = run(args)
    print(stability_measures.format_table(document['rows']))  # kept even if the JSON fails
    if args.json:
        write_json(args.json, document)


def main(argv=None):
    """The exit status of the command line (cli.run_cli)."""
    return cli.run_cli(measure_and_report, argv)


if __name__ == '__main__':
    sys.exit(main())
