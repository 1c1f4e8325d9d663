"""Tests for tfcnn.train.run_folder: one run folder, one run."""

import dataclasses
from pathlib import Path

import pytest

from tests.train.conftest import tiny_recipe
from tfcnn.errors import RecipeError
from tfcnn.train import fit
from tfcnn.train import run_folder


def _snapshot(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def _other(recipe, section, **changes):
    return recipe.replace(**{section: dataclasses.replace(
        getattr(recipe, section), **changes)})


NAMES = [f"class_{i}" for i in range(4)]


@pytest.fixture
def interrupted(tmp_path):
    """A run folder as a run leaves it when killed before its end."""
    recipe = tiny_recipe(tmp_path / "run")
    fit.prepare_run_folder(recipe, NAMES)
    return recipe


def test_other_classes_are_refused_before_anything_is_written(interrupted):
    recipe = interrupted
    folder = Path(recipe.train.model_dir)
    before = _snapshot(folder)
    other = _other(recipe, "data", synthetic_classes=3)
    with pytest.raises(RecipeError, match=r"holds a run of 4 classes "
                                          r".* has 3 .*new train.model_dir"):
        fit.train(other, verbose=0)
    assert _snapshot(folder) == before


@pytest.mark.parametrize("section, changes, key", [
    ("model", {"name": "alexnet"}, "model.name"),
    ("model", {"options": {"activation": "tanh"}}, "model.options"),
    ("data", {"crop_size": 12}, "data.crop_size"),
])
def test_another_network_or_size_is_refused(interrupted, section, changes,
                                            key):
    with pytest.raises(RecipeError, match=f"holds a run of {key} = "):
        run_folder.check_same_run(_other(interrupted, section, **changes),
                                  NAMES)


def test_same_run_with_more_epochs_is_accepted(interrupted):
    run_folder.check_same_run(_other(interrupted, "train", epochs=9), NAMES)


def test_model_dir_that_is_a_file_is_refused_first(tmp_path):
    path = tmp_path / "run"
    path.write_text("not a folder")
    with pytest.raises(RecipeError, match="must be a folder.*is a file"):
        fit.train(tiny_recipe(path), verbose=0)
    assert path.read_text() == "not a folder"
