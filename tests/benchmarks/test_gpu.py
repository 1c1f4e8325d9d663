"""benchmarks/gpu.py on a machine without a GPU: one line, at once.

The GPU measurements themselves need a GPU; ``--cpu-smoke`` runs the same
code on two logical CPU devices, but takes minutes on 2 shared cores, so it
is run by hand, not here.
"""

import os
import subprocess
import sys
from pathlib import Path

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
