"""``tfcnn preview``: a grid of what the model sees in training.

Reads a batch of training images through the real pipeline
(``tfcnn.data.classification_pipeline.make_dataset``), applies the
recipe's MixUp/CutMix and the training model's preprocessing layers
(``build_preprocessing``) with ``training=True``, adds the mean back for
display, and lays the results out in a grid
(``tfcnn.figures.captioned_grid``) with each image's class name (or, after
MixUp or CutMix, its two heaviest classes with their
weights). Segmentation shards show each augmented image beside its mask
overlaid in VOC's colours (``tfcnn.preview.segmentation``).

``preview_image`` returns the grid as a uint8 ``[H, W, 3]`` array, ready
for ``tf.summary.image("augmented", grid[None])``; ``write_preview`` saves
it as a PNG.
"""

from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image

from tfcnn import figures
from tfcnn import recipe as recipe_lib
from tfcnn.augment import build as build_lib
from tfcnn.augment import mean as mean_lib
from tfcnn.augment import mix as mix_lib
from tfcnn.data import classification_pipeline
from tfcnn.data import manifest as manifest_lib
from tfcnn.data import stats as stats_lib
from tfcnn.preview import segmentation as segmentation_preview

# Records shuffled before the preview batch is drawn: enough to mix
# classes, small enough to start in a second.
_PREVIEW_SHUFFLE = 512


def write_preview(data_dir, out, *, recipe_path=None, overrides=(),
                  count=16):
    """Writes a PNG grid of ``count`` augmented training images.

    Args:
        data_dir: str or Path, a shard folder, with or without a manifest.
        out: str or Path of the PNG to write.
        recipe_path: str, Path or None; the recipe whose ``data`` and
            ``augment`` sections to use. None: the default recipe.
            Defaults to None.
        overrides: iterable of ``"section.key=value"`` strings.
            Defaults to ().
        count: int, images in the grid. Defaults to 16.

    Returns:
        Path of the written file.

    Raises:
        DataError: an unreadable manifest or statistics file, or no
            training shards in ``data_dir``.
        RecipeError: a bad recipe or override.
        ValueError: ``count`` < 1.
    """
    recipe = _load_recipe(recipe_path, overrides)
    grid = preview_image(data_dir, recipe, count=count)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid).save(out, format="PNG")
    return out


def preview_image(data_dir, recipe=None, *, count=16, seed=None):
    """The preview grid as a uint8 ``[H, W, 3]`` array.

    Args:
        data_dir: str or Path, shard folder.
        recipe: ``tfcnn.recipe.Recipe`` or None (defaults). Defaults to None.
        count: int, images in the grid. Defaults to 16.
        seed: int or None; None uses ``recipe.data.seed``. Defaults to None.

    Returns:
        ``np.ndarray`` uint8 ``[H, W, 3]``.
    """
    if segmentation_preview.is_segmentation_data(data_dir):
        recipe = recipe or recipe_lib.Recipe()
        images, captions = segmentation_preview.augmented_pairs(
            data_dir, recipe, count=_check_count(count),
            seed=recipe.data.seed if seed is None else seed)
    else:
        images, captions = augmented_examples(data_dir, recipe, count=count,
                                              seed=seed)
    return figures.captioned_grid(images, captions)


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
    _check_count(count)
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


def _check_count(count):
    if not isinstance(count, int) or count < 1:
        raise ValueError(
            f"count must be a positive int. Received: count={count!r}")
    return count


def _load_recipe(recipe_path, overrides):
    if recipe_path is not None:
        return recipe_lib.load_recipe(recipe_path, overrides)
    return recipe_lib.recipe_from_dict({}, overrides)


def _caption(label, class_names):
    order = np.argsort(-label)
    first = order[0]
    if label[first] > 0.999:
        return _class_name(first, class_names)
    return " / ".join(
        f"{_class_name(i, class_names)} {label[i]:.2f}" for i in order[:2])


def _class_name(index, class_names):
    return class_names[index] if index < len(class_names) else str(index)
