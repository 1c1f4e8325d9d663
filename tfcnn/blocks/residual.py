"""Residual blocks of He et al. (2016) with the paper's three shortcut options.

He et al. (2016) define ``y = F(x) + W_s x`` and three designs of ``W_s``
when the block changes the tensor's shape:

* **A**: identity, with the extra channels zero-padded and the spatial size
  subsampled by the stride (no parameters; ``tfcnn.layers.ZeroPadShortcut``);
* **B**: a projection (1x1 convolution + normalization) where the shape
  changes, the identity elsewhere (the paper's default for ResNet-50+);
* **C**: a projection on every block.

``basic_block`` is the two 3x3 convolutions of ResNet-18/34 and
``bottleneck_block`` the 1x1-3x3-1x1 of ResNet-50/101/152 (expansion 4).
Layer names follow ``keras.applications``: ``{name}_1_conv``,
``{name}_0_conv`` for the projection, ``{name}_add``, ``{name}_out``.

Reference: https://arxiv.org/abs/1512.03385
"""

import keras

from tfcnn.blocks.conv_norm_act import conv_norm_act
from tfcnn.layers.stochastic_depth import StochasticDepth
from tfcnn.layers.zero_pad_shortcut import ZeroPadShortcut

SHORTCUTS = ("A", "B", "C")


def check_shortcut(shortcut):
    """Validates a shortcut option.

    Raises:
        ValueError: naming the argument and the received value.
    """
    if shortcut not in SHORTCUTS:
        raise ValueError(
            f"shortcut must be one of {SHORTCUTS}. "
            f"Received: shortcut={shortcut!r}")


def shortcut_branch(x, channels, strides, shortcut, *, name, **norm_kwargs):
    """The shortcut ``W_s x`` of a residual block.

    Args:
        x: the block's input.
        channels: int, the block's output channels.
        strides: int, the block's spatial stride.
        shortcut: "A", "B" or "C" (see the module docstring).
        name: str, the block's name.
        **norm_kwargs: ``norm`` and ``norm_groups`` for a projection.

    Returns:
        a tensor shaped like the block's residual branch.
    """
    check_shortcut(shortcut)
    changes_shape = strides != 1 or x.shape[-1] != channels
    if shortcut == "C" or (shortcut == "B" and changes_shape):
        return conv_norm_act(x, channels, 1, strides, activation=None,
                             name=f"{name}_0", **norm_kwargs)
    if changes_shape:
        return ZeroPadShortcut(channels, strides, name=f"{name}_0_pad")(x)
    return x


def _merge(x, shortcut, name, drop_rate=0.0):
    if drop_rate:
        # Huang et al. 2016: the branch is dropped at random in training;
        # the layer is an addition in inference.
        x = StochasticDepth(drop_rate, name=f"{name}_add")([shortcut, x])
    else:
        x = keras.layers.Add(name=f"{name}_add")(([shortcut, x]))
    return keras.layers.Activation("relu", name=f"{name}_out")(x)


def basic_block(x, filters, *, strides=1, dilation_rate=1, shortcut="B",
                zero_init_residual=False, drop_rate=0.0, name,
                **norm_kwargs):
    """Two 3x3 convolutions with a shortcut (ResNet-18/34).

    Args:
        x: 4-D tensor, channels last.
        filters: int, channels of both convolutions and of the output.
        strides: int, stride of the first convolution. Defaults to 1.
        dilation_rate: int, dilation of the convolutions (dilated ResNet;
            used with ``strides=1``). Defaults to 1.
        shortcut: "A", "B" or "C". Defaults to "B".
        zero_init_residual: bool, zero-initialised scale of the last
            normalization, so that the block starts as the identity.
            Defaults to False.
        drop_rate: float, probability of dropping the residual branch in
            training (stochastic depth). Defaults to 0.
        name: str, prefix of the layer names.
        **norm_kwargs: ``norm`` ("batch" or "group") and ``norm_groups``.

    Returns:
        the output tensor, ``filters`` channels.
    """
    identity = shortcut_branch(x, filters, strides, shortcut, name=name,
                               **norm_kwargs)
    x = conv_norm_act(x, filters, 3, strides, dilation_rate=dilation_rate,
                      name=f"{name}_1", **norm_kwargs)
    x = conv_norm_act(x, filters, 3, dilation_rate=dilation_rate,
                      activation=None, zero_gamma=zero_init_residual,
                      name=f"{name}_2", **norm_kwargs)
    return _merge(x, identity, name, drop_rate)


def bottleneck_block(x, filters, *, strides=1, dilation_rate=1, shortcut="B",
                     zero_init_residual=False, stride_on_3x3=False,
                     expansion=4, drop_rate=0.0, name, **norm_kwargs):
    """1x1 reduce, 3x3, 1x1 expand, with a shortcut (ResNet-50/101/152).

    Args:
        x: 4-D tensor, channels last.
        filters: int, channels of the 1x1 and 3x3 convolutions; the output
            has ``expansion * filters``.
        strides: int, the block's stride. Defaults to 1.
        dilation_rate: int, dilation of the 3x3 convolution. Defaults to 1.
        shortcut: "A", "B" or "C". Defaults to "B".
        zero_init_residual: bool, zero-initialised scale of the last
            normalization. Defaults to False.
        stride_on_3x3: bool, put the stride on the 3x3 convolution (the
            "ResNet v1.5" of torchvision and Goyal et al.) instead of the
            first 1x1 (the paper's Caffe models). Defaults to False.
        expansion: int, output channels over ``filters``. Defaults to 4.
        drop_rate: float, probability of dropping the residual branch in
            training (stochastic depth). Defaults to 0.
        name: str, prefix of the layer names.
        **norm_kwargs: ``norm`` ("batch" or "group") and ``norm_groups``.

    Returns:
        the output tensor, ``expansion * filters`` channels.
    """
    identity = shortcut_branch(x, expansion * filters, strides, shortcut,
                               name=name, **norm_kwargs)
    stride_1x1, stride_3x3 = (1, strides) if stride_on_3x3 else (strides, 1)
    x = conv_norm_act(x, filters, 1, stride_1x1, name=f"{name}_1",
                      **norm_kwargs)
    x = conv_norm_act(x, filters, 3, stride_3x3, dilation_rate=dilation_rate,
                      name=f"{name}_2", **norm_kwargs)
    x = conv_norm_act(x, expansion * filters, 1, activation=None,
                      zero_gamma=zero_init_residual, name=f"{name}_3",
                      **norm_kwargs)
    return _merge(x, identity, name, drop_rate)
