"""A recipe key's documentation lives in its field's metadata."""

import dataclasses
import enum

import pytest

from tfcnn import recipe as recipe_lib
from tfcnn import recipe_docs
from tfcnn.recipe_docs import key


class _Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


def _make_recipe():
    # Made by make_dataclass: no source file describes these classes, so
    # the docs can only come from the fields.
    section = dataclasses.make_dataclass("PaintConfig", [
        ("color", _Color, key(_Color.RED, "what to paint with")),
        ("coats", int, key(2, "layers of paint")),
        ("where", dict, key(doc="walls and their colours", factory=dict)),
    ], frozen=True)
    return dataclasses.make_dataclass("PaintRecipe", [
        ("paint", section, dataclasses.field(default_factory=section))])


def test_key_docs_read_the_fields_metadata():
    recipe_cls = _make_recipe()
    assert recipe_docs.key_docs(recipe_cls) == [
        ("paint.color", "red|blue", "red", "what to paint with"),
        ("paint.coats", "int", 2, "layers of paint"),
        ("paint.where", "dict", {}, "walls and their colours"),
    ]
    # A mutable default is made afresh for each section.
    assert recipe_cls().paint.where is not recipe_cls().paint.where


def test_section_docstrings_list_their_keys():
    recipe_cls = _make_recipe()
    recipe_docs.document_sections(recipe_cls)
    doc = recipe_cls.__dataclass_fields__["paint"].type.__doc__
    assert doc.splitlines() == [
        "The ``[paint]`` section of a recipe.", "", "Attributes:",
        "    color: what to paint with. Defaults to 'red'.",
        "    coats: layers of paint. Defaults to 2.",
        "    where: walls and their colours. Defaults to {}."]


def test_a_key_without_doc_is_refused():
    with pytest.raises(ValueError, match="needs its doc"):
        key(3)


def test_every_recipe_field_is_declared_with_key():
    for section in dataclasses.fields(recipe_lib.Recipe):
        for field in dataclasses.fields(section.type):
            assert recipe_docs.key_doc(field), (
                f"{section.name}.{field.name}: declare it with "
                "tfcnn.recipe_docs.key(default, doc)")
    assert "AlexNet" in recipe_lib.AugmentConfig.__doc__
