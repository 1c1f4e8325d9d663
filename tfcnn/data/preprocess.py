"""Host-side image preprocessing shared by training, evaluation and serving.

Everything here is a pure function of its arguments. The host resizes the
shorter side to ``size`` and keeps the centre ``size x size`` square (the
AlexNet paper's 256x256 rescaling); the random crop, flip, lighting and mean
subtraction run on the accelerator as Keras layers (``tfcnn.augment``).
Serving uses the very same function (``decode_and_resize``), so training and
serving can't preprocess differently.

JPEGs take a faster road to the same square: only the centre square is
decoded (``tf.io.decode_and_crop_jpeg``), and large images are downscaled by
the decoder's DCT scaling (``ratio`` 2, 4 or 8) as long as the square stays at
least ``size`` pixels wide, so the resize that follows always shrinks. This
skips the decoding and resizing of pixels that the centre crop throws away.
"""

import tensorflow as tf

# DCT scaling factors of libjpeg, largest first.
_JPEG_RATIOS = (8, 4, 2)


def resize_shorter_and_centre_crop(image, size):
    """Resizes the shorter side to ``size`` and centre-crops a square.

    Args:
        image: ``[H, W, C]`` tensor of any real or integer dtype.
        size: int, side of the square output.

    Returns:
        ``[size, size, C]`` uint8 tensor.
    """
    shape = tf.shape(image)
    height, width = shape[0], shape[1]
    scale = tf.cast(size, tf.float32) / tf.cast(
        tf.minimum(height, width), tf.float32)
    new_h = tf.maximum(size, tf.cast(
        tf.round(tf.cast(height, tf.float32) * scale), tf.int32))
    new_w = tf.maximum(size, tf.cast(
        tf.round(tf.cast(width, tf.float32) * scale), tf.int32))
    image = tf.image.resize(image, [new_h, new_w], antialias=True)
    top = (new_h - size) // 2
    left = (new_w - size) // 2
    image = image[top:top + size, left:left + size, :]
    return _to_uint8(image, size)


def decode_image(encoded):
    """Decodes JPEG/PNG/GIF/BMP bytes to a ``[H, W, 3]`` uint8 tensor."""
    image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
    return tf.ensure_shape(image, [None, None, 3])


def decode_and_resize(encoded, size):
    """Decodes image bytes to the centre square resized to ``size``.

    The result is that of ``resize_shorter_and_centre_crop(decode_image(
    encoded), size)`` up to one source pixel in where the square starts:
    JPEGs decode only the centre square, at the coarsest DCT scale that keeps
    it at least ``size`` wide; other formats are decoded whole.

    Args:
        encoded: scalar string tensor, JPEG/PNG/GIF/BMP bytes.
        size: int, side of the square output.

    Returns:
        ``[size, size, 3]`` uint8 tensor.
    """
    return tf.cond(
        tf.io.is_jpeg(encoded),
        lambda: decode_jpeg_centre_square(encoded, size),
        lambda: resize_shorter_and_centre_crop(decode_image(encoded), size))


def decode_jpeg_centre_square(encoded, size):
    """Decodes the centre square of a JPEG and resizes it to ``size``.

    Args:
        encoded: scalar string tensor of JPEG bytes.
        size: int, side of the square output.

    Returns:
        ``[size, size, 3]`` uint8 tensor.
    """
    shape = tf.image.extract_jpeg_shape(encoded)
    side = tf.minimum(shape[0], shape[1])
    # The largest DCT ratio whose scaled square is still >= size; ratio is
    # an op attribute, not a tensor, hence one branch per ratio.
    branches = [
        (side >= ratio * size,
         lambda ratio=ratio: _decode_centre(encoded, shape, ratio))
        for ratio in _JPEG_RATIOS]
    image = tf.case(branches, default=lambda: _decode_centre(
        encoded, shape, 1), exclusive=False)
    side = tf.shape(image)[0]
    image = tf.cond(
        tf.equal(side, size),
        lambda: tf.cast(image, tf.float32),
        lambda: tf.image.resize(image, [size, size], antialias=True))
    return _to_uint8(image, size)


def _decode_centre(encoded, shape, ratio):
    # The crop window is in the coordinates of the DCT-scaled image, whose
    # sides are ceil(side / ratio).
    height = -(-shape[0] // ratio)
    width = -(-shape[1] // ratio)
    side = tf.minimum(height, width)
    window = tf.stack([(height - side) // 2, (width - side) // 2, side, side])
    image = tf.io.decode_and_crop_jpeg(encoded, window, channels=3,
                                       ratio=ratio)
    return tf.ensure_shape(image, [None, None, 3])


def _to_uint8(image, size):
    image = tf.cast(tf.clip_by_value(tf.round(image), 0.0, 255.0), tf.uint8)
    return tf.ensure_shape(image, [size, size, None])
