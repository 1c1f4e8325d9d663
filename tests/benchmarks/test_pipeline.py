"""benchmarks/pipeline.py --smoke: every pipeline candidate, the ratios
named for it (compact, raw, Inception crop) and the 1-to-2-core scaling."""

import pytest

from tests.benchmarks.scripts import assert_keys
from tests.benchmarks.scripts import run_benchmark


@pytest.mark.slow
def test_smoke_run_reports_every_figure(tmp_path):
    _, figures = run_benchmark("pipeline.py", "--smoke", "--data",
                               tmp_path / "data", tmp_path=tmp_path)
    assert_keys(figures, [
        "images", "decode_floor_naive_images_per_s",
        "decode_floor_images_per_s", "full_training_input_images_per_s",
        "typical_keras_images_per_s", "b_over_a", "b_over_c", "a_over_a0",
        "compact_full_training_input_images_per_s",
        "inception_host_images_per_s", "png32_host_images_per_s",
        "raw32_host_images_per_s", "compact_over_typical_keras",
        "compact_over_originals", "raw_over_png", "inception_over_host",
        "scaling_1_core", "scaling_2_cores", "scaling_2_over_1"])
    for key in ("scaling_1_core", "scaling_2_cores", "scaling_2_over_1"):
        assert_keys(figures[key], ["a", "b"])
