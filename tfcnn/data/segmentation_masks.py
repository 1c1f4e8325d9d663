"""One image/mask pair checked for ingest; Pascal VOC's classes and colours.

``check_pair(image_path, mask_path, ...)`` returns what goes into the pair's
record, or why the pair is skipped; like ``tfcnn.data.image_check`` (which
checks the image) it never raises for a bad file, and imports Pillow and
NumPy only, so it runs in ingest's worker processes.

How a mask file becomes class ids:

- grey (``L``) or palette (``P``) PNG: the pixel value, or the palette
  index, is the class id (VOC's ``SegmentationClass`` PNGs are palette
  images whose index is the class and 255 "void");
- RGB (or RGBA, alpha ignored) colour masks: each colour is looked up in a
  colour table, by default VOC's palette (colour of class ``i`` =
  ``voc_palette()[i]``, void = ``VOID_COLOUR``); a colour that is not in
  the table skips the pair;
- 16-bit grey: the value, when every value fits in 8 bits.

The mask must have the image's height and width, and every id must be a
class (``< num_classes``) or the ignore value. The stored mask is a
single-channel 8-bit PNG of class ids (TF Model Garden's schema), or with
``mask_format="raw"`` its bytes (``encode_mask``), and the result carries
the pair's histogram of ids, from which ingest adds up the pixel count per
class.
"""

import dataclasses
import io

import numpy as np
from PIL import Image
from PIL import UnidentifiedImageError

from tfcnn.data import image_check
from tfcnn.label_values import IGNORE_VALUE

# How a record stores its mask (``image/segmentation/class/format``).
MASK_PNG = "png"
MASK_RAW = "raw"
MASK_FORMATS = (MASK_PNG, MASK_RAW)
VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus",
    "car", "cat", "chair", "cow", "diningtable", "dog", "horse", "motorbike",
    "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor")
# The colour VOC draws its "void" boundaries in (palette index 255).
VOID_COLOUR = (224, 224, 192)
_GREY_MODES = ("L", "P")
_COLOUR_MODES = ("RGB", "RGBA")
_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def voc_palette(count=256):
    """Pascal VOC's colour map: class ``i`` -> its RGB colour.

    The bits of ``i`` are spread over the high bits of the three channels
    (the devkit's ``labelcolormap.m``): 0 black, 1 dark red, 2 dark green,
    ..., 255 ``VOID_COLOUR``.

    Args:
        count: int, colours wanted. Defaults to 256.

    Returns:
        uint8 array ``[count, 3]``.
    """
    palette = np.zeros((count, 3), np.uint8)
    for index in range(count):
        value, colour = index, [0, 0, 0]
        for shift in range(7, -1, -1):
            for channel in range(3):
                colour[channel] |= ((value >> channel) & 1) << shift
            value >>= 3
        palette[index] = colour
    return palette


def colour_table(num_classes):
    """VOC colours of ``num_classes`` classes plus the void colour.

    Args:
        num_classes: int, classes (at most 255).

    Returns:
        dict ``(r, g, b) -> class id`` (void -> ``IGNORE_VALUE``).
    """
    palette = voc_palette(max(num_classes, 1))
    table = {tuple(int(c) for c in palette[i]): i for i in range(num_classes)}
    table[VOID_COLOUR] = IGNORE_VALUE
    return table


@dataclasses.dataclass(frozen=True)
class CheckedPair:
    """The outcome of checking one image and its mask.

    Attributes:
        image: ``image_check.CheckedImage`` of the image (its bytes, format,
            height, width, conversion note).
        mask_encoded: bytes, the mask as ``encode_mask`` stores it, or
            None when skipped.
        histogram: list of 256 ints, pixels per id (id 255 = ignored).
        note: str, conversions of the image and the mask ("" if none).
        skip_reason: str, why the pair is skipped ("" when it is stored).
    """

    image: image_check.CheckedImage | None = None
    mask_encoded: bytes | None = None
    histogram: list = dataclasses.field(default_factory=list)
    note: str = ""
    skip_reason: str = ""

    @property
    def skipped(self):
        return bool(self.skip_reason)


