"""The embedded default dataset: scikit-learn's handwritten digits as PNGs.

scikit-learn ships 1,797 real 8x8 scans of handwritten digits (10 classes,
pixel values 0-16) inside the package, so the quickstart needs no download.
``write_digits`` writes them out as class folders the way a user's own images
would look, ``train/<digit>/`` and ``test/<digit>/``, with a stratified test
split, and ``tfcnn ingest`` takes it from there.
"""

import json
from pathlib import Path

import numpy as np

from tfcnn import atomic_files
from tfcnn.errors import DataError

_MARKER = "digits.json"


def write_digits(out, *, test_fraction=0.2, seed=0, classes=(),
                 per_class=0):
    """Writes the digits as ``out/{train,test}/<digit>/<index>.png``.

    The folder is written under a temporary name and renamed when complete,
    so an interrupted run never leaves a half-written dataset behind.

    The split is made over all ten digits first, so a subset's test images
    are the same whatever ``classes`` and ``per_class`` select: digits 0-4
    for pretraining and a few images of 5-9 for fine-tuning never share an
    image, and 5-9 are tested on the same images with 10 or 100 per class.

    Args:
        out: str or Path, destination folder (must not exist, or be complete).
        test_fraction: float, stratified fraction held out as ``test/``.
            Defaults to 0.2.
        seed: int, seed of the split and of the subset. Defaults to 0.
        classes: iterable of int, the digits written; empty: all ten.
            Defaults to ().
        per_class: int, at most this many training images per digit (a
            seeded random choice); 0 keeps all. Defaults to 0.

    Returns:
        dict with the number of images per split.

    Raises:
        DataError: ``out`` is complete but holds other digits or counts,
            or a class is not a digit.
    """
    from PIL import Image
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    out = Path(out)
    classes = sorted(set(int(c) for c in classes)) or list(range(10))
    if not set(classes) <= set(range(10)) or per_class < 0:
        raise DataError(
            "data.digits must be digits 0-9 and data.digits_per_class >= 0. "
            f"Received: digits={classes}, digits_per_class={per_class}")
    if is_complete(out):
        summary = json.loads((out / _MARKER).read_text())
        written = (summary.get("digits", list(range(10))),
                   summary.get("per_class", 0))
        if written != (classes, per_class):
            raise DataError(
                f"{out} holds digits {written[0]} with per_class="
                f"{written[1]}; choose another data.path for digits "
                f"{classes} with per_class={per_class}")
        return summary
    digits = load_digits()
    images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)
    indices = np.arange(len(images))
    train_idx, test_idx = train_test_split(
        indices, test_size=test_fraction, stratify=digits.target,
        random_state=seed)
    train_idx = _subset(train_idx, digits.target, classes, per_class, seed)
    test_idx = _subset(test_idx, digits.target, classes, 0, seed)
    with atomic_files.replacing_folder(out) as tmp:
        for split, split_idx in (("train", train_idx), ("test", test_idx)):
            for i in sorted(split_idx):
                folder = tmp / split / str(digits.target[i])
                folder.mkdir(parents=True, exist_ok=True)
                Image.fromarray(images[i]).save(
                    folder / f"{i:04d}.png")
        summary = {"train": len(train_idx), "test": len(test_idx),
                   "classes": [str(c) for c in classes],
                   "digits": classes, "per_class": per_class,
                   "test_fraction": test_fraction, "seed": seed}
        (tmp / _MARKER).write_text(json.dumps(summary, indent=2))
    return summary


def _subset(indices, targets, classes, per_class, seed):
    rng = np.random.default_rng(seed)
    kept = []
    for digit in classes:
        mine = indices[targets[indices] == digit]
        if per_class:
            mine = rng.permutation(mine)[:per_class]
        kept.extend(mine)
    return np.sort(np.asarray(kept, dtype=indices.dtype))


def is_complete(out):
    """Whether ``out`` holds a complete ``write_digits`` output."""
    return (Path(out) / _MARKER).is_file()
