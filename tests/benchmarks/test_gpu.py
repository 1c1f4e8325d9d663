"""benchmarks/gpu.py on a machine without a GPU: one line, at once; and
``--cpu-smoke``, the same code on two logical CPU devices, end to end.

The GPU measurements themselves need a GPU.
"""

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


@pytest.mark.slow
def test_cpu_smoke_reports_every_figure(tmp_path):
    # Minutes even on a quiet machine (two logical devices, each model in
    # three configurations); over 10 on 2 cores shared with other jobs.
    _, figures = run_benchmark("gpu.py", "--cpu-smoke", "--data",
                               tmp_path / "data", tmp_path=tmp_path,
                               timeout=1800)
    assert_keys(figures, ["devices", "cpu_smoke", "equivalence", "runs",
                          "seconds"])
    assert figures["equivalence"]["equivalent"] is True
    for model in ("alexnet", "resnet50"):
        assert_keys(figures, [f"{model}_mixed_xla_over_float32",
                              f"{model}_real_over_synthetic",
                              f"{model}_2_over_1_replicas"])
    for row in figures["runs"]:
        assert_keys(row, ["model", "replicas", "precision", "xla", "input",
                          "images_per_s", "input_wait_fraction"])
