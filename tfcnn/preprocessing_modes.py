"""The fixed choices of the preprocessing: how training crops, how the
mean is taken away.

The augmentation layers (``tfcnn.augment``) act on them and the recipe
(``tfcnn.recipe``: ``augment.crop``, ``augment.mean``) names them; both
import them from here, so neither depends on the other and reading a recipe
imports no Keras.
"""

import enum


class CropMode(enum.Enum):
    """How training crops the image the network sees."""

    RANDOM = "random"        # random C x C square of the S x S image (AlexNet)
    INCEPTION = "inception"  # random 8-100% area, 3/4-4/3 aspect, resized
    NONE = "none"            # the S x S image resized to C x C


class MeanMode(enum.Enum):
    """How the mean is taken away from the pixels (``tfcnn.augment.mean``)."""

    AUTO = "auto"        # caffe with model.weights = "imagenet", else image
    IMAGE = "image"      # subtract the mean image (AlexNet)
    CHANNEL = "channel"  # subtract the per-channel mean, divide by the std
    NONE = "none"        # scale pixels to [0, 1] only
    IMAGENET = "imagenet"  # ImageNet's channel mean and std (no dataset stats)
    # keras.applications' preprocess_input modes, for its weights:
    CAFFE = "caffe"      # RGB -> BGR, minus ImageNet's BGR means (VGG, ResNet)
    TORCH = "torch"      # [0, 1], minus ImageNet's means, over its stds
    TF = "tf"            # [-1, 1]
    # pixels as they are, 0 to 255: keras.applications' ConvNeXt,
    # EfficientNet and MobileNetV3 normalize inside the network
    RAW = "raw"