def check_pair(image_path, mask_path, *, num_classes=None,
               max_pixels=89_478_485, mask_format=MASK_PNG):
    """Reads an image and its mask; returns what to store or why not.

    Args:
        image_path: str or Path of the image.
        mask_path: str or Path of its mask.
        num_classes: int or None, ids must be below it (or be the ignore
            value); None accepts every id (the class count is then taken
            from the largest id found). Defaults to None.
        max_pixels: int, as in ``image_check.check_image``.
        mask_format: ``"png"`` or ``"raw"``, as ``encode_mask`` stores
            the mask. Defaults to ``"png"``.

    Returns:
        a ``CheckedPair``. Never raises for a bad file.
    """
    # Lossless: Model Garden's segmentation decoder reads PNG images
    # (decode_image), and the stored pixels stay those the mask labels.
    image = image_check.check_image(
        image_path, max_pixels=max_pixels,
        storage=image_check.Storage(lossless=True))
    if image.skipped:
        return CheckedPair(skip_reason=f"image: {image.skip_reason}")
    try:
        with open(mask_path, "rb") as f:
            data = f.read()
    except OSError as error:
        return CheckedPair(skip_reason=f"mask: unreadable: {error.strerror}")
    try:
        mask, mask_note = read_mask(data, num_classes)
    except ValueError as error:
        return CheckedPair(skip_reason=f"mask: {error}")
    except UnidentifiedImageError:
        # Pillow's own message names the in-memory buffer's address.
        return CheckedPair(skip_reason="mask: not an image (unrecognised "
                                       "format)")
    except Exception as error:  # noqa: BLE001 (any decoder failure)
        message = str(error) or type(error).__name__
        return CheckedPair(skip_reason=f"mask: corrupt or not an image: "
                                       f"{message}")
    if mask.shape != (image.height, image.width):
        return CheckedPair(skip_reason=(
            f"mask is {mask.shape[1]}x{mask.shape[0]} but the image is "
            f"{image.width}x{image.height} (width x height)"))
    histogram = np.bincount(mask.ravel(), minlength=256)
    if num_classes is not None:
        bad = np.nonzero(histogram[num_classes:IGNORE_VALUE])[0]
        if bad.size:
            return CheckedPair(skip_reason=(
                f"mask value {int(bad[0]) + num_classes} is not a class id "
                f"(< {num_classes}) nor the ignore value {IGNORE_VALUE}"))
    notes = [n for n in (image.note, mask_note) if n]
    return CheckedPair(image, encode_mask(mask, mask_format),
                       [int(n) for n in histogram], "; ".join(notes))


def check_pairs(pairs, num_classes=None, max_pixels=89_478_485,
                mask_format=MASK_PNG):
    """``check_pair`` of each ``(image_path, mask_path)`` (one worker task)."""
    return [check_pair(image, mask, num_classes=num_classes,
                       max_pixels=max_pixels, mask_format=mask_format)
            for image, mask in pairs]


def encode_mask(mask, mask_format=MASK_PNG):
    """A uint8 ``[H, W]`` array of class ids as a record stores it.

    Args:
        mask: uint8 array ``[H, W]``.
        mask_format: ``"png"``, a single-channel 8-bit PNG (TF Model
            Garden's form), or ``"raw"``, the ``H * W`` ids row by row
            (``tfcnn.data.segmentation_features.example_mask`` reads
            both). Defaults to ``"png"``.

    Returns:
        bytes.

    Raises:
        ValueError: an unknown ``mask_format``.
    """
    if mask_format == MASK_RAW:
        return np.ascontiguousarray(mask, np.uint8).tobytes()
    if mask_format != MASK_PNG:
        raise ValueError(f"mask_format must be one of {MASK_FORMATS}. "
                         f"Received: mask_format={mask_format!r}")
    buffer = io.BytesIO()
    Image.fromarray(mask, mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def read_mask(data, num_classes=None):
    """Decodes mask bytes to uint8 class ids ``[H, W]``.

    Args:
        data: bytes of a mask image.
        num_classes: int or None, the classes a colour mask may use.

    Returns:
        ``(ids, note)``: uint8 array and the conversion applied ("" for a
        grey or palette mask).

    Raises:
        ValueError: a mode with no class ids, a 16-bit value over 255, or
            a colour not in the colour table.
    """
    mask = Image.open(io.BytesIO(data))
    mask.load()
    if mask.mode in _GREY_MODES:
        return np.asarray(mask, np.uint8), ""
    if mask.mode in _SIXTEEN_BIT_MODES:
        values = np.asarray(mask)
        if values.min() < 0 or values.max() > 255:
            raise ValueError(
                f"16-bit mask value {int(values.max())} does not fit 8 bits")
        return values.astype(np.uint8), "16-bit grey mask read as ids"
    if mask.mode in _COLOUR_MODES:
        table = colour_table(num_classes or IGNORE_VALUE)
        return _colours_to_ids(np.asarray(mask.convert("RGB")), table), (
            "colour mask mapped through the VOC palette")
    raise ValueError(f"mode {mask.mode} masks hold no class ids (expected "
                     "grey, palette or RGB colours)")


def _colours_to_ids(rgb, table):
    packed = (rgb[..., 0].astype(np.uint32) << 16
              | rgb[..., 1].astype(np.uint32) << 8 | rgb[..., 2])
    colours, inverse = np.unique(packed.ravel(), return_inverse=True)
    ids = np.empty(len(colours), np.uint8)
    for i, colour in enumerate(colours):
        key = (int(colour) >> 16, (int(colour) >> 8) & 255, int(colour) & 255)
        if key not in table:
            raise ValueError(f"colour {key} is not in the colour table "
                             "(VOC palette)")
        ids[i] = table[key]
    return ids[inverse].reshape(rgb.shape[:2])
