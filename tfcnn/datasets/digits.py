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

_MARKER = "digits.json"


def write_digits(out, *, test_fraction=0.2, seed=0):
    """Writes the digits as ``out/{train,test}/<digit>/<index>.png``.

    The folder is written under a temporary name and renamed when complete,
    so an interrupted run never leaves a half-written dataset behind.

    Args:
        out: str or Path, destination folder (must not exist, or be complete).
        test_fraction: float, stratified fraction held out as ``test/``.
            Defaults to 0.2.
        seed: int, seed of the split. Defaults to 0.

    Returns:
        dict with the number of images per split.
    """
    from PIL import Image
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    out = Path(out)
    if is_complete(out):
        return json.loads((out / _MARKER).read_text())
    digits = load_digits()
    images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)
    indices = np.arange(len(images))
    train_idx, test_idx = train_test_split(
        indices, test_size=test_fraction, stratify=digits.target,
        random_state=seed)
    with atomic_files.replacing_folder(out) as tmp:
        for split, split_idx in (("train", train_idx), ("test", test_idx)):
            for i in sorted(split_idx):
                folder = tmp / split / str(digits.target[i])
                folder.mkdir(parents=True, exist_ok=True)
                Image.fromarray(images[i]).save(
                    folder / f"{i:04d}.png")
        summary = {"train": len(train_idx), "test": len(test_idx),
                   "classes": [str(c) for c in digits.target_names],
                   "test_fraction": test_fraction, "seed": seed}
        (tmp / _MARKER).write_text(json.dumps(summary, indent=2))
    return summary


def is_complete(out):
    """Whether ``out`` holds a complete ``write_digits`` output."""
    return (Path(out) / _MARKER).is_file()
