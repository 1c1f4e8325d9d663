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

# DCT scaling factors of libjpeg.
_JPEG_RATIOS = (1, 2, 4, 8)


def resize_shorter_and_centre_crop(image, size):
    """Resizes the shorter side to ``size`` and centre-crops a square.

    The centre square (side = the shorter side) is cut first and only it is
    resized, which gives the same picture as resizing the whole image and
    cropping, without resizing pixels that are thrown away.

    Args:
        image: ``[H, W, C]`` tensor of any real or integer dtype.
        size: int, side of the square output.

    Returns:
        ``[size, size, C]`` uint8 tensor.
    """
    shape = tf.shape(image)
    side = tf.minimum(shape[0], shape[1])
    top = (shape[0] - side) // 2
    left = (shape[1] - side) // 2
    return resize_square(image[top:top + side, left:left + side, :], size)


def resize_square(image, size):
    """Resizes a square image to ``size x size`` uint8.

    Bilinear, except when shrinking by 2x or more, where area averaging (a
    box filter over the source pixels each output pixel covers) keeps
    detail from aliasing. Bilinear below 2x costs a third of
    ``antialias=True`` and differs from it only in fine texture; large
    JPEGs never get here with more than 2x to go, because the decoder's DCT
    scaling has already done the rest. An image already at ``size`` is only
    cast.

    Args:
        image: ``[N, N, C]`` tensor.
        size: int.

    Returns:
        ``[size, size, C]`` uint8 tensor.
    """
    side = tf.shape(image)[0]
    method = (tf.cast(side != size, tf.int32)
              + tf.cast(side >= 2 * size, tf.int32))
    image = tf.switch_case(method, [
        lambda: tf.cast(image, tf.float32),
        lambda: tf.image.resize(image, [size, size]),
        lambda: tf.image.resize(image, [size, size], method="area"),
    ])
    return _to_uint8(image, size)


def decode_image(encoded):
    """Decodes JPEG/PNG/GIF/BMP bytes to a ``[H, W, 3]`` uint8 tensor.

    Grey images are expanded to RGB, and an alpha channel (grey + alpha,
    RGBA) is composited over white, as ``tfcnn ingest`` does when it
    converts such files: a served PNG with transparency looks like the
    training images did, not like the arbitrary colours a decoder leaves
    under transparent pixels (``channels=3`` would just drop alpha).
    Animated images keep their first frame.
    """
    image = tf.io.decode_image(encoded, expand_animations=False)
    return _composite_over_white(image)


def _composite_over_white(image):
    # image: [H, W, C] uint8, C in 1 (grey), 2 (grey + alpha), 3 (RGB),
    # 4 (RGBA). Branch-free: without alpha, alpha is 255 and the colour
    # passes through unchanged.
    channels = tf.shape(image)[-1]
    has_alpha = tf.equal(channels % 2, 0)
    colour = image[..., :channels - tf.cast(has_alpha, tf.int32)]
    colour = tf.broadcast_to(colour, tf.concat([tf.shape(image)[:2], [3]], 0))
    alpha = tf.where(has_alpha, tf.cast(image[..., -1:], tf.float32), 255.0)
    white = 255.0 - (255.0 - tf.cast(colour, tf.float32)) * (alpha / 255.0)
    return tf.ensure_shape(_round_to_uint8(white), [None, None, 3])


def decode_and_resize(encoded, size):
    """Decodes image bytes to the centre square resized to ``size``.

    The result is that of ``resize_shorter_and_centre_crop(decode_image(
    encoded), size)``: JPEGs decode only the centre square, and large ones
    at the coarsest DCT scale that keeps it at least ``size`` wide (which
    filters a little differently from area averaging); other formats are
    decoded whole.

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
    # an op attribute, not a tensor, hence one branch per ratio. Each branch
    # decodes and resizes, so an image costs one branch call (in tf.data a
    # branch is a function call, ~0.3 ms: nested branches add up).
    index = tf.add_n([tf.cast(side >= ratio * size, tf.int32)
                      for ratio in _JPEG_RATIOS[1:]])
    return tf.switch_case(index, [
        lambda ratio=ratio: _shrink_under_2x(
            _decode_centre(encoded, shape, ratio), size)
        for ratio in _JPEG_RATIOS])


def _shrink_under_2x(image, size):
    # After the DCT ratio the square is between size and 2 * size (or
    # smaller than size, if the JPEG is): bilinear suffices, and at exactly
    # size it returns the pixels unchanged.
    return _to_uint8(tf.image.resize(image, [size, size]), size)


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
    return tf.ensure_shape(_round_to_uint8(image), [size, size, None])


def _round_to_uint8(image):
    # One op: +0.5 and truncation rounds non-negative floats.
    return tf.saturate_cast(image + 0.5, tf.uint8)
