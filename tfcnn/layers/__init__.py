"""Custom Keras layers: LRN, group norm, dilated and transposed convolution.

``ZeroPadShortcut`` is ResNet's parameter-free shortcut (option A);
``TenCropViews`` and ``AverageViews`` make AlexNet's 10-crop prediction;
``StochasticDepth`` drops residual branches in training (Huang et al. 2016).

For dense prediction at any input size: ``PadToMultiple`` and ``CropLike``
(pad an image to a model's stride, crop its scores back) and ``ResizeLike``
(resize to a tensor's size known only at run time).

Plus two kernel initializers: ``BilinearUpsampling`` ("bilinear" for
``TransposedConv2D``) and ``IdentityKernel`` ("identity" for
``DilatedConv2D``).

Each layer is registered for serialization under the package "tfcnn", so a
``.keras`` file that uses them loads after ``import tfcnn.layers``.

>>> import tfcnn.layers
>>> lrn = tfcnn.layers.LocalResponseNormalization()  # AlexNet's constants
"""

from tfcnn.layers.average_views import AverageViews
from tfcnn.layers.crop_like import CropLike
from tfcnn.layers.dilated_conv import DilatedConv2D
from tfcnn.layers.group_norm import GroupNormalization
from tfcnn.layers.initializers import BilinearUpsampling
from tfcnn.layers.initializers import IdentityKernel
from tfcnn.layers.lrn import LocalResponseNormalization
from tfcnn.layers.pad_to_multiple import PadToMultiple
from tfcnn.layers.resize_like import ResizeLike
from tfcnn.layers.stochastic_depth import StochasticDepth
from tfcnn.layers.ten_crop_views import TenCropViews
from tfcnn.layers.transposed_conv import TransposedConv2D
from tfcnn.layers.zero_pad_shortcut import ZeroPadShortcut

__all__ = [
    "AverageViews",
    "BilinearUpsampling",
    "CropLike",
    "DilatedConv2D",
    "GroupNormalization",
    "IdentityKernel",
    "LocalResponseNormalization",
    "PadToMultiple",
    "ResizeLike",
    "StochasticDepth",
    "TenCropViews",
    "TransposedConv2D",
    "ZeroPadShortcut",
]
