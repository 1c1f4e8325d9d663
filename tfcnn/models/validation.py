"""Argument checks and output heads shared by every model builder."""

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


def classifier_output(logits, classifier_activation):
    """Applies the classifier activation in float32 (mixed-precision safe)."""
    return keras.layers.Activation(
        classifier_activation or "linear", dtype="float32",
        name="predictions")(logits)


def global_pool(x, pooling):
    """Applies optional global pooling to a headless backbone's output."""
    if pooling == "avg":
        return keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if pooling == "max":
        return keras.layers.GlobalMaxPooling2D(name="max_pool")(x)
    return x


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


def fully_connected_head(x, num_classes, classifier_activation, *,
                         fc_units=(4096, 4096), dropout=0.5,
                         kernel_initializer="glorot_uniform",
                         bias_initializer="zeros"):
    """AlexNet's and VGG's classifier: flatten, dense layers with dropout.

    Layers are named ``flatten``, ``fc1``, ``fc1_dropout``, ..., ``logits``
    and ``predictions`` (the activation, in float32).

    Args:
        x: 4-D feature tensor.
        num_classes: int, units of the last layer.
        classifier_activation: str or None, activation of the last layer.
        fc_units: tuple of int, hidden layer widths. Defaults to
            ``(4096, 4096)``.
        dropout: float, dropout rate after each hidden layer. Defaults to
            0.5.
        kernel_initializer: initializer of the dense kernels.
        bias_initializer: initializer of the hidden layers' biases.

    Returns:
        the class probabilities (or scores).
    """
    x = keras.layers.Flatten(name="flatten")(x)
    for i, units in enumerate(fc_units, start=1):
        x = keras.layers.Dense(units, activation="relu",
                               kernel_initializer=kernel_initializer,
                               bias_initializer=bias_initializer,
                               name=f"fc{i}")(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name=f"fc{i}_dropout")(x)
    x = keras.layers.Dense(num_classes, kernel_initializer=kernel_initializer,
                           name="logits")(x)
    return classifier_output(x, classifier_activation)


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
