"""Host-side image preprocessing shared by training, evaluation and serving.

Everything here is a pure function of its arguments. The host resizes the
shorter side to ``resize_size`` S and keeps the centre ``S x S`` square (the
AlexNet paper's 256x256 rescaling); the random crop, flip, lighting and mean
subtraction run on the accelerator as Keras layers (``tfcnn.augment``).
Serving uses the very same function (``decode_and_resize``), so training and
serving can't preprocess differently.

JPEGs take a faster road to the same square: only the centre square is
decoded (``tf.io.decode_and_crop_jpeg``), and large images are downscaled by
the decoder's DCT scaling (``ratio`` 2, 4 or 8) as long as the square stays at
least S pixels wide, so the resize that follows always shrinks. This
skips the decoding and resizing of pixels that the centre crop throws away.

Records of a shard are decoded by ``decode_record``, which also reads raw
records (8-bit RGB pixels, ``tfcnn ingest --raw``); ``decode_raw_batch``
decodes a whole batch of raw records of one shape at once.

Training with ``augment.crop = "inception"`` decodes only a random window
(``decode_inception_crop``): 8% to 100% of the image's area, aspect ratio
3/4 to 4/3, resized to the crop size C, as Szegedy et al. 2015 (GoogLeNet)
trained and TF Model Garden and timm train ResNets. JPEGs decode just the
window (``tf.io.decode_and_crop_jpeg``, Model Garden's approach). The C x C
crop is placed in the centre of the S x S host image, where the model's
centre crop (``tfcnn.augment.RandomOrCentreCrop(random=False)``) takes it
back, so batches keep one shape and the model one input.
"""

import tensorflow as tf

from tfcnn.data import features

# DCT scaling factors of libjpeg.
JPEG_RATIOS = (1, 2, 4, 8)
# The Inception crop's ranges of area fraction and aspect ratio (width /
# height), and the minimum fraction of the image a window must cover.
INCEPTION_AREA_RANGE = (0.08, 1.0)
INCEPTION_ASPECT_RANGE = (3 / 4, 4 / 3)
_INCEPTION_ATTEMPTS = 10


def resize_shorter_and_centre_crop(image, resize_size):
    """Resizes the shorter side to ``resize_size`` and centre-crops.

    The centre square (side = the shorter side) is cut first and only it is
    resized, which gives the same picture as resizing the whole image and
    cropping, without resizing pixels that are thrown away.

    Args:
        image: ``[H, W, C]`` tensor of any real or integer dtype.
        resize_size: int, S, the side of the square output.

    Returns:
        ``[S, S, C]`` uint8 tensor.
    """
    top, left, side = centre_square(tf.shape(image))
    return resize_square(image[top:top + side, left:left + side, :],
                         resize_size)


def centre_square(shape):
    """The centre square of an image: ``(top, left, side)``.

    Args:
        shape: int ``[2+]`` tensor, the image's height and width first.

    Returns:
        three int scalar tensors; ``side`` is the shorter side.
    """
    side = tf.minimum(shape[0], shape[1])
    return (shape[0] - side) // 2, (shape[1] - side) // 2, side


def resize_square(image, resize_size):
    """Resizes a square image to ``S x S`` uint8.

    Bilinear, except when shrinking by 2x or more, where area averaging (a
    box filter over the source pixels each output pixel covers) keeps
    detail from aliasing. Bilinear below 2x costs a third of
    ``antialias=True`` and differs from it only in fine texture; large
    JPEGs never get here with more than 2x to go, because the decoder's DCT
    scaling has already done the rest. An image already at S is only cast.

    Args:
        image: ``[N, N, C]`` tensor.
        resize_size: int, S, the side of the square output.

    Returns:
        ``[S, S, C]`` uint8 tensor.
    """
    side = tf.shape(image)[0]
    method = (tf.cast(side != resize_size, tf.int32)
              + tf.cast(side >= 2 * resize_size, tf.int32))
    image = tf.switch_case(method, [
        lambda: tf.cast(image, tf.float32),
        lambda: tf.image.resize(image, [resize_size, resize_size]),
        lambda: tf.image.resize(image, [resize_size, resize_size],
                                method="area"),
    ])
    return _to_uint8(image, resize_size)


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


