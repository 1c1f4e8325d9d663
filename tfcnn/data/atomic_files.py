"""Writing files so that a reader never sees a half-written one.

Every file of a dataset folder (shards, ``manifest.json``, ``stats.npz``) is
written under a hidden temporary name beside its final name, flushed to
disk, and renamed over the final name. A rename within one folder is atomic
on POSIX filesystems, so a crash or kill leaves either the old file or the
new one, plus at worst a hidden ``.NAME.tmp`` that the next run removes.
"""

import os
from pathlib import Path

TMP_SUFFIX = ".tmp"


def temporary_path(final_path):
    """The hidden name a file is written under before its rename."""
    final_path = Path(final_path)
    return final_path.with_name(f".{final_path.name}{TMP_SUFFIX}")


def is_temporary_name(name):
    """Whether ``name`` looks like one of ``temporary_path``'s names."""
    return name.startswith(".") and name.endswith(TMP_SUFFIX)


def replace_durably(tmp_path, final_path):
    """Flushes ``tmp_path`` to disk and renames it over ``final_path``."""
    with open(tmp_path, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp_path, final_path)
    fsync_dir(Path(final_path).parent)


def write_bytes_atomic(path, data):
    """Writes ``data`` to ``path`` through a temporary file and a rename."""
    tmp = temporary_path(path)
    with open(tmp, "wb") as f:
        f.write(data)
    replace_durably(tmp, path)


def fsync_dir(folder):
    """Makes a rename in ``folder`` durable (best effort)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on directories
    finally:
        os.close(fd)
