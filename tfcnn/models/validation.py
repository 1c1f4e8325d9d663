"""Argument checks and output heads shared by every model builder."""

import keras


def check_common(input_shape, num_classes, pooling, min_size=(32, 32)):
    """Validates the arguments every builder takes.

    Raises:
        ValueError: naming the argument and the received value.
    """
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
            f"pooling must be None, 'avg' or 'max'. Received: pooling={pooling}")


def classifier_output(logits, classifier_activation):
    """Applies the classifier activation in float32 (safe under mixed precision)."""
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
