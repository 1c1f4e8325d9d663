"""Checking and converting one image file for ingest.

``check_image(path, max_pixels=...)`` reads one file and returns what goes
into its record, or why the file is skipped. It never raises for a bad file:
every failure becomes a ``skip_reason``, so one bad file cannot stop an
ingest. It imports Pillow and NumPy only (no TensorFlow), so ingest's worker
processes start fast.

What is stored:

- A JPEG (or the first image of an MPO) in RGB or grayscale is stored as its
  original bytes, after a check that the whole file decodes (a reduced-size
  DCT decode, which still reads every entropy-coded byte, so truncation and
  corrupt data are caught at a fraction of a full decode's cost). Grayscale
  JPEGs keep their bytes too: every decoder in the schema's use
  (``tf.io.decode_image(..., channels=3)``, the reference tools'
  ``decode_jpeg(channels=3)``) expands them to RGB.
- Everything else (PNG, CMYK JPEG, 16-bit, alpha, palette, animated, GIF,
  BMP, TIFF, WebP, ...) is converted to 8-bit RGB (grey PNGs stay grey) and
  re-encoded as **JPEG** at ``CONVERTED_JPEG_QUALITY`` (95, 4:4:4 chroma),
  as the reference writer (``build_imagenet_data.py``) converts PNG and CMYK
  to JPEG: the reference schema promises JPEG, and JPEG-only readers (TF
  Model Garden's default ``Parser``, ``decode_and_crop_jpeg``) fail on PNG.
- With ``Storage(lossless=True)`` (``tfcnn ingest --lossless``) a PNG that
  is already 8-bit RGB or grayscale, with no transparency and one frame, is
  stored as its original bytes after a full decode, and every other
  conversion is re-encoded as **PNG**: the stored pixels are exactly the
  converted source pixels, with no JPEG generation loss. ``image/format``
  says ``png``; readers must decode with ``tf.io.decode_image`` (or
  ``decode_jpeg``, which reads PNG too), not ``decode_and_crop_jpeg``.

Conversions: CMYK to RGB (Pillow's conversion, Adobe-inverted CMYK
included); 16-bit to 8-bit by keeping the high byte (``v >> 8``, what
``tf.image.convert_image_dtype`` and so TensorFlow's PNG decoding at uint8
do, and what Pillow does for 16-bit RGB);
alpha composited over white (what a viewer shows; dropping alpha would
expose whatever colour sits under transparent pixels); palette expanded;
animated images keep their first frame (as ``tf.io.decode_image`` with
``expand_animations=False`` does); 1-bit to 0/255. 32-bit float images are
skipped: their value range is undefined. EXIF orientation is not applied,
like TensorFlow's decoders, so serving (which decodes with TensorFlow) sees
the same pixels as training.

Images with more than ``max_pixels`` pixels are skipped from their header,
before any pixel is decoded (decompression bombs).

Compact and raw storage (``Storage``): an image whose sides exceed
``max_side`` (longer side) or ``shorter_side`` is stored downscaled once, so
that training decodes the pixels it keeps and no more (FFCV's approach,
Leclerc et al. 2023): a JPEG is first decoded at the coarsest DCT scale that
keeps at least twice the target size (libjpeg's scaled IDCT, a clean
filter), then resampled with Lanczos, and the result is re-encoded as JPEG at
``jpeg_quality``. Images already within the limit keep their stored bytes as
above, so no generation loss is added where nothing shrinks. With ``raw``,
every image (downscaled first when a limit asks) is stored as its 8-bit RGB
pixels, row-major, ``image/format`` = ``raw``: meant for small images
(32x32), where decoding a PNG or JPEG costs more than reading 3 bytes per
pixel.
"""

import contextlib
import dataclasses
import io
import os
import stat
import warnings

import numpy as np
from PIL import Image
from PIL import UnidentifiedImageError

