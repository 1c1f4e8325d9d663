"""The preview grid of segmentation data: images with their masks overlaid.

``augmented_pairs(data_dir, recipe)`` reads one batch of training pairs
through the real host pipeline (``tfcnn.data.segmentation_pipeline``),
moves them through the recipe's joint augmentation
(``tfcnn.augment.segmentation.augmentation_from_recipe``) with
``training=True``, and returns tiles that show each augmented image beside
the same image with its mask overlaid in Pascal VOC's palette colours
(``tfcnn.figures.overlay_masks``, as TensorBoard's figures draw it),
captioned with the classes the mask shows. ``tfcnn preview`` lays them out
with ``tfcnn.figures.captioned_grid``.
"""


import numpy as np

from tfcnn import figures
from tfcnn.augment import segmentation as segmentation_lib
from tfcnn.data import manifest as manifest_lib
from tfcnn.data import segmentation_pipeline
from tfcnn.data import stats as stats_lib

# Records shuffled before the batch is drawn (as for classification).
_PREVIEW_SHUFFLE = 512


def augmented_pairs(data_dir, recipe, *, count=16, seed=0):
    """One augmented training batch as preview tiles with captions.

    Args:
        data_dir: str or Path, a segmentation shard folder.
        recipe: ``tfcnn.recipe.Recipe``.
        count: int, pairs. Defaults to 16.
        seed: int. Defaults to 0.

    Returns:
        ``(uint8 [N, C, 2C, 3] tiles, list of N captions)``: the augmented
        image, then the same with its mask overlaid; ``N <= count``.
    """
    manifest = manifest_lib.Manifest.load(data_dir)
    resize_size = recipe.data.resize_size
    dataset = segmentation_pipeline.make_segmentation_dataset(
        manifest.files("train"), resize_size=resize_size, batch_size=count,
        training=True, seed=seed, shuffle_buffer=_PREVIEW_SHUFFLE,
        drop_remainder=False)
    images, masks = next(iter(dataset))
    stats = stats_lib.load_stats(manifest, resize_size=resize_size,
                                 required=False)
    data = {"images": images, "segmentation_masks": masks}
    for layer in segmentation_lib.augmentation_from_recipe(recipe, stats):
        data = layer(data, training=True)
    images = np.clip(np.round(np.asarray(data["images"], np.float32)), 0,
                     255).astype(np.uint8)
    masks = np.asarray(data["segmentation_masks"])
    tiles, captions = figures.mask_pairs(
        images, masks, manifest.class_names,
        ignore_value=manifest.ignore_value or 255)
    return tiles, captions
