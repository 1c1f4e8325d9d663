"""The context module of Yu & Koltun (2016): stacked dilated convolutions.

Seven 3x3 convolutions with dilation rates 1, 1, 2, 4, 8, 16, 1, each
followed by a ReLU, then a 1x1 convolution: the receptive field grows
exponentially (to 67 x 67 with the default rates) while the resolution and
the channel count stay fixed, which is what dense prediction needs.
"""

from tfcnn.layers.dilated_conv import DilatedConv2D


def context_module(x, channels, rates=(1, 1, 2, 4, 8, 16, 1),
                   name="context", kernel_initializer="identity"):
    """Applies the context module to ``x``.

    Layer names are ``f"{name}_{i}_conv"`` for ``i = 1 ... len(rates) + 1``
    (the last is the 1x1 convolution).

    Args:
        x: 4D tensor (channels_last), symbolic or eager.
        channels: int, the channels of every layer (C in the paper; the
            basic module keeps the input's channel count).
        rates: sequence of ints >= 1, the dilation rate of each 3x3 layer.
            Defaults to the paper's (1, 1, 2, 4, 8, 16, 1).
        name: str, prefix of the layer names. Defaults to "context".
        kernel_initializer: initializer of every kernel. Defaults to
            "identity" (``tfcnn.layers.IdentityKernel``, the paper's: the
            untrained module passes ``relu(x)`` through, which is what
            lets it train; random initialization did not, per the paper).

    Returns:
        The output tensor, same spatial size as ``x``, ``channels``
        channels.

    Raises:
        ValueError: if ``rates`` is empty or holds a rate below 1.

    Reference:
        - [Yu & Koltun, 2016](https://arxiv.org/abs/1511.07122), table 1.
    """
    rates = tuple(rates)
    if not rates or any(not isinstance(r, int) or r < 1 for r in rates):
        raise ValueError(
            "Argument `rates` must be a non-empty sequence of ints >= 1. "
            f"Received: rates={rates!r}")
    for i, rate in enumerate(rates, start=1):
        x = DilatedConv2D(channels, 3, dilation_rate=rate, padding="same",
                          activation="relu",
                          kernel_initializer=kernel_initializer,
                          name=f"{name}_{i}_conv")(x)
    # The paper's last layer is a 1x1 convolution without truncation
    # (a DilatedConv2D with rate 1, so "identity" means the same here).
    return DilatedConv2D(channels, 1, dilation_rate=1,
                         kernel_initializer=kernel_initializer,
                         name=f"{name}_{len(rates) + 1}_conv")(x)
