"""The preprocessing layers of a recipe's training model, in order.

``tfcnn.tasks.image_classification`` builds the training model as::

    x = keras.Input((S, S, 3), dtype="uint8", name="image")
    for layer in build_preprocessing(recipe.augment, crop_size=C,
                                     stats=stats, seed=seed):
        x = layer(x)
    outputs = network(x)

The order keeps the per-pixel work small; on a GPU all of it is cheap, and
on a CPU (where tf.data shares the cores) it decides whether augmentation
costs 10% or 50% of the input pipeline:

1. ``RandomOrCentreCrop`` to ``C x C`` (random in training, centre at
   inference) on the uint8 ``S x S`` batch; with ``augment.crop =
   "inception"`` the centre crop in training too, since the host has
   already cut the random window and placed it there
   (``tfcnn.data.preprocess.decode_inception_crop``); ``Resizing`` for
   ``"none"``. Bytes move, nothing is computed.
2. ``RandomHorizontalFlip`` (training), still on uint8.
3. ``RandAugment`` (optional; Keras', off at inference) on the crop, as
   timm applies it after the crop and flip.
4. ``PCALighting`` (training) in [0, 255] pixel units; float from here.
5. ``MeanSubtraction``: the centre ``C x C`` of the mean image
   (cuda-convnet's convention, see ``mean.py``), the channel mean/std, or
   keras.applications' convention for its weights; output in the compute
   dtype.

Every random layer is the identity at inference, so the same model serves.
"""

import keras
import numpy as np

from tfcnn.augment import crop as crop_lib
from tfcnn.augment import flip as flip_lib
from tfcnn.augment import lighting as lighting_lib
from tfcnn.augment import mean as mean_lib
from tfcnn.augment import randaugment as randaugment_lib
from tfcnn.preprocessing_modes import CropMode
from tfcnn.preprocessing_modes import MeanMode


def build_preprocessing(config, *, crop_size, stats=None, seed=0):
    """Returns the recipe's on-device preprocessing as a list of layers.

    ``config.mean = "auto"`` is resolved by the caller
    (``tfcnn.models.weights.resolve_mean``, which knows the network's
    weights); left as is, it subtracts AlexNet's mean image.

    Args:
        config: ``tfcnn.recipe.AugmentConfig``.
        crop_size: int, side C of the crop the network sees.
        stats: ``tfcnn.data.stats.DatasetStats`` or None. None uses
            ImageNet's channel mean/std and PCA (mode ``"image"`` then
            subtracts the ImageNet channel mean at every pixel).
            Defaults to None.
        seed: int, seed of the random layers (each gets its own offset).
            Defaults to 0.

    Returns:
        list of ``keras.layers.Layer``; applied in order to uint8
        ``[B, S, S, 3]`` they give ``[B, C, C, 3]`` in the compute dtype.

    Raises:
        ValueError: a non-positive ``crop_size``.
    """
    if not isinstance(crop_size, int) or crop_size <= 0:
        raise ValueError(
            f"crop_size must be a positive int. Received: "
            f"crop_size={crop_size!r}")
    layers = []
    if config.crop is not CropMode.NONE:
        layers.append(crop_lib.RandomOrCentreCrop(
            crop_size, seed=seed, random=config.crop is CropMode.RANDOM,
            name="crop"))
    else:
        layers.append(keras.layers.Resizing(crop_size, crop_size,
                                            name="resize"))
    if config.flip:
        layers.append(flip_lib.RandomHorizontalFlip(seed=seed + 1,
                                                    name="flip"))
    if config.randaugment > 0:
        layers.append(randaugment_lib.RandAugment(
            value_range=(0, 255), factor=config.randaugment,
            seed=seed + 3, name="randaugment"))
    if config.pca_lighting > 0:
        eigenvalues, eigenvectors = pca_from_stats(stats)
        layers.append(lighting_lib.PCALighting(
            stddev=config.pca_lighting, eigenvalues=eigenvalues,
            eigenvectors=eigenvectors, seed=seed + 2, name="pca_lighting"))
    layers.append(mean_subtraction(config.mean, stats))
    return layers


def host_crop_size(config, crop_size):
    """The crop the host cuts, as ``make_dataset(inception_crop=...)``.

    Args:
        config: ``tfcnn.recipe.AugmentConfig``.
        crop_size: int, side C of the crop the network sees.

    Returns:
        ``crop_size`` when ``config.crop`` is ``"inception"`` (the host
        decodes the random window, ``build_preprocessing``'s crop then
        keeps the centre), else None.
    """
    return crop_size if config.crop is CropMode.INCEPTION else None


def needs_stats(config):
    """Whether augmentation reads the dataset's statistics.

    The mean image or channel mean/std (``mean`` image or channel) and PCA
    lighting need them; ``mean = "imagenet"`` asks for ImageNet's values
    instead (its PCA too), and keras.applications' modes carry their own
    constants. ``mean = "auto"`` counts as the mean image: for a recipe,
    ``tfcnn.tasks.task.reads_stats`` resolves it first (a network that
    starts from ImageNet weights takes keras.applications' constants).

    Args:
        config: ``tfcnn.recipe.AugmentConfig``.

    Returns:
        bool.
    """
    mean = MeanMode.IMAGE if config.mean is MeanMode.AUTO else config.mean
    if mean is MeanMode.IMAGENET:
        return False
    return (mean in (MeanMode.IMAGE, MeanMode.CHANNEL)
            or config.pca_lighting > 0)


def mean_subtraction(mode, stats=None):
    """The ``MeanSubtraction`` layer for a ``MeanMode`` and optional stats.

    Args:
        mode: ``tfcnn.preprocessing_modes.MeanMode``.
        stats: ``DatasetStats`` or None (ImageNet channel statistics).

    Returns:
        ``MeanSubtraction`` named ``"mean_subtraction"``.
    """
    if mode is MeanMode.AUTO:
        # Unresolved (no ImageNet weights to follow): AlexNet's mean image.
        mode = MeanMode.IMAGE
    mean = std = None
    if mode is MeanMode.IMAGENET:
        # Asked for by name: ImageNet's statistics, whatever the data.
        return mean_lib.MeanSubtraction(
            MeanMode.CHANNEL.value, mean=mean_lib.IMAGENET_MEAN,
            std=mean_lib.IMAGENET_STD, name="mean_subtraction")
    if stats is not None and mode is MeanMode.IMAGE:
        mean = stats.mean_image
    elif stats is not None and mode is MeanMode.CHANNEL:
        mean, std = stats.channel_mean, stats.channel_std
    return mean_lib.MeanSubtraction(mode.value, mean=mean, std=std,
                                    name="mean_subtraction")


def pca_from_stats(stats=None):
    """Eigenvalues (for pixels in [0, 1]) and eigenvectors for PCALighting.

    ``DatasetStats`` holds the eigen-decomposition of the covariance of
    [0, 255] pixels; scaling pixels by 1/255 scales its eigenvalues by
    1/255^2 and leaves the eigenvectors.

    Args:
        stats: ``DatasetStats`` or None (ImageNet's values).

    Returns:
        ``(eigenvalues (3,), eigenvectors (3, 3) as columns)``.
    """
    if stats is None:
        return (lighting_lib.IMAGENET_EIGENVALUES,
                lighting_lib.IMAGENET_EIGENVECTORS)
    eigenvalues = np.asarray(stats.eigenvalues, "float64") / 255.0**2
    return eigenvalues.astype("float32"), np.asarray(
        stats.eigenvectors, "float32")
