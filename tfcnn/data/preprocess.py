"""Host-side image preprocessing shared by training, evaluation and serving.

Everything here is a pure function of its arguments. The host resizes the
shorter side to ``size`` and keeps the centre ``size x size`` square (the
AlexNet paper's 256x256 rescaling); the random crop, flip, lighting and mean
subtraction run on the accelerator as Keras layers (``tfcnn.augment``).
Serving uses the very same function (``decode_and_resize``), so training and
serving can't preprocess differently.
"""

import tensorflow as tf


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
    image = tf.cast(tf.clip_by_value(tf.round(image), 0.0, 255.0), tf.uint8)
    return tf.ensure_shape(image, [size, size, None])


def decode_image(encoded):
    """Decodes JPEG/PNG/GIF/BMP bytes to a ``[H, W, 3]`` uint8 tensor."""
    image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
    return tf.ensure_shape(image, [None, None, 3])


def decode_and_resize(encoded, size):
    """Decodes encoded image bytes and applies ``resize_shorter_and_centre_crop``."""
    return resize_shorter_and_centre_crop(decode_image(encoded), size)
