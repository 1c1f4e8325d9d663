"""Tests of deploy/: the Slurm batch script and the Kubernetes Job that the
README's multi-worker section ships."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.train.conftest import free_port_range
from tests.train.conftest import slurm_environment
from tests.train.conftest import subprocess_env
from tests.train.conftest import tiny_recipe
from tfcnn import recipe as recipe_lib
from tfcnn.recipe import TrainConfig
from tfcnn.train import cluster as cluster_lib

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"

# Stands in for Slurm's srun: starts the command once per task of a
# one-node step on localhost with the variables srun sets, and fails if
# any task fails.
FAKE_SRUN = '''\
import json
import os
import subprocess
import sys

tasks = int(os.environ["FAKE_SRUN_TASKS"])
environments = json.loads(os.environ["FAKE_SRUN_ENVIRONMENTS"])
processes = [subprocess.Popen(sys.argv[1:], env={**os.environ, **env})
             for env in environments[:tasks]]
sys.exit(max(p.wait(timeout=300) for p in processes))
'''


def _kubernetes_values():
    text = (DEPLOY / "kubernetes" / "train.yaml").read_text()

    def value(pattern):
        match = re.search(pattern, text, re.MULTILINE)
        assert match, pattern
        return match.group(1)

    return {
        "service": value(r"kind: Service\nmetadata:\n  name: (\S+)"),
        "selector": value(r"selector:\n\s+job-name: (\S+)"),
        "job": value(r"kind: Job\nmetadata:\n  name: (\S+)"),
        "completions": int(value(r"^  completions: (\d+)")),
        "parallelism": int(value(r"^  parallelism: (\d+)")),
        "subdomain": value(r"subdomain: (\S+)"),
        "workers": int(value(r'name: TFCNN_WORKERS.*\n\s+value: "(\d+)"')),
        "address": value(
            r'name: TFCNN_WORKER_ADDRESS.*\n\s+value: "([^"]+)"'),
        "port": int(value(r"containerPort: (\d+)")),
        "mode": value(r"completionMode: (\S+)"),
    }


def test_kubernetes_job_names_each_pod_by_its_stable_address():
    k8s = _kubernetes_values()
    assert k8s["mode"] == "Indexed"
    assert k8s["selector"] == k8s["job"]
    assert k8s["subdomain"] == k8s["service"]
    assert k8s["workers"] == k8s["completions"] == k8s["parallelism"]
    # An Indexed Job's pod i has host name <job>-<i>; with the subdomain,
    # <job>-<i>.<service> resolves to it.
    assert k8s["address"] == f"{k8s['job']}-{{index}}.{k8s['service']}"
    assert k8s["port"] == TrainConfig().cluster_port


def test_kubernetes_job_variables_resolve_to_its_pods(monkeypatch):
    k8s = _kubernetes_values()
    for name in ("TF_CONFIG", cluster_lib.RESOLVED_FROM):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    monkeypatch.setenv("JOB_COMPLETION_INDEX", "1")
    monkeypatch.setenv("TFCNN_WORKERS", str(k8s["workers"]))
    monkeypatch.setenv("TFCNN_WORKER_ADDRESS", k8s["address"])
    resolved = cluster_lib.resolve(TrainConfig(strategy="multi_worker"))
    assert resolved["cluster"]["worker"][1] == (
        f"{k8s['job']}-1.{k8s['service']}:{k8s['port']}")


@pytest.mark.slow
def test_sbatch_script_trains_two_tasks_through_srun(tmp_path):
    # The batch script as sbatch runs it, with an srun that starts its two
    # tasks on localhost with Slurm's variables: they train together.
    work = tmp_path / "work"
    (work / ".venv" / "bin").mkdir(parents=True)
    (work / ".venv" / "bin" / "activate").write_text(":\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    srun = bin_dir / "srun"
    srun.write_text(f"#!{sys.executable}\n{FAKE_SRUN}")
    srun.chmod(0o755)
    tfcnn = Path(sys.executable).with_name("tfcnn")
    (bin_dir / "tfcnn").symlink_to(tfcnn)

    port = free_port_range(2)
    recipe = tiny_recipe(work / "run", epochs=1)
    (work / "recipe.toml").write_text(recipe_lib.dump_toml(recipe))
    env = subprocess_env(
        FAKE_SRUN_TASKS="2",
        FAKE_SRUN_ENVIRONMENTS=json.dumps(
            [slurm_environment(rank, 2) for rank in range(2)]),
        PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    for name in ("TF_CONFIG", cluster_lib.RESOLVED_FROM):
        env.pop(name, None)
    result = subprocess.run(
        ["bash", str(DEPLOY / "slurm" / "train.sbatch"), "recipe.toml",
         "--set", f"train.cluster_port={port}"],
        cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"localhost:{port}, localhost:{port + 1}" in result.stderr
    record = json.loads((work / "run" / "training.json").read_text())
    assert record["complete"] and record["num_replicas"] == 2
