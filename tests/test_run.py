"""End to end: the quickstart recipe, run as a user runs it, twice; a
small recipe's stages each print their result once."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.data import image_files
from tests.test_cli_commands import recipe_file
from tfcnn import cli
from tfcnn import run

# The packaged recipe, run by name as the README shows.
QUICKSTART = "quickstart"
ROOT = Path(__file__).resolve().parents[1]
# TensorFlow's own log lines (Abseil prefix) and the notices they carry.
NATIVE_LOG = re.compile(r"^[IWEF]\d{4} |oneDNN|cuInit|absl::", re.M)


def _tfcnn(*args, cwd):
    # As a user runs it: no TF_CPP_MIN_LOG_LEVEL of their own.
    env = {k: v for k, v in os.environ.items()
           if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "tfcnn.cli", *args], cwd=cwd, env=env,
        capture_output=True, text=True, timeout=900)


def _versions(model_root):
    return [p for p in model_root.iterdir() if p.name.isdigit()]


@pytest.mark.slow
def test_quickstart_end_to_end(tmp_path, monkeypatch, capsys):
    result = _tfcnn("run", str(QUICKSTART), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    for stage in ("prepare", "ingest", "stats", "train", "evaluate",
                  "export", "predict"):
        assert re.search(rf"^\[done\] {stage}:", out, re.M), out
        assert len(_stage_lines(out, stage)) == 1, out  # said once
    assert not NATIVE_LOG.search(result.stderr), result.stderr
    # Keras' progress bar redraws only on a terminal: no ANSI codes here.
    assert "\x1b[" not in out and "\r" not in result.stderr

    metrics = json.loads((tmp_path / "runs/quickstart/metrics.json")
                         .read_text())
    assert metrics["accuracy"] >= 0.97, metrics
    assert metrics["top5_accuracy"] >= metrics["accuracy"]
    assert metrics["num_examples"] == 360  # the stratified 20% test split

    versions = _versions(tmp_path / "saved_models/digits_lenet5")
    assert [v.name for v in versions] == ["1"]
    assert (versions[0] / "saved_model.pb").is_file()
    # The prediction was made by the exported SavedModel.
    assert str(versions[0]) in out

    # Run again: complete stages are skipped, nothing is re-exported.
    again = _tfcnn("run", str(QUICKSTART), cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    for stage in ("prepare", "ingest", "stats", "train", "export"):
        assert re.search(rf"^\[skip\] {stage}:", again.stdout, re.M), \
            again.stdout
    assert len(_versions(tmp_path / "saved_models/digits_lenet5")) == 1

    # The README's evaluate and predict commands, in this process (two
    # fewer TensorFlow start-ups; the run above is the user's process).
    # evaluate --json prints exactly one JSON object on stdout.
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert cli.main(["evaluate", str(QUICKSTART), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] == pytest.approx(
        metrics["accuracy"])

    images = sorted(str(p.relative_to(tmp_path)) for p in (
        tmp_path / "data/digits/test/7").glob("*.png"))[:3]
    assert cli.main(["predict", "saved_models/digits_lenet5", *images,
                     "--json"]) == 0
    predicted = json.loads(capsys.readouterr().out)
    assert [len(p["class_names"]) for p in predicted["predictions"]] == [
        3, 3, 3], predicted  # one per image, export.top_k each


STAGES = ("ingest", "stats", "train", "evaluate", "export", "predict")


def _stage_lines(out, stage):
    """The lines that report ``stage``: run's tagged ones and any untagged
    result line of the stage itself."""
    return [line for line in out.splitlines()
            if re.match(rf"(\[(done|skip)\] )?{stage}: ", line)]


@pytest.mark.slow
def test_each_stage_prints_its_result_once(tmp_path, capsys):
    image_files.make_class_folders(tmp_path / "src", ("a", "b"), 4)
    recipe = recipe_file(tmp_path, data={"validation_split": 0.25})

    assert cli.main(["run", str(recipe)]) == 0
    out, err = capsys.readouterr()
    # Progress (the export's ~15 s check) on stderr, results on stdout.
    assert "checking it in a fresh process" in err
    # Not a terminal: Keras' verbose=2 line per epoch, no redrawn bar.
    assert re.search(r"^\d+/\d+ - .*loss", out, re.M), out
    assert "\r" not in out + err and "\x1b[" not in out + err
    for stage in STAGES:
        assert len(_stage_lines(out, stage)) == 1, out
        assert f"[done] {stage}: " in out, out
    # The line is the stage's own result (what it wrote), not a summary.
    assert "[done] ingest: wrote 8 records" in out, out
    assert re.search(r"^\[done\] stats: 6 train images at 16x16", out,
                     re.M), out
    assert "[done] train: wrote model.keras" in out, out

    # Again: complete stages are skipped, each said once.
    assert cli.main(["run", str(recipe)]) == 0
    again = capsys.readouterr().out
    for stage in STAGES:
        assert len(_stage_lines(again, stage)) == 1, again
    for stage in ("ingest", "stats", "train", "export"):
        assert f"[skip] {stage}: " in again, again

    # --json: one object on stdout with every stage, the lines on stderr.
    assert cli.main(["run", str(recipe), "--json"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert [s["stage"] for s in report["stages"]] == list(STAGES)
    for stage in STAGES:
        assert len(_stage_lines(captured.err, stage)) == 1, captured.err


def _other_worker(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", json.dumps({
        "cluster": {"worker": ["127.0.0.1:2222", "127.0.0.1:2223"]},
        "task": {"type": "worker", "index": 1}}))


def test_other_worker_names_what_the_chief_never_wrote(tmp_path,
                                                       monkeypatch, capsys):
    # Worker 1 of `tfcnn run` waits for the chief's shards and statistics;
    # no chief runs, so it gives up after train.join_timeout, exit 2.
    _other_worker(monkeypatch)
    recipe = recipe_file(tmp_path, train={"strategy": "multi_worker",
                                          "join_timeout": 1})
    assert cli.main(["run", str(recipe)]) == 2
    out, err = capsys.readouterr()
    shards = tmp_path / "shards"
    assert out.splitlines() == [
        f"[wait] the shards in {shards}, the statistics of {shards} at "
        "16px: up to train.join_timeout = 1 s for the chief "
        "(127.0.0.1:2222) to complete them"]
    assert err.splitlines()[-1] == (
        f"tfcnn run: error: ingest: the chief (127.0.0.1:2222) did not "
        f"complete the shards in {shards}, the statistics of {shards} at "
        "16px within train.join_timeout = 1 s (start the same `tfcnn run` "
        "on the chief, or raise train.join_timeout)")
    assert not shards.exists() and not (tmp_path / "run").exists()


def test_wait_for_chief_ends_when_its_outputs_are_complete():
    from tfcnn.train import strategy as strategy_lib

    checks = iter([False, False, True])
    role = strategy_lib.WorkerRole({}, False, "worker_1", "10.0.0.1:1")
    lines = []
    reports = run.wait_for_chief(
        [("ingest", "the shards in s", lambda: next(checks)),
         ("stats", "the statistics of s", lambda: True)],
        role, timeout=60, echo=lines.append, poll_seconds=0)
    assert lines == [
        "[wait] the shards in s: up to train.join_timeout = 60 s for the "
        "chief (10.0.0.1:1) to complete them",
        "[skip] ingest: the shards in s: complete, written by the chief "
        "(10.0.0.1:1)",
        "[skip] stats: the statistics of s: complete, written by the chief "
        "(10.0.0.1:1)"]
    assert [(r.stage, r.skipped) for r in reports] == [
        ("ingest", True), ("stats", True)]
