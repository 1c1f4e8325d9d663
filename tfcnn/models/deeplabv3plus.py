"""DeepLabV3+ (Chen et al. 2018) and FCN-8s on any backbone with endpoints.

DeepLabV3+ adds a decoder to DeepLab-v3: atrous spatial pyramid pooling
(``tfcnn.blocks.aspp``) on the stride-16 features, upsampled bilinearly by
4 and concatenated with the stride-4 features reduced to ``skip_filters``
(48) channels by a 1x1 convolution; two 3x3 convolutions
(``decoder_filters``, 256) refine them, a 1x1 convolution scores each
position and a last bilinear upsampling returns to the input's size
(``tfcnn.layers.ResizeLike``, so any input size works).

``backbone`` picks the features: a keras.applications network with a
feature table (``tfcnn.models.applications.FEATURE_LAYERS``: ASPP on its
stride-16 layer, as keras-io's DeepLabV3+ on ResNet-50), tfcnn's own
``resnet18``/``resnet50`` (the last stage dilated, ``output_stride`` 16,
as the paper's) or the ``small`` backbone (``tfcnn.models.small``, for a
CPU). ``fcn8s_backbone`` puts the FCN-8s head (``tfcnn.models.fcn``) on
the same endpoints.

Reference: https://arxiv.org/abs/1802.02611
"""

import keras

from tfcnn.blocks import heads
from tfcnn.blocks.aspp import RATES
from tfcnn.blocks.aspp import atrous_spatial_pyramid_pooling
from tfcnn.blocks.conv_norm_act import conv_norm_act
from tfcnn.layers.resize_like import ResizeLike
from tfcnn.models import validation
from tfcnn.models.applications import FEATURE_LAYERS
from tfcnn.models.applications import application_features
from tfcnn.models.fcn import fcn_head
from tfcnn.models.registry import SEGMENTATION
from tfcnn.models.registry import register_model
from tfcnn.models.resnet import resnet_features
from tfcnn.models.small import small_features

OWN_BACKBONES = ("small", "resnet18", "resnet50")


def backbone_features(inputs, backbone, width_multiplier=1.0,
                      output_stride=32):
    """The features of a named backbone at strides 4 to 32.

    Args:
        inputs: the image input.
        backbone: str, one of ``OWN_BACKBONES`` or a key of
            ``FEATURE_LAYERS``.
        width_multiplier: float, scales tfcnn's ResNets. Defaults to 1.
        output_stride: int, 16 dilates the last stage of tfcnn's ResNets
            (its features then stand at key 16). Defaults to 32.

    Returns:
        dict from stride to feature tensors.

    Raises:
        ValueError: an unknown backbone.
    """
    validation.check_choice("backbone", backbone,
                            OWN_BACKBONES + tuple(FEATURE_LAYERS))
    if backbone == "small":
        return small_features(inputs)
    if backbone in OWN_BACKBONES:
        return resnet_features(inputs, int(backbone[len("resnet"):]),
                               width_multiplier=width_multiplier,
                               output_stride=output_stride)
    return application_features(inputs, backbone)


