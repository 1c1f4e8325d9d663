"""A run folder (``train.model_dir``) belongs to one recipe and one class list.

``tfcnn train`` writes ``classes.json`` and the resolved ``recipe.toml`` into
the run folder before it trains, and ``tfcnn export`` later publishes the
folder's ``model.keras`` under those class names. Training another class
list or another network into a used folder would mix two runs: the old
weights under the new names, a backup of another class count. So before
anything is written the folder is checked against what it already holds,
and a mismatch ends the run with one line naming it.
"""

import json
import tomllib

from tfcnn import storage
from tfcnn.errors import RecipeError

CLASSES_NAME = "classes.json"
RECIPE_NAME = "recipe.toml"


def check_folder(model_dir):
    """Raises ``RecipeError`` when ``model_dir`` exists but is no folder.

    Cheap and free of TensorFlow: call it before data and model are built.
    """
    path = storage.path(model_dir)
    if path.exists() and not path.is_dir():
        raise RecipeError(
            f"train.model_dir must be a folder, and {path} is a file. "
            f"Received: train.model_dir={str(model_dir)!r}")


def check_same_run(recipe, class_names):
    """Raises ``RecipeError`` when the run folder holds another run.

    Another run is one of other class names (or order), another model or
    model options, or other image sizes. A folder without ``classes.json``
    and ``recipe.toml`` (new, or emptied) holds no run.

    Args:
        recipe: ``tfcnn.recipe.Recipe`` about to be trained.
        class_names: list of str, the data's classes in label order.
    """
    model_dir = storage.path(recipe.train.model_dir)
    check_folder(model_dir)
    where = f"train.model_dir {model_dir} holds a run of"
    advice = ("a run folder belongs to one recipe and one class list: "
              "choose a new train.model_dir, or delete this one to retrain")
    old_names = _json(model_dir / CLASSES_NAME).get("class_names")
    if old_names is not None and list(old_names) != list(class_names):
        raise RecipeError(
            f"{where} {len(old_names)} classes ({_preview(old_names)}) and "
            f"this recipe's data has {len(class_names)} "
            f"({_preview(class_names)}); {advice}. Received: "
            f"train.model_dir={str(model_dir)!r}")
    old = _toml(model_dir / RECIPE_NAME)
    if not old:
        return
    from tfcnn import recipe as recipe_lib

    new = recipe_lib.recipe_to_dict(recipe)
    for key, old_value, new_value in _identity_changes(old, new):
        raise RecipeError(
            f"{where} {key} = {old_value!r}, and this recipe has "
            f"{key} = {new_value!r}; {advice}. Received: "
            f"train.model_dir={str(model_dir)!r}")


def _identity_changes(old, new):
    """``(key, old, new)`` of the keys that make a run another run: the
    model section and the image sizes."""
    for section, keys in (("model", None), ("data", _SIZE_KEYS)):
        before, after = old.get(section, {}), new.get(section, {})
        for key in sorted(keys or set(before) | set(after)):
            if key in before and key in after and before[key] != after[key]:
                yield f"{section}.{key}", before[key], after[key]


# The sizes that shape the network's input (the crop) and the host batches.
_SIZE_KEYS = ("crop_size", "resize_size")


def _preview(names, count=3):
    shown = ", ".join(repr(n) for n in list(names)[:count])
    return shown + (", ..." if len(names) > count else "")


def _json(path):
    try:
        data = json.loads(storage.path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _toml(path):
    try:
        return tomllib.loads(storage.path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
