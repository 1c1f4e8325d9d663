"""Paths that may be local or URLs on object storage (``gs://``, ``s3://``,
``hdfs://``, TensorFlow's in-memory ``ram://``, ...).

``pathlib.Path("gs://b/x")`` collapses the URL to ``gs:/b/x``, and ``open``
or ``os`` functions cannot reach object storage. ``path`` returns a
``pathlib.Path`` for a local path, so local files keep their behaviour
exactly, and a ``UrlPath`` for a URL: the part of ``Path``'s interface
that tfcnn uses (``/``, ``name``, ``parent``, ``exists``, ``read_text``,
``write_bytes``, ``glob``, ...), every call going through ``tf.io.gfile``,
the filesystem layer TensorFlow's readers and writers use. A ``UrlPath``
has no ``__fspath__``, so ``open`` or ``os`` given one raises instead of
quietly writing a local folder named ``gs:``.

What object storage cannot do, and how tfcnn keeps its guarantees there
(``tfcnn.atomic_files``): there is no fsync (an upload is durable once it
completes) and a rename is a server-side copy on ``gs://`` and ``s3://``,
which creates the new object whole or not at all, so the write-to-a-hidden-
name-then-rename protocol still never shows a half-written file under its
final name. There are no advisory file locks (``tfcnn.data.ingest_plan``
takes none on a URL) and no appending (ingest writes its journal again
whole there).
"""

import contextlib
import errno
import fnmatch
import posixpath
from pathlib import Path


def is_url(path):
    """Whether ``path`` (str, Path or ``UrlPath``) names a URL."""
    return isinstance(path, UrlPath) or (
        isinstance(path, str) and "://" in path)


def path(value):
    """``value`` as a ``UrlPath`` when it is a URL, else as a ``Path``."""
    if isinstance(value, (UrlPath, Path)):
        return value
    return UrlPath(value) if is_url(value) else Path(value)


def open_file(file, mode="rb"):
    """``open(file, mode)``, through ``tf.io.gfile.GFile`` for a URL."""
    if is_url(file):
        return _gfile().GFile(str(file), mode)
    return open(file, mode)


def rmtree(folder):
    """Removes ``folder`` and everything under it; nothing if it is
    missing (``shutil.rmtree(..., ignore_errors=True)`` locally)."""
    import shutil

    if not is_url(folder):
        shutil.rmtree(folder, ignore_errors=True)
    elif path(folder).exists():
        path(folder).rmtree()


def copy_file(source, target):
    """Copies the file ``source`` to ``target`` (either may be a URL)."""
    import shutil

    if is_url(source) or is_url(target):
        _gfile().copy(str(source), str(target), overwrite=True)
    else:
        shutil.copyfile(source, target)


class _Stat:
    def __init__(self, size):
        self.st_size = size


class UrlPath:
    """A URL with the part of ``pathlib.Path``'s interface tfcnn uses.

    Args:
        url: str, ``scheme://bucket/key``; a trailing ``/`` is dropped.
    """

    def __init__(self, url):
        url = str(url)
        scheme, _, rest = url.partition("://")
        self._scheme = scheme
        self._rest = rest.rstrip("/") or rest

    def __str__(self):
        return f"{self._scheme}://{self._rest}"

    def __repr__(self):
        return f"UrlPath({str(self)!r})"

    def __eq__(self, other):
        return isinstance(other, UrlPath) and str(self) == str(other)

    def __hash__(self):
        return hash(str(self))

    def __lt__(self, other):
        return str(self) < str(other)

    def __truediv__(self, name):
        return UrlPath(f"{self}/{name}")

    @property
    def name(self):
        return posixpath.basename(self._rest)

    @property
    def parent(self):
        parent = posixpath.dirname(self._rest)
        return UrlPath(f"{self._scheme}://{parent}") if parent else self

    @property
    def parents(self):
        found, current = [], self
        while current.parent != current:
            current = current.parent
            found.append(current)
        return found

    @property
    def suffix(self):
        return posixpath.splitext(self.name)[1]

    def with_name(self, name):
        return self.parent / name

    def expanduser(self):
        return self

    def resolve(self):
        return self

    def exists(self):
        return _gfile().exists(str(self))

    def is_dir(self):
        return _gfile().isdir(str(self))

    def is_file(self):
        return self.exists() and not self.is_dir()

    def mkdir(self, parents=False, exist_ok=False):
        if self.exists() and not exist_ok:
            raise FileExistsError(str(self))
        _gfile().makedirs(str(self))

    def iterdir(self):
        with _os_errors(self):
            names = _gfile().listdir(str(self))
        return [self / name.rstrip("/") for name in names]

    def glob(self, pattern):
        """The entries whose names match ``pattern`` (one level, as
        ``Path.glob`` without ``**``); none in a missing folder."""
        if not self.is_dir():
            return []
        return [p for p in self.iterdir()
                if fnmatch.fnmatchcase(p.name, pattern)]

    def stat(self):
        with _os_errors(self):
            return _Stat(_gfile().stat(str(self)).length)

    def read_bytes(self):
        with _os_errors(self), _gfile().GFile(str(self), "rb") as f:
            return f.read()

    def read_text(self, encoding="utf-8"):
        return self.read_bytes().decode(encoding)

    def write_bytes(self, data):
        with _gfile().GFile(str(self), "wb") as f:
            f.write(data)

    def write_text(self, text, encoding="utf-8"):
        self.write_bytes(text.encode(encoding))

    def unlink(self, missing_ok=False):
        if missing_ok and not self.exists():
            return
        with _os_errors(self):
            _gfile().remove(str(self))

    def rmtree(self):
        """Removes the folder and everything under it."""
        _gfile().rmtree(str(self))

    def rename(self, target):
        _gfile().rename(str(self), str(target), overwrite=False)
        return path(target)

    def replace(self, target):
        _gfile().rename(str(self), str(target), overwrite=True)
        return path(target)


@contextlib.contextmanager
def _os_errors(url):
    """Raises TensorFlow's filesystem errors as the ``OSError`` subclasses
    that ``pathlib`` raises, so callers catch one kind for both."""
    import tensorflow as tf

    try:
        yield
    except tf.errors.NotFoundError:
        raise FileNotFoundError(
            errno.ENOENT, "No such file or directory", str(url)) from None
    except tf.errors.PermissionDeniedError:
        raise PermissionError(
            errno.EACCES, "Permission denied", str(url)) from None
    except tf.errors.OpError as error:
        raise OSError(errno.EIO, error.message, str(url)) from None


def _gfile():
    import tensorflow as tf

    return tf.io.gfile