def decode_and_resize(encoded, resize_size):
    """Decodes image bytes to the centre square resized to ``resize_size``.

    The result is that of ``resize_shorter_and_centre_crop(decode_image(
    encoded), resize_size)``: JPEGs decode only the centre square, and
    large ones at the coarsest DCT scale that keeps it at least S wide
    (which filters a little differently from area averaging); other formats
    are
    decoded whole.

    Args:
        encoded: scalar string tensor, JPEG/PNG/GIF/BMP bytes.
        resize_size: int, S, the side of the square output.

    Returns:
        ``[S, S, 3]`` uint8 tensor.
    """
    return tf.cond(
        tf.io.is_jpeg(encoded),
        lambda: decode_jpeg_centre_square(encoded, resize_size),
        lambda: resize_shorter_and_centre_crop(decode_image(encoded),
                                               resize_size))


def decode_record(encoded, image_format, height, width, resize_size):
    """Decodes a shard record's image to the centre square resized to S.

    What training, ``tfcnn stats`` and the exported model's
    ``predict_examples`` signature use: ``decode_and_resize`` for encoded
    images (original or compact), and for raw records the stored pixels
    through ``resize_shorter_and_centre_crop``.

    Args:
        encoded: scalar string tensor, ``image/encoded``.
        image_format: scalar string tensor, ``image/format``.
        height: scalar int tensor, ``image/height`` (raw records only).
        width: scalar int tensor, ``image/width`` (raw records only).
        resize_size: int, S, the side of the square output.

    Returns:
        ``[S, S, 3]`` uint8 tensor.
    """
    return tf.switch_case(_kind(encoded, image_format), [
        lambda: decode_jpeg_centre_square(encoded, resize_size),
        lambda: resize_shorter_and_centre_crop(decode_image(encoded),
                                               resize_size),
        lambda: resize_shorter_and_centre_crop(
            decode_raw(encoded, height, width), resize_size),
    ])


def decode_raw(encoded, height, width):
    """Raw record bytes -> ``[height, width, 3]`` uint8.

    Raises:
        tf.errors.InvalidArgumentError: the byte count is not
            ``height * width * 3``.
    """
    pixels = tf.io.decode_raw(encoded, tf.uint8)
    return tf.reshape(pixels, tf.stack([tf.cast(height, tf.int32),
                                        tf.cast(width, tf.int32), 3]))


def decode_raw_batch(encoded, shape, resize_size):
    """A batch of raw records of one shape -> ``[B, S, S, 3]`` uint8.

    The pixels equal those of ``decode_record`` on each record, with one
    op per batch instead of several per image (what makes raw shards of
    small images fast).

    Args:
        encoded: ``[B]`` string tensor, raw records.
        shape: ``(height, width)`` of every record.
        resize_size: int, S, the side of the square output.

    Returns:
        ``[B, S, S, 3]`` uint8 tensor.
    """
    height, width = (int(v) for v in shape)
    images = tf.reshape(tf.io.decode_raw(encoded, tf.uint8),
                        [-1, height, width, 3])
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    images = images[:, top:top + side, left:left + side, :]
    if side == resize_size:
        return images
    # The same filters as resize_square, chosen once for the whole batch.
    method = "area" if side >= 2 * resize_size else "bilinear"
    return _round_to_uint8(tf.image.resize(images, [resize_size, resize_size],
                                           method=method))


