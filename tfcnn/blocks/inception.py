"""The inception module of GoogLeNet (Szegedy et al., 2015), naive and reduced.

The paper's Figure 2 shows both forms. The *naive* module
runs 1x1, 3x3 and 5x5 convolutions and a 3x3 max-pooling side by side on the
input and concatenates them, so its 5x5 filters see every input channel and
the pooled branch passes every input channel on. The *dimension-reduced*
module puts 1x1 convolutions before the 3x3 and 5x5 convolutions and after
the pooling, which bounds both the parameters and the output width.

Layer names follow the paper's table: ``{name}_1x1``, ``{name}_3x3_reduce``,
``{name}_3x3``, ``{name}_5x5_reduce``, ``{name}_5x5``, ``{name}_pool``,
``{name}_pool_proj`` and ``{name}_concat``.

Reference: https://arxiv.org/abs/1409.4842
"""

import collections

import keras

from tfcnn.blocks.conv_norm_act import conv_norm_act

InceptionSpec = collections.namedtuple(
    "InceptionSpec",
    ["conv1x1", "reduce3x3", "conv3x3", "reduce5x5", "conv5x5", "pool_proj"])
InceptionSpec.__doc__ = """Filters of one inception module (the paper's
Table 1 columns #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj)."""


def inception_module(x, spec, *, reduce=True, norm=None, name):
    """One inception module.

    Args:
        x: 4-D tensor, channels last.
        spec: ``InceptionSpec`` of the branch widths. The naive module uses
            only ``conv1x1``, ``conv3x3`` and ``conv5x5``.
        reduce: bool, the dimension-reduced module (True) or the naive one.
            Defaults to True.
        norm: None or "batch" (the later BN-Inception). Defaults to None
            (the paper).
        name: str, prefix of the layer names, e.g. "inception_3a".

    Returns:
        the concatenated branches: ``conv1x1 + conv3x3 + conv5x5 +
        pool_proj`` channels, or with ``reduce=False`` the input's channels
        in place of ``pool_proj``.
    """
    def conv(tensor, filters, kernel_size, suffix):
        return conv_norm_act(tensor, filters, kernel_size, norm=norm,
                             kernel_initializer="glorot_uniform",
                             name=f"{name}_{suffix}")

    branch3, branch5 = x, x
    if reduce:
        branch3 = conv(x, spec.reduce3x3, 1, "3x3_reduce")
        branch5 = conv(x, spec.reduce5x5, 1, "5x5_reduce")
    branches = [conv(x, spec.conv1x1, 1, "1x1"),
                conv(branch3, spec.conv3x3, 3, "3x3"),
                conv(branch5, spec.conv5x5, 5, "5x5")]
    pooled = keras.layers.MaxPooling2D(3, strides=1, padding="same",
                                       name=f"{name}_pool")(x)
    if reduce:
        pooled = conv(pooled, spec.pool_proj, 1, "pool_proj")
    branches.append(pooled)
    return keras.layers.Concatenate(name=f"{name}_concat")(branches)
