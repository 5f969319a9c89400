"""scripts/train_sample_models.py: which twins it trains, from which snapshot,
and that shipping leaves an unchanged model's file alone."""
import os

import numpy

from scripts import train_sample_models as sample


def write_state(model_path, epoch):
    """A .model and the .state train.py writes next to it, at ``epoch``."""
    numpy.savez(model_path, w=numpy.zeros(2))
    os.replace(model_path + '.npz', model_path)
    state = model_path[:-len('.model')] + '.state'
    numpy.savez(state, **{'updater/iterator:main/epoch': numpy.array(epoch),
                          'updater/iteration': numpy.array(epoch * 109)})
    os.replace(state + '.npz', state)


def test_twin_names():
    assert sample.twin_names([200.0, 1000.0]) == {
        'vanilla': 0.0, 'stab': 200.0, 'stab1000': 1000.0}


def test_twins_to_train_starts_missing_twins_and_continues_short_ones(tmp_path):
    base = str(tmp_path / 'c_base.model')
    write_state(base, 10)

    def model_of(kind):
        return str(tmp_path / 'c_{}.model'.format(kind))
    write_state(model_of('vanilla'), 34)   # finished: skipped
    write_state(model_of('stab'), 18)      # short: resumes its own snapshot
    twins = sample.twin_names([200.0, 1000.0])  # stab1000 missing: from the base
    todo = sample.twins_to_train(twins, None, 34, base, model_of)
    assert todo == [('stab', model_of('stab'), str(tmp_path / 'c_stab.state')),
                    ('stab1000', model_of('stab1000'), str(tmp_path / 'c_base.state'))]
    assert sample.twins_to_train(twins, ['stab1000'], 34, base, model_of) == todo[1:]
    assert sample.iterations_done(model_of('stab')) == 18 * 109


def test_ship_rewrites_only_changed_arrays(tmp_path):
    trained = str(tmp_path / 'trained.model')
    shipped = str(tmp_path / 'shipped.model')
    numpy.savez(trained, a=numpy.arange(5.0))
    os.replace(trained + '.npz', trained)
    sample.ship(trained, shipped)
    with numpy.load(shipped) as arrays:
        numpy.testing.assert_array_equal(arrays['a'], numpy.arange(5.0))
    os.utime(shipped, (1, 1))
    sample.ship(trained, shipped)               # same arrays: file untouched
    assert os.stat(shipped).st_mtime == 1
    numpy.savez(trained, a=numpy.arange(5.0) + 1)
    os.replace(trained + '.npz', trained)
    sample.ship(trained, shipped)               # changed: written again
    with numpy.load(shipped) as arrays:
        numpy.testing.assert_array_equal(arrays['a'], numpy.arange(5.0) + 1)
