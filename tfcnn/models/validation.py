"""Argument checks shared by every model builder.

The output heads they share are in ``tfcnn.blocks.heads``.
"""

import keras


def check_common(input_shape, num_classes, pooling, min_size=(32, 32)):
    """Validates the arguments every builder takes.

    Raises:
        ValueError: naming the argument and the received value.
    """
    check_channels_last()
    if len(input_shape) != 3:
        raise ValueError(
            f"input_shape must be (height, width, channels). "
            f"Received: input_shape={input_shape}")
    height, width, _ = input_shape
    for size, low in ((height, min_size[0]), (width, min_size[1])):
        if size is not None and size < low:
            raise ValueError(
                f"input_shape must be at least {min_size[0]}x{min_size[1]}. "
                f"Received: input_shape={input_shape}")
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(
            f"num_classes must be a positive integer. "
            f"Received: num_classes={num_classes}")
    if pooling not in (None, "avg", "max"):
        raise ValueError(
            f"pooling must be None, 'avg' or 'max'. "
            f"Received: pooling={pooling}")


def check_dense_prediction(input_shape, num_classes, pooling, stride):
    """``check_common`` for a builder of per-pixel scores whose coarsest
    features have ``stride``: fixed sides must be multiples of it.

    Raises:
        ValueError: naming the argument and the received value.
    """
    check_common(input_shape, num_classes, pooling)
    check_divisible(input_shape, stride)


def check_fully_connected(fc_units, dropout):
    """Validates the width and dropout of fully connected layers (dense,
    or the convolutions that replace them in FCN and dilated networks).

    Raises:
        ValueError: naming the argument and the received value.
    """
    check_positive("fc_units", fc_units, int)
    check_dropout(dropout)


def check_channels_last():
    """Checks that Keras builds channels-last layers.

    Every model takes ``(H, W, C)`` inputs; its layers read their data
    format from ``keras.config.image_data_format()``.

    Raises:
        ValueError: the global data format is "channels_first".
    """
    data_format = keras.config.image_data_format()
    if data_format != "channels_last":
        raise ValueError(
            "tfcnn models are channels_last; call "
            "keras.config.set_image_data_format('channels_last') first. "
            f"Received: image_data_format={data_format!r}")


def check_choice(argument, value, choices):
    """Checks that ``value`` is one of ``choices``.

    Args:
        argument: str, the argument's name, used in the message.
        value: the received value.
        choices: tuple of the accepted values.

    Raises:
        ValueError: naming the argument and the received value.
    """
    if value not in choices:
        raise ValueError(
            f"{argument} must be one of {', '.join(map(repr, choices))}. "
            f"Received: {argument}={value!r}")


def check_positive(argument, value, kind=float):
    """Checks that ``value`` is a positive number of type ``kind``.

    Args:
        argument: str, the argument's name, used in the message.
        value: the received value.
        kind: ``int`` or ``float`` (ints pass as floats). Defaults to float.

    Raises:
        ValueError: naming the argument and the received value.
    """
    types = (int,) if kind is int else (int, float)
    if isinstance(value, bool) or not isinstance(value, types) or value <= 0:
        raise ValueError(
            f"{argument} must be a positive {kind.__name__}. "
            f"Received: {argument}={value!r}")


def check_divisible(input_shape, divisor, argument="input_shape"):
    """Checks that the defined spatial sizes are multiples of ``divisor``.

    Raises:
        ValueError: naming the argument and the received value.
    """
    for size in input_shape[:2]:
        if size is not None and size % divisor:
            raise ValueError(
                f"{argument} height and width must be multiples of "
                f"{divisor}. Received: {argument}={input_shape}")


def check_dropout(dropout):
    """Checks a dropout rate in [0, 1).

    Raises:
        ValueError: naming the argument and the received value.
    """
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) \
            or not 0 <= dropout < 1:
        raise ValueError(
            f"dropout must be a number in [0, 1). "
            f"Received: dropout={dropout!r}")
