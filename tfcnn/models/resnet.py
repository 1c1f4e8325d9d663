"""ResNet-18/34/50/101/152 (He et al., 2016) with batch or group norm.

A 7x7/2 convolution and a 3x3/2 max-pooling, four stages of residual blocks
(64, 128, 256 and 512 filters; stages 3-5 start with stride 2), global
average pooling and a ``num_classes`` classifier. ResNet-18/34 use basic
blocks, ResNet-50 and deeper bottleneck blocks (``tfcnn.blocks.residual``).

* ``shortcut`` picks the paper's option A, B or C (He et al. 2016, 3.3).
* ``norm="group"`` swaps every batch norm for tfcnn's group normalization
  (Wu & He 2018); "resnet50_gn" is ResNet-50-GN with 32 groups.
* ``stochastic_depth`` drops residual branches at random in training
  (Huang et al. 2016, ``tfcnn.layers.StochasticDepth``), linearly more
  with depth.
* ``output_stride`` 8 or 16 trades the strides of the last stages for
  dilation (DeepLab's atrous ResNet), for dense prediction.

Convolutions carry no bias (each is followed by a normalization), so the
trainable parameter counts are the reference ones of torchvision at 224x224
with 1,000 classes: ResNet-18 11,689,512; ResNet-34 21,797,672; ResNet-50
25,557,032; ResNet-101 44,549,160; ResNet-152 60,192,808.
(``keras.applications`` gives its convolutions biases and counts 25,636,712
for ResNet-50 including the batch-norm moving statistics.)

Reference: https://arxiv.org/abs/1512.03385, https://arxiv.org/abs/1803.08494,
https://arxiv.org/abs/1603.09382
"""

import keras

from tfcnn.blocks import heads
from tfcnn.blocks.conv_norm_act import check_norm
from tfcnn.blocks.conv_norm_act import conv_norm_act
from tfcnn.blocks.conv_norm_act import scaled
from tfcnn.blocks.residual import basic_block
from tfcnn.blocks.residual import bottleneck_block
from tfcnn.blocks.residual import check_shortcut
from tfcnn.models import validation
from tfcnn.models.registry import register_variant

# Block kind and blocks per stage (the paper's Table 1).
RESNET_SPECS = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}
STAGE_FILTERS = (64, 128, 256, 512)
OUTPUT_STRIDES = (8, 16, 32)


def resnet_features(x, depth, *, shortcut="B", norm="batch", norm_groups=32,
                    width_multiplier=1.0, zero_init_residual=False,
                    stride_on_3x3=False, output_stride=32,
                    stochastic_depth=0.0):
    """The stem and the four stages of a ResNet.

    Args:
        x: 4-D image tensor, channels last.
        depth: int, a key of ``RESNET_SPECS``.
        shortcut, norm, norm_groups, width_multiplier, zero_init_residual,
            stride_on_3x3, output_stride, stochastic_depth: as in
            ``resnet``.

    Returns:
        dict from stride (2, 4, ..., output_stride) to the last tensor at
        that stride (with ``output_stride`` below 32, the dilated stages
        overwrite the entry of ``output_stride``).
    """
    kind, blocks_per_stage = RESNET_SPECS[depth]
    norm_kwargs = dict(norm=norm, norm_groups=norm_groups)
    block_kwargs = dict(shortcut=shortcut,
                        zero_init_residual=zero_init_residual, **norm_kwargs)
    if kind == "bottleneck":
        block_fn = bottleneck_block
        block_kwargs["stride_on_3x3"] = stride_on_3x3
    else:
        block_fn = basic_block
    # Symmetric padding, as the paper's Caffe models and keras.applications
    # pad (3 for the 7x7 convolution, 1 for the pooling): "same" pads an
    # even input one pixel more on the bottom/right, which shifts every
    # sampling position by one and would change the output of pretrained
    # weights. The output sizes are the same, ceil(H / 2). Zeros pad the
    # pooling exactly as -inf would: its input is a ReLU's.
    x = keras.layers.ZeroPadding2D(3, name="conv1_pad")(x)
    x = conv_norm_act(x, scaled(64, width_multiplier), 7, 2, name="conv1",
                      padding="valid", **norm_kwargs)
    endpoints = {2: x}
    x = keras.layers.ZeroPadding2D(1, name="pool1_pad")(x)
    x = keras.layers.MaxPooling2D(3, strides=2, name="pool1")(x)
    stride, dilation = 4, 1
    # Huang et al. 2016: the drop rate grows linearly with depth, from
    # 0 before the first block to stochastic_depth at the last.
    depth_index, total_blocks = 0, sum(blocks_per_stage)
    for stage, (blocks, filters) in enumerate(
            zip(blocks_per_stage, STAGE_FILTERS), start=2):
        stage_stride = 1 if stage == 2 else 2
        if stride * stage_stride > output_stride:
            dilation *= stage_stride
            stage_stride = 1
        stride *= stage_stride
        for block in range(1, blocks + 1):
            depth_index += 1
            x = block_fn(x, scaled(filters, width_multiplier),
                         strides=stage_stride if block == 1 else 1,
                         dilation_rate=dilation,
                         drop_rate=stochastic_depth * depth_index
                         / total_blocks,
                         name=f"conv{stage}_block{block}", **block_kwargs)
        endpoints[stride] = x
    return endpoints


