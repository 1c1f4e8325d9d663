"""Recipes ship inside the package and run by name."""

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tfcnn import cli
from tfcnn import recipe as recipe_lib
from tfcnn.errors import RecipeError

ROOT = Path(__file__).resolve().parents[1]


def test_pipelines_is_the_packaged_recipes_folder():
    # The repository's pipelines/ is a link to tfcnn/recipes/, not a copy:
    # one folder, so what the README shows is what the wheel ships.
    assert (ROOT / "pipelines").resolve() == (
        ROOT / "tfcnn" / "recipes").resolve()


def test_packaged_recipes_lists_every_recipe_file():
    names = sorted(p.stem for p in (ROOT / "tfcnn" / "recipes").glob(
        "*.toml"))
    assert "quickstart" in names
    assert recipe_lib.packaged_recipes() == names


def test_load_by_name_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    by_name = recipe_lib.load_recipe("quickstart", ["train.epochs=2"])
    by_path = recipe_lib.load_recipe(ROOT / "pipelines/quickstart.toml",
                                     ["train.epochs=2"])
    assert by_name == by_path


def test_a_file_of_that_name_wins(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "quickstart").write_text('[train]\nepochs = 3\n')
    assert recipe_lib.load_recipe("quickstart").train.epochs == 3


def test_unknown_name_lists_the_packaged_ones(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RecipeError, match="quickstart") as error:
        recipe_lib.load_recipe("quickstrat")
    assert "quickstrat" in str(error.value)


def test_cli_recipes_and_recipe_show(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["recipes", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert list(listed) == recipe_lib.packaged_recipes()
    assert listed["quickstart"].startswith("Quickstart")

    assert cli.main(["recipe", "show", "quickstart"]) == 0
    (tmp_path / "my.toml").write_text(capsys.readouterr().out)
    assert (recipe_lib.load_recipe("my.toml")
            == recipe_lib.load_recipe("quickstart"))

    assert cli.main(["recipe", "show", "nope"]) == 2
    assert "quickstart" in capsys.readouterr().err


@pytest.mark.slow
def test_wheel_ships_the_recipes(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source)
    shutil.copytree(ROOT / "tfcnn", source / "tfcnn",
                    ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps",
         "--no-build-isolation", "-q", "-w", str(tmp_path / "out")],
        check=True, capture_output=True, timeout=300)
    wheel, = (tmp_path / "out").glob("tfcnn-*.whl")
    shipped = {Path(n).stem for n in zipfile.ZipFile(wheel).namelist()
               if n.startswith("tfcnn/recipes/") and n.endswith(".toml")}
    assert sorted(shipped) == recipe_lib.packaged_recipes()