JPEG = "jpeg"
PNG = "png"
# tfcnn.data.features.IMAGE_FORMAT_RAW, not imported: this module stays free
# of TensorFlow so that ingest's worker processes start fast.
RAW = "raw"

# The JPEG quality of converted images (not RGB or grey JPEGs), with
# full-resolution chroma (4:4:4). The reference writer
# (build_imagenet_data.py) converts PNG and CMYK sources to JPEG, so that
# JPEG-only readers (TF Model Garden's default Parser: extract_jpeg_shape,
# decode_and_crop_jpeg) read every record; Pillow's documentation advises
# against qualities above 95, which grow the file for hardly any gain.
CONVERTED_JPEG_QUALITY = 95
# Pillow formats whose bytes TensorFlow's JPEG decoder reads as they are.
_JPEG_FORMATS = ("JPEG", "MPO")
_PASSTHROUGH_MODES = ("RGB", "L")
_ALPHA_MODES = ("RGBA", "LA", "La", "RGBa", "PA", "P")
_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
# Leading bytes of formats Pillow reads, to tell a corrupt image from a file
# that is no image at all.
_SIGNATURES = (
    (b"\xff\xd8", "JPEG"), (b"\x89PNG\r\n\x1a\n", "PNG"), (b"GIF8", "GIF"),
    (b"BM", "BMP"), (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"),
    (b"RIFF", "WebP"))
# Reduced-size decode for the JPEG integrity check: libjpeg's DCT scaling
# still entropy-decodes every block, so truncation is detected.
_JPEG_CHECK_SCALE = 8


@dataclasses.dataclass(frozen=True)
class CheckedImage:
    """The outcome of checking one file.

    Attributes:
        encoded: bytes to store, or None when the file is skipped.
        image_format: ``"jpeg"`` or ``"png"`` (empty when skipped).
        height: int, pixel rows of the stored image.
        width: int, pixel columns of the stored image.
        note: str, the conversion applied ("" when stored as is).
        skip_reason: str, why the file is skipped ("" when it is stored).
        resized: bool, whether the image was downscaled for storage.
    """

    encoded: bytes | None = None
    image_format: str = ""
    height: int = 0
    width: int = 0
    note: str = ""
    skip_reason: str = ""
    resized: bool = False

    @property
    def skipped(self):
        return bool(self.skip_reason)


@dataclasses.dataclass(frozen=True)
class Storage:
    """How images are stored: as found, downscaled (compact), or raw.

    Attributes:
        max_side: int, the longest side kept; 0: no limit.
        shorter_side: int, the shorter side kept; 0: no limit. At most one
            of the two limits is set.
        jpeg_quality: int in [1, 100], the quality of re-encoded JPEGs.
        raw: bool, store 8-bit RGB pixels instead of an encoded image.
        lossless: bool, store images that are not RGB or grey JPEGs as PNG
            (their exact converted pixels) instead of JPEG at
            ``CONVERTED_JPEG_QUALITY``.
    """

    max_side: int = 0
    shorter_side: int = 0
    jpeg_quality: int = 90
    raw: bool = False
    lossless: bool = False

    @property
    def kind(self):
        """``"raw"``, ``"compact"`` (a size limit) or ``"original"``."""
        if self.raw:
            return RAW
        return "compact" if self.max_side or self.shorter_side else "original"

    def target_size(self, width, height):
        """The stored ``(width, height)``, or None when nothing shrinks.

        The scale keeps the aspect ratio; each side is rounded and at
        least 1.
        """
        if self.max_side and max(width, height) > self.max_side:
            scale = self.max_side / max(width, height)
        elif self.shorter_side and min(width, height) > self.shorter_side:
            scale = self.shorter_side / min(width, height)
        else:
            return None
        return (max(1, round(width * scale)), max(1, round(height * scale)))


def check_image(path, *, max_pixels=89_478_485, storage=Storage()):
    """Reads one image file and returns what to store, or why it is skipped.

    Args:
        path: str or Path of the file.
        max_pixels: int, images with more pixels (width x height) are
            skipped before decoding. Defaults to Pillow's own limit.
        storage: ``Storage``, downscaling and raw storage. Defaults to
            storing images as found.

    Returns:
        a ``CheckedImage``. Never raises for a bad file.
    """
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            # A FIFO or device would block or never end.
            return CheckedImage(skip_reason="not a regular file")
        if info.st_size > max_file_bytes(max_pixels):
            return CheckedImage(
                skip_reason=f"{info.st_size} bytes: larger than any image of "
                            f"at most max_pixels={max_pixels} pixels")
        with open(path, "rb") as f:
            data = f.read()
    except OSError as error:
        return CheckedImage(skip_reason=f"unreadable: {error.strerror}")
    return check_image_bytes(data, max_pixels=max_pixels, storage=storage)


def max_file_bytes(max_pixels):
    """The largest file that can hold an image of ``max_pixels`` pixels:
    16-bit RGBA uncompressed, plus 16 MiB of metadata."""
    return 8 * max_pixels + 16 * 2**20


def check_images(paths, max_pixels=89_478_485, storage=Storage()):
    """``check_image`` of each path (one task of ingest's worker pool)."""
    return [check_image(p, max_pixels=max_pixels, storage=storage)
            for p in paths]


def check_image_bytes(data, *, max_pixels=89_478_485, storage=Storage()):
    """``check_image`` on bytes already in memory."""
    if not data:
        return CheckedImage(skip_reason="empty file (0 bytes)")
    try:
        with _quiet_pillow():
            return _check(data, max_pixels, storage)
    except UnidentifiedImageError:
        kind = _format_from_signature(data)
        if kind:
            return CheckedImage(
                skip_reason=f"corrupt {kind}: its header cannot be parsed")
        return CheckedImage(skip_reason="not an image (unrecognised format)")
    except (Exception, MemoryError) as error:  # noqa: BLE001
        # Any decoder failure is a property of this file, not of the run.
        message = str(error) or type(error).__name__
        return CheckedImage(skip_reason=f"corrupt or truncated: {message}")


def _check(data, max_pixels, storage):
    image = Image.open(io.BytesIO(data))
    width, height = image.size
    if width * height > max_pixels:
        return CheckedImage(
            skip_reason=f"{width}x{height} = {width * height} pixels exceeds "
                        f"max_pixels={max_pixels} (decompression bomb guard)")
    if width < 1 or height < 1:
        return CheckedImage(skip_reason=f"no pixels ({width}x{height})")
    jpeg = image.format in _JPEG_FORMATS and image.mode in _PASSTHROUGH_MODES
    note = ("MPO: first image, read by JPEG decoders"
            if jpeg and image.format == "MPO" else "")
    target = storage.target_size(width, height)
    if storage.raw or target is not None:
        return _decoded(image, target, storage, jpeg, note)
    if jpeg:
        image.draft(image.mode, (max(1, width // _JPEG_CHECK_SCALE),
                                 max(1, height // _JPEG_CHECK_SCALE)))
        image.load()
        return CheckedImage(data, JPEG, height, width, note=note)
    if _is_plain_png(image):
        image.load()
        if storage.lossless:
            return CheckedImage(data, PNG, height, width)
        note = "PNG"  # 8-bit RGB or grey: nothing to convert
    else:
        image, note = to_rgb8(image)
        if storage.lossless:
            return CheckedImage(_encode(image, "PNG"), PNG, image.height,
                                image.width, note=note)
    # Grey stays grey: JPEG decoders expand it to RGB, as for originals.
    return CheckedImage(
        _encode(image, "JPEG", quality=CONVERTED_JPEG_QUALITY,
                subsampling=0),
        JPEG, image.height, image.width,
        note=f"{note}; stored as JPEG (quality {CONVERTED_JPEG_QUALITY})")


def _decoded(image, target, storage, jpeg, note):
    """Stores the pixels: downscaled to ``target`` (None: as they are),
    then raw or re-encoded as JPEG."""
    if jpeg and target is not None:
        # DCT scaling down to no less than twice the target: the scaled IDCT
        # averages each block cleanly and leaves Lanczos a shrink under 2x.
        image.draft(image.mode, (2 * target[0], 2 * target[1]))
    if jpeg or _is_plain_png(image):
        image.load()
    else:
        image, note = to_rgb8(image)
    if target is not None:
        image = image.resize(target, Image.Resampling.LANCZOS)
    if storage.raw:
        rgb = image.convert("RGB")
        return CheckedImage(rgb.tobytes(), RAW, rgb.height, rgb.width,
                            note=note, resized=target is not None)
    # Grey stays grey: JPEG decoders expand it to RGB, as for originals.
    encoded = _encode(image, "JPEG", quality=storage.jpeg_quality)
    return CheckedImage(encoded, JPEG, image.height, image.width, note=note,
                        resized=target is not None)


def _encode(image, image_format, **options):
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **options)
    return buffer.getvalue()


def _format_from_signature(data):
    for signature, name in _SIGNATURES:
        if data.startswith(signature):
            return name
    return ""


def _is_plain_png(image):
    if image.format != "PNG" or image.mode not in _PASSTHROUGH_MODES:
        return False
    if "transparency" in image.info or getattr(image, "is_animated", False):
        return False
    # 16-bit RGB PNGs open as mode RGB; the raw mode tells the bit depth.
    return all(_raw_mode(tile) == image.mode for tile in image.tile)


def _raw_mode(tile):
    # Pillow < 11 keeps tiles as plain tuples (codec, extents, offset,
    # args); args is the raw mode or a tuple starting with it.
    args = tile[3]
    return args[0] if isinstance(args, tuple) else args


def to_rgb8(image):
    """Converts a Pillow image to 8-bit RGB.

    Args:
        image: an opened ``PIL.Image.Image`` in any mode.

    Returns:
        ``(rgb_image, note)`` where note says what was converted.

    Raises:
        ValueError: the mode has no defined mapping to [0, 255] (float).
    """
    notes = []
    frames = getattr(image, "n_frames", 1)
    if frames > 1:
        image.seek(0)
        notes.append(f"animated ({frames} frames): first frame kept")
    image.load()
    mode = image.mode
    if mode == "F":
        raise ValueError("32-bit float pixels have no defined [0, 255] range")
    if mode in _SIXTEEN_BIT_MODES:
        image = _sixteen_to_eight(image)
        notes.append(f"16-bit ({mode}) scaled to 8-bit")
    elif mode in _ALPHA_MODES or "transparency" in image.info:
        has_alpha = mode != "P" or "transparency" in image.info
        rgba = image.convert("RGBA")
        if has_alpha:
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            rgba = Image.alpha_composite(white, rgba)
            notes.append(f"alpha ({mode}) composited over white")
        else:
            notes.append("palette expanded")
        image = rgba
    elif mode == "CMYK":
        notes.append("CMYK converted to RGB")
    elif mode != "RGB":
        notes.append(f"{mode} converted to RGB")
    if image.format == "PNG" and mode == "RGB" and not notes:
        notes.append("16-bit RGB reduced to 8-bit")
    if image.format not in (None, "PNG") and not notes:
        notes.append(f"{image.format} re-encoded")
    return image.convert("RGB"), "; ".join(notes)


def _sixteen_to_eight(image):
    array = np.asarray(image)
    if array.min() < 0 or array.max() > 65535:
        raise ValueError(
            f"{image.mode} pixels outside [0, 65535]: no defined 8-bit range")
    eight = (array.astype(np.uint32) >> 8).astype(np.uint8)
    return Image.fromarray(eight, mode="L")


@contextlib.contextmanager
def _quiet_pillow():
    """Lifts Pillow's own pixel limit (ours is checked from the header) and
    silences its warnings about odd but readable files."""
    limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        Image.MAX_IMAGE_PIXELS = limit
