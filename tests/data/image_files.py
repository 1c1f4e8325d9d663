"""Test fixtures: image files of every kind ingest must handle.

``write_kind(path, kind)`` writes one file of a named kind; ``GOOD_KINDS``
become records (as stored or converted), ``BAD_KINDS`` are skipped.
``expected_pixels(path, kind)`` gives the 8-bit RGB pixels a converted file
must decode to, computed independently of ``tfcnn.data.image_check``.
"""

import io
import struct
import zlib

import numpy as np
from PIL import Image

HEIGHT, WIDTH = 20, 28

# kind -> whether it is stored as the original bytes
GOOD_KINDS = {
    "rgb_jpeg": True,
    "gray_jpeg": True,
    "rgb_png": True,
    "gray_png": True,
    "cmyk_jpeg": False,
    "gray16_png": False,
    "rgb16_png": False,
    "rgba_png": False,
    "la_png": False,
    "palette_png": False,
    "palette_transparent_png": False,
    "bilevel_png": False,
    "animated_gif": False,
    "bmp": False,
    "tiff": False,
    "webp_lossless": False,
}

# kind -> a word its skip reason must contain
BAD_KINDS = {
    "zero_byte": "empty",
    "text_as_jpeg": "not an image",
    "truncated_jpeg": "truncated",
    "truncated_png": "truncated",
    "corrupt_jpeg": "corrupt",
    "corrupt_png": "corrupt",
    "float_tiff": "float",
    "bomb_png": "max_pixels",
}

EXTENSIONS = {"gif": ".gif", "bmp": ".bmp", "tiff": ".tif", "webp": ".webp",
              "png": ".png"}


