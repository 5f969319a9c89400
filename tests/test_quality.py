"""faststyle/quality.py: structure kept and style distance, each against a
case whose answer is known or a computation written here in numpy."""
import chainer
import numpy
import pytest
from PIL import Image

from faststyle import quality
from faststyle import vgg16_weights
import vgg16


def scene(height=48, width=64, seed=0):
    """A frame with shapes: a few soft-edged rectangles and discs on a gradient."""
    rng = numpy.random.RandomState(seed)
    yy, xx = numpy.mgrid[0:height, 0:width].astype(numpy.float64)
    image = numpy.stack([xx / width * 80 + 40] * 3, axis=2)
    for _ in range(5):
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        r = rng.uniform(5, 12)
        inside = (yy - cy) ** 2 + (xx - cx) ** 2 < r ** 2
        image[inside] = rng.uniform(0, 255, 3)
    return numpy.clip(image, 0, 255).astype(numpy.uint8)


def test_structure_of_the_source_itself_is_one():
    frame = scene()
    assert quality.structure_kept(frame, frame) == pytest.approx(1.0)
    # Colour changes that keep the shapes keep the structure: an inverted frame
    # has the same edges.
    assert quality.structure_kept(frame, 255 - frame) == pytest.approx(1.0)


def test_flat_output_keeps_no_structure():
    frame = scene()
    flat = numpy.full_like(frame, 128)
    assert quality.structure_kept(frame, flat) == 0.0


def test_shifted_and_unrelated_frames_keep_less():
    frame = scene()
    shifted = numpy.roll(frame, 6, axis=1)
    other = scene(seed=5)
    kept_shifted = quality.structure_kept(frame, shifted)
    kept_other = quality.structure_kept(frame, other)
    assert kept_shifted < 0.9
    assert kept_other < kept_shifted
    # Pearson correlation computed here, on the blurred Sobel magnitudes.
    a = quality.edge_strength(frame).ravel()
    b = quality.edge_strength(shifted).ravel()
    assert kept_shifted == pytest.approx(numpy.corrcoef(a, b)[0, 1], abs=1e-9)


def test_edge_blur_scales_with_the_width():
    # The same picture at twice the size has the same structure against its
    # own shifted copy when the shift doubles too.
    small = scene(48, 64)
    big = numpy.asarray(Image.fromarray(small).resize((128, 96), Image.NEAREST))
    kept_small = quality.structure_kept(small, numpy.roll(small, 3, axis=1))
    kept_big = quality.structure_kept(big, numpy.roll(big, 6, axis=1))
    assert kept_big == pytest.approx(kept_small, abs=0.05)


def test_frames_of_different_sizes_are_refused():
    with pytest.raises(ValueError):
        quality.structure_kept(scene(48, 64), scene(48, 60))


def numpy_gram(features):
    """CFNS's gram, F F^T / (ch h w), of one image's (1, ch, h, w) features."""
    _, ch, h, w = features.shape
    flat = features.reshape(ch, h * w).astype(numpy.float64)
    return flat @ flat.T / (ch * h * w)


def numpy_style_distances(vgg, frame, style):
    """The mean squared Gram difference of relu1_2 .. relu4_3, the Grams in
    float64 numpy; only the features come from ``vgg``."""
    x = frame.transpose(2, 0, 1)[None].astype(numpy.float32)
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        fx = [f.array for f in vgg(x)]
        fs = [f.array for f in vgg(style)]
    return [float(numpy.mean((numpy_gram(a) - numpy_gram(b)) ** 2)) for a, b in zip(fx, fs)]


def numpy_style_distance(vgg, frame, style):
    """The sum of :func:`numpy_style_distances`."""
    return sum(numpy_style_distances(vgg, frame, style))


