"""Atrous spatial pyramid pooling (Chen et al. 2017, DeepLab-v3).

Parallel branches look at the same feature map at several scales: a 1x1
convolution, three 3x3 convolutions dilated by ``rates`` (6, 12 and 18 at
output stride 16), and image-level features (global average pooling, a
1x1 convolution, broadcast back to the map's size). Every branch has
``filters`` channels and batch normalization; their concatenation is
projected by a 1x1 convolution. The dilated branches are
``tfcnn.layers.DilatedConv2D`` (through ``conv_norm_act``).

Reference: https://arxiv.org/abs/1706.05587 (section 3.3)
"""

import keras

from tfcnn.blocks.conv_norm_act import conv_norm_act
from tfcnn.layers.resize_like import ResizeLike

RATES = (6, 12, 18)


def atrous_spatial_pyramid_pooling(x, filters=256, *, rates=RATES,
                                   norm="batch", norm_groups=32, dropout=0.1,
                                   name="aspp"):
    """Applies ASPP with image pooling to ``x``.

    Layer names: ``{name}_0`` (1x1), ``{name}_1`` ... (dilated 3x3),
    ``{name}_pool`` (global pooling), ``{name}_pool_proj`` (its 1x1),
    ``{name}_pool_resize``, ``{name}_concat``, ``{name}_proj`` and
    ``{name}_dropout``.

    Args:
        x: 4-D feature map, channels last, any spatial size.
        filters: int, channels of every branch and of the output. Defaults
            to 256 (the paper's).
        rates: tuple of ints > 1, dilation of the 3x3 branches. Defaults to
            (6, 12, 18) (the paper's at output stride 16; double them at
            output stride 8).
        norm: "batch" or "group". Defaults to "batch".
        norm_groups: int, groups of group normalization. Defaults to 32.
        dropout: float, dropout after the projection. Defaults to 0.1.
        name: str, prefix of the layer names. Defaults to "aspp".

    Returns:
        the output tensor: ``x``'s spatial size, ``filters`` channels.

    Raises:
        ValueError: empty ``rates`` or a rate below 2.
    """
    rates = tuple(rates)
    if not rates or any(isinstance(r, bool) or not isinstance(r, int)
                        or r < 2 for r in rates):
        raise ValueError(
            "rates must be a non-empty sequence of ints >= 2. "
            f"Received: rates={rates!r}")
    norm_kwargs = dict(norm=norm, norm_groups=norm_groups)
    branches = [conv_norm_act(x, filters, 1, name=f"{name}_0",
                              **norm_kwargs)]
    for index, rate in enumerate(rates, start=1):
        branches.append(conv_norm_act(x, filters, 3, dilation_rate=rate,
                                      name=f"{name}_{index}", **norm_kwargs))
    pooled = keras.layers.GlobalAveragePooling2D(
        keepdims=True, name=f"{name}_pool")(x)
    pooled = conv_norm_act(pooled, filters, 1, name=f"{name}_pool_proj",
                           **norm_kwargs)
    branches.append(ResizeLike(name=f"{name}_pool_resize")([pooled, x]))
    x = keras.layers.Concatenate(name=f"{name}_concat")(branches)
    x = conv_norm_act(x, filters, 1, name=f"{name}_proj", **norm_kwargs)
    if dropout:
        x = keras.layers.Dropout(dropout, name=f"{name}_dropout")(x)
    return x
