"""Finding the images of a source folder and splitting them.

Two layouts are recognised:

- class folders: ``SRC/<class>/...`` (everything is training data);
- split folders: ``SRC/train/<class>/...`` plus optional
  ``SRC/validation/<class>/...`` and ``SRC/test/<class>/...``. ``SRC`` is read
  this way when it holds a ``train`` folder and no folders other than
  ``train``, ``validation`` and ``test``.

Class names are the sorted folder names of the training data; a label is the
index of its class name. Files are found recursively inside each class
folder; names starting with ``.`` (``.DS_Store``, editor and temporary files)
are ignored, every other file counts as found, whatever its extension, so a
file that is not an image is reported as skipped instead of disappearing.
Files directly in a split folder, and files in a validation or test class
folder that has no training folder, are found and rejected with a reason.
Files directly in the source folder itself (a README, a licence, the
metadata another tool wrote) are not part of the dataset and are ignored.
When there is no validation folder, ``split_validation`` holds out a
stratified, seeded fraction of each training class.
"""

import dataclasses
import math
import os
import random
from pathlib import Path

from tfcnn.errors import DataError

TRAIN = "train"
VALIDATION = "validation"
TEST = "test"
SPLITS = (TRAIN, VALIDATION, TEST)


@dataclasses.dataclass(frozen=True)
class SourceFile:
    """One file found under the source folder.

    Attributes:
        relpath: str, POSIX path relative to the source folder.
        class_name: str, name of its class folder.
        size: int, bytes on disk.
    """

    relpath: str
    class_name: str
    size: int


@dataclasses.dataclass(frozen=True)
class SourceTree:
    """What ``find_images`` found.

    Attributes:
        root: Path, the source folder (absolute).
        class_names: tuple of str, sorted; label = index.
        splits: dict split -> list of ``SourceFile`` (sorted by path).
        rejected: list of ``(SourceFile, split, reason)`` for files found
            that cannot get a label: in a validation/test class folder with
            no training folder, or directly in a split folder. Ingest lists
            them as skipped.
        has_validation_folder: bool.
    """

    root: Path
    class_names: tuple
    splits: dict
    rejected: list
    has_validation_folder: bool

    @property
    def num_files(self):
        return (sum(len(files) for files in self.splits.values())
                + len(self.rejected))


def find_images(src):
    """Finds the class folders and files under ``src``.

    Args:
        src: str or Path, class folders or split folders (module docstring).

    Returns:
        a ``SourceTree``.

    Raises:
        DataError: ``src`` is missing, or has no class folders.
    """
    root = Path(src).expanduser().resolve()
    if not root.is_dir():
        raise DataError(f"source folder not found: {root}")
    top = _visible_dirs(root)
    split_layout = TRAIN in top and set(top) <= set(SPLITS)
    split_roots = ({name: root / name for name in top} if split_layout
                   else {TRAIN: root})
    class_names = tuple(_visible_dirs(split_roots[TRAIN]))
    if not class_names:
        raise DataError(
            f"no class folders in {split_roots[TRAIN]}: expected "
            "<class>/<image files> or train/<class>/<image files>. "
            f"Received: src={src}")
    for name in class_names:
        _check_class_name(split_roots[TRAIN] / name)
    known = set(class_names)
    splits, rejected = {}, []
    for split, split_root in split_roots.items():
        found = []
        if split_root != root:
            rejected += [(f, split, "not in a class folder")
                         for f in _top_files(root, split_root)]
        for class_name in _visible_dirs(split_root):
            files, problems = _files_under(root, split_root / class_name,
                                           class_name)
            rejected += [(f, split, reason) for f, reason in problems]
            if class_name in known:
                if split == TRAIN and not files and not problems:
                    raise DataError(
                        f"class folder {split_root / class_name} has no "
                        "files: a class without training images cannot be "
                        "learned; add images or remove the folder. "
                        f"Received: src={src}")
                found.extend(files)
            else:
                reason = f"class folder {class_name!r} has no training folder"
                rejected += [(f, split, reason) for f in files]
        splits[split] = sorted(found, key=lambda f: f.relpath)
    return SourceTree(root, class_names, splits, rejected,
                      VALIDATION in split_roots)


def check_fraction(fraction):
    """Raises ``DataError`` unless ``0 <= fraction < 1``."""
    if not 0.0 <= fraction < 1.0:
        raise DataError(
            "validation_split must be in [0, 1). "
            f"Received: validation_split={fraction}")


