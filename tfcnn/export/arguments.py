"""Checks of the user-facing arguments of export, predict and serve.

Their errors are ``ArgumentError``: a ``ValueError`` for Python callers and
a ``TfcnnError`` for the command line, which prints it as one line and exits
with status 2. No TensorFlow here: the server and predict use it too.
"""

from tfcnn.errors import ArgumentError


def check_positive_int(value, name):
    """Returns ``value`` if it is an int >= 1 (not a bool).

    Raises:
        ArgumentError: naming the argument and the value received.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ArgumentError(f"{name} must be a positive int. "
                            f"Received: {name}={value!r}")
    return value