def test_style_distance_matches_numpy():
    vgg = vgg16.VGG16()
    vgg16_arrays = vgg16_weights.random_weights(3)
    for name, _, _ in vgg16_weights.LAYERS:
        getattr(vgg, name).W.array[...] = vgg16_arrays[name + '/W']
        getattr(vgg, name).b.array[...] = vgg16_arrays[name + '/b']
    rng = numpy.random.RandomState(1)
    frame = rng.randint(0, 256, (24, 40, 3)).astype(numpy.uint8)
    style = rng.randint(0, 256, (32, 32, 3)).astype(numpy.uint8)
    device = chainer.get_device('@numpy')
    # The experiment's use: the style at a fixed size for every frame.
    distance = quality.StyleDistance(vgg, style, device, fixed_size=(32, 32))
    expected = numpy_style_distance(vgg, frame, style.transpose(2, 0, 1)[None].astype(
        numpy.float32))
    assert expected > 0
    assert abs(distance(frame) - expected) <= 1e-4 * expected
    # stability.py's: the style resized to the frame; the style itself is at 0.
    assert quality.StyleDistance(vgg, style, device)(style) == 0
    resized = numpy.asarray(Image.fromarray(style).resize((40, 24), Image.BILINEAR))
    expected = numpy_style_distance(vgg, frame, resized.transpose(2, 0, 1)[None].astype(
        numpy.float32))
    assert quality.StyleDistance(vgg, style, device)(frame) == pytest.approx(
        expected, rel=1e-4)
    # Layer by layer (benchmarks.style_layers prints these).
    per_layer = quality.StyleDistance(vgg, style, device).per_layer(frame)
    expected = numpy_style_distances(vgg, frame, resized.transpose(2, 0, 1)[None].astype(
        numpy.float32))
    assert len(per_layer) == 4 and all(e > 0 for e in expected)
    assert per_layer == pytest.approx(expected, rel=1e-4)




def lab_of(colour):
    """cv2's Lab of one RGB uint8 colour (the reference conversion)."""
    import cv2
    unit = numpy.array([[colour]], dtype=numpy.float32) / 255
    return cv2.cvtColor(unit, cv2.COLOR_RGB2Lab)[0, 0].astype(numpy.float64)


def test_palette_distance_of_the_painting_itself_is_zero():
    painting = scene(seed=3)
    assert quality.palette_distance(painting, painting) == pytest.approx(0.0, abs=1e-4)
    # Where the pixels are does not matter, only which colours there are.
    shuffled = numpy.random.RandomState(0).permutation(painting.reshape(-1, 3))
    assert quality.palette_distance(shuffled.reshape(painting.shape), painting) == \
        pytest.approx(0.0, abs=1e-4)


def test_palette_distance_of_flat_colours_is_their_lab_distance():
    red = numpy.full((8, 8, 3), (200, 30, 40), numpy.uint8)
    blue = numpy.full((8, 8, 3), (20, 60, 210), numpy.uint8)
    expected = numpy.linalg.norm(lab_of((200, 30, 40)) - lab_of((20, 60, 210)))
    assert quality.palette_distance(red, blue) == pytest.approx(expected, rel=1e-4)


def test_palette_distance_counts_a_narrower_spread():
    # Two grey images with the same mean lightness: one half black half
    # white, one all mid-grey of that mean. For Gaussians of equal mean and
    # commuting covariances the distance is the Frobenius norm of the
    # difference of the square roots: here the lightness standard deviation.
    half = numpy.zeros((8, 8, 3), numpy.uint8)
    half[:, 4:] = 255
    l_black, l_white = lab_of((0, 0, 0))[0], lab_of((255, 255, 255))[0]
    l_mean = (l_black + l_white) / 2
    # The grey whose Lab lightness is that mean, from the CIE formula's inverse.
    y = ((l_mean + 16) / 116) ** 3
    srgb = 1.055 * y ** (1 / 2.4) - 0.055
    grey = numpy.full((8, 8, 3), int(round(srgb * 255)), numpy.uint8)
    spread = (l_white - l_black) / 2
    assert quality.palette_distance(half, grey) == pytest.approx(spread, rel=0.02)
    # A wider palette is nearer a wide painting than a flat one is.
    assert quality.palette_distance(grey, half) > quality.palette_distance(half, half) + 10


