"""The docs against the code and the measurements: every flag a command's --help
lists is in its doc, and README's Results table is the one measured."""
import os
import re

import pytest

import generate
import train
from conftest import ROOT
from scripts import sample_figures


def help_flags(parse_args, capsys):
    with pytest.raises(SystemExit) as stop:
        parse_args(['--help'])
    assert stop.value.code == 0
    # An option's line: two spaces, maybe its short form, then the flag.
    option = re.compile(r'^  (?:-\w(?: \S+)?, )?(--[a-z][a-z0-9_]*)', re.MULTILINE)
    return set(option.findall(capsys.readouterr().out)) - {'--help'}


# CFNS's own flags, which the docs give in their short form.
CFNS_SHORT = {'--gpu': '-g', '--model': '-m', '--out': '-o'}


@pytest.mark.parametrize('parse_args, doc', [(train.parse_args, 'docs/training.md'),
                                             (generate.parse_args, 'docs/generate.md')])
def test_every_flag_is_documented(parse_args, doc, capsys):
    with open(os.path.join(ROOT, doc), encoding='utf-8') as f:
        text = f.read()
    flags = help_flags(parse_args, capsys)
    assert len(flags) > 15 and '--device' in flags  # the help was read
    missing = [flag for flag in sorted(flags)
               if '`{}'.format(flag) not in text and
               '`{} '.format(CFNS_SHORT.get(flag, flag)) not in text]
    assert not missing, '{} lacks {}'.format(doc, ', '.join(missing))


def test_readme_results_table_is_the_measured_one():
    # README's Results table must be what scripts.sample_figures makes of the
    # JSON files that stability.py wrote in docs/figures: a figure typed into
    # the README by hand, or a model re-measured without the README, fails.
    measured = sample_figures.table(os.path.join(ROOT, 'docs', 'figures'))
    with open(os.path.join(ROOT, 'README.md'), encoding='utf-8') as f:
        readme = f.read()
    assert measured.count('\n') > 10 and '`candy_stab`' in measured
    assert measured in readme


@pytest.mark.parametrize('prefix', ['real720', 'real720_scale05'])
def test_stability_720p_tables_are_the_measured_ones(prefix):
    # docs/stability.md's tables of Big Buck Bunny at 1280x720 (at
    # --content_scale 1 and 0.5) must be what scripts.sample_figures makes of
    # their JSON files.
    measured = sample_figures.table(os.path.join(ROOT, 'docs', 'figures'),
                                    ('bigbuckbunny',), prefix)
    with open(os.path.join(ROOT, 'docs', 'stability.md'), encoding='utf-8') as f:
        text = f.read()
    assert measured.count('\n') > 8 and '`udnie_stab`' in measured
    assert measured in text
