"""Custom Keras layers: LRN, group norm, dilated and transposed convolution.

Plus two kernel initializers: ``BilinearUpsampling`` ("bilinear" for
``TransposedConv2D``) and ``IdentityKernel`` ("identity" for
``DilatedConv2D``).

Each layer is registered for serialization under the package "tfcnn", so a
``.keras`` file that uses them loads after ``import tfcnn.layers``.

>>> import tfcnn.layers
>>> lrn = tfcnn.layers.LocalResponseNormalization()  # AlexNet's constants
"""

from tfcnn.layers.dilated_conv import DilatedConv2D
from tfcnn.layers.group_norm import GroupNormalization
from tfcnn.layers.initializers import BilinearUpsampling
from tfcnn.layers.initializers import IdentityKernel
from tfcnn.layers.lrn import LocalResponseNormalization
from tfcnn.layers.transposed_conv import TransposedConv2D

__all__ = [
    "BilinearUpsampling",
    "DilatedConv2D",
    "GroupNormalization",
    "IdentityKernel",
    "LocalResponseNormalization",
    "TransposedConv2D",
]