def rgb_array(seed, height=HEIGHT, width=WIDTH):
    """Smooth random RGB (JPEG-friendly) as uint8 ``[H, W, 3]``."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (height // 4 + 1, width // 4 + 1, 3))
    smooth = np.kron(coarse, np.ones((4, 4, 1)))[:height, :width]
    return smooth.astype(np.uint8)


def extension(kind):
    for key, ext in EXTENSIONS.items():
        if kind.endswith(key) or kind == key:
            return ext
    return ".jpg"


def encode_kind(kind, seed=0):
    """Returns the bytes of a file of ``kind``."""
    rgb = rgb_array(seed)
    if kind in ("rgb_jpeg", "truncated_jpeg", "corrupt_jpeg"):
        data = _save(Image.fromarray(rgb), "JPEG", quality=90)
        if kind == "truncated_jpeg":
            return data[:len(data) // 2]
        if kind == "corrupt_jpeg":
            # A JPEG start-of-image marker followed by noise.
            return data[:2] + np.random.default_rng(seed).integers(
                0, 256, 400, dtype=np.uint8).tobytes()
        return data
    if kind == "gray_jpeg":
        return _save(Image.fromarray(rgb[..., 0]), "JPEG", quality=90)
    if kind == "cmyk_jpeg":
        return _save(Image.fromarray(rgb).convert("CMYK"), "JPEG", quality=95)
    if kind in ("rgb_png", "truncated_png", "corrupt_png"):
        data = _save(Image.fromarray(rgb), "PNG")
        if kind == "truncated_png":
            return data[:len(data) // 2]
        if kind == "corrupt_png":
            broken = bytearray(data)
            broken[60] ^= 0xFF  # inside IDAT: its CRC no longer matches
            return bytes(broken)
        return data
    if kind == "gray_png":
        return _save(Image.fromarray(rgb[..., 1]), "PNG")
    if kind == "gray16_png":
        return _save(Image.fromarray(gray16(seed)), "PNG")
    if kind == "rgb16_png":
        return png16_rgb(rgb16(seed))
    if kind == "rgba_png":
        return _save(Image.fromarray(rgba(seed), "RGBA"), "PNG")
    if kind == "la_png":
        return _save(Image.fromarray(rgba(seed)[..., [0, 3]], "LA"), "PNG")
    if kind in ("palette_png", "palette_transparent_png"):
        image = Image.fromarray(rgb).quantize(colors=16)
        if kind == "palette_transparent_png":
            return _save(image, "PNG", transparency=0)
        return _save(image, "PNG")
    if kind == "bilevel_png":
        return _save(Image.fromarray(rgb[..., 0] > 127), "PNG")
    if kind == "animated_gif":
        frames = [Image.fromarray(rgb_array(seed + i)).quantize(colors=64)
                  for i in range(3)]
        return _save(frames[0], "GIF", save_all=True,
                     append_images=frames[1:], duration=50, loop=0)
    if kind == "bmp":
        return _save(Image.fromarray(rgb), "BMP")
    if kind == "tiff":
        return _save(Image.fromarray(rgb), "TIFF")
    if kind == "webp_lossless":
        return _save(Image.fromarray(rgb), "WEBP", lossless=True)
    if kind == "float_tiff":
        return _save(Image.fromarray(rgb[..., 0].astype(np.float32), "F"),
                     "TIFF")
    if kind == "bomb_png":
        # A header claiming 100000 x 100000 pixels (10 gigapixels) with a
        # tiny compressed body: decoding it would need 30 GB.
        return _png_chunks(100_000, 100_000, 8, 2, zlib.compress(b"\0" * 64))
    if kind == "zero_byte":
        return b""
    if kind == "text_as_jpeg":
        return b"this is a README saved with a .jpg name\n" * 3
    raise ValueError(f"unknown kind {kind!r}")


def make_class_folders(root, classes, per_class=10, kinds=("rgb_jpeg",)):
    """Writes ``per_class`` images per class; returns their relative paths."""
    paths = []
    for c, name in enumerate(classes):
        for i in range(per_class):
            kind = kinds[i % len(kinds)]
            rel = f"{name}/{i:03d}{extension(kind)}"
            write_kind(root / rel, kind, seed=100 * c + i)
            paths.append(rel)
    return paths


def write_kind(path, kind, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode_kind(kind, seed))
    return path


def expected_pixels(kind, seed=0):
    """8-bit RGB pixels a converted good file must decode to."""
    if kind == "cmyk_jpeg":
        image = Image.open(io.BytesIO(encode_kind(kind, seed)))
        return np.asarray(image.convert("RGB"))
    if kind == "gray16_png":
        return np.repeat((gray16(seed) >> 8).astype(np.uint8)[..., None],
                         3, axis=2)
    if kind == "rgb16_png":
        return (rgb16(seed) >> 8).astype(np.uint8)
    if kind in ("rgba_png", "la_png"):
        pixels = rgba(seed).astype(np.float64)
        colour = pixels[..., :3] if kind == "rgba_png" else np.repeat(
            pixels[..., :1], 3, axis=2)
        alpha = pixels[..., 3:] / 255.0
        return np.round(colour * alpha + 255.0 * (1.0 - alpha)).astype(
            np.uint8)
    if kind in ("palette_png", "bilevel_png"):
        image = Image.open(io.BytesIO(encode_kind(kind, seed)))
        return np.asarray(image.convert("RGB"))
    if kind == "palette_transparent_png":
        image = Image.open(io.BytesIO(encode_kind(kind, seed)))
        indices = np.asarray(image)
        colours = np.asarray(image.convert("RGB")).copy()
        colours[indices == 0] = 255
        return colours
    if kind == "animated_gif":
        first = Image.fromarray(rgb_array(seed)).quantize(colors=64)
        return np.asarray(first.convert("RGB"))
    if kind in ("bmp", "tiff", "webp_lossless", "rgb_png"):
        return rgb_array(seed)
    raise ValueError(f"no expected pixels for {kind!r}")


def gray16(seed):
    rng = np.random.default_rng(seed + 100)
    return rng.integers(0, 65536, (HEIGHT, WIDTH)).astype(np.uint16)


def rgb16(seed):
    rng = np.random.default_rng(seed + 200)
    return rng.integers(0, 65536, (HEIGHT, WIDTH, 3)).astype(np.uint16)


def rgba(seed):
    rng = np.random.default_rng(seed + 300)
    pixels = rng.integers(0, 256, (HEIGHT, WIDTH, 4)).astype(np.uint8)
    pixels[:4, :, 3] = 0      # fully transparent rows
    pixels[4:8, :, 3] = 255   # opaque rows
    return pixels


def png16_rgb(pixels):
    """A 16-bit RGB PNG (Pillow cannot write one), per the PNG spec."""
    height, width, _ = pixels.shape
    rows = b"".join(b"\0" + pixels[y].astype(">u2").tobytes()
                    for y in range(height))
    return _png_chunks(width, height, 16, 2, zlib.compress(rows))


def _png_chunks(width, height, depth, colour_type, idat):
    def chunk(tag, body):
        return (struct.pack(">I", len(body)) + tag + body
                + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0,
                         0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def _save(image, fmt, **options):
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()
