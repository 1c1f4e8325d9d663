"""Fixtures of the training tests: tiny synthetic recipes."""

import pytest

from tfcnn import recipe as recipe_lib


def tiny_recipe(model_dir, **train):
    """A recipe that trains LeNet-5 on 16x16 synthetic images in seconds.

    Args:
        model_dir: str or Path, ``train.model_dir``.
        **train: ``train`` keys to override.

    Returns:
        ``tfcnn.recipe.Recipe``.
    """
    return recipe_lib.recipe_from_dict({
        "data": {"source": "synthetic", "crop_size": 16, "resize_size": 20,
                 "synthetic_classes": 4, "synthetic_images": 64},
        "augment": {"flip": False, "pca_lighting": 0.0, "mean": "none"},
        "model": {"name": "lenet5", "options": {"activation": "relu"}},
        "train": {"epochs": 2, "batch_size": 16, "learning_rate": 0.05,
                  "model_dir": str(model_dir), "backup_steps": 2,
                  "histogram_freq": 0, **train},
    })


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """One tiny 3-epoch run (with histograms) shared by the tests that only
    read its outputs: ``(recipe, summary)``."""
    from tfcnn.train import fit

    recipe = tiny_recipe(tmp_path_factory.mktemp("trained") / "run",
                         epochs=3, histogram_freq=1, profile_steps="2,3")
    return recipe, fit.train(recipe, verbose=0)


@pytest.fixture
def make_recipe(tmp_path):
    """``make_recipe(**train)`` -> a tiny recipe writing under tmp_path."""

    def make(**train):
        return tiny_recipe(tmp_path / "run", **train)

    return make


DRIVER = '''\
import sys
import time

import keras

from tfcnn.recipe import load_recipe
from tfcnn.train import fit


class Slow(keras.callbacks.Callback):
    """Gives the test time to kill the run mid-epoch."""

    def on_train_batch_end(self, batch, logs=None):
        time.sleep(float(sys.argv[2]))


fit.train(load_recipe(sys.argv[1]), verbose=2, callbacks=[Slow()])
'''


def write_run_files(directory, recipe):
    """Writes ``recipe.toml`` and a driver script that trains it.

    The driver is ``python train.py recipe.toml SLEEP``: ``fit.train`` with
    a callback that sleeps SLEEP seconds after each step.

    Returns:
        (driver path, recipe path).
    """
    from tfcnn import recipe as recipe_lib

    recipe_path = directory / "recipe.toml"
    recipe_path.write_text(recipe_lib.dump_toml(recipe))
    driver = directory / "train.py"
    driver.write_text(DRIVER)
    return driver, recipe_path


def subprocess_env(**extra):
    """The environment of a training subprocess: quiet, tfcnn importable."""
    import os
    from pathlib import Path

    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (root, env.get("PYTHONPATH", "")) if p)
    env.update(TF_CPP_MIN_LOG_LEVEL="2", TF_ENABLE_ONEDNN_OPTS="1",
               CUDA_VISIBLE_DEVICES="", **extra)
    return env



def start_workers(command, count=2, env=None, cluster="tf_config",
                  port=None, **popen_kwargs):
    """Starts ``command`` as the ``count`` workers of a localhost cluster.

    Each process gets the environment of ``subprocess_env`` plus the
    variables in the dict ``env`` and those that describe the cluster and
    its own task the way ``cluster`` would:

    - ``"tf_config"``: ``TF_CONFIG`` naming free ports on 127.0.0.1.
    - ``"slurm"``: what ``srun --ntasks=COUNT`` sets in a one-node job step
      on ``localhost`` (the tasks listen on ``port`` + their rank, so the
      recipe's ``train.cluster_port`` must be ``port``).
    - ``"kubernetes"``: what an Indexed Job's pods see (Kubernetes'
      ``JOB_COMPLETION_INDEX`` and ``HOSTNAME``, the manifest's
      ``TFCNN_WORKERS`` and ``TFCNN_WORKER_ADDRESS``), the pods' addresses
      being ``localhost:port+index``.

    Args:
        port: for ``slurm`` and ``kubernetes``, from ``free_port_range``.

    Returns:
        list of ``subprocess.Popen``, worker 0 first.
    """
    import json
    import subprocess

    if cluster == "tf_config":
        workers = [f"127.0.0.1:{p}" for p in _free_ports(count)]
    processes = []
    for index in range(count):
        if cluster == "tf_config":
            manager = {"TF_CONFIG": json.dumps(
                {"cluster": {"worker": workers},
                 "task": {"type": "worker", "index": index}})}
        elif cluster == "slurm":
            manager = slurm_environment(index, count)
        else:
            # The address template maps index i to port + i: the ports
            # are a run of ten starting at a multiple of ten.
            manager = {"JOB_COMPLETION_INDEX": str(index),
                       "HOSTNAME": f"tfcnn-train-{index}",
                       "TFCNN_WORKERS": str(count),
                       "TFCNN_WORKER_ADDRESS":
                           f"localhost:{port // 10}{{index}}"}
        processes.append(subprocess.Popen(
            command, env=subprocess_env(**manager, **(env or {})),
            text=True, **popen_kwargs))
    return processes


