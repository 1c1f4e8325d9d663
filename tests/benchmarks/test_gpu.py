"""benchmarks/gpu.py on a machine without a GPU: one line, at once; and
``--cpu-smoke``, the same code on two logical CPU devices, end to end.

The GPU measurements themselves need a GPU. Under ``--backend jax`` (no
TensorFlow) the smoke run of one model is small.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.benchmarks.scripts import assert_keys
from tests.benchmarks.scripts import run_benchmark

GPU_SCRIPT = Path(__file__).parents[2] / "benchmarks" / "gpu.py"


def test_without_a_gpu_it_says_so_and_exits_2():
    # No GPU is visible whatever the machine has.
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run([sys.executable, str(GPU_SCRIPT)], env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines()
             if line.startswith("gpu.py:")]
    assert len(lines) == 1 and "no GPU visible" in lines[0]
    assert "--cpu-smoke" in lines[0]
    assert result.stdout == ""


def test_keras_backend_without_a_gpu_says_so_and_exits_2():
    # JAX sees only the CPU here: one line, no TensorFlow needed.
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "JAX_PLATFORMS": ""}
    result = subprocess.run(
        [sys.executable, str(GPU_SCRIPT), "--backend", "jax"], env=env,
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines()
             if line.startswith("gpu.py:")]
    assert len(lines) == 1 and "no GPU visible to jax" in lines[0]
    assert result.stdout == ""


@pytest.mark.slow
def test_keras_backend_cpu_smoke_ends_with_its_json(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(GPU_SCRIPT.parents[1])}
    result = subprocess.run(
        [sys.executable, str(GPU_SCRIPT), "--backend", "jax", "--cpu-smoke",
         "--steps", "1", "--only", "alexnet"], env=env,
        capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["backend"] == "jax" and figures["cpu_smoke"]
    assert [(row["model"], row["precision"]) for row in figures["runs"]] == [
        ("alexnet", "float32"), ("alexnet", "mixed_bfloat16")]
    assert all(row["images_per_s"] > 0 for row in figures["runs"])
    assert figures["alexnet_lrn_over_textbook"] > 0
    assert "resnet18_gn_over_keras_gn" not in figures
@pytest.mark.slow
def test_cpu_smoke_reports_every_figure(tmp_path):
    # AlexNet alone: ResNet-50 runs the same code at minutes more (two
    # logical devices, three configurations, XLA compiles).
    _, figures = run_benchmark("gpu.py", "--cpu-smoke", "--only", "alexnet",
                               "--data", tmp_path / "data",
                               tmp_path=tmp_path, timeout=1800)
    assert_keys(figures, ["devices", "cpu_smoke", "equivalence", "runs",
                          "seconds"])
    assert figures["equivalence"]["equivalent"] is True
    assert {row["model"] for row in figures["runs"]} == {"alexnet"}
    for model in ("alexnet",):
        assert_keys(figures, [f"{model}_mixed_xla_over_float32",
                              f"{model}_real_over_synthetic",
                              f"{model}_2_over_1_replicas"])
    for row in figures["runs"]:
        assert_keys(row, ["model", "replicas", "precision", "xla", "input",
                          "images_per_s", "input_wait_fraction"])
