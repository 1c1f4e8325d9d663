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
from tfcnn import recipe as recipe_lib
from tfcnn import run
from tfcnn.run_folder import RunFolder

# The packaged recipe, run by name as the README shows.
QUICKSTART = "quickstart"
# Under JAX the quickstart runs fewer epochs than its 40 in CI: they reach
# the README's 0.97 test accuracy too (0.99 measured with 10).
JAX_QUICKSTART_EPOCHS = 10
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


# The quickstart with its .tflite written beside the SavedModel.
TFLITE = ("--set", "export.format=tflite")


@pytest.mark.slow
def test_quickstart_end_to_end(tmp_path, monkeypatch, capsys):
    result = _tfcnn("run", str(QUICKSTART), *TFLITE, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    for stage in ("prepare", "ingest", "stats", "train", "evaluate",
                  "export", "tflite", "predict"):
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

    # The quickstart's recipe names paths relative to its project folder.
    monkeypatch.chdir(tmp_path)
    assert _assert_tflite_answers_as_the_saved_model(
        RunFolder("runs/quickstart").load_recipe(), versions[0],
        "saved_models/digits_lenet5.tflite", quantized=True) == 360

    # Run again: complete stages are skipped, nothing is re-exported.
    again = _tfcnn("run", str(QUICKSTART), *TFLITE, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    for stage in ("prepare", "ingest", "stats", "train", "export", "tflite"):
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


def _assert_tflite_answers_as_the_saved_model(recipe, saved_model, lite,
                                              quantized=False):
    """On the recipe's evaluation split: the float .tflite gives the
    SavedModel's probabilities to 1e-4; ``quantized``: the dynamic-range
    and int8 files of the run lose at most 1 point of its accuracy."""
    import numpy as np
    import tensorflow as tf

    from tfcnn import stages
    from tfcnn.export import tflite
    from tfcnn.recipe import Quantization
    from tfcnn.train import inputs

    batches = list(inputs.evaluation_inputs(recipe).dataset)
    images = np.concatenate([np.asarray(x) for x, _ in batches])
    labels = np.concatenate([np.asarray(y) for _, y in batches])
    images = images.astype(np.uint8)
    served = np.array(tf.saved_model.load(str(saved_model)).signatures[
        "predict_images_uint8"](images=tf.constant(images))["probabilities"])
    np.testing.assert_allclose(tflite.TFLiteModel(lite)(images), served,
                               atol=1e-4)
    accuracy = np.mean(served.argmax(-1) == labels)
    for quantization in (Quantization.DYNAMIC, Quantization.INT8)[
            :2 * quantized]:
        path = stages.export_tflite(
            recipe.replace(export={"quantization": quantization}))
        score = np.mean(tflite.TFLiteModel(path)(images).argmax(-1)
                        == labels)
        assert score >= accuracy - 0.01, (quantization, score)
    return len(labels)


STAGES = ("ingest", "stats", "train", "evaluate", "export", "tflite",
          "predict")


def _stage_lines(out, stage):
    """The lines that report ``stage``: run's tagged ones and any untagged
    result line of the stage itself."""
    return [line for line in out.splitlines()
            if re.match(rf"(\[(done|skip)\] )?{stage}: ", line)]


@pytest.mark.slow
def test_each_stage_prints_its_result_once(tmp_path, capsys):
    image_files.make_class_folders(tmp_path / "src", ("a", "b"), 4)
    # export.format = "tflite": the SavedModel and a .tflite beside it.
    recipe = recipe_file(tmp_path, data={"validation_split": 0.25},
                         export={"format": "tflite"})

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
    lite = tmp_path / "exports/tiny.tflite"
    assert f"[done] tflite: wrote TFLite model {lite} (float32, " in out, out
    _assert_tflite_answers_as_the_saved_model(
        recipe_lib.load_recipe(recipe), tmp_path / "exports/tiny/1", lite)

    # Again: complete stages are skipped, each said once.
    assert cli.main(["run", str(recipe)]) == 0
    again = capsys.readouterr().out
    for stage in STAGES:
        assert len(_stage_lines(again, stage)) == 1, again
    for stage in ("ingest", "stats", "train", "export", "tflite"):
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


@pytest.mark.slow
def test_quickstart_under_jax_resumes_after_kill_9(tmp_path):
    # The README's quickstart under JAX: killed after its first epoch's
    # backup, run again, it resumes there and reaches the README's test
    # accuracy; the 10-crop evaluation runs under JAX and the export of
    # the JAX-trained model is TensorFlow's verified SavedModel.
    from tests.train.conftest import kill_after
    from tfcnn.train import callbacks as callbacks_lib

    command = [sys.executable, "-m", "tfcnn.cli", "run", QUICKSTART,
               "--set", "train.backend=jax",
               "--set", f"train.epochs={JAX_QUICKSTART_EPOCHS}",
               "--set", "evaluate.ten_crop=true"]
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    env.update(PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
    backup = tmp_path / "runs/quickstart/backup"
    process = subprocess.Popen(command, cwd=tmp_path, env=env,
                               stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    state = kill_after(process, lambda: callbacks_lib.read_backup(backup),
                       timeout=600)
    assert state["epoch"] >= 1 and state["step"] == 0

    result = subprocess.run(command, cwd=tmp_path, env=env, timeout=900,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert ("train: resuming from runs/quickstart/backup at epoch "
            f"{state['epoch'] + 1}, step 0") in result.stderr
    for stage in ("train", "evaluate", "export", "predict"):
        assert re.search(rf"^\[done\] {stage}:", result.stdout, re.M), \
            result.stdout
    run_dir = tmp_path / "runs/quickstart"
    record = json.loads((run_dir / "training.json").read_text())
    assert record["complete"] and record["resumed_from"]["epoch"] >= 1
    assert 'backend = "jax"' in (run_dir / "recipe.toml").read_text()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    print(f"JAX quickstart ({JAX_QUICKSTART_EPOCHS} epochs): test top-1 "
          f"{metrics['accuracy']:.4f}, 10-crop "
          f"{metrics['ten_crop_accuracy']:.4f}")
    assert metrics["accuracy"] >= 0.97, metrics
    assert metrics["ten_crop_accuracy"] >= 0.97, metrics
    assert metrics["num_examples"] == 360
    version = tmp_path / "saved_models/digits_lenet5/1"
    assert (version / "saved_model.pb").is_file()
    assert str(version.relative_to(tmp_path)) in result.stdout


def test_shards_of_other_ingest_options_stop_the_run(tmp_path, capsys):
    # A shard folder belongs to its ingest options as a run folder to its
    # recipe: a changed data.validation_split must not train on the old
    # split (tfcnn.stages.check_shards).
    image_files.make_class_folders(tmp_path / "src", ("a", "b"), 4)
    recipe = recipe_file(tmp_path, data={"validation_split": 0.25})
    shards = tmp_path / "shards"
    assert cli.main(["ingest", str(recipe)]) == 0
    capsys.readouterr()
    line = (f"the shards in {shards} were ingested with other options "
            "(data.validation_split = 0.25 in the shards, 0.5 in the "
            "recipe); ingest them again with --overwrite, or choose another "
            f"data.shards. Received: data.shards='{shards}'")
    changed = ["--set", "data.validation_split=0.5"]

    assert cli.main(["run", str(recipe), *changed]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"tfcnn run: error: {line}")
    assert not (tmp_path / "run").exists()
    assert cli.main(["ingest", str(recipe), *changed]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"tfcnn ingest: error: {line}")
    assert cli.main(["train", str(recipe), *changed, "--overwrite"]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "tfcnn train: error: " + line.replace(
            "--overwrite", "`tfcnn ingest RECIPE --overwrite`"))
    assert not (tmp_path / "run").exists()
    assert cli.main(["run", str(recipe), *changed, "--dry-run"]) == 0
    assert (f"# ingest: would stop with exit status 2: {line}"
            in capsys.readouterr().out.splitlines())

    # The same options: skipped, as before.
    same = recipe_lib.load_recipe(recipe)
    report = run._ingest(same, run._Force(False, False))
    assert (report.skipped, report.message) == (True, f"{shards} is complete")
    # --overwrite (tfcnn run's): ingested again with the recipe's split.
    other = recipe_lib.load_recipe(recipe, ["data.validation_split=0.5"])
    assert run.plan(other, overwrite=True)[0] == (
        f"ingest: would write shards of {tmp_path / 'src'} to {shards} "
        "again, replacing those of other ingest options")
    report = run._ingest(other, run._Force(False, True))
    assert not report.skipped
    manifest = json.loads((shards / "manifest.json").read_text())
    assert manifest["options"]["validation_split"] == 0.5
    assert manifest["splits"]["validation"]["count"] == 4
    assert run._ingest(other, run._Force(False, False)).skipped


def test_an_unknown_model_stops_before_any_stage(tmp_path, capsys):
    # A misspelt (or absent, like Keras 3's RegNet) model.name stops at
    # once: not after prepare, ingest and stats have run.
    image_files.make_class_folders(tmp_path / "src", ("a", "b"), 4)
    recipe = recipe_file(tmp_path, model={"name": "regnetx002"})

    assert cli.main(["run", str(recipe)]) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith("tfcnn run: error: unknown model 'regnetx002'")
    assert "RegNet" in line
    assert not (tmp_path / "shards").exists()
    assert cli.main(["run", str(recipe), "--dry-run"]) == 0
    assert any(planned.startswith("# train: would stop with exit status 2: "
                                  "unknown model 'regnetx002'")
               for planned in capsys.readouterr().out.splitlines())
