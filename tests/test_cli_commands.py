"""Every stage command takes the recipe; --json; --version; help defaults."""

import argparse
import dataclasses
import inspect
import json
import re
import tomllib

import pytest

from tests.data import image_files
from tfcnn import cli
from tfcnn import recipe as recipe_lib
from tfcnn.errors import RecipeError


def recipe_file(tmp_path, **sections):
    """A recipe over tiny class folders, as a TOML file; returns its path."""
    raw = {
        "data": {"source": "folder", "path": str(tmp_path / "src"),
                 "shards": str(tmp_path / "shards"), "resize_size": 16,
                 "crop_size": 12, "num_shards": 1, "seed": 3},
        "augment": {"mean": "channel", "pca_lighting": 0.0},
        "model": {"name": "lenet5"},
        "train": {"epochs": 1, "batch_size": 4,
                  "model_dir": str(tmp_path / "run"), "histogram_freq": 0},
        "export": {"export_dir": str(tmp_path / "exports"), "name": "tiny",
                   "top_k": 2},
    }
    for section, values in sections.items():
        raw[section].update(values)
    path = tmp_path / "recipe.toml"
    path.write_text(recipe_lib.dump_toml(recipe_lib.recipe_from_dict(raw)))
    return path


def _json(capsys):
    out = capsys.readouterr().out
    assert len(out.strip().splitlines()) == 1, out
    return json.loads(out)


def test_version(capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.startswith("tfcnn ")


@pytest.mark.parametrize("command, option", [
    (["ingest"], "(default: 89478485)"), (["stats"], "(default: train)"),
    (["serve"], "(default: 8501)"), (["predict"], "export.top_k, else 5)"),
    (["preview"], "(default: 16)")])
def test_help_shows_defaults(capsys, command, option):
    with pytest.raises(SystemExit):
        cli.main([*command, "--help"])
    assert option in " ".join(capsys.readouterr().out.split())


def _commands(parser, prefix="tfcnn"):
    """``(name, parser)`` of the command and every subcommand."""
    yield prefix, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, f"{prefix} {name}")


def test_every_option_is_explained_with_its_default():
    for name, parser in _commands(cli._parser()):
        text = " ".join(parser.format_help().split())
        for action in parser._actions:
            if action.help == argparse.SUPPRESS or isinstance(
                    action, argparse._SubParsersAction):
                continue  # an old name, kept to name the new one; COMMAND
            assert action.help, (name, action.dest)
            if action.option_strings and action.nargs != 0 and (
                    action.default not in (None, argparse.SUPPRESS, [])):
                assert f"(default: {action.default})" in text, (
                    name, action.dest)


def test_options_carry_the_names_of_their_recipe_keys():
    # An option that stands for a recipe key is that key, hyphenated:
    # ingest --num-shards for data.num_shards, export --export-dir for
    # export.export_dir, ...
    checked = 0
    for name, parser in _commands(cli._parser()):
        for action in parser._actions:
            key = re.search(r"the recipe's (\w+)\.(\w+)", action.help or "")
            if key is None or not action.option_strings:
                continue
            checked += 1
            option = "--" + key.group(2).replace("_", "-")
            assert option in action.option_strings, (
                name, action.option_strings, key.group(0))
    assert checked >= 10


def test_python_arguments_carry_the_names_of_their_recipe_keys():
    from tfcnn.data.classification_ingest import ingest
    from tfcnn.export import publish

    def parameters(function):
        return set(inspect.signature(function).parameters)

    from tfcnn.export import tflite

    export_keys = {f.name for f in dataclasses.fields(
        recipe_lib.ExportConfig)}
    # export.format picks the function; the TFLite one takes the rest of
    # its keys.
    lite_keys = {"quantization"}
    assert export_keys - lite_keys - {"format"} <= parameters(
        publish.export_model)
    assert lite_keys | {"export_dir", "name"} <= parameters(
        tflite.export_run)
    assert {"validation_split", "num_shards", "seed"} <= parameters(
        ingest)


