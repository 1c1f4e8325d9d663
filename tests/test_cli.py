"""Tests for the tfcnn command: help texts and one-line errors with exit 2."""

import contextlib
import errno
import os
import subprocess
import sys

import numpy as np
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
        '[data]\nsource = "synthetic"\ncrop_size = 32\nresize_size = 32\n'
        'synthetic_classes = 3\nsynthetic_images = 8\n'
        f'[model]\nname = "lenet7"\n[train]\nepochs = 1\nbatch_size = 4\n'
        f'model_dir = "{tmp_path / "run"}"\n')
    line = _error_line(capsys, ["train", str(recipe)])
    assert "lenet7" in line and "lenet5" in line  # lists the known names


def _synthetic_recipe(tmp_path, model, crop_size=32):
    recipe = tmp_path / "r.toml"
    recipe.write_text(
        f'[data]\nsource = "synthetic"\ncrop_size = {crop_size}\n'
        f'resize_size = {crop_size}\nsynthetic_classes = 3\n'
        f'synthetic_images = 8\n[model]\n{model}\n'
        f'[train]\nepochs = 1\nbatch_size = 4\n'
        f'model_dir = "{tmp_path / "run"}"\n')
    return recipe


def test_rejected_model_option_value_or_input_size(capsys, tmp_path):
    recipe = _synthetic_recipe(
        tmp_path, 'name = "resnet18"\noptions = {shortcut = "D"}')
    line = _error_line(capsys, ["train", str(recipe)])
    assert "resnet18" in line and "shortcut" in line
    recipe = _synthetic_recipe(tmp_path, 'name = "googlenet"', crop_size=28)
    line = _error_line(capsys, ["train", str(recipe)])
    assert "googlenet" in line and "32x32" in line


def test_multi_output_model_is_refused_by_name(capsys, tmp_path):
    recipe = _synthetic_recipe(
        tmp_path, 'name = "googlenet"\noptions = {aux_classifiers = true}',
        crop_size=96)
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


def _small_source(root):
    from PIL import Image

    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 255, (64, 64, 3), np.uint8)).save(
                root / name / f"{i}.png")
    return root


@contextlib.contextmanager
def _tmpfs(folder, options):
    """A small tmpfs at ``folder`` (root may mount one); yields whether it
    is mounted. Without it the test raises the same OSError by hand."""
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "none", str(folder)],
        capture_output=True).returncode == 0
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", str(folder)], check=True)


@pytest.mark.parametrize("options, code, words", [
    ("size=1m,ro", errno.EROFS, "Read-only file system"),
    ("size=48k", errno.ENOSPC, "No space left on device"),
])
def test_read_only_or_full_output_is_one_line(capsys, tmp_path, monkeypatch,
                                              options, code, words):
    src = _small_source(tmp_path / "src")
    with _tmpfs(tmp_path / "mnt", options) as mounted:
        if not mounted:
            from tfcnn.data import classification_ingest

            def fail(*args, **kwargs):
                raise OSError(code, os.strerror(code),
                              str(tmp_path / "mnt" / "out"))

            monkeypatch.setattr(classification_ingest, "ingest", fail)
        status = cli.main(["ingest", str(src), str(tmp_path / "mnt" / "out")])
    err = capsys.readouterr().err
    # The progress bar may have drawn before the write failed.
    line = err.strip().splitlines()[-1]
    assert status == 2 and "Traceback" not in err
    assert line.startswith("tfcnn ingest: error: ") and words in line
    assert str(tmp_path / "mnt" / "out") in line


def test_negative_shard_count_is_one_line(capsys, tmp_path):
    src = _small_source(tmp_path / "src")
    line = _error_line(capsys, ["ingest", str(src), str(tmp_path / "out"),
                                "--num-shards", "-1"])
    assert "num_shards must be >= 0" in line
    assert not (tmp_path / "out").exists()


def test_recipe_that_is_not_utf8_is_one_line(capsys, tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_bytes(b"[train]\nepochs = 1\n# caf\xe9\n")
    line = _error_line(capsys, ["train", str(recipe)])
    assert "not UTF-8" in line and "0xe9" in line


def test_class_folder_name_that_is_not_utf8_is_one_line(capsys, tmp_path):
    src = _small_source(tmp_path / "src")
    os.rename(src / "b", os.path.join(os.fsencode(src), b"caf\xe9"))
    line = _error_line(capsys, ["ingest", str(src), str(tmp_path / "out")])
    assert "not valid UTF-8" in line and "caf\\xe9" in line


def test_weights_that_are_missing_or_not_weights(capsys, tmp_path):
    recipe = _synthetic_recipe(
        tmp_path, f'name = "lenet5"\nweights = "{tmp_path / "no.h5"}"')
    line = _error_line(capsys, ["train", str(recipe)])
    assert "model.weights" in line and "no.h5" in line
    (tmp_path / "notes.h5").write_text("not weights")
    recipe = _synthetic_recipe(
        tmp_path, f'name = "lenet5"\nweights = "{tmp_path / "notes.h5"}"')
    line = _error_line(capsys, ["train", str(recipe)])
    assert "notes.h5 is not an HDF5 weights file" in line
