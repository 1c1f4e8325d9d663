"""FCN-32s, FCN-16s and FCN-8s (Long, Shelhamer & Darrell, 2015) on VGG-16.

VGG-16's fully connected layers become convolutions: fc6 a 7x7 convolution
with 4,096 filters, fc7 a 1x1 convolution with 4,096 filters (both with
dropout 0.5), and the classifier ``score_fr`` a 1x1 convolution with
``num_classes`` filters. The class scores at stride 32 are then brought back
to the input resolution by ``tfcnn.layers.TransposedConv2D`` layers whose
kernels start as bilinear interpolation:

* FCN-32s: one 32x upsampling (``upscore32``);
* FCN-16s: a learned 2x upsampling (``upscore2``) added to the scores of
  pool4 (``score_pool4``), then a 16x upsampling (``upscore16``);
* FCN-8s: as FCN-16s, then another learned 2x upsampling
  (``upscore_pool4``) added to the scores of pool3 (``score_pool3``), then
  an 8x upsampling (``upscore8``).

The skip features come from ``tfcnn.models.vgg.vgg_features``'s endpoints
(keyed by stride), not from a copy of the backbone. As in the paper's
released models, the skip score layers start at zero (so FCN-16s starts as
FCN-32s), the 2x upsamplings are learned and the final upsampling stays
bilinear (not trainable) unless ``learn_final_upsampling``. Every
convolution uses "same" padding, so the output is ``(H, W, num_classes)``
for any input whose sides are multiples of 32 (the paper pads its input by
100 pixels and crops instead).

The same head (``fcn_head``) runs on a ResNet's stages
(``fcn8s_resnet18``, ``fcn8s_resnet50``) and on a small batch-normalized
backbone that trains in minutes on a CPU (``fcn8s_small``).

Reference: https://arxiv.org/abs/1411.4038
"""

import keras

from tfcnn import layers as tfcnn_layers
from tfcnn.blocks import heads
from tfcnn.blocks.conv_norm_act import conv_norm_act
from tfcnn.models import validation
from tfcnn.models.registry import SEGMENTATION
from tfcnn.models.registry import register_variant
from tfcnn.models.resnet import check_resnet_options
from tfcnn.models.resnet import resnet_features
from tfcnn.models.small import SMALL_WIDTHS
from tfcnn.models.small import check_small_options
from tfcnn.models.small import small_features
from tfcnn.models.vgg import check_vgg_options
from tfcnn.models.vgg import vgg_features

STRIDES = (32, 16, 8)


def fully_convolutional_head(x, *, fc_units=4096, kernel_size=7,
                             dilation_rate=1, dropout=0.5):
    """VGG's fc6 and fc7 as convolutions (``fc6_conv``, ``fc7_conv``).

    Args:
        x: the backbone's last feature map.
        fc_units: int, filters of fc6 and fc7. Defaults to 4096.
        kernel_size: int, fc6's kernel (VGG's 7x7 pool5 grid). Defaults to
            7.
        dilation_rate: int, fc6's dilation (4 in the dilated front end).
            Defaults to 1.
        dropout: float, dropout after fc6 and fc7. Defaults to 0.5.

    Returns:
        the fc7 feature map, same spatial size as ``x``.
    """
    for index, kernel in ((6, kernel_size), (7, 1)):
        x = conv_norm_act(x, fc_units, kernel, norm=None,
                          dilation_rate=dilation_rate if index == 6 else 1,
                          kernel_initializer="glorot_uniform",
                          name=f"fc{index}")
        if dropout:
            x = keras.layers.Dropout(dropout, name=f"fc{index}_dropout")(x)
    return x


def _upsample(x, num_classes, factor, name, trainable=True):
    layer = tfcnn_layers.TransposedConv2D(
        num_classes, 2 * factor - factor % 2, strides=factor, padding="same",
        use_bias=False, kernel_initializer="bilinear", name=name)
    layer.trainable = trainable
    return layer(x)


def _score(x, num_classes, name, zero_init):
    return keras.layers.Conv2D(
        num_classes, 1, kernel_initializer="zeros" if zero_init
        else "glorot_uniform", name=name)(x)