def slurm_environment(rank, count, node="localhost"):
    """The variables ``srun --ntasks=COUNT`` sets for task ``rank`` of a
    job step whose tasks all run on ``node`` (Slurm 23's names)."""
    return {
        "SLURM_JOB_ID": "4242", "SLURM_JOBID": "4242",
        "SLURM_JOB_NAME": "tfcnn", "SLURM_JOB_NUM_NODES": "1",
        "SLURM_JOB_NODELIST": node, "SLURM_NODELIST": node,
        "SLURM_NNODES": "1", "SLURM_NTASKS": str(count),
        "SLURM_NPROCS": str(count), "SLURM_TASKS_PER_NODE": str(count),
        "SLURM_STEP_ID": "0", "SLURM_STEPID": "0",
        "SLURM_STEP_NODELIST": node, "SLURM_STEP_NUM_NODES": "1",
        "SLURM_STEP_NUM_TASKS": str(count),
        "SLURM_STEP_TASKS_PER_NODE": str(count),
        "SLURM_PROCID": str(rank), "SLURM_LOCALID": str(rank),
        "SLURM_NODEID": "0", "SLURMD_NODENAME": node,
        "SLURM_CPUS_ON_NODE": "2", "SLURM_SUBMIT_DIR": "/tmp",
    }


def _free_ports(count):
    import socket

    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def free_port_range(count):
    """A port P, a multiple of ten, with P .. P + count - 1 all free."""
    import random
    import socket

    for _ in range(200):
        base = random.randrange(20000, 60000, 10)
        sockets = []
        try:
            for port in range(base, base + count):
                s = socket.socket()
                sockets.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError(f"no {count} free consecutive ports")


def ingested_recipe(root, classes=("a", "b"), per_class=6, **sections):
    """A recipe file over class folders that ``tfcnn ingest`` wrote to
    shards under ``root``: tiny LeNet-5, one epoch, 12 px crops.

    Args:
        root: Path, a fresh folder.
        classes: tuple of class names. Defaults to two.
        per_class: int, images per class. Defaults to 6.
        **sections: recipe sections' keys to override (as
            ``tests.test_cli_commands.recipe_file``).

    Returns:
        Path of the recipe file.
    """
    from tests.data import image_files
    from tests.test_cli_commands import recipe_file
    from tfcnn import cli

    image_files.make_class_folders(root / "src", classes, per_class)
    # No statistics needed: the shards alone train.
    sections.setdefault("augment", {"mean": "none"})
    path = recipe_file(root, **sections)
    if cli.main(["ingest", str(path), "--workers", "1"]) != 0:
        raise RuntimeError(f"tfcnn ingest {path} failed")
    return path


def two_step_setup(model_dir, **train):
    """What the 1-vs-2-device equivalence tests start from: a tiny recipe
    (SGD with momentum, weight decay and label smoothing, no crop), the
    initial weights of its model and one batch of 16 random images.

    Returns:
        (recipe, initial weights, (uint8 images, int32 labels)).
    """
    import keras
    import numpy as np

    from tfcnn.train import fit

    recipe = tiny_recipe(model_dir, weight_decay=5e-4, label_smoothing=0.1,
                         momentum=0.9, learning_rate=0.1, **train)
    recipe = recipe.replace(augment={"crop": "none"})
    keras.utils.set_random_seed(1)
    initial = fit.build_training_model(recipe, 4).get_weights()
    rng = np.random.default_rng(0)
    batch = (rng.integers(0, 256, (16, 20, 20, 3)).astype(np.uint8),
             rng.integers(0, 4, 16).astype(np.int32))
    return recipe, initial, batch


def assert_same_steps(initial, one, two):
    """Two devices' weights equal one device's, and every kernel and bias
    of LeNet-5 moved from ``initial``."""
    import numpy as np

    moved = 0
    for w0, w1, w2 in zip(initial, one, two):
        np.testing.assert_allclose(w2, w1, rtol=1e-5, atol=1e-6)
        moved += not np.allclose(w0, w1)
    assert moved >= 8


def kill_after(process, ready, timeout):
    """SIGKILLs ``process`` once ``ready()`` returns a value (polled every
    50 ms) and returns that value; fails if the process ends first or
    nothing is ready within ``timeout`` seconds."""
    import os
    import signal
    import time

    deadline = time.monotonic() + timeout
    try:
        while (value := ready()) is None:
            assert process.poll() is None, "run ended before the kill"
            assert time.monotonic() < deadline, (
                f"nothing to kill after in {timeout} s")
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == -signal.SIGKILL
    return value
