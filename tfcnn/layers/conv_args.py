"""Argument checks shared by the tfcnn layers.

One place for the small normalizations every layer needs (data format,
int-or-tuple arguments, explicit padding), so that the layers raise the same
errors for the same mistakes.
"""

import keras

_DATA_FORMATS = ("channels_last", "channels_first")


def data_format(value):
    """Returns ``value`` or the Keras default, checked.

    Args:
        value: None, "channels_last" or "channels_first".

    Returns:
        "channels_last" or "channels_first".

    Raises:
        ValueError: for any other value.
    """
    if value is None:
        value = keras.config.image_data_format()
    value = str(value).lower()
    if value not in _DATA_FORMATS:
        raise ValueError(
            f"Argument `data_format` must be one of {_DATA_FORMATS}. "
            f"Received: data_format={value!r}")
    return value


def channel_axis(fmt):
    """The channel axis of a 4D tensor in data format ``fmt``."""
    return -1 if fmt == "channels_last" else 1


def int_pair(value, name, minimum=0):
    """Normalizes an int or a pair of ints to a tuple of two ints.

    Args:
        value: int or sequence of two ints.
        name: str, the argument's name, for the error message.
        minimum: int, the smallest value allowed. Defaults to 0.

    Returns:
        tuple of two ints.

    Raises:
        ValueError: if ``value`` is not an int or a pair of ints
            ``>= minimum``.
    """
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if (len(pair) != 2
            or any(not isinstance(v, int) or isinstance(v, bool)
                   for v in pair)
            or any(v < minimum for v in pair)):
        raise ValueError(
            f"Argument `{name}` must be an int or a pair of ints >= "
            f"{minimum}. Received: {name}={value!r}")
    return pair