def fcn_head(endpoints, num_classes, stride, *, zero_init_scores=True,
             learn_final_upsampling=False):
    """Scores a backbone's endpoints and upsamples them to the input (FCN).

    ``score_fr`` scores the stride-32 features; for FCN-16s and FCN-8s a
    learned 2x upsampling (``upscore2``, ``upscore_pool4``) is added to the
    scores of the stride-16 and stride-8 features (``score_pool4``,
    ``score_pool3``); a final upsampling by ``stride`` (``upscore{stride}``)
    returns to the input's resolution. Any backbone whose endpoints are
    keyed by stride serves: VGG-16's fc7 and pools, a ResNet's stages.

    Args:
        endpoints: dict from stride (8, 16, 32) to feature maps.
        num_classes: int, classes scored per pixel.
        stride: int, 32, 16 or 8: the finest skip.
        zero_init_scores: bool, start the score layers at zero. Defaults
            to True.
        learn_final_upsampling: bool, train the last upsampling. Defaults
            to False.

    Returns:
        per-pixel class scores (logits) at stride 1.
    """
    x = _score(endpoints[32], num_classes, "score_fr", zero_init_scores)
    for skip, up_name in ((16, "upscore2"), (8, "upscore_pool4")):
        if skip < stride:
            break
        x = _upsample(x, num_classes, 2, up_name)
        scores = _score(endpoints[skip], num_classes,
                        f"score_pool{skip.bit_length() - 1}",
                        zero_init_scores)
        x = keras.layers.Add(
            name=f"fuse_pool{skip.bit_length() - 1}")([x, scores])
    return _upsample(x, num_classes, stride, f"upscore{stride}",
                     trainable=learn_final_upsampling)


def fcn(stride, input_shape=(None, None, 3), num_classes=21, include_top=True,
        pooling=None, classifier_activation="softmax", name=None,
        width_multiplier=1.0, fc_units=4096, dropout=0.5,
        zero_init_scores=True, learn_final_upsampling=False):
    """Builds an FCN (registered as "fcn32s", "fcn16s" and "fcn8s").

    Args:
        stride: int, 32, 16 or 8: the finest skip (FCN-32s, -16s, -8s).
        input_shape: tuple ``(H, W, C)``; H and W None or multiples of 32.
            Defaults to ``(None, None, 3)`` (any size).
        num_classes: int, classes scored per pixel. Defaults to 21 (PASCAL
            VOC, as the paper).
        include_top: bool, add the scoring and upsampling layers; without
            them the model returns fc7's features at stride 32. Defaults to
            True.
        pooling: None, "avg" or "max", global pooling when ``include_top``
            is False. Defaults to None.
        classifier_activation: str or None, per-pixel activation of the
            output, computed in float32. Defaults to "softmax".
        name: str, model name. Defaults to "fcn{stride}s".
        width_multiplier: float, scales the VGG-16 filters. Defaults to
            1.0.
        fc_units: int, filters of fc6 and fc7. Defaults to 4096.
        dropout: float, dropout after fc6 and fc7. Defaults to 0.5.
        zero_init_scores: bool, start the skip score layers (and
            ``score_fr``) at zero, as the paper. Defaults to True.
        learn_final_upsampling: bool, train the last upsampling too.
            Defaults to False (fixed bilinear, as the paper's models).

    Returns:
        a functional ``keras.Model`` with per-pixel class scores
        ``(batch, H, W, num_classes)``.

    Raises:
        ValueError: a bad argument, named in the message.

    Example:

    >>> model = fcn(8, input_shape=(64, 64, 3), num_classes=3,
    ...             width_multiplier=0.125, fc_units=32)
    """
    validation.check_choice("stride", stride, STRIDES)
    validation.check_dense_prediction(input_shape, num_classes, pooling, 32)
    check_vgg_options(width_multiplier, 32)
    validation.check_fully_connected(fc_units, dropout)
    inputs = keras.Input(shape=input_shape, name="image")
    endpoints = vgg_features(inputs, 16, width_multiplier=width_multiplier)
    x = fully_convolutional_head(endpoints[32], fc_units=fc_units,
                                 dropout=dropout)
    if include_top:
        x = fcn_head({**endpoints, 32: x}, num_classes, stride,
                     zero_init_scores=zero_init_scores,
                     learn_final_upsampling=learn_final_upsampling)
        x = heads.classifier_output(x, classifier_activation)
    else:
        x = heads.global_pool(x, pooling)
    return keras.Model(inputs, x, name=name or f"fcn{stride}s")


fcn32s = register_variant("fcn32s", fcn, fixed={"stride": 32},
                          task=SEGMENTATION)
fcn16s = register_variant("fcn16s", fcn, fixed={"stride": 16},
                          task=SEGMENTATION)
fcn8s = register_variant("fcn8s", fcn, fixed={"stride": 8},
                         task=SEGMENTATION)


