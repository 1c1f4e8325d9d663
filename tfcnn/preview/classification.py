"""The preview tiles of image classification: augmented images with their
class names.

``augmented_examples`` reads a batch of training images through the real
pipeline (``tfcnn.data.classification_pipeline.make_dataset``), applies the
recipe's MixUp/CutMix and the training model's preprocessing layers
(``build_preprocessing``) with ``training=True`` and adds the mean back for
display; each caption is the image's class name (or, after MixUp or CutMix,
its two heaviest classes with their weights). ``tfcnn.preview.grid`` lays
them out.
"""

import numpy as np
import tensorflow as tf

from tfcnn import recipe as recipe_lib
from tfcnn.augment import build as build_lib
from tfcnn.augment import mean as mean_lib
from tfcnn.augment import mix as mix_lib
from tfcnn.data import classification_pipeline
from tfcnn.data import manifest as manifest_lib
from tfcnn.data import pipeline
from tfcnn.data import stats as stats_lib

# Records shuffled before the preview batch is drawn: enough to mix
# classes, small enough to start in a second.
_PREVIEW_SHUFFLE = 512


def augmented_examples(data_dir, recipe=None, *, count=16, seed=None):
    """One batch as the model sees it in training, mean added back.

    Args:
        data_dir: str or Path, shard folder.
        recipe: ``Recipe`` or None. Defaults to None.
        count: int, images. Defaults to 16.
        seed: int or None; None uses ``recipe.data.seed``. Defaults to None.

    Returns:
        ``(uint8 [N, C, C, 3] array, list of N captions)`` with ``N <=
        count`` (fewer when the split is smaller).

    Raises:
        ValueError: ``count`` < 1.
    """
    pipeline.check_positive(count=count)
    recipe = recipe or recipe_lib.Recipe()
    seed = recipe.data.seed if seed is None else seed
    manifest = manifest_lib.describe(
        data_dir, label_offset=recipe.data.label_offset,
        labels_file=recipe.data.labels_file or None)
    files, class_names = manifest.files("train"), manifest.class_names
    resize_size = recipe.data.resize_size
    dataset = classification_pipeline.make_dataset(
        files, resize_size=resize_size, batch_size=count, training=True,
        seed=seed, shuffle_buffer=_PREVIEW_SHUFFLE, drop_remainder=False,
        label_offset=manifest.label_offset,
        inception_crop=build_lib.host_crop_size(recipe.augment,
                                                recipe.data.crop_size))
    dataset = mix_lib.mix_batches(dataset, recipe.augment,
                                  len(class_names), seed=seed)
    images, labels = next(iter(dataset))
    layers = build_lib.build_preprocessing(
        recipe.augment, crop_size=recipe.data.crop_size,
        # The preview adds the mean back, so data without statistics can
        # still be looked at.
        stats=stats_lib.load_stats(manifest, resize_size=resize_size,
                                   required=False),
        seed=seed)
    # Mean subtraction is linear and the crop and flip only move pixels, so
    # "the mean added back" is the same chain without it: exact even where
    # a random crop took a patch of the mean image away from its centre.
    x = images
    for layer in layers:
        if isinstance(layer, mean_lib.MeanSubtraction):
            x = tf.cast(x, "float32")
        else:
            x = layer(x, training=True)
    pixels = tf.clip_by_value(tf.round(tf.cast(x, "float32")), 0.0, 255.0)
    captions = [_caption(row, class_names) for row in labels.numpy()]
    return tf.cast(pixels, tf.uint8).numpy(), captions


def _caption(label, class_names):
    order = np.argsort(-label)
    first = order[0]
    if label[first] > 0.999:
        return _class_name(first, class_names)
    return " / ".join(
        f"{_class_name(i, class_names)} {label[i]:.2f}" for i in order[:2])


def _class_name(index, class_names):
    return class_names[index] if index < len(class_names) else str(index)
