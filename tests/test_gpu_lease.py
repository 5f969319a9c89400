"""scripts/gpu_lease.py: what travels to a GPU machine, and what comes back."""
import hashlib
import json
import os

import numpy
import pytest
from PIL import Image

from faststyle import vgg16_weights
from faststyle.errors import InputError
from scripts import gpu_lease
import train
import vgg16


def test_packed_vgg_comes_back_as_a_loadable_file_with_the_losses_layers(tmp_path):
    weights = vgg16_weights.random_weights(seed=3)
    original = str(tmp_path / 'vgg16.model')
    vgg16_weights.save_arrays(original, weights)
    packed, restored = str(tmp_path / 'packed.npz'), str(tmp_path / 'restored.model')
    gpu_lease.pack_vgg(original, packed)
    assert os.path.getsize(packed) < 0.3 * os.path.getsize(original)
    gpu_lease.unpack_vgg(packed, restored)
    loaded = numpy.load(restored)
    for name, _, _ in vgg16_weights.LAYERS:
        for key in (name + '/W', name + '/b'):
            assert loaded[key].dtype == numpy.float32 and loaded[key].shape == weights[key].shape
            if name.startswith('conv5'):
                assert not loaded[key].any()
            else:  # float16 keeps 11 significant bits
                numpy.testing.assert_allclose(loaded[key], weights[key], rtol=2 ** -11,
                                              atol=1e-7)
    vgg16.load_vgg(restored)  # the loader's layout check passes


def test_crops_travel_as_jpeg(tmp_path):
    source = tmp_path / 'crops'
    source.mkdir()
    rng = numpy.random.RandomState(0)
    for name in ('a.png', 'b.png'):
        Image.fromarray(rng.randint(0, 255, (16, 16, 3), numpy.uint8)).save(str(source / name))
    gpu_lease.pack_crops(str(source), str(tmp_path / 'out'))
    assert sorted(os.listdir(str(tmp_path / 'out'))) == ['a.jpg', 'b.jpg']
    assert Image.open(str(tmp_path / 'out' / 'a.jpg')).size == (16, 16)


@pytest.mark.parametrize('files, expected', [
    (['x_0', 'x_3', 'x_12', 'candy_stab_4', 'candy_stab_6', 'candy_vanilla_9'],
     {'x': 12, 'candy_stab': 6, 'candy_vanilla': 6}),
    # a twin without a snapshot: neither twin comes back
    (['x_1', 'candy_stab_4'], {'x': 1}),
])
def test_newest_epochs_keeps_the_twins_at_one_epoch(tmp_path, files, expected):
    for name in files + ['x_2_extra', 'x']:
        (tmp_path / (name + '.model')).write_bytes(b'')
    (tmp_path / 'x_7.state').write_bytes(b'')
    assert gpu_lease.newest_epochs(str(tmp_path), ['x', 'candy_stab', 'candy_vanilla'],
                                   twins=('candy_stab', 'candy_vanilla')) == expected


def test_newest_epochs_of_one_twin_trained_alone(tmp_path):
    # run --models candy_stab: its snapshot comes back, though its twin has none.
    (tmp_path / 'candy_stab_4.model').write_bytes(b'')
    assert gpu_lease.newest_epochs(str(tmp_path), ['candy_stab'],
                                   twins=('candy_stab', 'candy_vanilla')) == {'candy_stab': 4}


def parsed_trainings(run_argv):
    """(name, flags, train.py's parsed arguments) of each training that
    ``gpu_lease run RUN_ARGV`` would start."""
    args = gpu_lease.parse_args(['run'] + run_argv)
    for name, painting, flags in gpu_lease.samples():
        targets = '/t/' + name if '--lambda_target_style' in flags or '--lambda_target' in flags \
            else None
        command = gpu_lease.train_command(args, name, painting, flags, 'vgg16.model', targets)
        yield name, flags, train.parse_args(command[2:])


@pytest.mark.parametrize('weights, expected', [([], ('30.0', '5.0')),
                                               (['--lambda_feat', '0.01', '--lambda_style',
                                                 '0.002'], ('0.01', '0.002'))])