def test_palette_distance_matches_the_frechet_formula_for_any_covariances():
    # Two palettes whose colour covariances do not commute. The reference
    # uses another form of the cross term: Tr((A^1/2 B A^1/2)^1/2) is the sum
    # of the square roots of the eigenvalues of A B.
    import cv2
    rng = numpy.random.RandomState(4)
    a = rng.randint(0, 256, (16, 16, 3)).astype(numpy.uint8)
    b = (rng.rand(16, 16, 1) * [220, 90, 30] + rng.rand(16, 16, 3) * 35).astype(numpy.uint8)

    def lab_stats(rgb):
        lab = cv2.cvtColor(rgb.astype(numpy.float32) / 255, cv2.COLOR_RGB2Lab)
        lab = lab.reshape(-1, 3).astype(numpy.float64)
        return lab.mean(axis=0), numpy.cov(lab, rowvar=False, bias=True)
    (mean_a, cov_a), (mean_b, cov_b) = lab_stats(a), lab_stats(b)
    assert not numpy.allclose(cov_a @ cov_b, cov_b @ cov_a, rtol=0.05)
    cross = numpy.sum(numpy.sqrt(numpy.clip(numpy.linalg.eigvals(cov_a @ cov_b).real, 0, None)))
    expected = numpy.sqrt(numpy.sum((mean_a - mean_b) ** 2) + numpy.trace(cov_a)
                          + numpy.trace(cov_b) - 2 * cross)
    assert quality.palette_distance(a, b) == pytest.approx(expected, rel=1e-6)
    assert quality.palette_distance(b, a) == pytest.approx(expected, rel=1e-6)


def test_edge_dependence_compares_the_crop_alone_with_the_middle_of_its_mirror_tiling():
    from benchmarks import edge_dependence
    rng = numpy.random.RandomState(0)
    crop = rng.randint(0, 256, (8, 12, 3)).astype(numpy.uint8)

    def pointwise(x):  # sees no edge: the same pixels give the same output
        return chainer.Variable(x * 0.5 + 10)
    alone, middle = edge_dependence.stylize_alone_and_tiled(pointwise, crop)
    numpy.testing.assert_array_equal(alone, middle)
    numpy.testing.assert_array_equal(alone, (crop * 0.5 + 10).astype(numpy.uint8))

    def edge_seeing(x):  # brighter within 2 px of the image's edge
        near = numpy.ones(x.shape, numpy.float32) * 40
        near[:, :, 2:-2, 2:-2] = 0
        return chainer.Variable(x * 0.5 + near)
    alone, middle = edge_dependence.stylize_alone_and_tiled(edge_seeing, crop)
    numpy.testing.assert_array_equal(middle, (crop * 0.5).astype(numpy.uint8))
    assert (alone[0] > middle[0]).all() and (alone[4, 4] == middle[4, 4]).all()


def test_reach_of_a_net_is_the_change_by_distance_from_one_pixel():
    from benchmarks import edge_dependence

    def box_blur(x):  # each output pixel the mean of the 5x5 around it: reach 2 px
        return chainer.functions.average_pooling_2d(x, 5, stride=1, pad=2)
    rings = edge_dependence.reach(box_blur, size=32, ring=2)
    assert rings[0] == pytest.approx(100 / 25, rel=1e-4) and rings[1] == pytest.approx(4, rel=1e-4)
    assert rings[2:] == [0.0] * 6


@pytest.mark.parametrize('lambda_tone', [0.0, 1.0])
def test_images_from_noise_follow_the_tone_loss_only_when_it_is_weighted(lambda_tone):
    from faststyle.optimise import optimise_image
    from faststyle import losses
    vgg = vgg16.VGG16()  # random: every loss that uses it has weight 0 here
    columns = numpy.arange(16, dtype=numpy.float32) * 15 + 10  # dark left, light right
    content = numpy.broadcast_to(columns[None, :, None], (8, 16, 3)).astype(numpy.uint8)
    painting = numpy.full((1, 3, 8, 16), 40, numpy.float32)
    painting[:, :, :, 8:] = 220
    histogram = losses.ColourHistogram(painting)
    grams = losses.style_grams(vgg, painting)
    result = optimise_image(vgg, content, grams, 0.0, 0.0, 0.0, steps=100,
                            histogram=histogram, lambda_tone=lambda_tone)
    noise = numpy.random.RandomState(0).uniform(0, 255, (1, 3, 8, 16)).astype(numpy.float32)
    if not lambda_tone:  # nothing to follow: Adam leaves the noise as it was
        numpy.testing.assert_array_equal(result, noise[0].transpose(1, 2, 0).round())
    else:  # the ramp's darker half in the painting's dark grey, the other in its light
        grey = result.mean(axis=2)
        assert abs(grey[:, :8].mean() - 40) < 15 and abs(grey[:, 8:].mean() - 220) < 15


