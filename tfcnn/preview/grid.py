"""``tfcnn preview``: a grid of what the model sees in training.

The data's task draws the tiles (``Task.preview_examples``): augmented
images with their class names (``tfcnn.preview.classification``), or
jointly augmented images beside their masks overlaid in VOC's colours
(``tfcnn.preview.segmentation``); ``tfcnn.figures.captioned_grid`` lays
them out.

``preview_image`` returns the grid as a uint8 ``[H, W, 3]`` array, ready
for ``tf.summary.image("augmented", grid[None])``; ``write_preview`` saves
it as a PNG.
"""

import importlib
from pathlib import Path

from PIL import Image

from tfcnn import figures
from tfcnn import recipe as recipe_lib
from tfcnn.data import manifest as manifest_lib
from tfcnn.data import pipeline


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

    The data's task draws the tiles (``Task.preview_examples``): images
    with their class names, or images beside their masks.

    Args:
        data_dir: str or Path, shard folder.
        recipe: ``tfcnn.recipe.Recipe`` or None (defaults). Defaults to None.
        count: int, images in the grid. Defaults to 16.
        seed: int or None; None uses ``recipe.data.seed``. Defaults to None.

    Returns:
        ``np.ndarray`` uint8 ``[H, W, 3]``.
    """
    pipeline.check_positive(count=count)
    recipe = recipe or recipe_lib.Recipe()
    module, _, name = _task_of(data_dir).preview_examples.partition(":")
    draw = getattr(importlib.import_module(module), name)
    images, captions = draw(
        data_dir, recipe, count=count,
        seed=recipe.data.seed if seed is None else seed)
    return figures.captioned_grid(images, captions)


def _task_of(data_dir):
    """The task of the shards in ``data_dir``: its manifest's, else the
    default (shards in the ImageNet schema)."""
    from tfcnn import tasks

    if (Path(data_dir) / manifest_lib.MANIFEST_NAME).is_file():
        return tasks.get_task(manifest_lib.Manifest.load(data_dir).task)
    return tasks.default_task()


def _load_recipe(recipe_path, overrides):
    if recipe_path is not None:
        return recipe_lib.load_recipe(recipe_path, overrides)
    return recipe_lib.recipe_from_dict({}, overrides)
