"""Finding the image/mask pairs of a segmentation source folder.

Two layouts are recognised (``is_segmentation_source`` tells them from the
class folders of classification):

- **Pascal VOC 2012**: ``SRC/JPEGImages/<stem>.jpg`` with
  ``SRC/SegmentationClass/<stem>.png``. The splits come from
  ``SRC/ImageSets/Segmentation/{train,val,test}.txt`` (``val`` becomes the
  validation split; ``trainval.txt`` less the other lists' stems is used
  only when ``train.txt`` is missing; a stem in two lists is an error). The
  stems listed there are the files found; VOC's many
  detection-only JPEGs, which have no mask and are listed nowhere, are not.
  Without split lists every mask of ``SegmentationClass`` is a pair.
- **Plain pairs**: ``SRC/images/<stem>.*`` with ``SRC/masks/<stem>.png``,
  or the same inside split folders ``SRC/train/``, ``SRC/validation/``
  (or ``val/``) and ``SRC/test/``.

An image without a mask, a mask without an image, or a stem with two
images (``a.jpg`` and ``a.png``) is found and rejected with its reason, so
ingest lists it as skipped. Class names come from ``SRC/classes.txt`` (one
per line, line number = class id) when present, else VOC's 21 names for
the VOC layout; for plain pairs without it the classes are named by id,
up to the largest id in the masks. Without a validation split a seeded
random fraction of the training pairs is held out
(``tfcnn.data.image_folders.split_validation``).
"""

import dataclasses
import enum
import os
from pathlib import Path

from tfcnn.data import image_folders
from tfcnn.data import segmentation_masks
from tfcnn.errors import DataError

CLASSES_FILE = "classes.txt"
TRAIN = image_folders.TRAIN
VALIDATION = image_folders.VALIDATION
TEST = image_folders.TEST
_VOC_SPLITS = {"train": TRAIN, "val": VALIDATION, "test": TEST}
_PAIR_SPLITS = {"train": TRAIN, "validation": VALIDATION, "val": VALIDATION,
                "test": TEST}


class Layout(enum.Enum):
    """The source layouts of semantic segmentation."""

    VOC = "voc"
    PAIRS = "images/masks"


@dataclasses.dataclass(frozen=True)
class SourcePair:
    """An image and its mask, found under the source folder.

    Attributes:
        relpath: str, POSIX path of the image relative to the source.
        mask_relpath: str, POSIX path of the mask.
        size: int, bytes of both files on disk.
    """

    relpath: str
    mask_relpath: str
    size: int


@dataclasses.dataclass(frozen=True)
class PairTree:
    """What ``find_pairs`` found.

    Attributes:
        root: Path, the source folder (absolute).
        layout: ``Layout``.
        class_names: tuple of str, or None when the masks decide (plain
            pairs without ``classes.txt``).
        splits: dict split -> list of ``SourcePair`` (sorted by path).
        rejected: list of ``(relpath, split, reason)``.
        has_validation: bool, the source has its own validation split.
    """

    root: Path
    layout: Layout
    class_names: tuple | None
    splits: dict
    rejected: list
    has_validation: bool

    @property
    def num_files(self):
        """Pairs found plus files rejected."""
        return (sum(len(p) for p in self.splits.values())
                + len(self.rejected))


def is_segmentation_source(src):
    """Whether ``src`` is laid out as VOC or as images/masks pairs."""
    return _layout(Path(src).expanduser()) is not None


def find_pairs(src):
    """Finds the image/mask pairs under ``src``.

    Args:
        src: str or Path, a VOC or images/masks folder (module docstring).

    Returns:
        a ``PairTree``.

    Raises:
        DataError: ``src`` is missing or in neither layout, or
            ``classes.txt`` is unreadable or empty.
    """
    root = Path(src).expanduser().resolve()
    layout = _layout(root)
    if layout is None:
        raise DataError(
            f"{root} is not a segmentation source: expected JPEGImages/ and "
            "SegmentationClass/ (Pascal VOC) or images/ and masks/ "
            f"(optionally in train/, validation/, test/). Received: src={src}")
    names = _class_names(root, layout)
    if layout is Layout.VOC:
        splits, rejected = _voc_pairs(root)
    else:
        splits, rejected = _plain_pairs(root)
    return PairTree(root, layout, names, splits, rejected,
                    bool(splits.get(VALIDATION)))


def _layout(root):
    if not root.is_dir():
        return None
    if (root / "JPEGImages").is_dir() and (
            root / "SegmentationClass").is_dir():
        return Layout.VOC
    if _is_pair_folder(root):
        return Layout.PAIRS
    tops = _visible_dirs(root)
    if "train" in tops and set(tops) <= set(_PAIR_SPLITS) and all(
            _is_pair_folder(root / name) for name in tops):
        return Layout.PAIRS
    return None


def _is_pair_folder(folder):
    return (folder / "images").is_dir() and (folder / "masks").is_dir()