@pytest.mark.slow
def test_stage_commands_take_the_recipe(tmp_path, capsys):
    image_files.make_class_folders(tmp_path / "src", ("a", "b"), 4)
    recipe = recipe_file(tmp_path)

    assert cli.main(["ingest", str(recipe), "--workers", "1",
                     "--json"]) == 0
    manifest = _json(capsys)
    assert (tmp_path / "shards/manifest.json").is_file()
    assert manifest["class_names"] == ["a", "b"]
    assert "train" in manifest["splits"]

    # stats at the recipe's data.resize_size, not the 256 default.
    assert cli.main(["stats", str(recipe), "--json"]) == 0
    stats = _json(capsys)
    assert stats["resize_size"] == 16 and stats["num_images"] > 0
    # Without --json the command prints the stage's result line.
    assert cli.main(["ingest", str(recipe), "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ingest: ") and out.endswith(
        "nothing written (--overwrite rewrites it)\n"), out
    assert cli.main(["stats", str(recipe)]) == 0
    assert capsys.readouterr().out.startswith("stats: 8 train images at 16x16")

    # preview reads the shard folder and sizes from the recipe.
    out = tmp_path / "grid.png"
    assert cli.main(["preview", str(recipe), "--out", str(out)]) == 0
    assert out.is_file()
    capsys.readouterr()
    # Without the recipe the default 256 px disagrees with the 16 px stats:
    # the advice names the recipe's key, never a command that would
    # overwrite the stats the recipe needs.
    assert cli.main(["preview", str(tmp_path / "shards"),
                     "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "data.resize_size = 16" in err

    assert cli.main(["train", str(recipe), "--json"]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["epochs_run"] == 1
    # Under --json the result line goes to stderr, with Keras' lines.
    assert "train: wrote model.keras" in captured.err

    # export takes the run folder: name, root and top-k from its recipe.
    assert cli.main(["export", str(tmp_path / "run"), "--json"]) == 0
    exported = _json(capsys)
    assert exported["name"] == "tiny" and exported["version"] == 1
    meta = json.loads((tmp_path / "exports/tiny/1/assets.extra/"
                       "tfcnn_export.json").read_text())
    assert meta["top_k"] == 2
    # ... or the recipe, with explicit options overriding it.
    assert cli.main(["export", str(recipe), "--name", "other",
                     "--json"]) == 0
    assert _json(capsys)["path"].endswith("exports/other/1")

    # predict takes the recipe: its export, at its top-k.
    image = str(sorted((tmp_path / "src/a").iterdir())[0])
    assert cli.main(["predict", str(recipe), image, "--json"]) == 0
    predicted = _json(capsys)
    assert predicted["saved_model"].endswith("exports/tiny/1")
    assert len(predicted["predictions"][0]["class_ids"]) == 2
    # ... or the run folder, for the recipe it was trained with.
    assert cli.main(["predict", str(tmp_path / "run"), image, "--json"]) == 0
    assert _json(capsys)["saved_model"].endswith("exports/tiny/1")


def test_export_of_a_keras_file_needs_a_name(tmp_path, capsys):
    (tmp_path / "m.keras").write_bytes(b"")
    assert cli.main(["export", str(tmp_path / "m.keras")]) == 2
    assert "--name" in capsys.readouterr().err


def test_keys_and_models_json(capsys):
    assert cli.main(["keys", "--json"]) == 0
    keys = _json(capsys)
    assert keys["augment.flip"]["default"] is True
    # Each key has its own description.
    docs = [row["doc"] for row in keys.values()]
    assert all(docs), [k for k, row in keys.items() if not row["doc"]]
    shared = {d for d in docs if docs.count(d) > 1}
    assert not shared, shared


def test_config_dataclasses_coerce_and_validate():
    config = recipe_lib.AugmentConfig(mean="channel")
    assert config.mean is recipe_lib.MeanMode.CHANNEL
    assert recipe_lib.TrainConfig(step_epochs=[30, 60]).step_epochs == (
        30, 60)
    with pytest.raises(RecipeError, match="augment.pca_lighting"):
        recipe_lib.AugmentConfig(pca_lighting=-1)
    with pytest.raises(RecipeError, match="augment.mean must be one of"):
        recipe_lib.AugmentConfig(mean="bogus")
    with pytest.raises(RecipeError, match="train.epochs must be an integer"):
        recipe_lib.TrainConfig(epochs="10")
    # help() shows each field with its documentation.
    assert "pca_lighting: std of AlexNet's PCA lighting" in (
        recipe_lib.AugmentConfig.__doc__)


def _files(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_generated_data_is_prepared_by_its_own_command(tmp_path, monkeypatch,
                                                       capsys):
    monkeypatch.chdir(tmp_path)
    subset = ["--set", "data.digits=[0, 1]", "--set",
              "data.digits_per_class=6"]
    # ingest in a fresh folder names the command that writes the images.
    assert cli.main(["ingest", "quickstart", *subset]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "`tfcnn prepare RECIPE`" in err[0], err
    assert _files(tmp_path) == []

    assert cli.main(["prepare", "quickstart", *subset]) == 0
    assert "wrote 12 train" in capsys.readouterr().out
    assert cli.main(["prepare", "quickstart", *subset]) == 0
    assert "is complete" in capsys.readouterr().out
    assert cli.main(["ingest", "quickstart", *subset, "--workers",
                     "1"]) == 0


def test_dry_run_prints_the_recipe_and_the_stages_and_writes_nothing(
        tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["run", "quickstart", "--set", "train.epochs=3",
                     "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert recipe_lib.recipe_from_dict(tomllib.loads(out)).train.epochs == 3
    for line in ("# prepare: would write the generated digits images",
                 "# ingest: would write shards of data/digits",
                 "# train: would train lenet5 for 3 epochs",
                 "# evaluate: would evaluate", "# export: would publish",
                 "# predict: would predict"):
        assert line in out, out
    assert cli.main(["train", "quickstart", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "# train: would train lenet5" in out and "# ingest" not in out
    assert _files(tmp_path) == []


def test_arguments_are_checked_before_tensorflow_loads(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    recipe = recipe_file(tmp_path)  # its shards were never written
    script = ("import sys; from tfcnn import cli; "
              "code = cli.main(sys.argv[1:]); "
              "print(code, 'tensorflow' in sys.modules)")
    root = str(Path(__file__).resolve().parents[1])
    for args in (["train", str(recipe)], ["evaluate", str(recipe)],
                 ["stats", str(recipe)], ["ingest", str(recipe)],
                 ["ingest", str(tmp_path / "missing"), str(tmp_path / "o")]):
        done = subprocess.run([sys.executable, "-c", script, *args],
                              capture_output=True, text=True, timeout=120,
                              env={"PYTHONPATH": root, "PATH": ""})
        assert done.stdout.split() == ["2", "False"], (args, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
