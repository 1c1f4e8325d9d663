"""Reading recipes: TOML text to the typed values of a recipe's fields.

``load`` reads a TOML file (or a recipe packaged in ``tfcnn/recipes/``),
applies ``--set section.key=value`` overrides, and builds the recipe
dataclass (``tfcnn.recipe.Recipe``) section by section; ``convert`` checks
and converts one value to its field's type, naming the dotted key when it
does not fit, and is what the sections' ``__post_init__`` run too, so a
recipe built in Python is checked the same way. The recipe class is an
argument: this module knows TOML and dataclass fields, ``tfcnn.recipe``
the keys.
"""

import copy
import dataclasses
import difflib
import enum
import importlib.resources
import math
import tomllib

from tfcnn import storage
from tfcnn.errors import RecipeError

# Recipes shipped with the package; the repository's pipelines/ shows them.
_RECIPES = importlib.resources.files("tfcnn").joinpath("recipes")


def packaged_recipes():
    """Names of the recipes shipped in the package (``tfcnn/recipes/``).

    Returns:
        sorted list of str, e.g. ``["alexnet_imagenet", "quickstart"]``.
    """
    return sorted(path.name[:-len(".toml")]
                  for path in _RECIPES.iterdir()
                  if path.name.endswith(".toml"))


def recipe_text(name):
    """The TOML text of a packaged recipe, comments included.

    Args:
        name: str, one of ``packaged_recipes()``.

    Returns:
        str.

    Raises:
        RecipeError: no packaged recipe has that name.
    """
    if name not in packaged_recipes():
        raise RecipeError(f"no packaged recipe named {name!r}; packaged "
                          f"recipes: {', '.join(packaged_recipes())}")
    return _RECIPES.joinpath(f"{name}.toml").read_text(encoding="utf-8")


def load(recipe_cls, path, overrides=()):
    """Reads a recipe, applies ``--set`` overrides and validates it.

    Args:
        recipe_cls: the recipe dataclass (``tfcnn.recipe.Recipe``).
        path: str or Path of a TOML file, or the name of a packaged recipe
            (``packaged_recipes()``, e.g. "quickstart") when no such file
            exists.
        overrides: iterable of ``"section.key=value"`` strings.

    Returns:
        a validated ``recipe_cls``.

    Raises:
        RecipeError: a missing file, bad TOML, or an unknown or ill-typed key.
    """
    path = storage.path(path)
    if not path.is_file():
        if str(path) in packaged_recipes():
            path = _RECIPES.joinpath(f"{path}.toml")
        else:
            raise RecipeError(
                f"recipe file not found: {path} (packaged recipes, run by "
                f"name: {', '.join(packaged_recipes())})")
    try:
        raw = tomllib.loads(path.read_bytes().decode("utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise RecipeError(f"{path}: invalid TOML: {error}") from None
    except UnicodeDecodeError as error:
        raise RecipeError(
            f"{path}: not UTF-8 text (TOML files are UTF-8): byte "
            f"{error.object[error.start]:#04x} at offset {error.start}"
        ) from None
    return from_dict(recipe_cls, raw, overrides)


def from_dict(recipe_cls, raw, overrides=()):
    """Builds a recipe from nested plain values (parsed TOML).

    Args:
        recipe_cls: the recipe dataclass (``tfcnn.recipe.Recipe``).
        raw: dict of sections, as ``tomllib`` returns them.
        overrides: iterable of ``"section.key=value"`` strings applied first
            (``--set``). Defaults to none.
    """
    raw = copy.deepcopy(raw)
    for override in overrides:
        _apply_override(raw, override)
    return _build(recipe_cls, raw, "")


def _apply_override(raw, override):
    key, sep, text = override.partition("=")
    key = key.strip()
    if not sep or not key:
        raise RecipeError(
            f"--set takes section.key=value. Received: {override!r}")
    try:
        value = tomllib.loads(f"v = {text.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = text.strip()  # a bare word is a string
    *parents, leaf = key.split(".")
    node = raw
    for i, part in enumerate(parents):
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise RecipeError(
                f"--set {key}: {'.'.join(parents[:i + 1])} is not a table")
    node[leaf] = value


def _build(cls, raw, prefix):
    if not isinstance(raw, dict):
        raise RecipeError(
            f"{prefix.rstrip('.') or 'recipe'} must be a table. "
            f"Received: {raw!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        close = difflib.get_close_matches(unknown[0], fields, n=1)
        hint = f"; did you mean {prefix}{close[0]}?" if close else ""
        raise RecipeError(
            f"unknown recipe key {prefix}{unknown[0]}{hint} "
            f"(known in {prefix.rstrip('.') or 'recipe'}: "
            f"{', '.join(fields)})")
    values = {}
    for name, value in raw.items():
        values[name] = convert(fields[name].type, value, prefix + name)
    try:
        return cls(**values)
    except TypeError as error:
        raise RecipeError(f"{prefix.rstrip('.')}: {error}") from None


def convert(tp, value, key):
    """Checks ``value`` against a field's type and converts it (a TOML
    list to a tuple, a string to its Enum member, an int to a float).

    Args:
        tp: the field's type: a dataclass (a table), an Enum, bool, int,
            float, str, tuple or dict.
        value: the value, as TOML or Python gave it.
        key: str, the dotted key, named in the error.

    Returns:
        the value as the field holds it (``value`` itself when it already
        fits).

    Raises:
        RecipeError: the value does not fit (the message names ``key``).
    """
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        return _build(tp, value, key + ".")
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        if isinstance(value, tp):
            return value
        try:
            return tp(value)
        except ValueError:
            choices = ", ".join(str(m.value) for m in tp)
            raise RecipeError(
                f"{key} must be one of {choices}. Received: {value!r}"
            ) from None
    if tp is bool:
        if not isinstance(value, bool):
            raise RecipeError(
                f"{key} must be a boolean (true or false). "
                f"Received: {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise RecipeError(
                f"{key} must be an integer. Received: {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RecipeError(f"{key} must be a number. Received: {value!r}")
        if not math.isfinite(value):
            raise RecipeError(
                f"{key} must be a finite number. Received: {value!r}")
        return value if type(value) is float else float(value)
    if tp is str:
        if not isinstance(value, str):
            raise RecipeError(f"{key} must be a string. Received: {value!r}")
        return value
    if tp is tuple:
        if isinstance(value, tuple):
            return value
        if not isinstance(value, list):
            raise RecipeError(f"{key} must be a list. Received: {value!r}")
        return tuple(value)
    if tp is dict:
        if not isinstance(value, dict):
            raise RecipeError(f"{key} must be a table. Received: {value!r}")
        return dict(value)
    raise TypeError(f"unsupported recipe field type {tp!r} for {key}")