def _class_names(root, layout):
    path = root / CLASSES_FILE
    if not path.is_file():
        return (segmentation_masks.VOC_CLASSES if layout is Layout.VOC
                else None)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"cannot read {path}: {error}") from None
    names = [line.strip() for line in lines]
    while names and not names[-1]:
        names.pop()
    if not names or not all(names):
        raise DataError(
            f"{path} must name one class per line (line number = class "
            "id), with no blank line in between")
    if len(names) >= segmentation_masks.IGNORE_VALUE:
        raise DataError(
            f"{path} names {len(names)} classes; masks hold at most "
            f"{segmentation_masks.IGNORE_VALUE} (255 is the ignore value)")
    return tuple(names)


def _voc_pairs(root):
    images = _by_stem(root, root / "JPEGImages")
    masks = _by_stem(root, root / "SegmentationClass")
    lists = root / "ImageSets" / "Segmentation"
    listed = {}
    for name, split in _VOC_SPLITS.items():
        if (lists / f"{name}.txt").is_file():
            listed[split] = _read_list(lists / f"{name}.txt")
    _check_disjoint(lists, listed)
    if TRAIN not in listed and (lists / "trainval.txt").is_file():
        # VOC's trainval.txt is train.txt and val.txt together.
        held = {stem for stems in listed.values() for stem in stems}
        listed[TRAIN] = [stem for stem in _read_list(lists / "trainval.txt")
                         if stem not in held]
    if not listed:
        listed = {TRAIN: sorted(masks)}
    splits, rejected = {}, []
    for split, stems in listed.items():
        splits[split] = _match(root, split, stems, images, masks, rejected)
    return splits, rejected


def _check_disjoint(lists, listed):
    """Raises ``DataError`` naming the ids that two split lists share: one
    image in two splits would be validated or tested on what it trained
    on."""
    names = {split: name for name, split in _VOC_SPLITS.items()}
    seen = {}
    for split, stems in listed.items():
        for stem in stems:
            first = seen.setdefault(stem, split)
            if first != split:
                shared = sorted(set(listed[first]) & set(stems))
                more = (f" and {len(shared) - 3} more" if len(shared) > 3
                        else "")
                raise DataError(
                    f"{lists}: {', '.join(shared[:3])}{more} listed in both "
                    f"{names[first]}.txt and {names[split]}.txt; an image "
                    "belongs to one split, so remove it from one list. "
                    f"Received: {len(shared)} shared ids")


def _plain_pairs(root):
    folders = ({TRAIN: root} if _is_pair_folder(root) else
               {_PAIR_SPLITS[name]: root / name
                for name in _visible_dirs(root)})
    splits, rejected = {}, []
    for split, folder in folders.items():
        images = _by_stem(root, folder / "images")
        masks = _by_stem(root, folder / "masks")
        splits[split] = _match(root, split, sorted(set(images) | set(masks)),
                               images, masks, rejected)
    return splits, rejected


def _match(root, split, stems, images, masks, rejected):
    """The pairs of ``stems``, sorted; appends the rest to ``rejected``."""
    pairs = []
    for stem in stems:
        pair, reason = _pair(root, stem, images.get(stem, []),
                             masks.get(stem, []))
        if pair is not None:
            pairs.append(pair)
        else:
            rejected.append((reason[0], split, reason[1]))
    return sorted(pairs, key=lambda p: p.relpath)


def _pair(root, stem, images, masks):
    """``(SourcePair, None)`` or ``(None, (relpath, reason))``."""
    if not images and not masks:
        return None, (stem, ("listed in the split file but neither an "
                             "image nor a mask has this name"))
    if not masks:
        return None, (images[0], "image without a mask")
    if not images:
        return None, (masks[0], "mask without an image")
    if len(images) > 1:
        return None, (images[0], (f"several images named {stem!r}: "
                                  f"{', '.join(images)}"))
    if len(masks) > 1:
        return None, (masks[0], (f"several masks named {stem!r}: "
                                 f"{', '.join(masks)}"))
    size = sum(_size(root / rel) for rel in (images[0], masks[0]))
    return SourcePair(images[0], masks[0], size), None


def _by_stem(root, folder):
    """stem -> sorted relpaths of the visible files directly in ``folder``."""
    found = {}
    if not folder.is_dir():
        return found
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.name.startswith(".") or entry.is_dir():
            continue
        relpath = Path(entry.path).relative_to(root).as_posix()
        found.setdefault(Path(entry.name).stem, []).append(relpath)
    return found


def _read_list(path):
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"cannot read {path}: {error}") from None
    # VOC's per-class lists carry a second column; the segmentation lists
    # hold only stems, but take the first word either way.
    return [line.split()[0] for line in lines if line.strip()]


def _visible_dirs(folder):
    return sorted(entry.name for entry in os.scandir(folder)
                  if entry.is_dir() and not entry.name.startswith("."))


def _size(path):
    try:
        return path.stat().st_size
    except OSError:
        return 0
