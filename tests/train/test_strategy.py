"""Tests of tfcnn.train.strategy: strategies, devices, workers."""

import json
import subprocess
import sys
import time

import pytest
import tensorflow as tf

from tests.train.conftest import start_workers
from tests.train.conftest import tiny_recipe
from tests.train.conftest import write_run_files
from tfcnn.errors import RecipeError
from tfcnn.recipe import Strategy
from tfcnn.recipe import TrainConfig
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
    try:
        errors = [p.communicate(timeout=90)[1] for p in processes]
    finally:
        for p in processes:
            p.kill()
            p.wait()
    assert time.monotonic() - start < 90
    for process, error in zip(processes, errors):
        assert process.returncode == 0, error[-3000:]
    record = json.loads((tmp_path / "run" / "training.json").read_text())
    assert record["complete"] and record["num_replicas"] == 2
    assert (tmp_path / "run" / "model.keras").is_file()
    assert not list(tmp_path.glob("run/workers*"))
