"""Comparing runs: `tfcnn compare`, the HParams summary, the TensorBoard
tags, on runs trained from class folders written by `tfcnn ingest`."""

import json

import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.plugins.hparams import metadata as hparams_metadata

from tests.data import image_files
from tfcnn import cli
from tfcnn import compare
from tfcnn import recipe as recipe_lib
from tfcnn.errors import DataError

RATES = (0.05, 0.01)


def _recipe_file(root, name, learning_rate):
    path = root / f"{name}.toml"
    path.write_text(recipe_lib.dump_toml(recipe_lib.recipe_from_dict({
        "data": {"source": "folder", "path": str(root / "src"),
                 "shards": str(root / "shards"), "resize_size": 16,
                 "crop_size": 12, "num_shards": 1, "seed": 3,
                 "validation_split": 0.25},
        "augment": {"mean": "channel", "pca_lighting": 0.0},
        "model": {"name": "lenet5"},
        # histogram_freq left at its default.
        "train": {"epochs": 2, "batch_size": 4, "learning_rate":
                  learning_rate, "model_dir": str(root / name)},
    })))
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two runs of one ingested folder, differing in the learning rate;
    the first evaluated as `tfcnn run` records it (metrics.json)."""
    root = tmp_path_factory.mktemp("compare")
    image_files.make_class_folders(root / "src", ("ant", "bee"), 8)
    recipes = [_recipe_file(root, f"lr{i}", rate)
               for i, rate in enumerate(RATES)]
    assert cli.main(["ingest", str(recipes[0]), "--workers", "1"]) == 0
    assert cli.main(["stats", str(recipes[0])]) == 0
    for recipe in recipes:
        assert cli.main(["train", str(recipe)]) == 0
    from tfcnn.train import evaluate

    metrics = evaluate.evaluate(recipe_lib.load_recipe(recipes[0]),
                                verbose=False)
    (root / "lr0/metrics.json").write_text(json.dumps(metrics))
    return root


def _accumulator(path):
    accumulator = event_accumulator.EventAccumulator(
        str(path), size_guidance={event_accumulator.TENSORS: 0})
    accumulator.Reload()
    return accumulator


@pytest.mark.slow
def test_compare_prints_the_differing_keys_and_final_metrics(runs, capsys):
    capsys.readouterr()
    first, second = str(runs / "lr0"), str(runs / "lr1")
    assert cli.main(["compare", first, second]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    header = lines[0].split()
    # Only what differs: the learning rate (the run folders themselves
    # are no result key); the validation and evaluation metrics.
    assert header[:3] == ["run", "status", "train.learning_rate"]
    assert {"val_accuracy", "val_loss", "validation_accuracy"} <= set(
        header)
    assert not any(key.startswith(("data.", "model.")) for key in header)
    assert lines[1].split()[:3] == [first, "complete", "0.05"]
    assert lines[2].split()[:3] == [second, "complete", "0.01"]
    # The second run was not evaluated: its evaluation column is empty.
    column = header.index("validation_accuracy")
    assert lines[2].split()[column] == "-"
    stored = json.loads((runs / "lr1/training.json").read_text())
    assert float(lines[2].split()[header.index("val_loss")]) == (
        pytest.approx(stored["metrics"]["val_loss"], abs=1e-4))


@pytest.mark.slow
def test_compare_json_sorted_by_a_metric(runs, capsys):
    capsys.readouterr()
    paths = [str(runs / "lr0"), str(runs / "lr1")]
    assert cli.main(["compare", *paths, "--sort", "val_loss",
                     "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["keys"] == ["train.learning_rate"]
    assert result["sort"] == "val_loss"
    losses = [run["metrics"]["val_loss"] for run in result["runs"]]
    assert losses == sorted(losses)
    rates = {run["run"]: run["values"]["train.learning_rate"]
             for run in result["runs"]}
    assert rates == dict(zip(paths, RATES))
    # Accuracy is better high: descending.
    ordered = compare.compare_runs(paths, sort="val_accuracy")["runs"]
    accuracy = [run["metrics"]["val_accuracy"] for run in ordered]
    assert accuracy == sorted(accuracy, reverse=True)


@pytest.mark.slow
def test_each_run_logs_its_hparams_and_recipe(runs):
    for index, rate in enumerate(RATES):
        logs = _accumulator(runs / f"lr{index}/logs")
        content = logs.SummaryMetadata(
            hparams_metadata.SESSION_START_INFO_TAG).plugin_data.content
        info = hparams_metadata.parse_session_start_info_plugin_data(
            content)
        hparams = {key: value.WhichOneof("kind") and getattr(
            value, value.WhichOneof("kind")) for key, value in
            info.hparams.items()}
        assert hparams["train.learning_rate"] == pytest.approx(rate)
        assert hparams["model.name"] == "lenet5"
        assert hparams["data.crop_size"] == 12
        assert "train.model_dir" not in hparams
        recipe_text = tf.make_ndarray(
            logs.Tensors("recipe")[0].tensor_proto).item().decode()
        assert f"learning_rate = {rate}" in recipe_text
        # The dashboard's metrics: the final epoch's scalars of the
        # session's train and validation runs.
        validation = _accumulator(runs / f"lr{index}/logs/validation")
        assert len(validation.Tensors("epoch_accuracy")) == 2


@pytest.mark.slow
def test_one_tag_family_per_axis_and_no_histograms_by_default(runs):
    train = _accumulator(runs / "lr0/logs/train").Tags()
    validation = _accumulator(runs / "lr0/logs/validation").Tags()
    tags = set(train["tensors"]) | set(validation["tensors"])
    # Loss on the step axis (training/) and the epoch axis (epoch_) only.
    assert {tag for tag in tags if "loss" in tag} == {
        "training/loss", "epoch_loss"}
    assert not any(tag.startswith("evaluation_") for tag in tags)
    assert not any(tag.endswith("/histogram") for tag in tags)
    assert "inputs/augmented" in tags


def test_compare_refuses_a_folder_that_is_no_run(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert cli.main(["compare", str(tmp_path / "empty"),
                     str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert f"{tmp_path / 'empty'} is not a run folder" in err[0]
    with pytest.raises(DataError, match="no folder"):
        compare.compare_runs([tmp_path / "missing"])


def test_recipe_hparams_are_flat_scalars_without_output_paths():
    recipe = recipe_lib.recipe_from_dict({
        "model": {"name": "vgg11", "options": {"norm": "batch"}},
        "train": {"model_dir": "runs/x", "devices": ["/gpu:0"]}})
    hparams = compare.recipe_hparams(recipe)
    assert hparams["model.options.norm"] == "batch"
    assert hparams["train.devices"] == '["/gpu:0"]'
    assert "train.model_dir" not in hparams
    assert not any(key.startswith(("export.", "predict."))
                   for key in hparams)
    assert all(isinstance(value, (bool, int, float, str))
               for value in hparams.values())
    assert np.isclose(hparams["train.learning_rate"],
                      recipe.train.learning_rate)


def _run_folder(path, metrics=None, **train):
    """A run folder as tfcnn train leaves it: recipe.toml, training.json."""
    path.mkdir(parents=True)
    recipe = recipe_lib.recipe_from_dict(
        {"train": {"model_dir": str(path), **train}})
    (path / "recipe.toml").write_text(recipe_lib.dump_toml(recipe))
    state = ({"complete": True, "epochs_completed": recipe.train.epochs,
              "metrics": metrics} if metrics is not None else
             {"complete": False, "epochs_completed": 1})
    (path / "training.json").write_text(json.dumps(state))
    return str(path)


def test_sort_puts_runs_without_the_metric_last_and_names_unknown_ones(
        tmp_path):
    low = _run_folder(tmp_path / "low", {"val_loss": 0.2, "loss": 0.1},
                      epochs=3)
    high = _run_folder(tmp_path / "high", {"val_loss": 0.9}, epochs=3)
    unfinished = _run_folder(tmp_path / "unfinished", epochs=5)
    result = compare.compare_runs([unfinished, high, low], sort="val_loss")
    assert [run["run"] for run in result["runs"]] == [low, high, unfinished]
    assert result["keys"] == ["train.epochs"]
    # Training metrics other than the validation ones stay out.
    assert result["metrics"] == ["val_loss"]
    assert result["runs"][2]["status"] == "unfinished (1/5 epochs)"
    table = compare.format_table(result).splitlines()
    assert table[3].split() == [unfinished, "unfinished", "(1/5", "epochs)",
                                "5", "-"]
    with pytest.raises(DataError, match="--sort val_accuracy: no run has"
                                        " this metric; they have val_loss"):
        compare.compare_runs([low, high], sort="val_accuracy")


def test_compare_reads_run_folders_on_object_storage(tmp_path):
    """ram://, TensorFlow's in-memory filesystem, stands in for gs://."""
    run = f"ram://{tmp_path.name}/run"
    tf.io.gfile.makedirs(run)
    recipe = recipe_lib.load_recipe("quickstart")
    with tf.io.gfile.GFile(f"{run}/recipe.toml", "w") as f:
        f.write(recipe_lib.dump_toml(recipe))
    with tf.io.gfile.GFile(f"{run}/training.json", "w") as f:
        f.write(json.dumps({"complete": True, "epochs_completed": 40,
                            "metrics": {"val_accuracy": 0.5}}))
    try:
        [found] = compare.compare_runs([run])["runs"]
    finally:
        tf.io.gfile.rmtree(f"ram://{tmp_path.name}")
    assert (found["run"], found["status"]) == (run, "complete")
    assert found["metrics"] == {"val_accuracy": 0.5}