@register_model("deeplabv3plus", task=SEGMENTATION)
def deeplabv3plus(input_shape=(None, None, 3), num_classes=21,
                  include_top=True, pooling=None,
                  classifier_activation="softmax", name="deeplabv3plus",
                  backbone="mobilenet_v2", aspp_filters=256,
                  decoder_filters=256, skip_filters=48, dropout=0.1,
                  atrous_rates=RATES, width_multiplier=1.0):
    """Builds DeepLabV3+ on a backbone.

    Args:
        input_shape: tuple ``(H, W, C)``, any size of at least 32x32.
            Defaults to ``(None, None, 3)``.
        num_classes: int, classes scored per pixel. Defaults to 21.
        include_top: bool, add ASPP, the decoder and the scores; without
            them the model returns the stride-16 features. Defaults to
            True.
        pooling: None, "avg" or "max", global pooling when ``include_top``
            is False. Defaults to None.
        classifier_activation: str or None, per-pixel activation, in
            float32. Defaults to "softmax".
        name: str, model name. Defaults to "deeplabv3plus".
        backbone: str, see the module docstring. Defaults to
            "mobilenet_v2".
        aspp_filters: int, channels of ASPP. Defaults to 256.
        decoder_filters: int, channels of the decoder's 3x3 convolutions.
            Defaults to 256.
        skip_filters: int, channels of the reduced stride-4 features.
            Defaults to 48 (the paper's).
        dropout: float, dropout after ASPP's projection. Defaults to 0.1.
        atrous_rates: tuple of ints, ASPP's dilations. Defaults to
            (6, 12, 18).
        width_multiplier: float, scales tfcnn's ResNet backbones. Defaults
            to 1.0.

    Returns:
        a functional ``keras.Model`` with per-pixel class scores
        ``(batch, H, W, num_classes)``.

    Raises:
        ValueError: a bad argument, named in the message.
    """
    validation.check_common(input_shape, num_classes, pooling)
    for argument, value in (("aspp_filters", aspp_filters),
                            ("decoder_filters", decoder_filters),
                            ("skip_filters", skip_filters)):
        validation.check_positive(argument, value, int)
    validation.check_dropout(dropout)
    inputs = keras.Input(shape=input_shape, name="image")
    endpoints = backbone_features(inputs, backbone, width_multiplier,
                                  output_stride=16)
    x = endpoints[16]
    if not include_top:
        return keras.Model(inputs, heads.global_pool(x, pooling), name=name)
    x = atrous_spatial_pyramid_pooling(x, aspp_filters,
                                       rates=tuple(atrous_rates),
                                       dropout=dropout, name="aspp")
    skip = conv_norm_act(endpoints[4], skip_filters, 1,
                         name="decoder_skip")
    x = ResizeLike(name="decoder_upsample")([x, skip])
    x = keras.layers.Concatenate(name="decoder_concat")([x, skip])
    for index in (1, 2):
        x = conv_norm_act(x, decoder_filters, 3, name=f"decoder_{index}")
    x = keras.layers.Conv2D(num_classes, 1, name="logits")(x)
    x = ResizeLike(name="upsample")([x, inputs])
    x = heads.classifier_output(x, classifier_activation)
    return keras.Model(inputs, x, name=name)


@register_model("fcn8s_backbone", task=SEGMENTATION)
def fcn8s_backbone(input_shape=(None, None, 3), num_classes=21,
                   include_top=True, pooling=None,
                   classifier_activation="softmax", name="fcn8s_backbone",
                   backbone="mobilenet_v2", width_multiplier=1.0,
                   zero_init_scores=False):
    """Builds FCN-8s (``tfcnn.models.fcn.fcn_head``) on a backbone.

    Args:
        input_shape: tuple ``(H, W, C)``; H and W None or multiples of 32.
            Defaults to ``(None, None, 3)``.
        num_classes: int, classes scored per pixel. Defaults to 21.
        include_top: bool, add the FCN head. Defaults to True.
        pooling: None, "avg" or "max", global pooling when ``include_top``
            is False. Defaults to None.
        classifier_activation: str or None, per-pixel activation, in
            float32. Defaults to "softmax".
        name: str, model name. Defaults to "fcn8s_backbone".
        backbone: str, as for ``deeplabv3plus``. Defaults to
            "mobilenet_v2".
        width_multiplier: float, scales tfcnn's ResNet backbones. Defaults
            to 1.0.
        zero_init_scores: bool, as in ``tfcnn.models.fcn.fcn``. Defaults to
            False.

    Returns:
        a functional ``keras.Model`` with per-pixel class scores.

    Raises:
        ValueError: a bad argument, named in the message.
    """
    validation.check_dense_prediction(input_shape, num_classes, pooling, 32)
    inputs = keras.Input(shape=input_shape, name="image")
    endpoints = backbone_features(inputs, backbone, width_multiplier)
    x = endpoints[32]
    if include_top:
        x = fcn_head(endpoints, num_classes, 8,
                     zero_init_scores=zero_init_scores)
        x = heads.classifier_output(x, classifier_activation)
    else:
        x = heads.global_pool(x, pooling)
    return keras.Model(inputs, x, name=name)