def check_resnet_options(depth, *, shortcut="B", norm="batch",
                         norm_groups=32, width_multiplier=1.0,
                         output_stride=32):
    """Validates the backbone arguments of ``resnet_features``.

    The classifier and the dense-prediction models built on the ResNet
    features (``tfcnn.models.deeplab``, ``tfcnn.models.fcn``) share it.

    Raises:
        ValueError: naming the argument and the received value.
    """
    validation.check_choice("depth", depth, tuple(RESNET_SPECS))
    check_shortcut(shortcut)
    validation.check_choice("norm", norm, ("batch", "group"))
    check_norm(norm, norm_groups)
    validation.check_positive("width_multiplier", width_multiplier)
    validation.check_choice("output_stride", output_stride, OUTPUT_STRIDES)
    if norm == "group" and scaled(64, width_multiplier) % norm_groups:
        raise ValueError(
            f"norm_groups must divide the stem's "
            f"{scaled(64, width_multiplier)} channels. "
            f"Received: norm_groups={norm_groups}")


def resnet(depth, input_shape=(224, 224, 3), num_classes=1000,
           include_top=True, pooling=None, classifier_activation="softmax",
           name=None, shortcut="B", norm="batch", norm_groups=32,
           width_multiplier=1.0, zero_init_residual=False,
           stride_on_3x3=False, output_stride=32, stochastic_depth=0.0):
    """Builds a ResNet ("resnet18" ... "resnet152" and "resnet50_gn").

    Args:
        depth: int, 18, 34, 50, 101 or 152.
        input_shape: tuple ``(H, W, C)``, at least 32x32. Defaults to
            ``(224, 224, 3)``.
        num_classes: int, classifier units. Defaults to 1000.
        include_top: bool, add global average pooling and the classifier.
            Defaults to True.
        pooling: None, "avg" or "max", global pooling when ``include_top``
            is False. Defaults to None.
        classifier_activation: str or None, activation of the last layer,
            computed in float32. Defaults to "softmax".
        name: str, model name. Defaults to "resnet{depth}".
        shortcut: "A" (zero-padding identity), "B" (projection where the
            shape changes) or "C" (projection everywhere). Defaults to "B".
        norm: "batch" or "group". Defaults to "batch".
        norm_groups: int, groups of group normalization; it must divide
            every layer's channels. Defaults to 32 (Wu & He).
        width_multiplier: float, scales every layer's filters. Defaults to
            1.0.
        zero_init_residual: bool, zero-initialise the last normalization
            scale of each residual branch (Goyal et al. 2017; Wu & He do
            this for GN). Defaults to False.
        stride_on_3x3: bool, bottleneck stride on the 3x3 convolution
            ("v1.5") rather than the first 1x1 (the paper). Defaults to
            False.
        output_stride: 8, 16 or 32; below 32 the last stages are dilated
            instead of strided. Defaults to 32.
        stochastic_depth: float in [0, 1), the drop rate of the last
            residual block in training (Huang et al. 2016); block ``l`` of
            ``L`` drops its branch with ``stochastic_depth * l / L``. The
            identity (plain addition) in inference. Defaults to 0 (off).

    Returns:
        a functional ``keras.Model``.

    Raises:
        ValueError: a bad argument, named in the message.

    Example:

    >>> model = resnet(50, input_shape=(64, 64, 3), num_classes=10,
    ...                norm="group", norm_groups=2, width_multiplier=0.0625)
    """
    validation.check_common(input_shape, num_classes, pooling)
    check_resnet_options(depth, shortcut=shortcut, norm=norm,
                         norm_groups=norm_groups,
                         width_multiplier=width_multiplier,
                         output_stride=output_stride)
    if isinstance(stochastic_depth, bool) or not isinstance(
            stochastic_depth, (int, float)) or not 0 <= stochastic_depth < 1:
        raise ValueError(
            "stochastic_depth must be a number in [0, 1). Received: "
            f"stochastic_depth={stochastic_depth!r}")
    inputs = keras.Input(shape=input_shape, name="image")
    x = resnet_features(
        inputs, depth, shortcut=shortcut, norm=norm, norm_groups=norm_groups,
        width_multiplier=width_multiplier,
        zero_init_residual=zero_init_residual, stride_on_3x3=stride_on_3x3,
        output_stride=output_stride,
        stochastic_depth=stochastic_depth)[output_stride]
    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = keras.layers.Dense(num_classes, name="logits")(x)
        x = heads.classifier_output(x, classifier_activation)
    else:
        x = heads.global_pool(x, pooling)
    return keras.Model(inputs, x, name=name or f"resnet{depth}")


resnet18 = register_variant("resnet18", resnet, fixed={"depth": 18})
resnet34 = register_variant("resnet34", resnet, fixed={"depth": 34})
resnet50 = register_variant("resnet50", resnet, fixed={"depth": 50})
resnet101 = register_variant("resnet101", resnet, fixed={"depth": 101})
resnet152 = register_variant("resnet152", resnet, fixed={"depth": 152})
resnet50_gn = register_variant("resnet50_gn", resnet, fixed={"depth": 50},
                               defaults={"norm": "group",
                                         "zero_init_residual": True})
