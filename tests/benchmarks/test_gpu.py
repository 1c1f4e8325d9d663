"""benchmarks/gpu.py on a machine without a GPU: one line, at once.

The GPU measurements themselves need a GPU; ``--cpu-smoke`` runs the same
code on two logical CPU devices, but takes minutes on 2 shared cores, so it
is run by hand, not here. Under ``--backend jax`` (no TensorFlow) the
smoke run of one model is small enough to run here.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

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
