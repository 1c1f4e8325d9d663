"""Runs a script of benchmarks/ as a user would, in a subprocess.

Each benchmark prints one JSON object with every figure as its last line;
``run_benchmark`` checks the exit status and that the line holds the keys
its documentation (the script's docstring, the README) names. Speeds are
never checked: the smoke sizes prove only that the script runs end to
end.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]
BENCHMARKS = ROOT / "benchmarks"


def run_benchmark(script, *args, tmp_path, timeout=600, env=None):
    """Runs ``benchmarks/<script> <args>``; returns (result, last JSON).

    The subprocess imports this checkout's ``tfcnn``, writes its
    temporary files under ``tmp_path`` and sees no GPU.

    Raises:
        AssertionError: a non-zero exit status (with the output's tail),
            or a last line that is not one JSON object.
    """
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
        "TMPDIR": str(tmp_path),
        "CUDA_VISIBLE_DEVICES": "",
        **(env or {}),
    }
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *map(str, args)],
        env=environment, cwd=tmp_path, capture_output=True, text=True,
        timeout=timeout)
    assert result.returncode == 0, (
        f"{script} exited {result.returncode}:\n{result.stdout[-3000:]}\n"
        f"{result.stderr[-3000:]}")
    lines = result.stdout.strip().splitlines()
    assert lines, f"{script} printed nothing"
    figures = json.loads(lines[-1])
    assert isinstance(figures, dict), lines[-1]
    return result, figures


def assert_keys(figures, keys):
    """Every key is in ``figures``; names the missing ones."""
    missing = sorted(set(keys) - set(figures))
    assert not missing, f"missing keys {missing} in {sorted(figures)}"
