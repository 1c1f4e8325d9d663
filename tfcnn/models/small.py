"""A small fully convolutional backbone for dense prediction on a CPU.

Five stages, each a strided 3x3 convolution and a 3x3 convolution, both
with batch normalization and ReLU (``tfcnn.blocks.conv_norm_act``), so the
stages end at strides 2, 4, 8, 16 and 32 like VGG's and ResNet's, and any
head that reads endpoints keyed by stride (``tfcnn.models.fcn.fcn_head``)
sits on it. With the default widths it has about 0.5 million weights and
trains on small scenes (the segmentation quickstart's digits) in minutes
on two CPU cores, where VGG-16 would take hours.
"""

from tfcnn.blocks.conv_norm_act import conv_norm_act
from tfcnn.models import validation

SMALL_WIDTHS = (16, 32, 64, 96, 128)


def check_small_options(widths, norm):
    """Validates ``small_features``'s arguments.

    Raises:
        ValueError: naming the argument and the received value.
    """
    widths = tuple(widths) if isinstance(widths, (list, tuple)) else widths
    if (not isinstance(widths, tuple) or len(widths) != 5
            or any(isinstance(w, bool) or not isinstance(w, int) or w < 1
                   for w in widths)):
        raise ValueError(
            "widths must be five positive integers (filters per stage). "
            f"Received: widths={widths!r}")
    validation.check_choice("norm", norm, (None, "batch"))


def small_features(x, *, widths=SMALL_WIDTHS, norm="batch"):
    """The five stages of the small backbone.

    Layer names are ``block{stage}_{1,2}_conv``, ``..._bn``, ``..._relu``.

    Args:
        x: 4-D image tensor, channels last.
        widths: tuple of five ints, filters per stage. Defaults to
            ``(16, 32, 64, 96, 128)``.
        norm: None or "batch". Defaults to "batch".

    Returns:
        dict from stride (2, 4, 8, 16, 32) to the last tensor of the stage.
    """
    endpoints = {}
    for stage, filters in enumerate(widths, start=1):
        x = conv_norm_act(x, filters, 3, 2, norm=norm,
                          name=f"block{stage}_1")
        x = conv_norm_act(x, filters, 3, norm=norm, name=f"block{stage}_2")
        endpoints[2 ** stage] = x
    return endpoints
