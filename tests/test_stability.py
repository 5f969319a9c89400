"""stability.py, flow.py and make_sample_clip.py: the metrics on frames whose
true motion is known, .flo files, the sample clip, and the command line."""
import json
import os

import cv2
import numpy
import pytest
from PIL import Image
from PIL import ImageFilter

from faststyle import flow
from scripts import make_sample_clip as clip
import noise
import stability
from faststyle import stability_measures
from faststyle.errors import InputError, WorkError
from conftest import one_error_line
from helpers_generate import read_video

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIPPED_CLIP = os.path.join(ROOT, 'sample_images', 'tubingen_pan.mp4')
SMALL = (128, 96)  # clip size used by the tests (the shipped one is 320x240)


def texture(height, width, seed=0):
    """A smooth random RGB texture (blurred noise), enough detail for flow."""
    rng = numpy.random.RandomState(seed)
    image = rng.uniform(0, 255, size=(height, width, 3)).astype(numpy.float32)
    image = cv2.GaussianBlur(image, (0, 0), 2.0)
    image = (image - image.mean()) * (110 / image.std()) + 128
    return numpy.clip(image, 0, 255).astype(numpy.uint8)


def shifted_pair(dx, dy, size=(64, 48)):
    """Two crops of one texture, the camera moved by (dx, dy) pixels between them."""
    width, height = size
    big = texture(height + 20, width + 20)
    a = big[5:5 + height, 5:5 + width]
    b = big[5 + dy:5 + dy + height, 5 + dx:5 + dx + width]
    # Pixel x of b shows what pixel x + (dx, dy) of a shows: that is b's flow to a.
    backward = numpy.zeros((height, width, 2), numpy.float32)
    backward[..., 0], backward[..., 1] = dx, dy
    return a, b, backward


def write_frames(folder, frames):
    os.makedirs(folder, exist_ok=True)
    for t, frame in enumerate(frames):
        Image.fromarray(frame).save(os.path.join(folder, 'f{}.png'.format(t)))
    return folder


def measure_frames(frames, stylized=None, **kwargs):
    """Figures of the source (and optionally a stylized version) of in-memory frames."""
    rows = [stability_measures.SourceRow('source')]
    if stylized is not None:
        rows.append(ListRow(stylized))
    stability_measures.measure(frames, rows, stability_measures.SourceFlow('dis'), **kwargs)
    return [row.totals.summary() for row in rows]


class ListRow:
    """A stylized video held in memory (the row interface of stability.py)."""

    def __init__(self, frames):
        self.frames = frames
        self.totals = stability_measures.RowTotals('list', 'video')

    def add(self, src, pair, t):
        self.totals.add(self.frames[t], pair)


@pytest.fixture(scope='module')
def photo():
    return clip.load_photo(clip.DEFAULT_PHOTO)


@pytest.fixture(scope='module')
def small_clip(photo):
    """(noisy frames, clean frames, camera poses) of a 24-frame 128x96 clip."""
    noisy, poses = clip.render_clip(photo, 24, SMALL, noise_sigma=3.0, seed=0)
    clean, _ = clip.render_clip(photo, 24, SMALL, noise_sigma=0.0, seed=0)
    return noisy, clean, poses


# --- .flo files -----------------------------------------------------------------

def test_flo_round_trip(tmp_path):
    rng = numpy.random.RandomState(0)
    original = rng.normal(0, 5, size=(7, 11, 2)).astype(numpy.float32)
    path = str(tmp_path / 'a.flo')
    flow.write_flo(path, original)
    assert os.path.getsize(path) == 12 + 7 * 11 * 2 * 4
    with open(path, 'rb') as f:
        header = numpy.frombuffer(f.read(12), dtype='<f4', count=1)
    assert header[0] == numpy.float32(202021.25)
    numpy.testing.assert_array_equal(flow.read_flo(path), original)


@pytest.mark.parametrize('content, message', [
    (b'PIEX' + b'\0' * 20, 'bad magic'),
    (b'PIE', 'too short'),
    (numpy.array([202021.25], '<f4').tobytes() + numpy.array([4, 3], '<i4').tobytes()
     + b'\0' * 10, 'should hold 96 bytes'),
])
def test_bad_flo_files_are_refused(tmp_path, content, message):
    path = str(tmp_path / 'bad.flo')
    with open(path, 'wb') as f:
        f.write(content)
    with pytest.raises(InputError, match=message):
        flow.read_flo(path)


