"""Tests for tfcnn.run_folder: one run folder, one recipe, one
process."""

import dataclasses
import json
import os
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from tests.train.conftest import DRIVER
from tests.train.conftest import ingested_recipe
from tests.train.conftest import subprocess_env
from tests.train.conftest import tiny_recipe
from tfcnn import cli
from tfcnn import recipe as recipe_lib
from tfcnn import run_folder
from tfcnn.errors import RecipeError
from tfcnn.run_folder import RunFolder
from tfcnn.train import fit


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
    (tmp_path / "run/backup").mkdir()
    return recipe


def test_a_run_stopped_before_training_does_not_bind_the_folder(tmp_path):
    recipe = tiny_recipe(tmp_path / "run")
    fit.prepare_run_folder(recipe, NAMES)
    RunFolder(tmp_path / "run").check_recipe(
        _other(recipe, "train", learning_rate=0.5))


def test_fingerprint_leaves_out_outputs_logging_and_speed(tmp_path):
    recipe = tiny_recipe(tmp_path / "a")
    same = _other(recipe, "train", model_dir=str(tmp_path / "b"),
                  histogram_freq=3, profile_steps="2,3", backup_steps=7,
                  steps_per_execution=4)
    same = _other(same, "data", eval_split="validation")
    assert run_folder.fingerprint(same) == run_folder.fingerprint(recipe)
    for section, changes in (("train", {"learning_rate": 0.1}),
                             ("augment", {"flip": True}),
                             ("model", {"name": "alexnet"}),
                             ("data", {"crop_size": 12})):
        other = _other(recipe, section, **changes)
        assert (run_folder.fingerprint(other)["sha256"]
                != run_folder.fingerprint(recipe)["sha256"])


def test_other_classes_are_refused_before_anything_is_written(interrupted):
    folder = Path(interrupted.train.model_dir)
    before = _snapshot(folder)
    with pytest.raises(RecipeError, match=r"holds a run of another recipe "
                                          r"\(data.synthetic_classes = 4 "
                                          r"there, 3 here\)"):
        fit.train(_other(interrupted, "data", synthetic_classes=3),
                  verbose=0)
    assert _snapshot(folder) == before
    with pytest.raises(RecipeError, match=r"holds a run of 4 classes "
                                          r".* has 3 .*overwrite=True"):
        RunFolder(folder).check_classes(NAMES[:3])


@pytest.mark.parametrize("section, changes, key", [
    ("model", {"name": "alexnet"}, "model.name"),
    ("model", {"options": {"activation": "tanh"}}, "model.options"),
    ("data", {"crop_size": 12}, "data.crop_size"),
    ("train", {"epochs": 9}, "train.epochs"),
])
def test_unfinished_run_of_another_recipe_is_refused(interrupted, section,
                                                     changes, key):
    with pytest.raises(RecipeError, match=f"another recipe \\({key} = "):
        RunFolder(interrupted.train.model_dir).check_recipe(
            _other(interrupted, section, **changes))


def test_same_recipe_with_other_outputs_is_the_same_run(interrupted):
    RunFolder(interrupted.train.model_dir).check_recipe(
        _other(interrupted, "train", histogram_freq=5))


def test_folder_without_fingerprint_is_compared_by_its_recipe(interrupted):
    folder = RunFolder(interrupted.train.model_dir)
    folder.fingerprint.unlink()
    with pytest.raises(RecipeError, match="data.crop_size = 16 there, 12 "):
        folder.check_recipe(_other(interrupted, "data", crop_size=12))


def test_model_dir_that_is_a_file_is_refused_first(tmp_path):
    path = tmp_path / "run"
    path.write_text("not a folder")
    with pytest.raises(RecipeError, match="must be a folder.*is a file"):
        fit.train(tiny_recipe(path), verbose=0)
    assert path.read_text() == "not a folder"


@pytest.mark.slow
def test_changed_recipe_meets_a_finished_run(tmp_path, capsys):
    recipe = ingested_recipe(tmp_path)
    folder = RunFolder(tmp_path / "run")
    # A lock file left by a killed run (no process holds it) is stale.
    folder.path.mkdir()
    folder.lock_file.write_text(json.dumps({"pid": 2**22 + 1}))
    assert cli.main(["train", str(recipe)]) == 0
    assert not folder.lock_file.exists()
    trained = folder.model.read_bytes()
    capsys.readouterr()

    assert cli.main(["train", str(recipe), "--set",
                     "train.learning_rate=0.1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert ("train.learning_rate = 0.01 there, 0.1 here" in err[0]
            and "--overwrite" in err[0]
            and "another train.model_dir" in err[0]), err
    assert folder.model.read_bytes() == trained

    # tfcnn run stops before any stage: nothing is evaluated or exported.
    assert cli.main(["run", str(recipe), "--set", "model.name=vgg11",
                     "--set", "data.crop_size=14"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert ("data.crop_size = 12 there, 14 here; model.name = 'lenet5' "
            "there, 'vgg11' here" in captured.err), captured.err
    assert not folder.metrics.exists()
    assert not (tmp_path / "exports").exists()
    # The run folder stands for its own recipe.toml, in every command.
    assert cli.main(["train", str(folder.path)]) == 0
    assert "left as it is" in capsys.readouterr().out
    assert cli.main(["recipe", "show", str(folder.path)]) == 0
    shown = recipe_lib.recipe_from_dict(
        tomllib.loads(capsys.readouterr().out))
    assert shown.train.model_dir == str(folder.path)
    assert cli.main(["evaluate", str(folder.path), "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    # 2 classes: a top-5 would always be 1, so none is reported.
    assert evaluated["num_examples"] > 0 and "accuracy" in evaluated
    assert "top5_accuracy" not in evaluated
    grid = tmp_path / "grid.png"
    assert cli.main(["preview", str(folder.path), "--out", str(grid)]) == 0
    assert grid.is_file()

    # --overwrite trains the new recipe in place.
    assert cli.main(["train", str(recipe), "--set",
                     "train.learning_rate=0.1", "--overwrite"]) == 0
    stored = recipe_lib.load_recipe(folder.recipe)
    assert stored.train.learning_rate == 0.1
    assert folder.model.read_bytes() != trained


@pytest.mark.slow
def test_second_process_on_a_training_folder_is_refused(tmp_path, capsys):
    recipe = ingested_recipe(tmp_path, per_class=16,
                             train={"epochs": 1, "batch_size": 2})
    driver = tmp_path / "train.py"
    driver.write_text(DRIVER)
    first = subprocess.Popen(
        [sys.executable, str(driver), str(recipe), "0.3"],
        env=subprocess_env(), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    folder = RunFolder(tmp_path / "run")
    try:
        deadline = time.monotonic() + 120
        while folder.holder() is None and time.monotonic() < deadline:
            assert first.poll() is None, first.communicate()
            time.sleep(0.2)
        assert folder.holder() == first.pid

        assert cli.main(["train", str(recipe)]) == 2
        err = capsys.readouterr().err
        assert f"being trained by process {first.pid}" in err, err
        assert len(err.strip().splitlines()) == 1, err
    finally:
        out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err[-2000:]
    assert folder.finished_state()["epochs_completed"] == 1
    assert not folder.lock_file.exists()
    assert os.path.isfile(folder.model)
