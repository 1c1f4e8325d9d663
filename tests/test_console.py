"""The command's terminal output: no TensorFlow log lines unless asked."""

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.data import image_files
from tfcnn import console

ROOT = Path(__file__).resolve().parents[1]
# Abseil/TensorFlow log lines and the names they carry.
NATIVE = re.compile(r"^[IWEF]\d{4} |oneDNN|cuInit|absl::InitializeLog",
                    re.M)


@pytest.mark.parametrize("line, hidden", [
    (b"WARNING: All log messages before absl::InitializeLog() is called "
     b"are written to STDERR", True),
    (b"I0000 00:00:1795991734.203604    8675 port.cc:153] oneDNN custom "
     b"operations are on.", True),
    (b"W0000 00:00:1795991734.2 8675 cpu_feature_guard.cc:1] AVX", True),
    (b"E0000 00:00:1795991742.380213    8675 cuda_platform.cc:52] failed "
     b"call to cuInit: INTERNAL: CUDA error", True),
    (b"E0000 00:00:1796563754.735127   12995 util.cc:131] oneDNN supports "
     b"DT_UINT8 only on platforms with AVX-512. Falling back to the default "
     b"Eigen-based implementation if present.", True),
    (b"E0000 00:00:1795991742.380213    8675 bfc_allocator.cc:9] Allocator "
     b"ran out of memory", False),
    (b"F0000 00:00:1795991742.380213    8675 check.cc:9] Check failed", False),
    (b"tfcnn stats: error: no shards in data", False),
    (b"Epoch 1/2", False),
])
def test_native_noise(line, hidden):
    assert console.is_native_noise(line) is hidden


# What the surviving worker of a two-worker `tfcnn train` printed when the
# other was killed (quiet mode, before the filter), in the two ways the
# runtime reports it: collectives that cannot reach the lost worker, and
# the coordination service's heartbeat timeout.
LOST_WORKER = [
    b"E0000 00:00:1796543066.087639   25510 ring_alg.cc:291] Aborting "
    b"RingReduce with UNAVAILABLE: failed to connect to all addresses",
    b"Additional GRPC error information from remote target "
    b"/job:worker/replica:0/task:1 while calling "
    b"/tensorflow.WorkerService/RecvBuf:",
    b":UNKNOWN:Error received from peer  {grpc_status:14}",
    b"E0000 00:00:1796543066.087833   25510 base_collective_executor.cc:252]"
    b" BaseCollectiveExecutor::StartAbort UNAVAILABLE: failed to connect",
    b"Additional GRPC error information from remote target "
    b"/job:worker/replica:0/task:1 while calling "
    b"/tensorflow.WorkerService/RecvBuf:",
    b":UNKNOWN:Error received from peer  {grpc_status:14}",
    b"E0000 00:00:1796543101.5 25871 coordination_service_agent.cc:403] "
    b"Polled an error from coordination service: UNAVAILABLE: The "
    b"following tasks are unhealthy (stopped sending heartbeats):",
    b"/job:worker/replica:0/task:1",
    b"The tasks have crashed. Check the task logs for an earlier error, or "
    b"scheduler events (e.g. preemption, eviction) to debug further.",
    b"The error could be from a previous operation. Restart your program "
    b"to reset. [type.googleapis.com/tensorflow.DerivedStatus='']",
    b"tfcnn train: error: a worker of this multi-worker run was lost "
    b"(UnavailableError: ...). Start the same command on every worker "
    b"again: training resumes from run/backup at its last saved step",
]


def test_a_lost_worker_leaves_one_line(tmp_path):
    read_fd, write_fd = os.pipe()
    out = tmp_path / "err"
    with open(out, "wb") as sink:
        os.write(write_fd, b"\n".join(
            [b"train: waiting for the workers", *LOST_WORKER,
             b":not after a hidden line, kept"]) + b"\n")
        os.close(write_fd)
        console._forward(read_fd, sink.fileno())
    assert out.read_bytes().decode().splitlines() == [
        "train: waiting for the workers", LOST_WORKER[-1].decode(),
        ":not after a hidden line, kept"]


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_keras_progress_bar_only_on_a_terminal():
    assert console.keras_verbosity(io.StringIO()) == 2
    assert console.keras_verbosity(_Terminal()) == 1


def test_a_result_is_its_dict_with_a_line():
    result = console.Result({"epochs": 2}, "train: wrote model.keras")
    assert result == {"epochs": 2}
    assert json.loads(json.dumps(result)) == {"epochs": 2}
    assert result.line == "train: wrote model.keras"
    assert console.Result({"epochs": 2}).line == ""


def _tfcnn(*args, cwd, **env):
    environ = {k: v for k, v in os.environ.items()
               if k != "TF_CPP_MIN_LOG_LEVEL"}
    environ["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "tfcnn.cli", *args], cwd=cwd,
        env={**environ, **env}, capture_output=True, text=True,
        timeout=600)


@pytest.mark.slow
def test_commands_print_no_tensorflow_log_lines(tmp_path):
    image_files.make_class_folders(tmp_path / "src", ("a", "b"), 3)
    ingested = _tfcnn("ingest", "src", "shards", "--workers", "1",
                      cwd=tmp_path)
    assert ingested.returncode == 0, ingested.stderr
    stats = _tfcnn("stats", "shards", "--resize-size", "16", cwd=tmp_path)
    assert stats.returncode == 0, stats.stderr
    failed = _tfcnn("stats", "nowhere", cwd=tmp_path)
    # A tfcnn error is the only line: nothing reads as a CUDA failure.
    assert failed.returncode == 2
    assert failed.stderr.startswith("tfcnn stats: error:"), failed.stderr
    for done in (ingested, stats, failed):
        assert not NATIVE.search(done.stderr), done.stderr
        assert not NATIVE.search(done.stdout), done.stdout
    assert "stats.npz" in stats.stdout

    # --verbose shows them again: the filter is what hid them.
    verbose = _tfcnn("--verbose", "stats", "shards", "--resize-size", "16",
                     cwd=tmp_path)
    assert verbose.returncode == 0
    assert NATIVE.search(verbose.stderr), verbose.stderr


def test_option_text_names_the_option_as_the_caller_spells_it():
    assert console.option_text("overwrite") == "overwrite=True"
    assert console.option_text("resize_size", 256) == "resize_size=256"
    with console.command_flags():
        assert console.option_text("overwrite") == "--overwrite"
        assert console.option_text("resize_size") == "--resize-size"
        with console.command_flags(overwrite="--force"):
            assert console.option_text("overwrite") == "--force"
        assert console.option_text("overwrite") == "--overwrite"
    assert console.option_text("overwrite") == "overwrite=True"
