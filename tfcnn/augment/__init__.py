"""On-device augmentation and AlexNet preprocessing as Keras layers.

``build_preprocessing(config, crop_size=..., stats=...)`` returns the layers
of a recipe's training model; ``mix_batches`` applies MixUp/CutMix to host
batches (they mix labels, so they can't live in the model).
``build_segmentation_augmentation`` returns the layers that move an image
and its segmentation mask together (``tfcnn.augment.segmentation``).
"""

from tfcnn.augment.build import build_preprocessing
from tfcnn.augment.build import host_crop_size
from tfcnn.augment.build import mean_subtraction
from tfcnn.augment.build import pca_from_stats
from tfcnn.augment.crop import RandomOrCentreCrop
from tfcnn.augment.flip import RandomHorizontalFlip
from tfcnn.augment.lighting import IMAGENET_EIGENVALUES
from tfcnn.augment.lighting import IMAGENET_EIGENVECTORS
from tfcnn.augment.lighting import PCALighting
from tfcnn.augment.mean import IMAGENET_MEAN
from tfcnn.augment.mean import IMAGENET_STD
from tfcnn.augment.mean import MeanSubtraction
from tfcnn.augment.mix import mix_batches
from tfcnn.augment.randaugment import RandAugment
from tfcnn.augment.segmentation import RandomScaleCropFlip
from tfcnn.augment.segmentation import build_segmentation_augmentation

__all__ = [
    "IMAGENET_EIGENVALUES",
    "IMAGENET_EIGENVECTORS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "MeanSubtraction",
    "PCALighting",
    "RandAugment",
    "RandomHorizontalFlip",
    "RandomOrCentreCrop",
    "RandomScaleCropFlip",
    "build_preprocessing",
    "build_segmentation_augmentation",
    "host_crop_size",
    "mean_subtraction",
    "mix_batches",
    "pca_from_stats",
]