def fcn_resnet(stride, depth, input_shape=(None, None, 3), num_classes=21,
               include_top=True, pooling=None,
               classifier_activation="softmax", name=None, shortcut="B",
               norm="batch", norm_groups=32, width_multiplier=1.0,
               zero_init_scores=True, learn_final_upsampling=False):
    """Builds an FCN head on a ResNet ("fcn8s_resnet18", "fcn8s_resnet50").

    The skips of ``fcn_head`` tap the last blocks of the ResNet's stages 3,
    4 and 5 (strides 8, 16 and 32) instead of VGG-16's pools; there is no
    fc6/fc7 (the ResNet's last stage plays their part).

    Args:
        stride: int, 32, 16 or 8: the finest skip.
        depth: int, 18, 34, 50, 101 or 152.
        input_shape: tuple ``(H, W, C)``; H and W None or multiples of 32.
            Defaults to ``(None, None, 3)`` (any size).
        num_classes: int, classes scored per pixel. Defaults to 21.
        include_top: bool, add the FCN head; without it the model returns
            the stride-32 features. Defaults to True.
        pooling: None, "avg" or "max", global pooling when ``include_top``
            is False. Defaults to None.
        classifier_activation: str or None, per-pixel activation of the
            output, computed in float32. Defaults to "softmax".
        name: str, model name. Defaults to "fcn{stride}s_resnet{depth}".
        shortcut, norm, norm_groups, width_multiplier: the ResNet's, as in
            ``tfcnn.models.resnet.resnet``.
        zero_init_scores, learn_final_upsampling: as in ``fcn``.

    Returns:
        a functional ``keras.Model`` with per-pixel class scores
        ``(batch, H, W, num_classes)``.

    Raises:
        ValueError: a bad argument, named in the message.
    """
    validation.check_choice("stride", stride, STRIDES)
    validation.check_dense_prediction(input_shape, num_classes, pooling, 32)
    check_resnet_options(depth, shortcut=shortcut, norm=norm,
                         norm_groups=norm_groups,
                         width_multiplier=width_multiplier)
    inputs = keras.Input(shape=input_shape, name="image")
    endpoints = resnet_features(
        inputs, depth, shortcut=shortcut, norm=norm, norm_groups=norm_groups,
        width_multiplier=width_multiplier)
    return _dense_model(inputs, endpoints, stride, num_classes, include_top,
                        pooling, classifier_activation,
                        name or f"fcn{stride}s_resnet{depth}",
                        zero_init_scores, learn_final_upsampling)


def fcn_small(stride, input_shape=(None, None, 3), num_classes=21,
              include_top=True, pooling=None,
              classifier_activation="softmax", name=None,
              widths=SMALL_WIDTHS, norm="batch", zero_init_scores=False,
              learn_final_upsampling=False):
    """Builds an FCN head on a small batch-normalized backbone.

    ``tfcnn.models.small.small_features``: five stages of two 3x3
    convolutions (the first strided) with few filters, so that a network
    trains in minutes on a laptop's CPU (the segmentation quickstart).

    Args:
        stride: int, 32, 16 or 8: the finest skip.
        input_shape: tuple ``(H, W, C)``; H and W None or multiples of 32.
            Defaults to ``(None, None, 3)`` (any size).
        num_classes: int, classes scored per pixel. Defaults to 21.
        include_top: bool, add the FCN head. Defaults to True.
        pooling: None, "avg" or "max", global pooling when ``include_top``
            is False. Defaults to None.
        classifier_activation: str or None, per-pixel activation of the
            output, computed in float32. Defaults to "softmax".
        name: str, model name. Defaults to "fcn{stride}s_small".
        widths: tuple of five ints, filters per stage. Defaults to
            ``(16, 32, 64, 96, 128)``.
        norm: None or "batch". Defaults to "batch".
        zero_init_scores: bool, as in ``fcn``. Defaults to False (a small
            network from scratch trains faster with random scores).
        learn_final_upsampling: bool, as in ``fcn``. Defaults to False.

    Returns:
        a functional ``keras.Model`` with per-pixel class scores
        ``(batch, H, W, num_classes)``.

    Raises:
        ValueError: a bad argument, named in the message.
    """
    validation.check_choice("stride", stride, STRIDES)
    validation.check_dense_prediction(input_shape, num_classes, pooling, 32)
    check_small_options(widths, norm)
    inputs = keras.Input(shape=input_shape, name="image")
    endpoints = small_features(inputs, widths=tuple(widths), norm=norm)
    return _dense_model(inputs, endpoints, stride, num_classes, include_top,
                        pooling, classifier_activation,
                        name or f"fcn{stride}s_small", zero_init_scores,
                        learn_final_upsampling)


def _dense_model(inputs, endpoints, stride, num_classes, include_top,
                 pooling, classifier_activation, name, zero_init_scores,
                 learn_final_upsampling):
    x = endpoints[32]
    if include_top:
        x = fcn_head(endpoints, num_classes, stride,
                     zero_init_scores=zero_init_scores,
                     learn_final_upsampling=learn_final_upsampling)
        x = heads.classifier_output(x, classifier_activation)
    else:
        x = heads.global_pool(x, pooling)
    return keras.Model(inputs, x, name=name)


fcn8s_resnet18 = register_variant("fcn8s_resnet18", fcn_resnet,
                                  fixed={"stride": 8, "depth": 18},
                                  task=SEGMENTATION)
fcn8s_resnet50 = register_variant("fcn8s_resnet50", fcn_resnet,
                                  fixed={"stride": 8, "depth": 50},
                                  task=SEGMENTATION)
fcn8s_small = register_variant("fcn8s_small", fcn_small,
                               fixed={"stride": 8}, task=SEGMENTATION)
