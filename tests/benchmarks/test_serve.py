"""benchmarks/serve.py --smoke: REST and gRPC load runs against the bare
SavedModel call rate, and the soak while two versions are exported."""

import shutil

import pytest

from tests.benchmarks.scripts import BENCHMARKS
from tests.benchmarks.scripts import assert_keys
from tests.benchmarks.scripts import run_benchmark


@pytest.mark.slow
def test_smoke_run_reports_every_figure(tmp_path):
    if shutil.which("ab") is None:
        # The REST load generator is ApacheBench (Debian's apache2-utils):
        # without it the script says so on one line and measures nothing.
        import subprocess
        import sys

        result = subprocess.run(
            [sys.executable, str(BENCHMARKS / "serve.py"), "--smoke"],
            capture_output=True, text=True, timeout=300)
        assert result.returncode == 2
        assert "needs ab: apt-get install apache2-utils" in result.stderr
        return
    # Three servers and a gRPC client process per run, each importing
    # TensorFlow: minutes, and over 12 on 2 cores shared with other jobs.
    _, figures = run_benchmark("serve.py", "--smoke", tmp_path=tmp_path,
                               timeout=1800)
    assert_keys(figures, [
        "model", "image_size", "cpu_cores", "seconds_per_run",
        "bare_calls_per_s", "loadavg_start", "loadavg_end", "soak_seconds",
        "soak_requests", "soak_requests_per_s", "soak_p50_ms", "soak_p99_ms",
        "soak_failed_requests", "soak_wrong_answers",
        "soak_versions_answering", "soak_rss_end_over_first"])
    for batching in ("unbatched", "batched"):
        for protocol in ("rest", "rest_keepalive", "grpc"):
            for clients in (1, 8, 32):
                row = f"quickstart_{batching}_{protocol}_{clients}"
                assert_keys(figures, [
                    f"{row}_{field}" for field in (
                        "requests_per_s", "p50_ms", "p99_ms", "failed",
                        "bare_calls_per_s", "vs_bare",
                        "vs_bare_same_concurrency",
                        "server_cpu_ms_per_request")])
    assert figures["soak_failed_requests"] == 0
    assert figures["soak_wrong_answers"] == 0