def test_the_trainings_take_the_loss_networks_weights(weights, expected):
    # ImageNet's VGG16 needs content and style weights ~3000x smaller than
    # HED's; the recipe had HED's content weight written in.
    for name, flags, parsed in parsed_trainings(weights):
        assert (str(parsed.lambda_feat), str(parsed.lambda_style)) == expected
        # ... and each model's own weights still arrive.
        options = dict(zip(flags[::2], flags[1::2]))
        assert parsed.lambda_noise == float(options['--lambda_noise'])
        assert parsed.initmodel.endswith(os.path.join('models', name + '.model'))


def test_every_shipped_sample_model_is_trained(tmp_path):
    names = [name for name, painting, _ in gpu_lease.samples()]
    assert sorted(names) == sorted(f[:-6] for f in os.listdir(os.path.join(gpu_lease.ROOT, 'models'))
                                   if f.endswith('.model'))
    with open(os.path.join(gpu_lease.ROOT, 'models', 'samples.json')) as f:
        recorded = json.load(f)['models']
    for name, painting, flags in gpu_lease.samples():
        assert os.path.isfile(os.path.join(gpu_lease.ROOT, painting))
        options = dict(zip(flags[::2], map(float, flags[1::2])))
        assert (options['--lambda_noise'] == 0) == name.endswith('_vanilla')
        # Each model goes on with the loss weights it was made with.
        for flag in ('--lambda_tone', '--lambda_shift', '--lambda_colour', '--lambda_target',
                     '--lambda_target_style'):
            assert options.get(flag, 0) == recorded[name].get(flag[2:], 0)
    # The twins differ in the stabilizing losses (L_pop, L_shift) only.
    twins = {name: flags for name, _, flags in gpu_lease.samples() if name.startswith('candy_')}
    assert twins['candy_stab'][4:] == twins['candy_vanilla'][4:]
    assert float(twins['candy_vanilla'][3]) == 0


def test_a_lease_can_train_some_models_only():
    models = gpu_lease.samples()
    pair = gpu_lease.chosen(models, gpu_lease.parse_args(
        ['run', '--models', 'candy_vanilla', 'candy_stab']).models)
    assert sorted(name for name, _, _ in pair) == ['candy_stab', 'candy_vanilla']
    assert gpu_lease.chosen(models, gpu_lease.parse_args(['run']).models) == models
    with pytest.raises(InputError, match='candy_stabb'):
        gpu_lease.chosen(models, ['candy_stabb'])


def test_a_training_from_scratch_takes_the_overrides_and_no_start():
    # --from_scratch must drop -i (else the net keeps the shipped grade), and
    # --lambda_tone / --style_size must win over each model's own flags.
    for name, flags, parsed in parsed_trainings(['--from_scratch', '--lambda_tone', '0',
                                                 '--style_size', '384']):
        assert parsed.initmodel is None
        assert parsed.lambda_tone == 0 and parsed.style_size == 384
    # Without them each model goes on from its shipped net with its own tone weight.
    for name, flags, parsed in parsed_trainings([]):
        assert parsed.initmodel is not None
        assert parsed.lambda_tone == float(dict(zip(flags[::2], flags[1::2]))['--lambda_tone'])
        assert parsed.style_size == parsed.image_size


def test_a_style_size_train_py_would_refuse_is_refused_before_the_lease(capsys):
    with pytest.raises(SystemExit) as e:
        gpu_lease.parse_args(['run', '--style_size', '0'])
    assert e.value.code == 2 and '--style_size must be at least 16' in capsys.readouterr().err


def write_target_folder(folder, painting, image_size=256, names=('a', 'b')):
    """A folder of targets as the target scripts write it: one PNG per crop
    and settings naming the painting by its SHA-256 (hashlib here)."""
    os.makedirs(folder)
    rng = numpy.random.RandomState(len(folder))
    pictures = {}
    for name in names:
        # smooth pictures, as a teacher paints: JPEG keeps them within a few levels
        ramp = numpy.linspace(0, 200, 32)[:, None, None] + rng.randint(0, 50, (1, 1, 3))
        pictures[name] = numpy.broadcast_to(ramp, (32, 32, 3)).astype(numpy.uint8)
        Image.fromarray(pictures[name]).save(os.path.join(folder, name + '.png'))
    with open(os.path.join(gpu_lease.ROOT, painting), 'rb') as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    with open(os.path.join(folder, 'settings.json'), 'w') as f:
        json.dump({'teacher': 'test', 'style_image_sha256': digest, 'image_size': image_size,
                   'scale_crops': False}, f)
    return digest, pictures