def test_images_from_noise_weigh_each_style_layer_by_its_layer_weight():
    from faststyle.optimise import optimise_image
    from faststyle import losses
    vgg = vgg16.VGG16()  # random: only whether the style loss moves the image counts
    content = numpy.zeros((8, 16, 3), numpy.uint8)
    painting = numpy.random.RandomState(1).uniform(0, 255, (1, 3, 8, 16)).astype(numpy.float32)
    grams = losses.style_grams(vgg, painting)
    noise = numpy.random.RandomState(0).uniform(0, 255, (1, 3, 8, 16)).astype(numpy.float32)
    unmoved = noise[0].transpose(1, 2, 0).round()

    def optimise(layer_weights):
        return optimise_image(vgg, content, grams, 0.0, 1.0, 0.0, steps=3,
                              layer_weights=layer_weights)
    # Every layer weighted 0: no gradient, Adam leaves the noise as it was.
    numpy.testing.assert_array_equal(optimise([0.0] * len(grams)), unmoved)
    assert (optimise(None) != unmoved).any()
    numpy.testing.assert_array_equal(optimise([1.0] * len(grams)), optimise(None))


def test_images_from_noise_follow_the_coarse_style_loss_block_by_block():
    from faststyle.optimise import optimise_image
    from faststyle import losses
    vgg = vgg16.VGG16()  # random: only where the coarse loss moves the image counts
    content = numpy.zeros((16, 32, 3), numpy.uint8)
    painting = numpy.random.RandomState(1).uniform(0, 255, (1, 3, 16, 32)).astype(numpy.float32)
    grams = losses.style_grams(vgg, painting)
    coarse_grams = losses.style_grams(vgg, losses.shrink(painting, 4))
    noise = numpy.random.RandomState(0).uniform(0, 255, (1, 3, 16, 32)).astype(numpy.float32)
    noise = noise[0].transpose(1, 2, 0)
    result = optimise_image(vgg, content, grams, 0.0, 0.0, 0.0, steps=1,
                            coarse_grams=coarse_grams, coarse_shrink=4, lambda_coarse=1e6)
    # Adam's first step moves each pixel by its rate (4) along the sign of its
    # gradient (a weight large enough that its epsilon shortens no step: the
    # random net's gradients are small); the loss sees each 4x4 block's mean
    # only, so every pixel of a block (and channel) moves the same way. Not
    # reduced, it would not.
    step = numpy.sign(result - noise.round())
    assert (numpy.abs(result - noise) > 2).mean() > 0.9
    blocks = step.reshape(4, 4, 8, 4, 3).transpose(0, 2, 4, 1, 3).reshape(4, 8, 3, 16)
    moved = blocks != 0
    assert all(len(set(b[m].tolist())) == 1 for b, m in zip(blocks.reshape(-1, 16),
                                                            moved.reshape(-1, 16)))
    assert (blocks > 0).any() and (blocks < 0).any()


class Stylizer:
    """Stands in for faststyle.stylize.Stylizer: ``paint`` applied to each frame."""

    def __init__(self, paint):
        self.paint = paint

    def stylize(self, frames):
        return [self.paint(f) for f in frames]


def test_repaint_is_zero_for_a_net_that_moves_with_the_scene():
    from benchmarks import shift_equivariance
    frame = numpy.random.RandomState(3).randint(0, 200, (40, 48, 3)).astype(numpy.uint8)
    inverted = Stylizer(lambda f: 255 - f)
    assert shift_equivariance.repaint(inverted, frame, 3, 8) == (0.0, pytest.approx((255 - frame).std()))
    # A net that adds its own pixel column: the moved frame's is 3 less everywhere.
    by_position = Stylizer(lambda f: f + numpy.arange(f.shape[1], dtype=numpy.uint8)[None, :, None])
    assert shift_equivariance.repaint(by_position, frame, 3, 8)[0] == pytest.approx(3.0)


