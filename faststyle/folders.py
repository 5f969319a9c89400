"""Listing the files of a folder that a command reads: images, frames, videos."""
import os
import re


def natural_key(name):
    """'frame_10.png' after 'frame_9.png'."""
    return [int(part) if part.isdigit() else part.lower()
            for part in re.split(r'(\d+)', name)]


def list_files(directory, extensions, recursive=False, key=None):
    """Paths of the files in ``directory`` whose extension, in any case, is one
    of ``extensions``: each folder's files sorted by ``key`` on their names
    (default: the names), then with ``recursive`` its subfolders' in name
    order, at any depth. Regular files only: a FIFO named .jpg would hang
    the reader. A missing or unreadable folder lists nothing."""
    paths = []
    for root, folders, names in os.walk(directory):
        folders.sort()
        paths.extend(os.path.join(root, name) for name in sorted(names, key=key)
                     if os.path.splitext(name)[1].lower() in extensions
                     and os.path.isfile(os.path.join(root, name)))
        if not recursive:
            break
    return paths
