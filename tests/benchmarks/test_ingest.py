"""benchmarks/ingest.py --smoke: ingest against reading the bytes."""

import pytest

from tests.benchmarks.scripts import assert_keys
from tests.benchmarks.scripts import run_benchmark


@pytest.mark.slow
def test_smoke_run_reports_every_figure(tmp_path):
    _, figures = run_benchmark("ingest.py", "--smoke", tmp_path=tmp_path)
    assert_keys(figures, [
        "ingest_images_per_s", "ingest_1_worker_images_per_s",
        "read_bytes_images_per_s", "tf_decode_jpeg_images_per_s", "ratio",
        "num_images", "cores", "repeats"])
    assert figures["num_images"] == 20
    # Its temporary folder is gone.
    assert not list(tmp_path.glob("tfcnn-bench-ingest-*"))