def split_validation(files, fraction, seed):
    """Holds out a stratified fraction of each class.

    Each class gives ``round(fraction * n)`` of its ``n`` files, chosen by a
    generator seeded from ``seed`` and the class name, so the choice for one
    class does not change when another class gains files.

    Args:
        files: list of ``SourceFile`` (training files).
        fraction: float in [0, 1).
        seed: int.

    Returns:
        ``(train, validation)`` lists, each sorted by path.

    Raises:
        DataError: the fraction would leave a class without a training
            file.
    """
    check_fraction(fraction)
    by_class = {}
    for f in files:
        by_class.setdefault(f.class_name, []).append(f)
    train, validation = [], []
    for class_name, members in sorted(by_class.items()):
        members = sorted(members, key=lambda f: f.relpath)
        random.Random(f"{seed}/validation/{class_name}").shuffle(members)
        held = math.floor(fraction * len(members) + 0.5)
        if held == len(members):
            raise DataError(
                f"validation_split={fraction} holds out all "
                f"{len(members)} files of class {class_name!r}, leaving it "
                "no training image; use a smaller validation_split. "
                f"Received: validation_split={fraction}")
        validation.extend(members[:held])
        train.extend(members[held:])
    key = lambda f: f.relpath  # noqa: E731
    return sorted(train, key=key), sorted(validation, key=key)


def _check_class_name(folder):
    """Class names are stored as UTF-8 text (manifest, records, serving)."""
    try:
        folder.name.encode("utf-8")
    except UnicodeEncodeError:
        raise DataError(
            f"class folder name {os.fsencode(folder.name)!r} is not valid "
            "UTF-8; class names are stored as UTF-8 text, so rename the "
            f"folder. Received: {os.fsencode(folder)!r}") from None


def _visible_dirs(folder):
    return sorted(entry.name for entry in os.scandir(folder)
                  if entry.is_dir() and not entry.name.startswith("."))


def _top_files(root, folder):
    """Visible files directly in ``folder`` (not in any class folder)."""
    return [SourceFile(Path(entry.path).relative_to(root).as_posix(), "",
                       _size(Path(entry.path)))
            for entry in sorted(os.scandir(folder), key=lambda e: e.name)
            if not entry.name.startswith(".") and not entry.is_dir()]


def _size(path):
    try:
        return path.stat().st_size
    except OSError:
        return 0  # a dangling link: found, and skipped when read


def _overlaps(real, root):
    """Whether the real folder ``real`` is ``root``, inside it or one of
    its ancestors."""
    real, root = Path(real), Path(root)
    return real == root or root in real.parents or real in root.parents


def _files_under(root, folder, class_name):
    """Files below a class folder, and the folders that could not be walked.

    Linked folders outside the source tree are followed, each real folder
    once. A link to a folder inside the source tree or to one of its
    ancestors (``ln -s .. SRC/2/loop``) is reported instead of walked: it
    would store another class's or split's files again under this one. So
    are a link to a folder already walked and a folder that cannot be
    listed, so that no file disappears without a word.

    Returns:
        ``(files, problems)``: lists of ``SourceFile`` and of
        ``(SourceFile, reason)`` for each folder not walked.
    """
    found, problems = [], []
    visited = {os.path.realpath(folder)}

    def folder_problem(path, reason):
        relpath = Path(path).relative_to(root).as_posix() + "/"
        problems.append((SourceFile(relpath, class_name, 0), reason))

    def unreadable(error):
        folder_problem(error.filename,
                       f"cannot list this folder ({error.strerror}); the "
                       "files in it are not counted")

    for dirpath, dirnames, filenames in os.walk(folder, onerror=unreadable,
                                                followlinks=True):
        kept = []
        for name in sorted(d for d in dirnames if not d.startswith(".")):
            path = os.path.join(dirpath, name)
            real = os.path.realpath(path)
            if os.path.islink(path) and _overlaps(real, root):
                folder_problem(path,
                               "link to a folder of the source tree or "
                               "above it; not walked, so no file is read "
                               "twice under two classes or splits")
            elif real in visited:
                folder_problem(os.path.join(dirpath, name),
                               "link to a folder already walked (a loop, "
                               "or a second link to it); not walked again")
            else:
                visited.add(real)
                kept.append(name)
        dirnames[:] = kept
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            path = Path(dirpath) / name
            found.append(SourceFile(path.relative_to(root).as_posix(),
                                    class_name, _size(path)))
    return found, problems