def decode_inception_crop(encoded, image_format, height, width, *,
                          crop_size, resize_size, seed=None):
    """Decodes a random Inception-style window of a record's image.

    The window covers 8% to 100% of the image's area with a width/height
    ratio in [3/4, 4/3] (``tf.image.sample_distorted_bounding_box``, at
    most 10 attempts; when all fail, the centre square of side
    ``shorter side * crop_size / resize_size``, the view evaluation sees). JPEGs
    decode only the window. The window is resized (bilinear) to
    ``crop_size x crop_size`` and placed in the centre of a
    ``S x S`` image, zeros around it.

    Args:
        encoded: scalar string tensor, ``image/encoded``.
        image_format: scalar string tensor, ``image/format``.
        height: scalar int tensor, ``image/height`` (raw records only).
        width: scalar int tensor, ``image/width`` (raw records only).
        crop_size: int, C, the side the network sees.
        resize_size: int, S >= C, the host size.
        seed: int or None, seed of the window sampling. Defaults to None.

    Returns:
        ``[S, S, 3]`` uint8 tensor.
    """
    _check_crop(crop_size, resize_size)

    def jpeg():
        shape = tf.image.extract_jpeg_shape(encoded)
        window = _inception_window(shape, crop_size, resize_size, seed)
        return tf.io.decode_and_crop_jpeg(encoded, window, channels=3)

    window = tf.switch_case(_kind(encoded, image_format), [
        jpeg,
        lambda: _cut_window(decode_image(encoded), crop_size, resize_size,
                            seed),
        lambda: _cut_window(decode_raw(encoded, height, width), crop_size,
                            resize_size, seed),
    ])
    return _centre_in_host_image(window, crop_size, resize_size)


def inception_crop(image, *, crop_size, resize_size, seed=None):
    """``decode_inception_crop`` for decoded ``[H, W, 3]`` pixels."""
    _check_crop(crop_size, resize_size)
    window = _cut_window(image, crop_size, resize_size, seed)
    return _centre_in_host_image(window, crop_size, resize_size)


def _check_crop(crop_size, resize_size):
    if crop_size > resize_size:
        raise ValueError(
            "crop_size must be <= resize_size. Received: "
            f"crop_size={crop_size}, resize_size={resize_size}")


def _cut_window(image, crop_size, resize_size, seed):
    window = _inception_window(tf.shape(image), crop_size, resize_size, seed)
    return image[window[0]:window[0] + window[2],
                 window[1]:window[1] + window[3], :]


def _centre_in_host_image(window, crop_size, resize_size):
    # Resized to C x C, then padded to S x S around the centre, where the
    # model's centre crop (offset (S - C) // 2) takes it back.
    image = tf.image.resize(tf.ensure_shape(window, [None, None, 3]),
                            [crop_size, crop_size])
    offset = (resize_size - crop_size) // 2
    image = tf.image.pad_to_bounding_box(
        _round_to_uint8(image), offset, offset, resize_size, resize_size)
    return tf.ensure_shape(image, [resize_size, resize_size, 3])


def _inception_window(shape, crop_size, resize_size, seed):
    """``[top, left, height, width]`` of a sampled window of ``shape``."""
    begin, extent, _ = tf.image.sample_distorted_bounding_box(
        shape, tf.constant([0.0, 0.0, 1.0, 1.0], shape=[1, 1, 4]),
        seed=seed, min_object_covered=INCEPTION_AREA_RANGE[0],
        aspect_ratio_range=INCEPTION_ASPECT_RANGE,
        area_range=INCEPTION_AREA_RANGE, max_attempts=_INCEPTION_ATTEMPTS,
        use_image_if_no_bounding_boxes=True)
    # All attempts failed: the op returns the whole image (Model Garden's
    # test); fall back to evaluation's centre view.
    failed = tf.reduce_all(tf.equal(extent[:2], shape[:2]))
    side = tf.maximum(1, tf.cast(
        tf.cast(tf.minimum(shape[0], shape[1]), tf.float32)
        * (crop_size / resize_size), tf.int32))
    centre = tf.stack([(shape[0] - side) // 2, (shape[1] - side) // 2,
                       side, side])
    sampled = tf.stack([begin[0], begin[1], extent[0], extent[1]])
    return tf.where(failed, centre, sampled)