def test_flow_folder_reports_missing_files(tmp_path):
    flow.write_flow_pair(str(tmp_path), 1, numpy.zeros((4, 5, 2)), numpy.zeros((4, 5, 2)))
    folder = flow.FlowFolder(str(tmp_path))
    forward, backward = folder.pair(1, (4, 5))
    assert forward.shape == backward.shape == (4, 5, 2)
    with pytest.raises(InputError, match='forward_2_3.flo: missing'):
        folder.pair(2, (4, 5))
    with pytest.raises(InputError, match='flow is 5x4 but the frames are 6x4'):
        folder.pair(1, (4, 6))


# --- warping and the masks ------------------------------------------------------

def test_identical_frames_give_zero_error():
    frame = texture(48, 64)
    summary, = measure_frames([frame] * 4)
    assert summary['warp_mse'] == pytest.approx(0.0, abs=1e-6)
    assert summary['flicker'] == 0.0
    assert summary['reliable'] > 0.95 and summary['still'] > 0.95


@pytest.mark.parametrize('motion, still', [(0.001, 1.0), (0.002, 0.0)])
def test_still_share_does_not_depend_on_the_measuring_size(motion, still):
    # The same camera motion, a fraction of the frame width per frame, seen
    # at 160 and at 1280 pixels wide: the flow is 8x longer at 1280, and the
    # still threshold (0.5 px at 320 wide: 0.0016 of the width) with it. A
    # fixed 0.5 px called the slow motion moving at 1280 (1.3 px) and the
    # faster one still at 160 (0.32 px).
    def uniform_flow(width):
        def source_flow(previous, src, t):
            backward = numpy.zeros(src.shape[:2] + (2,), numpy.float32)
            backward[..., 0] = motion * width
            return -backward, backward
        return source_flow

    for width in (160, 1280):
        frame = texture(width * 3 // 4, width)
        row = stability_measures.SourceRow('source')
        stability_measures.measure([frame] * 3, [row], uniform_flow(width))
        assert row.totals.summary()['still'] == pytest.approx(still), width
    assert stability_measures.still_flow_pixels(0.5, 1280) == 2.0


def test_known_shift_warps_to_zero_error_and_is_large_without():
    a, b, backward = shifted_pair(3, 2)
    reliable = flow.inside_frame(backward)
    assert 0.8 < reliable.mean() < 1.0  # the strip that entered the frame is left out
    assert stability_measures.warping_error(a, b, backward, reliable) < 1e-6
    unwarped = stability_measures.warping_error(a, b, numpy.zeros_like(backward), reliable)
    assert unwarped > 500
    # The same with flow computed by DIS from the frames themselves.
    estimator = flow.FlowEstimator('dis')
    computed = estimator(b, a)
    forward = estimator(a, b)
    mask = flow.reliable_mask(computed, forward)
    assert mask.mean() > 0.7
    assert stability_measures.warping_error(a, b, computed, mask) < 0.02 * unwarped


def test_consistency_check_flags_occlusions_and_motion_boundaries():
    backward = numpy.zeros((20, 30, 2), numpy.float32)
    backward[..., 0] = 2.0
    forward = -backward.copy()
    assert flow.reliable_mask(backward, forward)[:, :27].all()  # right edge leaves
    forward[5:10, 10:15, 0] = 6.0  # disagrees with the backward flow there
    mask = flow.reliable_mask(backward, forward)
    assert not mask[6:9, 9:12].any() and mask[15:, :20].all()
    # A step in the backward flow is a motion boundary, only checked on request.
    step = -forward * 0
    step[..., 0] = 2.0
    step[:, 15:, 0] = 8.0
    forward_step = numpy.zeros_like(step)
    forward_step[..., 0] = -2.0
    forward_step[:, 17:, 0] = -8.0
    plain = flow.reliable_mask(step, forward_step)
    boundaries = flow.reliable_mask(step, forward_step, motion_boundaries=True)
    assert plain[:, 14:16].all() and not boundaries[:, 14:16].any()


def test_per_frame_noise_raises_warping_error_and_flicker(small_clip):
    noisy, clean, _ = small_clip
    source, clean_row = measure_frames(clean, stylized=clean)
    _, noisy_row = measure_frames(clean, stylized=noisy)
    assert clean_row['warp_mse'] == pytest.approx(source['warp_mse'])
    assert noisy_row['warp_mse'] > clean_row['warp_mse'] + 5
    assert noisy_row['flicker'] > clean_row['flicker'] + 1
    assert noisy_row['popping'] is None  # no model, nothing to perturb


# --- detail: the warping error per unit of detail --------------------------------

def low_contrast(height, width, seed=0):
    """A texture in 103..153, so doubling its contrast about 128 never clips."""
    return (texture(height, width, seed).astype(numpy.int32) // 5 + 103).astype(numpy.uint8)


def doubled_contrast(frame):
    return ((frame.astype(numpy.int32) - 128) * 2 + 128).astype(numpy.uint8)


def test_detail_definition_flat_ramp_and_contrast():
    flat = numpy.full((12, 16, 3), 77, numpy.uint8)
    assert stability_measures.spatial_detail(flat) == 0.0
    # Horizontal steps of 3: 9 across, 0 down; the two directions are averaged.
    ramp = numpy.repeat((numpy.arange(16) * 3)[None, :, None], 12, 0).repeat(3, 2)
    assert stability_measures.spatial_detail(ramp.astype(numpy.uint8)) == pytest.approx(4.5)
    assert stability_measures.spatial_detail(ramp.transpose(1, 0, 2).astype(numpy.uint8)) == \
        pytest.approx(4.5)
    frame = low_contrast(24, 32)
    assert stability_measures.spatial_detail(frame) > 1
    assert stability_measures.spatial_detail(doubled_contrast(frame)) == pytest.approx(
        4 * stability_measures.spatial_detail(frame))


def shifted_figures(frames, dx=2, flow_dx=1.5):
    """Figures of frames panned by ``dx`` px each, warped with a flow that is
    off by half a pixel (a small, known warping error), all pixels still."""
    figures = stability_measures.RowTotals('pan', 'video')
    backward = numpy.zeros(frames[0].shape[:2] + (2,), numpy.float32)
    backward[..., 0] = flow_dx
    reliable = flow.inside_frame(backward)
    still = numpy.ones(frames[0].shape[:2], bool)
    for t, frame in enumerate(frames):
        figures.add(frame, None if t == 0 else
                    stability_measures.PairGeometry(backward, reliable, still))
    return figures.summary()


def test_warp_per_detail_is_invariant_to_contrast():
    big = low_contrast(40, 80)
    frames = [numpy.ascontiguousarray(big[:, 2 * t:2 * t + 48]) for t in range(5)]
    plain = shifted_figures(frames)
    doubled = shifted_figures([doubled_contrast(f) for f in frames])
    assert plain['warp_mse'] > 0.5 and plain['flicker'] > 0.5
    # Twice the contrast: 4x the warping error and the detail, 2x the flicker ...
    assert doubled['warp_mse'] == pytest.approx(4 * plain['warp_mse'], rel=1e-4)
    assert doubled['detail'] == pytest.approx(4 * plain['detail'])
    # ... and the same per unit of detail.
    assert doubled['warp_per_detail'] == pytest.approx(plain['warp_per_detail'], rel=1e-4)
    assert doubled['flicker_per_rms_detail'] == pytest.approx(
        plain['flicker_per_rms_detail'], rel=1e-4)
    assert plain['warp_per_detail'] == pytest.approx(plain['warp_mse'] / plain['detail'])
    assert plain['detail'] == pytest.approx(
        numpy.mean([stability_measures.spatial_detail(f) for f in frames]))


# --- benchmarks/steady_reference.py: a filter of each frame alone ------------------

def unsharp_reference(frame, amount):
    """Unsharp masking written here: a 9-tap Gaussian of sigma 1, separable,
    mirrored at the edges without repeating the edge pixel (OpenCV's default
    border), then PIL's 3x3 median filter (generate.py's, see stylize.py)."""
    taps = numpy.exp(-numpy.arange(-4, 5) ** 2 / 2.0)
    taps /= taps.sum()
    image = frame.astype(numpy.float64)
    padded = numpy.pad(image, ((4, 4), (4, 4), (0, 0)), mode='reflect')
    rows = sum(t * padded[:, i:i + frame.shape[1]] for i, t in enumerate(taps))
    blurred = sum(t * rows[i:i + frame.shape[0]] for i, t in enumerate(taps))
    sharp = numpy.clip(numpy.rint(image + amount * (image - blurred)), 0, 255).astype(numpy.uint8)
    return numpy.asarray(Image.fromarray(sharp).filter(ImageFilter.MedianFilter(3)))


def test_steady_filter_is_unsharp_masking_then_the_median():
    from benchmarks import steady_reference
    frame = texture(30, 36, seed=4)
    for amount in (0.5, 2):
        got = steady_reference.steady_filter(frame, amount)
        # float32 against float64 may round a value the other way: one level.
        assert numpy.abs(got.astype(int) - unsharp_reference(frame, amount)).max() <= 1
    assert numpy.array_equal(steady_reference.steady_filter(frame, 0, median_filter=1), frame)
    # --denoise takes the source's own noise out before sharpening it.
    noisy = numpy.clip(128 + numpy.random.RandomState(7).normal(0, 6, (32, 32, 3)), 0, 255)
    noisy = noisy.astype(numpy.uint8)
    assert steady_reference.steady_filter(noisy, 0, 1, denoise=True).std() < noisy.std() / 3


def test_steady_rows_follow_the_source_and_sharpening_adds_detail(tmp_path):
    from benchmarks import steady_reference
    moving = write_frames(str(tmp_path / 'moving'), [
        texture(60, 80, seed=5)[t:t + 40, 2 * t:2 * t + 48] for t in range(3)])
    source, unfiltered, sharpened = steady_reference.measure_clip(
        moving, [0, 2], median_filter=1)
    # The filter of nothing is the source, row for row.
    assert unfiltered['warp_mse'] == pytest.approx(source['warp_mse'])
    assert unfiltered['detail'] == pytest.approx(source['detail'])
    assert sharpened['detail'] > 1.5 * source['detail']
    # A still clip: a filter of each frame alone gives the same output each time.
    still = write_frames(str(tmp_path / 'still'), [texture(40, 48, seed=6)] * 3)
    for row in steady_reference.measure_clip(still, [0, 1, 4]):
        assert row['warp_mse'] == 0 and row['flicker'] == 0 and row['detail'] > 0


def test_steady_reference_command(tmp_path, capsys):
    from benchmarks import steady_reference
    still = write_frames(str(tmp_path / 'still'), [texture(40, 48, seed=6)] * 3)
    assert steady_reference.main([still, '--amounts', '0', '2']) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == still
    assert lines[1].split() == ['name', 'warp_mse', 'detail', 'warp/detail']
    assert [line.split()[-1] for line in lines[2:]] == ['0.000'] * 3  # source, x0, x2
    assert steady_reference.main([str(tmp_path / 'missing')]) == 2
    assert one_error_line(capsys.readouterr().err)


def test_cli_flat_output_has_no_detail_and_warp_per_detail_na(tmp_path, capsys):
    frames = [texture(24, 32, seed=0)] * 2 + [texture(24, 32, seed=1)]
    source = write_frames(str(tmp_path / 'src'), frames)
    flat = write_frames(str(tmp_path / 'flat'), [numpy.full((24, 32, 3), 128, numpy.uint8)] * 3)
    out_json = str(tmp_path / 'f.json')
    assert stability.main([source, '--stylized', flat, '--json', out_json,
                           '--no-progress']) == 0
    header, source_line, flat_line = capsys.readouterr().out.splitlines()
    cells = dict(zip(header.split(), flat_line.split()))
    assert (cells['detail'], cells['warp/detail'], cells['flicker/rms']) == (
        '0.00', 'n/a', 'n/a')
    source_row, flat_row = json.load(open(out_json))['rows']  # null, not inf or NaN
    assert flat_row['warp_mse'] == 0 and flat_row['detail'] == 0
    assert flat_row['warp_per_detail'] is None and flat_row['flicker_per_rms_detail'] is None
    assert source_row['detail'] == pytest.approx(
        numpy.mean([stability_measures.spatial_detail(f) for f in frames]))
    assert source_row['warp_per_detail'] == pytest.approx(
        source_row['warp_mse'] / source_row['detail'])


def source_and_painting(tmp_path):
    """Three source frames (a folder), a painting (the array and its file)
    and the painting itself as a three-frame "stylized" video (a folder)."""
    from PIL import Image
    frames = [texture(24, 32, seed=0)] * 2 + [texture(24, 32, seed=1)]
    source = write_frames(str(tmp_path / 'src'), frames)
    painting = texture(24, 32, seed=7)
    style_path = str(tmp_path / 'painting.png')
    Image.fromarray(painting).save(style_path)
    as_painting = write_frames(str(tmp_path / 'paint'), [painting] * 3)
    return frames, source, painting, style_path, as_painting


def test_cli_structure_kept_and_style_distance(tmp_path, capsys, vgg_path):
    import chainer
    import vgg16
    from faststyle import quality
    # The painting itself as the "stylized" video: at distance 0 from the
    # style, and with the shapes of another picture. The inverted source
    # keeps every shape; a flat video none.
    frames, source, painting, style_path, as_painting = source_and_painting(tmp_path)
    inverted = write_frames(str(tmp_path / 'inv'), [255 - f for f in frames])
    flat = write_frames(str(tmp_path / 'flat'), [numpy.full((24, 32, 3), 128, numpy.uint8)] * 3)
    out_json = str(tmp_path / 'f.json')
    assert stability.main([source, '--stylized', as_painting, '--stylized', inverted,
                           '--stylized', flat, '--style', style_path, '--vgg', vgg_path,
                           '--json', out_json, '--no-progress']) == 0
    header = capsys.readouterr().out.splitlines()[0].split()
    assert header[-4:] == ['structure', 'style_dist', 'palette', 'texture_dist']
    src, paint, inv, flat_row = json.load(open(out_json))['rows']
    assert src['structure'] == pytest.approx(1.0) and inv['structure'] == pytest.approx(1.0)
    assert flat_row['structure'] == 0.0
    assert paint['structure'] == pytest.approx(numpy.mean(
        [quality.structure_kept(f, painting) for f in frames]))
    assert paint['style_dist'] == 0.0
    assert flat_row['style_dist'] > 0 and src['style_dist'] > 0
    distance = quality.StyleDistance(vgg16.load_vgg(vgg_path), painting,
                                     chainer.get_device('@numpy'))
    assert src['style_dist'] == pytest.approx(numpy.mean([distance(f) for f in frames]),
                                              rel=1e-5)
    # The painting's own colours are at palette distance 0; the flat grey
    # frame's, the distance of that one Lab colour to the painting's Gaussian.
    assert paint['palette'] == pytest.approx(0.0, abs=1e-4)
    assert flat_row['palette'] == pytest.approx(quality.palette_distance(
        numpy.full((24, 32, 3), 128, numpy.uint8), painting))
    assert flat_row['palette'] > 10
    assert all(row['texture_dist'] is None for row in (src, paint, inv, flat_row))


def test_cli_texture_distance_is_the_style_distance_with_a_second_vgg(
        tmp_path, capsys, vgg_path):
    import chainer
    import vgg16
    from faststyle import quality, vgg16_weights
    frames, source, painting, style_path, as_painting = source_and_painting(tmp_path)
    other_vgg = str(tmp_path / 'other_vgg16.model')
    vgg16_weights.save_arrays(other_vgg, vgg16_weights.random_weights(seed=5))
    out_json = str(tmp_path / 'f.json')
    assert stability.main([source, '--stylized', as_painting, '--style', style_path,
                           '--vgg', vgg_path, '--texture_vgg', other_vgg,
                           '--json', out_json, '--no-progress']) == 0
    assert capsys.readouterr().out.splitlines()[0].split()[-1] == 'texture_dist'
    document = json.load(open(out_json))
    assert document['settings']['texture_vgg'] == other_vgg
    src, paint = document['rows']
    assert paint['texture_dist'] == 0.0
    device = chainer.get_device('@numpy')
    first = quality.StyleDistance(vgg16.load_vgg(vgg_path), painting, device)
    second = quality.StyleDistance(vgg16.load_vgg(other_vgg), painting, device)
    assert src['texture_dist'] == pytest.approx(numpy.mean([second(f) for f in frames]),
                                                rel=1e-5)
    assert src['style_dist'] == pytest.approx(numpy.mean([first(f) for f in frames]),
                                              rel=1e-5)
    assert abs(src['texture_dist'] - src['style_dist']) > 1e-3 * src['style_dist']


# --- the sample clip: exact flow checks the flow and the metric -----------------

def test_clip_exact_flow_matches_dis_and_warps_source_to_near_zero(small_clip):
    noisy, clean, poses = small_clip
    estimator = flow.FlowEstimator('dis')
    moving = [t for t in range(1, len(poses)) if poses[t] != poses[t - 1]]
    assert len(moving) >= 12
    errors_exact, errors_unwarped, endpoint_errors = [], [], []
    for t in moving:
        backward = clip.exact_flow(poses[t], poses[t - 1], SMALL)
        forward = clip.exact_flow(poses[t - 1], poses[t], SMALL)
        reliable = flow.reliable_mask(backward, forward)
        assert reliable.mean() > 0.6  # only what left the frame is unreliable
        errors_exact.append(stability_measures.warping_error(clean[t - 1], clean[t], backward,
                                                    reliable))
        errors_unwarped.append(stability_measures.warping_error(
            clean[t - 1], clean[t], numpy.zeros_like(backward), reliable))
        computed = estimator(noisy[t], noisy[t - 1])
        inside = flow.inside_frame(backward)
        endpoint_errors.append(numpy.sqrt(((computed - backward) ** 2).sum(2))[inside])
        assert numpy.abs(backward).max() > 0.3  # the camera really moves
    endpoint = numpy.concatenate(endpoint_errors)
    assert numpy.median(endpoint) < 0.3 and numpy.mean(endpoint) < 1.0
    # Bilinear resampling of a soft image: a few units, against hundreds.
    assert numpy.mean(errors_exact) < 10
    assert numpy.mean(errors_unwarped) > 20 * numpy.mean(errors_exact)


def test_clip_is_deterministic_and_exact_flow_is_consistent(photo):
    poses = clip.camera_path(24)
    a = clip.render_frame(photo, poses[10], SMALL, 10, 3.0, 0)
    b = clip.render_frame(photo, poses[10], SMALL, 10, 3.0, 0)
    numpy.testing.assert_array_equal(a, b)
    forward = clip.exact_flow(poses[9], poses[10], SMALL)
    backward = clip.exact_flow(poses[10], poses[9], SMALL)
    # Following the forward flow and then the backward flow returns home.
    round_trip = forward + flow.warp(backward, forward)
    assert numpy.abs(round_trip[flow.inside_frame(forward)]).max() < 1e-2


def test_clip_script_and_cli_with_exact_flo_files(tmp_path):
    frames_dir, flow_dir = str(tmp_path / 'frames'), str(tmp_path / 'flow')
    assert clip.main(['-o', '', '--frames', '16', '--size', '128x96',
                      '--frames-dir', frames_dir, '--flow-dir', flow_dir]) == 0
    names = os.listdir(flow_dir)
    assert len(names) == 30 and 'forward_1_2.flo' in names and 'backward_16_15.flo' in names
    exact_json, dis_json = str(tmp_path / 'exact.json'), str(tmp_path / 'dis.json')
    assert stability.main([frames_dir, '--flow_dir', flow_dir, '--json', exact_json,
                           '--no-progress']) == 0
    assert stability.main([frames_dir, '--json', dis_json, '--no-progress']) == 0
    exact, = json.load(open(exact_json))['rows']
    computed, = json.load(open(dis_json))['rows']
    assert exact['frames'] == 16 and len(exact['warp_mse_per_pair']) == 15
    # Sensor noise of sigma 3 alone gives about 2 * 9 (less after bilinear smoothing).
    assert 8 < exact['warp_mse'] < 30
    assert computed['warp_mse'] == pytest.approx(exact['warp_mse'], rel=0.35)


def test_shipped_clip_is_what_the_script_makes(photo):
    decoded = read_video(SHIPPED_CLIP)[0]
    assert len(decoded) == 48 and decoded[0].shape == (240, 320, 3)
    assert os.path.getsize(SHIPPED_CLIP) < 2 * 1024 * 1024
    poses = clip.camera_path(48)
    for t in (0, 20, 47):
        rendered = clip.render_frame(photo, poses[t], (320, 240), t, 0.0, 0)
        # H.264 at crf 14 in 4:2:0 of the noisy frame versus the clean render.
        assert numpy.mean(numpy.abs(decoded[t].astype(float) - rendered)) < 4


# --- popping with a model, and the command line ----------------------------------

def test_sparse_noise_is_seeded_and_sparse():
    assert noise.default_noise_count(512, 512) == 1000
    assert noise.default_noise_count(240, 320) == 293
    a = noise.sparse_noise(24, 32, 10, 30, numpy.random.RandomState([1, 0]))
    b = noise.sparse_noise(24, 32, 10, 30, numpy.random.RandomState([1, 0]))
    numpy.testing.assert_array_equal(a, b)
    assert (numpy.abs(a).sum(axis=0) > 0).sum() == 10 and numpy.abs(a).max() <= 30
    with pytest.raises(InputError, match='noise count'):
        noise.sparse_noise(4, 4, 17, 30, numpy.random.RandomState(0))


@pytest.fixture(scope='module')
def model_path(tmp_path_factory):
    import chainer  # required (requirements.txt): an ImportError must fail, not skip
    import net
    path = str(tmp_path_factory.mktemp('model') / 'random.model')
    chainer.serializers.save_npz(path, net.FastStyleNet('resize'))
    return path


def test_popping_noise_is_fresh_for_every_frame():
    """stability.py's popping figure adds a new draw of noise to each frame
    (the same for every model, from --noise_seed and the frame number)."""
    class Recorder:
        def __init__(self):
            self.noise = []

        def stylize(self, frames):
            if len(frames) == 2:
                src, noisy = frames
                self.noise.append(noisy.astype(int) - src.astype(int))
            return frames

    def popping_noise(popping_frames=None):
        recorder = Recorder()
        row = stability_measures.ModelRow(recorder, 'stub', popping_frames,
                                          noise_count=20, noise_range=30.0, noise_seed=1)
        for t in range(3):
            row.add(numpy.full((16, 16, 3), 128, numpy.uint8), None, t)
        return recorder.noise

    first = popping_noise()
    assert all(numpy.count_nonzero(n.any(axis=2)) == 20 for n in first)
    assert not numpy.array_equal(first[0], first[1])
    assert not numpy.array_equal(first[1], first[2])
    assert all(numpy.array_equal(a, b) for a, b in zip(first, popping_noise()))
    # popping_frames: noisy copies of the first frames only, the same draws.
    assert len(popping_noise(0)) == 0
    assert all(numpy.array_equal(a, b) for a, b in zip(first, popping_noise(2)))
    assert len(popping_noise(2)) == 2


def test_cli_models_popping_rises_with_noise(tmp_path, small_clip, model_path, capsys):
    noisy = small_clip[0]
    source = write_frames(str(tmp_path / 'src'), [f[::2, ::2] for f in noisy[:4]])
    out_json = str(tmp_path / 'out.json')
    args = [source, '-m', model_path, '--padding', '8', '--backend', 'chainer',
            '--no-progress']
    assert stability.main(args + ['--json', out_json]) == 0
    table = capsys.readouterr().out
    assert 'popping' in table.splitlines()[0] and model_path in table
    document = json.load(open(out_json))
    source_row, model_row = document['rows']
    assert source_row['popping'] is None
    assert model_row['popping'] > 0 and model_row['warp_mse'] > 0
    assert document['settings']['noise_count'] == 12  # 1000 * 64*48 / 512^2, rounded
    assert stability.main(args + ['--json', out_json, '--noise-range', '0']) == 0
    assert json.load(open(out_json))['rows'][1]['popping'] == 0
    # The same model twice gives the same figures (fresh noise, but seeded).
    assert stability.main(args + ['-m', model_path, '--json', out_json]) == 0
    rows = json.load(open(out_json))['rows']
    assert rows[1]['popping'] == rows[2]['popping'] == model_row['popping']


def test_cli_stylized_video_and_size(tmp_path, capsys):
    frames = [texture(48, 64, seed=0)] * 3 + [texture(48, 64, seed=1)]
    source = write_frames(str(tmp_path / 'src'), frames)
    # A "stylized" version at twice the size: resized to the measuring size.
    bigger = write_frames(str(tmp_path / 'big'), [cv2.resize(f, (128, 96)) for f in frames])
    out_json = str(tmp_path / 'f.json')
    assert stability.main([source, '--stylized', bigger, '--size', '32', '--json',
                           out_json, '--no-progress']) == 0
    document = json.load(open(out_json))
    assert document['size'] == [32, 24] and document['frames'] == 4
    assert document['rows'][1]['flicker'] < 2


def test_cli_stylized_folders_named_otherwise_are_paired_by_position(
        tmp_path, capsys):
    frames = [texture(24, 32, seed=s) for s in range(3)]
    source = write_frames(str(tmp_path / 'src'), frames)
    # Another tool's names: paired by position.
    other = str(tmp_path / 'other')
    os.makedirs(other)
    for t, frame in enumerate(frames):
        Image.fromarray(frame).save(os.path.join(other, 'out_{:03d}.png'.format(t)))
    assert stability.main([source, '--stylized', other, '--no-progress']) == 0
    # Numbered from 1 where the source is from 0 (ffmpeg's %04d): by position too.
    from_one = str(tmp_path / 'from_one')
    os.makedirs(from_one)
    for t, frame in enumerate(frames):
        Image.fromarray(frame).save(os.path.join(from_one, 'f{}.png'.format(t + 1)))
    assert stability.main([source, '--stylized', from_one, '--no-progress']) == 0
    # The source's names with a gap after the frames measured: nothing to refuse.
    six = write_frames(str(tmp_path / 'six'), frames * 2)
    gap = write_frames(str(tmp_path / 'gap'), frames[:2])
    Image.fromarray(frames[2]).save(os.path.join(gap, 'f5.png'))
    assert stability.main([six, '--stylized', gap, '--max_frames', '2',
                           '--no-progress']) == 0
    capsys.readouterr()


def bad_cases(tmp_path):
    frames = [texture(24, 32, seed=s) for s in range(3)]
    source = write_frames(str(tmp_path / 'src'), frames)
    short = write_frames(str(tmp_path / 'short'), frames[:2])
    square = write_frames(str(tmp_path / 'square'), [texture(32, 32)] * 3)
    empty = str(tmp_path / 'empty')
    os.makedirs(empty)
    not_video = str(tmp_path / 'notes.mp4')
    with open(not_video, 'w') as f:
        f.write('not a video')
    one = write_frames(str(tmp_path / 'one'), frames[:1])
    six = write_frames(str(tmp_path / 'six'), frames * 2)
    gap = write_frames(str(tmp_path / 'gap'), frames[:2])  # f0, f1, then f5: f2..f4 missing
    Image.fromarray(frames[2]).save(os.path.join(gap, 'f5.png'))
    return [
        ([str(tmp_path / 'missing.mp4')], 'no such file or folder'),
        ([empty], 'no image files'),
        ([not_video], 'cannot open this video|no frames'),
        ([one], 'at least 2'),
        ([source, '--stylized', short], 'ends after 2 frames'),
        ([source, '--stylized', square], 'not a stylized version'),
        ([six, '--stylized', gap, '--max_frames', '3'],
         'its frame 3 is f5, where the source has f2'),
        ([source, '--stylized', str(tmp_path / 'nope')], 'no such file or folder'),
        ([source, '--flow-dir', empty], 'holds no forward_I_J.flo'),
        ([source, '-m', not_video], 'notes.mp4: '),  # npz.py words the reason
    ]


def test_cli_bad_inputs_give_one_line_errors(tmp_path, capsys):
    for argv, message in bad_cases(tmp_path):
        assert stability.main(argv + ['--no-progress']) == 2, argv
        err = capsys.readouterr().err.strip()
        assert err.startswith('error: ') and '\n' not in err, (argv, err)
        assert any(m in err for m in message.split('|')), (argv, err)


def test_cli_bad_flags_exit_with_usage(tmp_path):
    for argv in (['x', '--max-frames', '1'], ['x', '--flow', 'magic'],
                 ['x', '--flow-dir', 'a', '--write-flow', 'b'],
                 ['x', '--noise-range', 'nan'], ['x', '--still-flow', 'inf'],
                 ['x', '--still-change', '-1'], ['x', '--texture-vgg', 'v.model']):
        with pytest.raises(SystemExit) as e:
            stability.main(argv)
        assert e.value.code == 2


def test_frames_too_small_for_the_flow_are_bad_input(tmp_path, capsys):
    frames = tmp_path / 'frames'
    clip.main(['-o', '', '--frames', '2', '--size', '32x24', '--frames-dir', str(frames)])
    capsys.readouterr()
    assert stability.main([str(frames), '--size', '20', '--no-progress']) == 2
    err = capsys.readouterr().err
    assert one_error_line(err) and '20x15' in err and 'at least 16 pixels' in err
    assert stability.main([str(frames), '--size', '22', '--no-progress']) == 0


def test_stability_keeps_the_table_when_the_json_fails(tmp_path, monkeypatch, capsys):
    frames = tmp_path / 'frames'
    clip.main(['-o', '', '--frames', '2', '--size', '16x16',
               '--frames-dir', str(frames)])
    capsys.readouterr()

    def fail(path, document):
        raise WorkError('could not write {} (No space left on device)'.format(path))
    monkeypatch.setattr(stability, 'write_json', fail)
    assert stability.main([str(frames), '--json', str(tmp_path / 'f.json'),
                           '--no-progress']) == 1
    out, err = capsys.readouterr()
    assert 'warp_mse' in out and one_error_line(err) and 'No space left' in err


def test_cli_written_flow_reads_back_to_the_same_figures(tmp_path, small_clip):
    source = write_frames(str(tmp_path / 'src'), small_clip[0][6:11])
    flow_dir = str(tmp_path / 'flow')
    computed, read_back = str(tmp_path / 'a.json'), str(tmp_path / 'b.json')
    assert stability.main([source, '--write-flow', flow_dir, '--json', computed,
                           '--no-progress']) == 0
    assert len(os.listdir(flow_dir)) == 8
    assert stability.main([source, '--flow-dir', flow_dir, '--json', read_back,
                           '--no-progress']) == 0
    assert json.load(open(computed))['rows'] == json.load(open(read_back))['rows']
    # Farneback measures the same clip in the same ballpark.
    assert stability.main([source, '--flow', 'farneback', '--json', read_back,
                           '--no-progress']) == 0
    dis, = json.load(open(computed))['rows']
    farneback, = json.load(open(read_back))['rows']
    assert farneback['warp_mse'] == pytest.approx(dis['warp_mse'], rel=0.5)


def test_grid_pattern_figures():
    """benchmarks/grid_pattern.py: a period-2 checkerboard puts all its
    energy on the grid frequencies and survives averaging over frames; the
    same texture moving with a pan (a shifted random image) does neither."""
    from benchmarks import grid_pattern
    rows, cols = numpy.mgrid[:64, :64]
    checker = numpy.repeat(((rows + cols) % 2 * 255)[:, :, None], 3, axis=2).astype(numpy.uint8)
    share, factor, static = grid_pattern.figures([checker] * 4)
    assert share > 0.999 and factor > 250 and abs(static - 1) < 1e-9
    texture = numpy.random.RandomState(0).randint(0, 256, (64, 80, 3)).astype(numpy.uint8)
    panning = [texture[:, shift:shift + 64] for shift in range(0, 16, 2)]
    share, factor, static = grid_pattern.figures(panning)
    assert share < 0.01 and factor < 3 and static < 0.3
