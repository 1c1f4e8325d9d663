"""Writing files so that a reader never sees a half-written one.

Every file tfcnn writes for another process or a later run to read (shards,
``manifest.json``, ``stats.npz``, ``model.keras``, backups, checkpoints,
run records) is written under a hidden temporary name beside its final
name, flushed to disk, and renamed over the final name. A rename within one
folder is atomic on POSIX filesystems, so a crash or kill leaves either the
old file or the new one, plus at worst a hidden ``.NAME.tmp`` that the next
run removes or overwrites.

On object storage (a URL, ``tfcnn.storage``) there is no fsync: an upload
is durable once it completes, and the rename is a server-side copy that
creates the final object whole, so the same protocol holds there too.
"""

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from tfcnn import storage

TMP_SUFFIX = ".tmp"


def temporary_path(final_path, suffix=""):
    """The hidden name a file is written under before its rename.

    Args:
        final_path: str or Path, the file's final name.
        suffix: str, appended after ``.tmp`` for writers that insist on an
            extension (Keras saves only to ``.keras`` and ``.weights.h5``).
            Defaults to "".

    Returns:
        Path (``UrlPath`` for a URL) ``.NAME.tmp`` (plus ``suffix``) in
        the same folder.
    """
    final_path = storage.path(final_path)
    return final_path.with_name(f".{final_path.name}{TMP_SUFFIX}{suffix}")


def is_temporary_name(name):
    """Whether ``name`` looks like one of ``temporary_path``'s names."""
    return name.startswith(".") and name.endswith(TMP_SUFFIX)


def replace_durably(tmp_path, final_path):
    """Flushes ``tmp_path`` to disk and renames it over ``final_path``."""
    if storage.is_url(final_path):
        storage.path(tmp_path).replace(final_path)
        return
    with open(tmp_path, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp_path, final_path)
    fsync_dir(Path(final_path).parent)


@contextlib.contextmanager
def replacing(final_path, suffix=""):
    """Yields a temporary path to write; renames it over ``final_path``.

    The rename happens only when the block ends without an exception;
    otherwise the temporary file is removed and the old file is untouched.

    Example:

    >>> with replacing("run/model.keras", suffix=".keras") as tmp:
    ...     model.save(tmp)

    Args:
        final_path: str or Path.
        suffix: str, see ``temporary_path``. Defaults to "".

    Yields:
        Path, where to write.
    """
    tmp = temporary_path(final_path, suffix)
    try:
        yield tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    replace_durably(tmp, final_path)


def write_bytes_atomic(path, data):
    """Writes ``data`` to ``path`` through a temporary file and a rename."""
    with replacing(path) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path, text):
    """Writes ``text`` (UTF-8) to ``path`` atomically."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path, obj, **kwargs):
    """Writes ``obj`` as indented JSON to ``path`` atomically.

    Args:
        path: str or Path.
        obj: a JSON-serialisable object.
        **kwargs: more ``json.dumps`` arguments (``default=float``, ...).
    """
    write_text_atomic(path, json.dumps(obj, indent=2, **kwargs))


@contextlib.contextmanager
def staging_folder(parent, prefix):
    """Yields a new hidden folder in ``parent`` to fill before publishing.

    The caller renames the folder to its final name (``os.rename``, which
    never replaces a non-empty folder) when it is complete; if the block
    raises, the folder is removed. Files in a folder renamed into place
    are durable only after ``fsync_tree``.

    Args:
        parent: str or Path, created if missing.
        prefix: str, the hidden folder's name prefix (starts with ".").

    Yields:
        Path of the new, empty folder.
    """
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    try:
        yield folder
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


@contextlib.contextmanager
def replacing_folder(final_path):
    """Yields a hidden folder to fill; then it replaces ``final_path``.

    For datasets written as many files (the embedded digits and digit
    scenes): when the block ends
    without an exception, whatever is at ``final_path`` (an incomplete
    earlier attempt) is removed and the new folder renamed into place;
    otherwise the new folder is removed.

    Args:
        final_path: str or Path.

    Yields:
        Path of the new, empty folder beside ``final_path``.
    """
    final_path = Path(final_path)
    with staging_folder(final_path.parent, f".{final_path.name}.") as tmp:
        yield tmp
        fsync_tree(tmp)
        if final_path.exists():
            shutil.rmtree(final_path)
        tmp.rename(final_path)
        fsync_dir(final_path.parent)


def fsync_tree(folder):
    """Flushes every file and folder under ``folder`` to disk."""
    for root, _, files in os.walk(folder):
        for file_name in files:
            fd = os.open(os.path.join(root, file_name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(root)


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