def test_fourier_shift_by_whole_pixels_is_a_roll():
    from benchmarks import shift_equivariance
    image = numpy.random.RandomState(4).uniform(0, 255, (11, 9, 3))  # odd: no Nyquist bin
    numpy.testing.assert_allclose(shift_equivariance.fourier_shift(image, 2),
                                  numpy.roll(image, (2, 2), axis=(0, 1)), atol=1e-9)
    twice = shift_equivariance.fourier_shift(shift_equivariance.fourier_shift(image, 0.5), 0.5)
    numpy.testing.assert_allclose(twice, numpy.roll(image, (1, 1), axis=(0, 1)), atol=1e-9)


def test_repaint_under_a_fractional_move():
    from benchmarks import shift_equivariance
    # Whole periods of a smooth pattern: a Fourier shift moves it exactly.
    y, x = numpy.mgrid[0:40, 0:48]
    scene = 100 + 50 * numpy.sin(2 * numpy.pi * x / 16) * numpy.cos(2 * numpy.pi * y / 20)
    frame = numpy.repeat(scene[:, :, None], 3, axis=2).round().astype(numpy.uint8)
    inverted = Stylizer(lambda f: 255 - f)
    assert shift_equivariance.repaint(inverted, frame, 0.5, 8)[0] < 0.5  # the 8-bit rounding only
    # Stripes 0, 0, 40, 40 along each row that stay put while the scene moves by
    # half a pixel: 20 + 20 sqrt(2) cos(pi x / 2 - phase), moved by pi / 4, an RMS
    # difference of 40 sin(pi / 8).
    stripes = numpy.where(numpy.arange(48) % 4 < 2, 0, 40).astype(numpy.uint8)[None, :, None]
    fixed_pattern = Stylizer(lambda f: f + stripes)
    assert shift_equivariance.repaint(fixed_pattern, frame, 0.5, 8)[0] == pytest.approx(
        40 * numpy.sin(numpy.pi / 8), abs=0.5)


@pytest.mark.parametrize('kind, amount', [('zoom', 5), ('turn', 3), ('bend', 2.5)])
def test_rewarp_is_zero_for_a_net_that_moves_with_the_scene(kind, amount):
    from benchmarks import shift_equivariance
    frame = numpy.random.RandomState(5).randint(0, 200, (40, 48, 3)).astype(numpy.uint8)
    inverted = Stylizer(lambda f: 255.0 - f)
    # Only the moved frame's rounding to 8 bits is left: at most half a level.
    rms, sd = shift_equivariance.rewarp(inverted, frame, kind, amount, 8)
    assert 0 < rms < 0.5 and sd == pytest.approx((255.0 - frame).std())
    # A net that paints a pattern fixed in the picture repaints the scene.
    stripes = numpy.where(numpy.arange(48) % 4 < 2, 0, 40)[None, :, None]
    assert shift_equivariance.rewarp(Stylizer(lambda f: f + stripes), frame, kind, amount, 8)[0] > 5


@pytest.mark.parametrize('kind, amount', [('zoom', 4), ('turn', 2)])
def test_rewarp_of_a_net_that_paints_its_column_is_how_far_the_warp_moves_it(kind, amount):
    """A flat frame (warping it changes nothing) through a net that adds each
    pixel's column: the warped output holds the column each pixel came from,
    the warped frame's output its own. For a zoom in by s about the centre c
    a pixel at x comes from c + (x - c) / s; turned by a about the centre,
    from c_x + cos(a) (x - c_x) - sin(a) (y - c_y)."""
    from benchmarks import shift_equivariance
    height, width, margin = 40, 48, 8
    frame = numpy.full((height, width, 3), 90, dtype=numpy.uint8)
    by_column = Stylizer(lambda f: f + numpy.arange(width, dtype=numpy.float64)[None, :, None])
    ys, xs = numpy.mgrid[0:height, 0:width].astype(numpy.float64)
    cx, cy = (width - 1) / 2, (height - 1) / 2
    if kind == 'zoom':
        source_x = cx + (xs - cx) / (1 + amount / 100)
    else:
        a = numpy.radians(amount)
        source_x = cx + numpy.cos(a) * (xs - cx) - numpy.sin(a) * (ys - cy)
    inside = (slice(margin, -margin), slice(margin, -margin))
    expected = numpy.sqrt(((xs - source_x)[inside] ** 2).mean())
    # OpenCV's bilinear remap places a sample to 1/32 of a pixel.
    assert shift_equivariance.rewarp(by_column, frame, kind, amount, margin)[0] == pytest.approx(
        expected, rel=1e-2)


