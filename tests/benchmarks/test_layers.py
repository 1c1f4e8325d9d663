"""benchmarks/layers.py --smoke: every layer against its reference."""

import pytest

from tests.benchmarks.scripts import assert_keys
from tests.benchmarks.scripts import run_benchmark

CASES = ("lrn", "lrn_conv2", "group_norm", "transposed_conv", "dilated_conv")


@pytest.mark.slow
def test_smoke_run_reports_every_figure(tmp_path):
    _, figures = run_benchmark("layers.py", "--smoke", tmp_path=tmp_path)
    assert_keys(figures, [f"{name}_ratio" for name in CASES]
                + ["quick", "smoke", "repeats", "cases"])
    for name in CASES:
        case = figures["cases"][name]
        assert_keys(case, ["shape", "candidate_ms", "reference_ms", "ratio",
                           "ratio_of_minima", "max_rel_error"])
        # The same numbers as the reference (float32 round-off only).
        assert case["max_rel_error"] < 1e-3, name
