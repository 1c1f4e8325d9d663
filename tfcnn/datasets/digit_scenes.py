"""The embedded segmentation dataset: scenes of scikit-learn's digits.

Each scene is a ``canvas x canvas`` RGB image holding one to three of
scikit-learn's real 8x8 handwritten digits, each enlarged (bilinear) to a
random size and drawn at a random place (digits do not overlap) in a random
colour over a noisy background of a random grey. Its mask gives every pixel
a class: 0 for the background, ``d + 1`` where digit ``d``'s ink is, and 255
("void", as in Pascal VOC) on the thin rim of half-inked pixels between the
two, which no one could label exactly.

``write_digit_scenes`` writes them as the images/masks layout that
``tfcnn ingest`` reads (``train/`` and ``test/`` folders of ``images/``
and ``masks/``, plus ``classes.txt``), so the segmentation quickstart
needs no download. Training scenes use only digits of a stratified
training part of the 1,797 scans and test scenes only the others, so no
handwritten sample is seen in both.
"""

import json
from pathlib import Path

import numpy as np

from tfcnn import atomic_files
from tfcnn.label_values import IGNORE_VALUE

CLASS_NAMES = ("background",) + tuple(f"digit {d}" for d in range(10))
_MARKER = "digit_scenes.json"
# Ink fractions (of the scan's maximum, 16) below which a pixel is
# background and above which it is the digit; in between is void.
_BACKGROUND_BELOW = 0.2
_INK_ABOVE = 0.45


def write_digit_scenes(out, *, num_train=1000, num_test=200, canvas=64,
                       digit_sizes=(20, 32), test_fraction=0.2, seed=0):
    """Writes digit scenes as ``out/{train,test}/{images,masks}/*.png``.

    The folder is written under a temporary name and renamed when
    complete, so an interrupted run never leaves half a dataset.

    Args:
        out: str or Path, destination (must not exist, or be complete).
        num_train: int, training scenes. Defaults to 1000.
        num_test: int, test scenes. Defaults to 200.
        canvas: int, side of each scene in pixels. Defaults to 64.
        digit_sizes: pair of ints, the range of a digit's side in pixels
            (each 8x8 scan is enlarged to a random side in it). Defaults
            to ``(20, 32)``.
        test_fraction: float, the stratified fraction of the scans kept
            for test scenes. Defaults to 0.2.
        seed: int. Defaults to 0.

    Returns:
        dict: scenes per split, class names, and the arguments.

    Raises:
        ValueError: a digit larger than the canvas or a bad count.
    """
    from PIL import Image
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    low, high = digit_sizes
    if not 8 <= low <= high <= canvas:
        raise ValueError(
            "digit_sizes must satisfy 8 <= low <= high <= canvas="
            f"{canvas}. Received: digit_sizes={digit_sizes!r}")
    for name, value in (("num_train", num_train), ("num_test", num_test)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(
                f"{name} must be a positive int. Received: {name}={value!r}")
    out = Path(out)
    if is_complete(out):
        return json.loads((out / _MARKER).read_text())
    digits = load_digits()
    train_idx, test_idx = train_test_split(
        np.arange(len(digits.images)), test_size=test_fraction,
        stratify=digits.target, random_state=seed)
    rng = np.random.default_rng(seed)
    with atomic_files.replacing_folder(out) as tmp:
        for split, count, pool in (("train", num_train, train_idx),
                                   ("test", num_test, test_idx)):
            for folder in ("images", "masks"):
                (tmp / split / folder).mkdir(parents=True)
            for i in range(count):
                image, mask = compose_scene(
                    rng, digits.images[pool], digits.target[pool],
                    canvas=canvas, digit_sizes=digit_sizes)
                Image.fromarray(image).save(
                    tmp / split / "images" / f"{i:05d}.png")
                Image.fromarray(mask, mode="L").save(
                    tmp / split / "masks" / f"{i:05d}.png")
        (tmp / "classes.txt").write_text("\n".join(CLASS_NAMES) + "\n")
        summary = {"train": num_train, "test": num_test,
                   "classes": list(CLASS_NAMES), "canvas": canvas,
                   "digit_sizes": list(digit_sizes),
                   "test_fraction": test_fraction, "seed": seed}
        (tmp / _MARKER).write_text(json.dumps(summary, indent=2))
    return summary


def compose_scene(rng, scans, labels, *, canvas=64, digit_sizes=(20, 32)):
    """One scene and its mask from a pool of 8x8 scans.

    Args:
        rng: ``np.random.Generator``.
        scans: float array ``[N, 8, 8]`` of ink in [0, 16].
        labels: int array ``[N]``, the digit of each scan.
        canvas: int, side of the scene. Defaults to 64.
        digit_sizes: pair of ints, range of a digit's side.

    Returns:
        ``(uint8 [canvas, canvas, 3] image, uint8 [canvas, canvas] mask)``.
    """
    from PIL import Image

    grey = rng.uniform(0, 90)
    image = np.clip(grey + rng.normal(0, 4, (canvas, canvas, 1)), 0, 255)
    image = np.repeat(image, 3, axis=2)
    mask = np.zeros((canvas, canvas), np.uint8)
    boxes = []
    for _ in range(rng.integers(1, 4)):
        pick = rng.integers(len(scans))
        side = int(rng.integers(digit_sizes[0], digit_sizes[1] + 1))
        place = _free_place(rng, boxes, side, canvas)
        if place is None:
            continue
        top, left = place
        boxes.append((top, left, side))
        ink = np.asarray(Image.fromarray(
            scans[pick].astype(np.float32) / 16.0, mode="F").resize(
            (side, side), Image.BILINEAR))
        ink = np.clip(ink, 0.0, 1.0)
        window = (slice(top, top + side), slice(left, left + side))
        colour = rng.uniform(150, 255, 3)
        image[window] = (ink[..., None] * colour
                         + (1.0 - ink[..., None]) * image[window])
        region = mask[window]
        region[ink > _BACKGROUND_BELOW] = IGNORE_VALUE
        region[ink > _INK_ABOVE] = labels[pick] + 1
    return np.round(image).astype(np.uint8), mask


def _free_place(rng, boxes, side, canvas, tries=20):
    """A random top-left corner whose square overlaps none of ``boxes``
    (digits side by side, as on a page), or None after ``tries``."""
    for _ in range(tries):
        top, left = (int(v) for v in rng.integers(0, canvas - side + 1, 2))
        if all(top >= other_top + other_side or other_top >= top + side
               or left >= other_left + other_side
               or other_left >= left + side
               for other_top, other_left, other_side in boxes):
            return top, left
    return None


def is_complete(out):
    """Whether ``out`` holds a complete ``write_digit_scenes`` output."""
    return (Path(out) / _MARKER).is_file()