def test_bad_warp_is_an_argparse_error(capsys):
    from benchmarks import shift_equivariance
    for text in ('spin:2', 'zoom:', 'zoom:nan', 'bend'):
        with pytest.raises(SystemExit) as stop:
            shift_equivariance.main(['frame.png', '-m', 'm.model', '--warps', text])
        assert stop.value.code == 2
        assert 'a warp is KIND:AMOUNT' in capsys.readouterr().err


def test_style_layers_benchmark_prints_each_layer_and_their_sum(tmp_path, capsys, vgg_path):
    from benchmarks import style_layers
    frames = [scene(seed=1), scene(seed=2)]
    folder = tmp_path / 'frames'
    folder.mkdir()
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(str(folder / '{:04d}.png'.format(i + 1)))
    painting = scene(32, 32, seed=9)
    style_path = str(tmp_path / 'painting.png')
    Image.fromarray(painting).save(style_path)
    assert style_layers.main([str(folder), '--style', style_path, '--vgg', vgg_path]) == 0
    header, line = capsys.readouterr().out.splitlines()
    assert header.split()[-5:] == ['total', 'relu1_2', 'relu2_2', 'relu3_3', 'relu4_3']
    total, *layers = (float(v) for v in line.split()[-5:])
    distance = quality.StyleDistance(vgg16.load_vgg(vgg_path), painting,
                                     chainer.get_device('@numpy'))
    expected = numpy.mean([numpy_style_distances(distance.vgg, f, numpy.asarray(
        Image.fromarray(painting).resize((64, 48), Image.BILINEAR)).transpose(
            2, 0, 1)[None].astype(numpy.float32)) for f in frames], axis=0)
    assert layers == pytest.approx(list(expected), rel=1e-3)  # printed to 4 digits
    assert total == pytest.approx(expected.sum(), rel=1e-3)
    assert style_layers.main([str(tmp_path / 'none'), '--style', style_path,
                              '--vgg', vgg_path]) == 2
    err = capsys.readouterr().err
    assert err.startswith('error: ') and 'no such file or folder' in err


def test_style_layers_shrink_measures_the_frame_reduced(tmp_path, capsys, vgg_path):
    # A frame enlarged 2x by repeating each pixel, reduced by 2 with an area
    # average, is the frame again: its row at --shrink 2 must be the frame's
    # own row at --shrink 1 (the painting resized to the same size).
    from benchmarks import style_layers
    frame = scene(seed=3)
    big = frame.repeat(2, axis=0).repeat(2, axis=1)
    Image.fromarray(frame).save(str(tmp_path / 'small.png'))
    Image.fromarray(big).save(str(tmp_path / 'big.png'))
    style_path = str(tmp_path / 'painting.png')
    Image.fromarray(scene(32, 32, seed=9)).save(style_path)
    assert style_layers.main([str(tmp_path / 'small.png'), str(tmp_path / 'big.png'),
                              '--style', style_path, '--vgg', vgg_path,
                              '--shrink', '1', '2']) == 0
    header, *lines = capsys.readouterr().out.splitlines()
    assert header.split()[2] == 'shrink'
    rows = {(line.split()[0].split('/')[-1], int(line.split()[2])):
            [float(v) for v in line.split()[-5:]] for line in lines}
    assert len(rows) == 4
    assert rows['big.png', 2] == pytest.approx(rows['small.png', 1], rel=1e-3)
    assert rows['big.png', 1] != pytest.approx(rows['big.png', 2], rel=1e-2)
    with pytest.raises(SystemExit) as stop:
        style_layers.main([str(tmp_path / 'small.png'), '--style', style_path,
                           '--vgg', vgg_path, '--shrink', '0'])
    assert stop.value.code == 2
