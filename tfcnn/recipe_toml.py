"""Writing recipes: a recipe dataclass as TOML text.

``dump`` writes the resolved recipe that ``tfcnn run`` and ``tfcnn train``
keep beside a run (``recipe.toml``) and that ``tfcnn recipe show`` prints:
every key of every section, so the file reproduces the run whatever the
defaults become. ``tomllib`` reads TOML but the standard library writes
none, and the subset a recipe needs (tables, strings, numbers, booleans,
arrays and inline tables) is small.
"""

import dataclasses
import enum
import json
import re


def to_dict(recipe):
    """Returns a recipe as nested plain values (Enums as their strings).

    Args:
        recipe: a recipe dataclass instance (``tfcnn.recipe.Recipe``),
            whose fields are its sections.

    Returns:
        dict of section name -> dict of key -> value.
    """

    def plain(value):
        if isinstance(value, enum.Enum):
            return value.value
        if isinstance(value, tuple):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return {
        section.name: {
            field.name: plain(getattr(getattr(recipe, section.name),
                                      field.name))
            for field in dataclasses.fields(section.type)
        }
        for section in dataclasses.fields(recipe)
    }


def dump(recipe):
    """Serializes a recipe as TOML (the resolved recipe beside a run).

    Args:
        recipe: a recipe dataclass instance (``tfcnn.recipe.Recipe``).

    Returns:
        str, TOML that ``tfcnn.recipe_parse`` reads back to an equal
        recipe.
    """
    lines = []
    for section, values in to_dict(recipe).items():
        scalars = {k: v for k, v in values.items() if not isinstance(v, dict)}
        tables = {k: v for k, v in values.items() if isinstance(v, dict)}
        lines.append(f"[{section}]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in scalars.items()]
        lines.append("")
        for name, table in tables.items():
            lines.append(f"[{section}.{_toml_key(name)}]")
            lines += [f"{_toml_key(k)} = {_toml_value(v)}"
                      for k, v in table.items()]
            lines.append("")
    return "\n".join(lines)


def _toml_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(
            f"{_toml_key(k)} = {_toml_value(v)}"
            for k, v in value.items()) + "}"
    return repr(value)


def _toml_string(text):
    # JSON's escapes (\n, \t, \", \\, \uXXXX for other control
    # characters) are all TOML basic-string escapes; TOML also forbids a raw
    # DEL, which JSON leaves as it is.
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _toml_key(key):
    key = str(key)
    if key and _BARE_KEY.fullmatch(key):
        return key
    return _toml_string(key)


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