def test_targets_travel_as_jpeg_and_come_back_as_png_for_their_paintings_models(tmp_path):
    paintings = sorted({painting for _, painting, _ in gpu_lease.samples()})
    folders = [str(tmp_path / 'targets' / str(i)) for i in range(len(paintings))]
    made = [write_target_folder(folder, painting) for folder, painting in zip(folders, paintings)]
    assert gpu_lease.check_target_folders(folders) == {
        digest: folder for folder, (digest, _) in zip(folders, made)}
    packed, work = str(tmp_path / 'packed'), str(tmp_path / 'work')
    os.makedirs(os.path.join(packed, '7'))  # an earlier pack's folder goes
    gpu_lease.pack_targets(folders, packed)
    assert sorted(os.listdir(packed)) == sorted(str(i) for i in range(len(paintings)))
    assert sorted(os.listdir(os.path.join(packed, '0'))) == ['a.jpg', 'b.jpg', 'settings.json']
    unpacked = gpu_lease.unpack_targets(packed, work)
    assert sorted(unpacked) == sorted(digest for digest, _ in made)
    for digest, pictures in made:
        folder = unpacked[digest]
        assert sorted(os.listdir(folder)) == ['a.png', 'b.png', 'settings.json']
        for name, picture in pictures.items():
            back = numpy.asarray(Image.open(os.path.join(folder, name + '.png')), numpy.int16)
            assert back.shape == picture.shape and numpy.abs(back - picture).mean() < 3
    # Each model with a target loss gets its own painting's folder, the others none.
    chosen = gpu_lease.targets_by_painting(gpu_lease.samples(), unpacked)
    with open(os.path.join(gpu_lease.ROOT, 'models', 'samples.json')) as f:
        recorded = json.load(f)['models']
    with_targets = sorted(name for name, entry in recorded.items()
                          if entry.get('lambda_target') or entry.get('lambda_target_style'))
    assert with_targets and sorted(chosen) == with_targets
    for name in with_targets:
        painting = recorded[name]['style_image']
        assert chosen[name] == unpacked[made[paintings.index(painting)][0]]
    # Without its painting's targets a model with a target loss is refused, by name.
    name = with_targets[0]
    others = {d: f for d, f in unpacked.items()
              if d != made[paintings.index(recorded[name]['style_image'])][0]}
    with pytest.raises(InputError, match=name):
        gpu_lease.targets_by_painting(gpu_lease.samples(), others)
    assert gpu_lease.unpack_targets(str(tmp_path / 'none'), work) == {}


def test_target_folders_that_would_fail_on_the_gpu_are_refused_before_packing(tmp_path):
    good = str(tmp_path / 'good')
    write_target_folder(good, 'sample_images/candy.jpg')
    twin = str(tmp_path / 'twin')
    write_target_folder(twin, 'sample_images/candy.jpg')
    small = str(tmp_path / 'small')
    write_target_folder(small, 'sample_images/mosaic.jpg', image_size=128)
    bare = str(tmp_path / 'bare')
    os.makedirs(bare)
    for folders, message in [([good, twin], 'of one painting'), ([small], '--image_size 128'),
                             ([bare], 'naming its painting')]:
        with pytest.raises(InputError, match=message):
            gpu_lease.check_target_folders(folders)
    # The whole command: one error line, exit 2, nothing written.
    vgg = tmp_path / 'vgg16.model'
    vgg.write_bytes(b'')
    out = tmp_path / 'packed'
    assert gpu_lease.main(['--packed', str(out), 'pack', '--vgg', str(vgg), '--crops', good,
                           '--targets', small]) == 2
    assert not out.exists()


def test_a_model_with_a_target_loss_trains_towards_its_targets():
    trained = 0
    for name, flags, parsed in parsed_trainings([]):
        options = dict(zip(flags[::2], map(float, flags[1::2])))
        assert parsed.lambda_target == options.get('--lambda_target', 0)
        assert parsed.lambda_target_style == options.get('--lambda_target_style', 0)
        if parsed.lambda_target or parsed.lambda_target_style:
            assert parsed.targets == '/t/' + name
            trained += 1
    assert trained
