"""Tests of tfcnn.train.strategy: strategies, devices, workers."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import tensorflow as tf

from tests.train.conftest import start_workers
from tests.train.conftest import subprocess_env
from tests.train.conftest import tiny_recipe
from tests.train.conftest import write_run_files
from tfcnn.errors import RecipeError
from tfcnn.recipe import Strategy
from tfcnn.recipe import TrainConfig
from tfcnn.train import callbacks as callbacks_lib
from tfcnn.train import strategy as strategy_lib


def test_auto_is_one_device_without_gpus():
    placement = strategy_lib.make_strategy(TrainConfig())
    assert isinstance(placement.strategy, tf.distribute.OneDeviceStrategy)
    assert placement.num_replicas == 1 and placement.is_chief


def test_mirrored_over_named_devices():
    placement = strategy_lib.make_strategy(
        TrainConfig(strategy=Strategy.MIRRORED, devices=("/cpu:0", "CPU:1")))
    assert isinstance(placement.strategy, tf.distribute.MirroredStrategy)
    assert placement.num_replicas == 2


def test_unknown_device_is_named():
    with pytest.raises(RecipeError, match=r"Received: '/gpu:7'"):
        strategy_lib.make_strategy(
            TrainConfig(strategy=Strategy.MIRRORED, devices=("/gpu:7",)))


def test_batch_must_split_evenly_over_replicas():
    with pytest.raises(RecipeError, match="batch_size=15"):
        strategy_lib.make_strategy(TrainConfig(
            strategy=Strategy.MIRRORED, devices=("/cpu:0", "/cpu:1"),
            batch_size=15))


def test_multi_worker_needs_tf_config(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(RecipeError, match="TF_CONFIG"):
        strategy_lib.make_strategy(TrainConfig(strategy=Strategy.MULTI_WORKER))


@pytest.mark.slow
def test_two_workers_on_localhost_train_and_exit_cleanly(tmp_path):
    recipe = tiny_recipe(tmp_path / "run", epochs=2, strategy="multi_worker")
    driver, recipe_path = write_run_files(tmp_path, recipe)
    processes = start_workers(
        [sys.executable, str(driver), str(recipe_path), "0"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    start = time.monotonic()
    # A hang at exit, not slowness: two TensorFlow start-ups and 2 epochs
    # took over 90 s on 2 busy cores shared with a second pytest worker.
    try:
        errors = [p.communicate(timeout=300)[1] for p in processes]
    finally:
        for p in processes:
            p.kill()
            p.wait()
    assert time.monotonic() - start < 300
    for process, error in zip(processes, errors):
        assert process.returncode == 0, error[-3000:]
    record = json.loads((tmp_path / "run" / "training.json").read_text())
    assert record["complete"] and record["num_replicas"] == 2
    assert (tmp_path / "run" / "model.keras").is_file()
    assert not list(tmp_path.glob("run/workers*"))


# Multi-worker training on shards written by ingest --------------------------

def _coloured_shards(root, num_shards):
    """36 train and 12 validation PNGs of 3 colour-coded classes, ingested
    by ``tfcnn ingest`` into ``num_shards`` shards per split."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    colours = [(200, 40, 40), (40, 200, 40), (40, 40, 200)]
    for c, colour in enumerate(colours):
        folder = root / "images" / f"c{c}"
        folder.mkdir(parents=True)
        for i in range(16):
            noise = rng.normal(0.0, 25.0, (12, 12, 3))
            pixels = np.clip(np.array(colour) + noise, 0, 255)
            Image.fromarray(pixels.astype(np.uint8)).save(
                folder / f"{i}.png")
    result = subprocess.run(
        [*_tfcnn(), "ingest", str(root / "images"), str(root / "shards"),
         "--validation-split", "0.25", "--num-shards", str(num_shards),
         "--workers", "1"],
        env=subprocess_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return root / "shards"


def _shard_recipe_file(root, shards, **train):
    from tfcnn import recipe as recipe_lib

    recipe = tiny_recipe(root / "run", **{"epochs": 2, "batch_size": 6,
                                          **train})
    recipe = recipe.replace(data={"source": "tfrecord", "path": str(shards)})
    path = root / "recipe.toml"
    path.write_text(recipe_lib.dump_toml(recipe))
    return recipe, path


def _tfcnn():
    """The ``tfcnn`` entry point of this environment."""
    from pathlib import Path

    script = Path(sys.executable).with_name("tfcnn")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-m", "tfcnn.cli"]


def _start_pipes(command, **env):
    return start_workers(command, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)


def _wait(processes, timeout):
    """(returncode, stdout, stderr) of each process; kills on timeout."""
    try:
        outputs = [p.communicate(timeout=timeout) for p in processes]
    finally:
        for p in processes:
            p.kill()
            p.wait()
    return [(p.returncode, *out) for p, out in zip(processes, outputs)]


@pytest.mark.slow
def test_readme_two_worker_commands_on_a_one_shard_split(tmp_path):
    # The README's two-machine commands, on localhost, against one shard
    # per split: fewer files than workers, so the records are split.
    shards = _coloured_shards(tmp_path, num_shards=1)
    recipe, path = _shard_recipe_file(tmp_path, shards)
    scratch = tmp_path / "tmp"  # where the other worker writes
    scratch.mkdir()
    results = _wait(_start_pipes(
        [*_tfcnn(), "train", str(path), "--set",
         "train.strategy=multi_worker"], TMPDIR=str(scratch)), timeout=300)
    for returncode, _, error in results:
        assert returncode == 0, error[-3000:]
        assert "DATA sharding" in error
        assert "ingest with --num-shards 2" in error  # an option it has
    run = tmp_path / "run"
    record = json.loads((run / "training.json").read_text())
    assert record["complete"] and record["num_replicas"] == 2
    assert record["steps_per_epoch"] == 36 // 6
    # Only the chief writes the run; the other's folder is gone.
    assert "wrote model.keras" in results[0][1]
    assert "wrote model.keras" not in results[1][1]
    assert sorted(p.name for p in tmp_path.rglob("model.keras")) == [
        "model.keras"]
    assert not list(scratch.iterdir())
    evaluation = subprocess.run(
        [*_tfcnn(), "evaluate", str(path), "--json"], env=subprocess_env(),
        capture_output=True, text=True, timeout=120)
    assert evaluation.returncode == 0, evaluation.stderr[-2000:]
    metrics = json.loads(evaluation.stdout)
    assert metrics["num_examples"] == 12
    assert metrics["accuracy"] > 0.6  # chance: 1/3


@pytest.mark.slow
def test_readme_two_worker_run_of_the_quickstart(tmp_path):
    # `tfcnn run` started on both workers, as the README's two-machine
    # commands: the chief prepares, ingests, computes the statistics,
    # evaluates, exports and predicts; worker 1 waits for its data, trains
    # with it and leaves the rest to it. One SavedModel version.
    scratch = tmp_path / "tmp"  # where the other worker writes
    scratch.mkdir()
    processes = start_workers(
        [*_tfcnn(), "run", "quickstart", "--json", "--set",
         "train.strategy=multi_worker", "--set", "train.epochs=1", "--set",
         "train.steps_per_epoch=2", "--set", "data.digits_per_class=6"],
        env={"TMPDIR": str(scratch)}, cwd=tmp_path, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE)
    results = _wait(processes, timeout=300)
    for returncode, _, error in results:
        assert returncode == 0, error[-3000:]
    chief, other = (json.loads(out)["stages"] for _, out, _ in results)
    assert [(s["stage"], s["skipped"]) for s in chief] == [
        (stage, False) for stage in ("prepare", "ingest", "stats", "train",
                                     "evaluate", "export", "predict")]
    assert [s["stage"] for s in other] == [
        "prepare", "ingest", "stats", "train", "evaluate", "export",
        "predict"]
    for stage in other[4:]:
        assert stage["skipped"] and "the chief (127.0.0.1:" in stage[
            "message"], other
    error = results[1][2]
    assert ("[skip] ingest: the shards in data/digits_tfrecords: complete, "
            "written by the chief (127.0.0.1:") in error, error
    assert ("[skip] evaluate, export, predict: the chief (127.0.0.1:"
            in error), error
    versions = [p.name for p in (tmp_path / "saved_models/digits_lenet5")
                .iterdir() if p.name.isdigit()]
    assert versions == ["1"]
    assert chief[5]["result"].endswith("saved_models/digits_lenet5/1")
    record = json.loads((tmp_path / "runs/quickstart/training.json")
                        .read_text())
    assert record["complete"] and record["num_replicas"] == 2
    assert not list(scratch.iterdir())


@pytest.mark.slow
def test_killed_worker_ends_the_other_and_both_resume(tmp_path):
    # 2 shards per split: each worker reads its own file. Worker 1 is
    # killed mid-epoch; worker 0 stops with a message within
    # train.worker_timeout, and both started again resume at the backup.
    shards = _coloured_shards(tmp_path, num_shards=2)
    recipe, path = _shard_recipe_file(tmp_path, shards, epochs=3,
                                      worker_timeout=10,
                                      strategy="multi_worker")
    driver, _ = write_run_files(tmp_path, recipe)
    driver_args = [sys.executable, str(driver), str(path)]
    processes = _start_pipes([*driver_args, "0.3"])
    backup_dir = tmp_path / "run" / "backup"
    deadline = time.monotonic() + 180
    while True:
        state = callbacks_lib.read_backup(backup_dir)
        if state is not None and state["global_step"] >= 8:
            break  # inside the second epoch of 6 steps
        assert all(p.poll() is None for p in processes), (
            processes[0].communicate()[1][-2000:])
        assert time.monotonic() < deadline, "no backup in 180 s"
        time.sleep(0.05)
    os.kill(processes[1].pid, signal.SIGKILL)
    (returncode, _, error), _ = _wait(processes, timeout=120)
    assert returncode != 0
    assert "a worker of this multi-worker run was lost" in error
    assert "resumes from" in error
    state = callbacks_lib.read_backup(backup_dir)
    assert 8 <= state["global_step"] < 18

    results = _wait(_start_pipes([*driver_args, "0"]), timeout=300)
    for returncode, _, error in results:
        assert returncode == 0, error[-3000:]
    assert (f"at epoch {state['epoch'] + 1}, step {state['step']} "
            f"(global step {state['global_step']})") in results[0][2]
    record = json.loads((tmp_path / "run" / "training.json").read_text())
    assert record["complete"] and record["epochs_completed"] == 3
    assert record["resumed_from"] == {"epoch": state["epoch"],
                                      "step": state["step"]}


def test_a_worker_that_never_starts_ends_the_wait(tmp_path):
    # Worker 1 of the cluster never starts: worker 0 gives up after
    # train.join_timeout with a line naming the cluster.
    recipe = tiny_recipe(tmp_path / "run", strategy="multi_worker",
                         join_timeout=3)
    driver, recipe_path = write_run_files(tmp_path, recipe)
    processes = _start_pipes(
        [sys.executable, str(driver), str(recipe_path), "0"])
    processes[1].kill()  # before it could join
    (returncode, _, error), _ = _wait(processes, timeout=120)
    assert returncode != 0
    assert "join_timeout = 3 s for the workers 127.0.0.1:" in error
    assert "Timeout (0:00:03)" in error


FIRST_STEP_DRIVER = '''\
import sys

import numpy as np

from tests.train.test_strategy import first_step
from tfcnn.recipe import load_recipe
from tfcnn.train import strategy as strategy_lib

recipe_path, initial, shards, out = sys.argv[1:]
recipe = load_recipe(recipe_path)
placement = strategy_lib.make_strategy(recipe.train)
with np.load(initial) as npz:
    weights = [npz[f"w{i}"] for i in range(len(npz.files))]
weights = first_step(recipe, placement, shards, weights)
np.savez(f"{out}-{placement.task}.npz",
         **{f"w{i}": w for i, w in enumerate(weights)})
'''


def one_device_first_step(root, **train):
    """The reference of the first-step tests: real shards under ``root``,
    a recipe over them with ``train`` keys, seeded initial weights (also
    saved to ``root/initial.npz`` for worker processes) and the weights
    after one step on one device.

    Returns:
        (recipe, shards, initial weights, weights after the step).
    """
    import keras
    import numpy as np

    from tfcnn.train import fit

    shards = _coloured_shards(root, num_shards=2)
    recipe, _ = _shard_recipe_file(root, shards, **train)
    recipe = recipe.replace(augment={"crop": "none"})
    keras.utils.set_random_seed(1)
    initial = fit.build_training_model(recipe, 3).get_weights()
    np.savez(root / "initial.npz",
             **{f"w{i}": w for i, w in enumerate(initial)})
    one = first_step(recipe, strategy_lib.make_strategy(TrainConfig(
        strategy=Strategy.ONE_DEVICE, devices=("/cpu:0",), batch_size=6)),
        shards, initial)
    return recipe, shards, initial, one


def first_step(recipe, placement, shards, initial):
    """Weights after one step on the first global batch of train shards.

    Every setup reads the same images in its first step: the pipelines
    read in order (no shuffle), one pipeline interleaves the two files
    record by record, and two pipelines read one file each.
    """
    from tfcnn.data import classification_pipeline
    from tfcnn.data import manifest
    from tfcnn.train import fit

    files = manifest.describe(shards).files("train")
    read = dict(resize_size=recipe.data.resize_size, training=False)
    with placement.strategy.scope():
        model = fit.build_training_model(recipe, 3)
        fit.compile_model(model, recipe, steps_per_epoch=1)
        model.set_weights(initial)
        fit._build_before_fit(model, classification_pipeline.make_dataset(
            files, batch_size=recipe.train.batch_size, **read))
    dataset = classification_pipeline.make_distributed_dataset(
        placement.strategy, files, batch_size=recipe.train.batch_size,
        drop_remainder=True, **read)
    model.fit(dataset, epochs=1, steps_per_epoch=1, verbose=0,
              shuffle=False)
    return model.get_weights()


@pytest.mark.slow
def test_two_workers_take_the_first_step_of_one_device(tmp_path):
    # Same real shards, same global batch of 6: two workers with one
    # replica each, one worker with two logical CPUs and one device give
    # the same weights after the first step.
    import numpy as np

    from tfcnn import recipe as recipe_lib

    recipe, shards, initial, one = one_device_first_step(
        tmp_path, weight_decay=5e-4, label_smoothing=0.1, momentum=0.9,
        learning_rate=0.1)
    two = first_step(recipe, strategy_lib.make_strategy(TrainConfig(
        strategy=Strategy.MIRRORED, devices=("/cpu:0", "/cpu:1"),
        batch_size=6)), shards, initial)

    workers = recipe.replace(train={"strategy": "multi_worker"})
    recipe_path = tmp_path / "workers.toml"
    recipe_path.write_text(recipe_lib.dump_toml(workers))
    driver = tmp_path / "first_step.py"
    driver.write_text(FIRST_STEP_DRIVER)
    results = _wait(_start_pipes(
        [sys.executable, str(driver), str(recipe_path),
         str(tmp_path / "initial.npz"), str(shards),
         str(tmp_path / "step")]), timeout=300)
    for returncode, _, error in results:
        assert returncode == 0, error[-3000:]
    with np.load(tmp_path / "step-chief.npz") as npz:
        chief = [npz[f"w{i}"] for i in range(len(initial))]
    with np.load(tmp_path / "step-worker_1.npz") as npz:
        other = [npz[f"w{i}"] for i in range(len(initial))]

    moved = 0
    for w0, w1, w2, w3, w4 in zip(initial, one, two, chief, other):
        np.testing.assert_allclose(w2, w1, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(w3, w1, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(w4, w3)  # replicas stay in sync
        moved += not np.allclose(w0, w1)
    assert moved >= 8  # every kernel and bias of LeNet-5 changed
    worst = max(float(np.max(np.abs(a - b)))
                for a, b in zip(one, chief))
    print(f"first step, 2 workers vs 1 device: max |dw| = {worst:.3g}")