def _kind(encoded, image_format):
    # 0: JPEG, 1: another encoded format, 2: raw pixels. The format feature
    # decides raw first: raw pixels may start like a JPEG by chance.
    return tf.where(
        tf.equal(image_format, features.IMAGE_FORMAT_RAW), 2,
        tf.cast(tf.logical_not(tf.io.is_jpeg(encoded)), tf.int32))


def decode_jpeg_centre_square(encoded, resize_size):
    """Decodes the centre square of a JPEG and resizes it to ``resize_size``.

    Args:
        encoded: scalar string tensor of JPEG bytes.
        resize_size: int, S, the side of the square output.

    Returns:
        ``[S, S, 3]`` uint8 tensor.
    """
    index, window = jpeg_centre_window(tf.image.extract_jpeg_shape(encoded),
                                       resize_size)
    return decode_jpeg_window(encoded, index, window, resize_size)


def jpeg_centre_window(shape, resize_size):
    """Where ``decode_jpeg_centre_square`` decodes a JPEG: ratio and window.

    The ratio is the largest of ``JPEG_RATIOS`` whose scaled centre square
    is still at least S wide; the window is the centre square of the
    image scaled by it, whose sides are ``ceil(side / ratio)``. Scaled
    pixel ``k`` covers full-resolution pixels ``ratio * k`` to
    ``ratio * k + ratio - 1``.

    Args:
        shape: int32 ``[3]`` tensor, ``tf.image.extract_jpeg_shape``.
        resize_size: int, S, the side of the square output.

    Returns:
        ``(index, window)``: int32 scalar tensor, an index into
        ``JPEG_RATIOS``, and int32 ``[4]`` tensor ``[top, left, side,
        side]`` in the scaled image (``tf.io.decode_and_crop_jpeg``'s
        ``crop_window``).
    """
    shorter = tf.minimum(shape[0], shape[1])
    index = tf.add_n([tf.cast(shorter >= ratio * resize_size, tf.int32)
                      for ratio in JPEG_RATIOS[1:]])
    ratio = tf.gather(JPEG_RATIOS, index)
    top, left, side = centre_square(-(-shape[:2] // ratio))
    return index, tf.stack([top, left, side, side])


def decode_jpeg_window(encoded, index, window, resize_size):
    """Decodes a ``jpeg_centre_window`` of a JPEG, resized to S x S.

    Args:
        encoded: scalar string tensor of JPEG bytes.
        index: int32 scalar tensor, an index into ``JPEG_RATIOS``.
        window: int32 ``[4]`` tensor, the square to decode in the image
            scaled by that ratio.
        resize_size: int, S, the side of the square output.

    Returns:
        ``[S, S, 3]`` uint8 tensor.
    """
    # Ratio is an op attribute, not a tensor, hence one branch per ratio.
    # Each branch decodes and resizes, so an image costs one branch call
    # (in tf.data a branch is a function call, ~0.3 ms: nested branches
    # add up). After the ratio the square is between S and 2 * S (or
    # smaller than S, if the JPEG is): bilinear suffices, and at exactly S
    # it returns the pixels unchanged.
    def decode(ratio):
        image = tf.io.decode_and_crop_jpeg(encoded, window, channels=3,
                                           ratio=ratio)
        image = tf.image.resize(tf.ensure_shape(image, [None, None, 3]),
                                [resize_size, resize_size])
        return _to_uint8(image, resize_size)

    return tf.switch_case(index, [
        lambda ratio=ratio: decode(ratio) for ratio in JPEG_RATIOS])


def _to_uint8(image, resize_size):
    return tf.ensure_shape(_round_to_uint8(image),
                           [resize_size, resize_size, None])


def _round_to_uint8(image):
    # One op: +0.5 and truncation rounds non-negative floats.
    return tf.saturate_cast(image + 0.5, tf.uint8)
