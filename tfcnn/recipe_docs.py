"""The documentation of recipe keys: one line per key, kept on its field.

Each key of a recipe section (``tfcnn.recipe``) is declared with ``key``,
which stores its one-line description in the dataclass field's
``metadata`` (the place ``dataclasses.field`` offers for it), so the field
is the one place where a key is documented. ``key_docs`` turns them into
the table ``tfcnn keys`` prints, and ``document_sections`` into each
section's class docstring, so ``help(AugmentConfig)`` shows the same.
"""

import dataclasses
import enum

# The metadata entry holding a key's description.
DOC = "doc"


def key(default=dataclasses.MISSING, doc="", *,
        factory=dataclasses.MISSING):
    """A recipe key: a dataclass field with its default and description.

    Args:
        default: the key's default value (immutable).
        doc: str, what the key does and which values it takes, one line
            of ``tfcnn keys`` (e.g. "passes over the training split").
        factory: callable that makes a mutable default (``dict``), in
            place of ``default``.

    Returns:
        a ``dataclasses.Field``.

    Example:

    >>> @dataclasses.dataclass(frozen=True)
    ... class EvaluateConfig:
    ...     ten_crop: bool = key(False, "also report 10-crop accuracy")
    """
    if not doc:
        raise ValueError(f"a recipe key needs its doc. Received: doc={doc!r}")
    return dataclasses.field(default=default, default_factory=factory,
                             metadata={DOC: doc})


def key_doc(field):
    """The description of a section's field ("" when it has none)."""
    return field.metadata.get(DOC, "")


def key_docs(recipe_cls):
    """Returns ``[(dotted key, type or choices, default, doc)]`` for every
    key of every section of ``recipe_cls``, in declaration order.

    Args:
        recipe_cls: the recipe dataclass (``tfcnn.recipe.Recipe``), whose
            fields are its sections.

    Returns:
        list of tuples; an Enum key's type is its choices ("a|b|c") and
        its default the chosen value's string.
    """
    rows = []
    for section in dataclasses.fields(recipe_cls):
        defaults = section.type()
        for field in dataclasses.fields(section.type):
            default = getattr(defaults, field.name)
            if isinstance(default, enum.Enum):
                kind = "|".join(m.value for m in type(default))
                default = default.value
            else:
                kind = _type_name(field.type)
            rows.append((f"{section.name}.{field.name}", kind, default,
                         key_doc(field)))
    return rows


def document_sections(recipe_cls):
    """Lists each section's keys in its class docstring, from the fields'
    descriptions, so ``help(AugmentConfig)`` shows what ``tfcnn keys``
    does.

    Args:
        recipe_cls: the recipe dataclass (``tfcnn.recipe.Recipe``).
    """
    for section in dataclasses.fields(recipe_cls):
        cls = section.type
        defaults = cls()
        lines = [f"The ``[{section.name}]`` section of a recipe.", "",
                 "Attributes:"]
        for field in dataclasses.fields(cls):
            default = getattr(defaults, field.name)
            if isinstance(default, enum.Enum):
                default = default.value
            lines.append(f"    {field.name}: "
                         f"{key_doc(field).rstrip('.')}. Defaults to "
                         f"{default!r}.")
        cls.__doc__ = "\n".join(lines)


def _type_name(tp):
    if tp is tuple:
        return "list"
    return getattr(tp, "__name__", str(tp))
