"""Custom Keras layers: LRN, group norm, dilated and transposed convolution.

Each layer is registered for serialization under the package "tfcnn", so a
``.keras`` file that uses them loads after ``import tfcnn.layers``.

>>> import tfcnn.layers
>>> lrn = tfcnn.layers.LocalResponseNormalization()  # AlexNet's constants
"""

from tfcnn.layers.dilated_conv import DilatedConv2D
from tfcnn.layers.group_norm import GroupNormalization
from tfcnn.layers.lrn import LocalResponseNormalization
from tfcnn.layers.transposed_conv import BilinearUpsampling
from tfcnn.layers.transposed_conv import TransposedConv2D

__all__ = [
    "BilinearUpsampling",
    "DilatedConv2D",
    "GroupNormalization",
    "LocalResponseNormalization",
    "TransposedConv2D",
]
