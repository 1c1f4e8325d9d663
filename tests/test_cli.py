"""Tests for the tfcnn command: help texts and one-line errors with exit 2."""

import subprocess
import sys

import pytest

from tfcnn import cli

COMMANDS = ["ingest", "stats", "preview", "train", "evaluate", "export",
            "predict", "serve", "run", "keys", "models"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: tfcnn " + command in capsys.readouterr().out


def _error_line(capsys, argv):
    status = cli.main(argv)
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert status == 2, captured
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err
    return lines[0]


def test_missing_recipe_file(capsys, tmp_path):
    line = _error_line(capsys, ["train", str(tmp_path / "nope.toml")])
    assert "recipe file not found" in line and "nope.toml" in line


def test_unknown_and_ill_typed_keys(capsys, tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text("[train]\nepochs = 1\n")
    line = _error_line(capsys, ["train", str(recipe), "--set", "train.lr=1"])
    assert "train.lr" in line
    line = _error_line(capsys,
                       ["evaluate", str(recipe), "--set", "train.epochs=x"])
    assert "train.epochs must be an integer" in line


def test_missing_source_folder(capsys, tmp_path):
    line = _error_line(capsys, ["ingest", str(tmp_path / "no_such_dir"),
                                str(tmp_path / "out")])
    assert "no_such_dir" in line


def test_unknown_model_name(capsys, tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text(
        '[data]\nsource = "synthetic"\nimage_size = 32\nresize_size = 32\n'
        'synthetic_classes = 3\nsynthetic_images = 8\n'
        f'[model]\nname = "lenet7"\n[train]\nepochs = 1\nbatch_size = 4\n'
        f'model_dir = "{tmp_path / "run"}"\n')
    line = _error_line(capsys, ["train", str(recipe)])
    assert "lenet7" in line and "lenet5" in line  # lists the known names


def _synthetic_recipe(tmp_path, model, image_size=32):
    recipe = tmp_path / "r.toml"
    recipe.write_text(
        f'[data]\nsource = "synthetic"\nimage_size = {image_size}\n'
        f'resize_size = {image_size}\nsynthetic_classes = 3\n'
        f'synthetic_images = 8\n[model]\n{model}\n'
        f'[train]\nepochs = 1\nbatch_size = 4\n'
        f'model_dir = "{tmp_path / "run"}"\n')
    return recipe


def test_rejected_model_option_value_or_input_size(capsys, tmp_path):
    recipe = _synthetic_recipe(
        tmp_path, 'name = "resnet18"\noptions = {shortcut = "D"}')
    line = _error_line(capsys, ["train", str(recipe)])
    assert "resnet18" in line and "shortcut" in line
    recipe = _synthetic_recipe(tmp_path, 'name = "googlenet"', image_size=28)
    line = _error_line(capsys, ["train", str(recipe)])
    assert "googlenet" in line and "32x32" in line


def test_multi_output_model_is_refused_by_name(capsys, tmp_path):
    recipe = _synthetic_recipe(
        tmp_path, 'name = "googlenet"\noptions = {aux_classifiers = true}',
        image_size=96)
    line = _error_line(capsys, ["train", str(recipe)])
    assert "model.options" in line and "3 outputs" in line


def test_keys_lists_every_key(capsys):
    assert cli.main(["keys"]) == 0
    out = capsys.readouterr().out
    assert "train.epochs" in out and "export.name" in out


def test_console_script_runs_as_module():
    result = subprocess.run(
        [sys.executable, "-m", "tfcnn.cli", "--help"],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert "ingest" in result.stdout and "serve" in result.stdout
