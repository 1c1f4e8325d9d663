"""Test fixtures: tiny segmentation sources in the layouts ingest reads.

``make_voc(root, ...)`` writes a Pascal VOC 2012 layout (JPEGImages,
palette PNGs in SegmentationClass, ImageSets/Segmentation lists);
``make_pairs(root, ...)`` writes images/ and masks/ folders. Masks are
blocks of class ids with a void border (255), and each image's green
channel repeats its mask, so a test can tell whether image and mask stayed
aligned.
"""

import numpy as np
from PIL import Image

from tfcnn.data import segmentation_masks

HEIGHT, WIDTH = 24, 32


def mask_array(seed, num_classes, height=HEIGHT, width=WIDTH, block=8):
    """uint8 ``[H, W]`` blocks of ids in [0, num_classes), void border."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, num_classes, (height // block + 1,
                                           width // block + 1))
    mask = np.kron(coarse, np.ones((block, block), int))[:height, :width]
    mask = mask.astype(np.uint8)
    mask[0, :] = segmentation_masks.IGNORE_VALUE
    return mask


def image_for(mask):
    """An RGB image whose green channel is the mask (void shown as 0)."""
    green = np.where(mask == segmentation_masks.IGNORE_VALUE, 0, mask * 10)
    return np.stack([np.full_like(mask, 90), green.astype(np.uint8),
                     np.full_like(mask, 160)], -1)


def palette_png(path, mask):
    """Writes ``mask`` as a VOC palette PNG (index = class id)."""
    image = Image.fromarray(mask, mode="P")
    image.putpalette(segmentation_masks.voc_palette().ravel().tolist())
    image.save(path)


def make_voc(root, *, train=4, val=2, num_classes=21):
    """Writes a VOC layout; returns {split: [stems]}."""
    for folder in ("JPEGImages", "SegmentationClass",
                   "ImageSets/Segmentation"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    stems = {"train": [f"2007_{i:06d}" for i in range(train)],
             "val": [f"2008_{i:06d}" for i in range(val)]}
    for seed, stem in enumerate(stems["train"] + stems["val"]):
        mask = mask_array(seed, num_classes)
        Image.fromarray(image_for(mask)).save(
            root / "JPEGImages" / f"{stem}.jpg", quality=95)
        palette_png(root / "SegmentationClass" / f"{stem}.png", mask)
    for name, listed in stems.items():
        (root / "ImageSets/Segmentation" / f"{name}.txt").write_text(
            "".join(s + "\n" for s in listed))
    return stems


def make_pairs(root, count=10, *, num_classes=3, split=None, ext=".png"):
    """Writes ``[split/]images/<i>.png`` and grey ``[split/]masks/<i>.png``;
    returns the masks by stem."""
    base = root / split if split else root
    (base / "images").mkdir(parents=True, exist_ok=True)
    (base / "masks").mkdir(parents=True, exist_ok=True)
    masks = {}
    for i in range(count):
        stem = f"{split or 'img'}_{i:03d}"
        mask = mask_array(i + 100 * len(split or ""), num_classes)
        Image.fromarray(image_for(mask)).save(base / "images" / f"{stem}{ext}")
        Image.fromarray(mask, mode="L").save(base / "masks" / f"{stem}.png")
        masks[stem] = mask
    return masks
