"""Tests of tfcnn.train.cluster: the cluster from TF_CONFIG, Slurm and
Kubernetes."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.train.conftest import free_port_range
from tests.train.conftest import slurm_environment
from tests.train.conftest import start_workers
from tfcnn.errors import RecipeError
from tfcnn.recipe import Cluster
from tfcnn.recipe import Strategy
from tfcnn.recipe import TrainConfig
from tfcnn.train import cluster as cluster_lib
from tfcnn.train import strategy as strategy_lib

MANAGED = ("TF_CONFIG", cluster_lib.RESOLVED_FROM, "CUDA_VISIBLE_DEVICES",
           "SLURM_GPUS_PER_TASK", *cluster_lib.SLURM_STEP_VARIABLES,
           *cluster_lib.KUBERNETES_VARIABLES)


@pytest.fixture
def environ(monkeypatch):
    """A process environment with no cluster in it; ``environ(**vars)``
    sets variables (restored after the test, TF_CONFIG included)."""
    # resolve() writes os.environ itself: setting each variable first makes
    # monkeypatch restore (or remove) it afterwards.
    for name in MANAGED:
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)

    def set_vars(**variables):
        for name, value in variables.items():
            monkeypatch.setenv(name, value)

    return set_vars


def _config(cluster="auto", port=8888):
    return TrainConfig(strategy=Strategy.MULTI_WORKER, cluster=cluster,
                       cluster_port=port)


def test_no_cluster_names_all_three_sources(environ):
    with pytest.raises(RecipeError, match="TF_CONFIG.*Slurm.*Kubernetes"):
        cluster_lib.resolve(_config())


def test_auto_prefers_tf_config_then_slurm_then_kubernetes(environ):
    environ(JOB_COMPLETION_INDEX="0")
    assert cluster_lib.detect(os.environ) is Cluster.KUBERNETES
    environ(**slurm_environment(0, 2))
    assert cluster_lib.detect(os.environ) is Cluster.SLURM
    environ(TF_CONFIG="{}")
    assert cluster_lib.detect(os.environ) is Cluster.TF_CONFIG


def test_slurm_step_on_one_node(environ):
    environ(**slurm_environment(1, 2), CUDA_VISIBLE_DEVICES="")
    resolved = cluster_lib.resolve(_config("slurm", port=7000))
    assert resolved == {
        "cluster": {"worker": ["localhost:7000", "localhost:7001"]},
        "task": {"type": "worker", "index": 1}}
    # Exported for the strategy and for the processes this one starts.
    assert json.loads(os.environ["TF_CONFIG"]) == resolved
    role = strategy_lib.worker_role(_config())
    assert (role.is_chief, role.task) == (False, "worker_1")
    assert role.chief == "localhost:7000"


def test_slurm_step_over_nodes_task_zero_is_chief(environ):
    environ(**{**slurm_environment(0, 4),
               "SLURM_STEP_NODELIST": "gpu[07-08]",
               "SLURM_STEP_TASKS_PER_NODE": "2(x2)"},
            CUDA_VISIBLE_DEVICES="")
    resolved = cluster_lib.resolve(_config("slurm"))
    assert resolved["cluster"]["worker"] == [
        "gpu07:8888", "gpu07:8889", "gpu08:8888", "gpu08:8889"]
    assert strategy_lib.worker_role(_config("slurm")).is_chief


def test_slurm_splits_the_nodes_gpus_between_its_tasks_once(environ):
    environ(**slurm_environment(1, 2), CUDA_VISIBLE_DEVICES="0,1,2,3")
    cluster_lib.resolve(_config("slurm"))
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "2,3"
    # A second resolve (tfcnn run, then training) reads TF_CONFIG back
    # instead of splitting task 1's two GPUs again.
    again = cluster_lib.resolve(_config("slurm"))
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "2,3"
    assert again["task"]["index"] == 1


def test_slurm_binding_of_gpus_to_tasks_stands(environ):
    environ(**slurm_environment(1, 2), CUDA_VISIBLE_DEVICES="0",
            SLURM_GPUS_PER_TASK="1")
    cluster_lib.resolve(_config("slurm"))
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "0"


def test_slurm_with_fewer_gpus_than_tasks_is_refused(environ):
    environ(**slurm_environment(0, 2), CUDA_VISIBLE_DEVICES="0")
    with pytest.raises(RecipeError, match="2 tasks but has 1 GPUs"):
        cluster_lib.resolve(_config("slurm"))


def test_slurm_outside_a_step_names_the_missing_variables(environ):
    environ(SLURM_PROCID="0")
    with pytest.raises(RecipeError, match="SLURM_STEP_NODELIST"):
        cluster_lib.resolve(_config("slurm"))


def test_slurm_malformed_tasks_per_node(environ):
    environ(**{**slurm_environment(0, 2),
               "SLURM_STEP_TASKS_PER_NODE": "two"})
    with pytest.raises(RecipeError, match="SLURM_STEP_TASKS_PER_NODE='two'"):
        cluster_lib.resolve(_config("slurm"))


def test_kubernetes_indexed_job(environ):
    environ(JOB_COMPLETION_INDEX="2", TFCNN_WORKERS="3",
            TFCNN_WORKER_ADDRESS="tfcnn-train-{index}.tfcnn-workers")
    resolved = cluster_lib.resolve(_config(port=2222))
    assert resolved == {
        "cluster": {"worker": [f"tfcnn-train-{i}.tfcnn-workers:2222"
                               for i in range(3)]},
        "task": {"type": "worker", "index": 2}}
    assert os.environ[cluster_lib.RESOLVED_FROM] == "kubernetes"


@pytest.mark.parametrize("variables, match", [
    ({"JOB_COMPLETION_INDEX": "0"}, "TFCNN_WORKERS, TFCNN_WORKER_ADDRESS"),
    ({"JOB_COMPLETION_INDEX": "3", "TFCNN_WORKERS": "3",
      "TFCNN_WORKER_ADDRESS": "w-{index}"}, r"index 3 outside \[0, 3\)"),
    ({"JOB_COMPLETION_INDEX": "0", "TFCNN_WORKERS": "2",
      "TFCNN_WORKER_ADDRESS": "w"}, "put {index} in it"),
    ({"JOB_COMPLETION_INDEX": "0", "TFCNN_WORKERS": "2",
      "TFCNN_WORKER_ADDRESS": "w-{rank}"}, "TFCNN_WORKER_ADDRESS='w-{rank}'"),
])
def test_kubernetes_bad_variables_are_named(environ, variables, match):
    environ(**variables)
    with pytest.raises(RecipeError, match=match):
        cluster_lib.resolve(_config("kubernetes"))


def test_malformed_tf_config_is_named(environ):
    environ(TF_CONFIG='{"cluster": {}}')
    with pytest.raises(RecipeError, match="Received: TF_CONFIG="):
        cluster_lib.resolve(_config())


def test_cluster_port_must_be_a_port():
    with pytest.raises(RecipeError, match="cluster_port.*70000"):
        TrainConfig(cluster_port=70000)


# Two workers on localhost, with the environment each manager gives -------

@pytest.mark.slow
@pytest.mark.parametrize("manager, cluster", [("slurm", "auto"),
                                              ("kubernetes", "kubernetes")])
def test_managed_workers_take_the_first_step_of_one_device(
        tmp_path, manager, cluster):
    # As the TF_CONFIG test in test_strategy.py: same real shards, same
    # global batch; two workers started with srun's (or an Indexed Job's)
    # variables instead of TF_CONFIG reach one device's weights.
    from tests.train.test_strategy import FIRST_STEP_DRIVER
    from tests.train.test_strategy import _wait
    from tests.train.test_strategy import one_device_first_step
    from tfcnn import recipe as recipe_lib

    recipe, shards, initial, one = one_device_first_step(
        tmp_path, momentum=0.9, learning_rate=0.1)

    port = free_port_range(2)
    workers = recipe.replace(train={"strategy": "multi_worker",
                                    "cluster": cluster,
                                    "cluster_port": port})
    recipe_path = tmp_path / "workers.toml"
    recipe_path.write_text(recipe_lib.dump_toml(workers))
    driver = tmp_path / "first_step.py"
    driver.write_text(FIRST_STEP_DRIVER)
    results = _wait(start_workers(
        [sys.executable, str(driver), str(recipe_path),
         str(tmp_path / "initial.npz"), str(shards), str(tmp_path / "step")],
        cluster=manager, port=port, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE), timeout=300)
    for returncode, _, error in results:
        assert returncode == 0, error[-3000:]
    with np.load(tmp_path / "step-chief.npz") as npz:
        chief = [npz[f"w{i}"] for i in range(len(initial))]
    with np.load(tmp_path / "step-worker_1.npz") as npz:
        other = [npz[f"w{i}"] for i in range(len(initial))]
    for w1, w3, w4 in zip(one, chief, other):
        np.testing.assert_allclose(w3, w1, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(w4, w3)
    assert f"localhost:{port + 1}" in results[0][2]  # the join line
