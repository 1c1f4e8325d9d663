"""``tfcnn run``: a recipe's stages in order, each skipped when already done.

Stages: prepare (the embedded digits and digit scenes only) -> ingest ->
stats -> train -> evaluate -> export -> tflite (``export.format =
"tflite"`` only) -> predict. Each stage prints one line
naming what it wrote (for ingest, stats and train the result line their
library call returns, ``tfcnn.console.Result``). A
stage is skipped when its output exists and is complete, so running the
same command again after a crash or a kill picks up where it stopped
(training itself resumes mid-run from its backup).

Under ``train.strategy = "multi_worker"`` the same command runs on every
worker: the chief runs every stage, the other workers wait for its data,
train with it and leave the stages after training to it (``run_recipe``).
"""

import contextlib
import dataclasses
import functools
import json
import sys
import time
from pathlib import Path

from tfcnn import atomic_files
from tfcnn import stages as stages_lib
from tfcnn.data import sharding
from tfcnn.errors import DataError
from tfcnn.recipe import ExportFormat
from tfcnn.recipe import Source
from tfcnn.recipe import Strategy
from tfcnn.run_folder import RunFolder


@dataclasses.dataclass
class StageReport:
    """What one stage did: ran or skipped, and a line for the user."""

    stage: str
    skipped: bool
    message: str
    result: object = None


def run_recipe(recipe, *, force=False, overwrite=False, echo=print):
    """Runs every stage of ``recipe`` and returns their reports.

    Under ``train.strategy = "multi_worker"`` the same command runs on
    every worker (see the README's "Two machines"): the chief writes
    everything and the other workers only train. They wait (up to
    ``train.join_timeout`` seconds) until the chief's prepared images,
    shards and statistics are complete, train with it, and leave
    evaluate, export and predict to it, as the chief alone writes in
    Keras' multi-worker guide and the TF Model Garden.

    The run folder (``train.model_dir``) is checked first: one holding a
    run of another recipe stops the run before any stage (see
    ``tfcnn.run_folder``), so evaluate and export never answer for
    a model trained from another recipe. So do complete shards ingested
    with other options than the recipe's (``tfcnn.stages.check_shards``):
    skipping ingest would train on them; ``overwrite`` ingests them again.

    Args:
        recipe: a ``tfcnn.recipe.Recipe``.
        force: bool, run stages even when their output is complete (and
            train again in place). Defaults to False.
        overwrite: bool, train again in place, replacing the run in
            ``train.model_dir``, and ingest again shards of other ingest
            options; the other stages skip what is complete.
            Defaults to False.
        echo: callable taking one line per stage. Defaults to print.

    Returns:
        list of ``StageReport``.

    Raises:
        DataError: a worker waited ``train.join_timeout`` seconds for an
            output of the chief that never became complete.
        RecipeError: ``train.model_dir`` holds a run of another recipe.
        DataError: the shards were ingested with other options.
        UnknownModelError: ``model.name`` is no registered model.
    """
    from tfcnn.train import strategy as strategy_lib

    retrain = force or overwrite
    _check_model_name(recipe)
    if not retrain:
        RunFolder(recipe.train.model_dir).check_recipe(recipe)
        stages_lib.check_shards(recipe)
    force = _Force(force, retrain)
    role = strategy_lib.worker_role(recipe.train)
    stages = _stages(recipe)
    if not role.is_chief:
        return _run_as_worker(recipe, role, stages, force, echo)
    train_at = stages.index(_train)
    if recipe.train.strategy is Strategy.MULTI_WORKER:
        reports = _run_in_child(stages[:train_at], recipe, force, echo)
    else:
        reports = [_run_stage(stage, recipe, force, echo)
                   for stage in stages[:train_at]]
    reports += [_run_stage(stage, recipe, force, echo)
                for stage in stages[train_at:]]
    return [report for report in reports if report is not None]


@dataclasses.dataclass(frozen=True)
class _Force:
    """What to redo: every stage (``--force``), or training (and what
    follows from it) alone (``--overwrite``)."""

    every_stage: bool
    training: bool


def _check_model_name(recipe):
    """Raises ``UnknownModelError`` (one line naming the known ones)
    when ``model.name`` is no registered model: before prepare, ingest and
    stats spend minutes on a run that could never train."""
    from tfcnn import models

    models.model_task(recipe.model.name)


def plan(recipe, *, force=False, overwrite=False, train_only=False):
    """What each stage would do, as one line each; writes nothing.

    ``tfcnn train --dry-run`` and ``tfcnn run --dry-run`` print these
    after the resolved recipe.

    Args:
        recipe: ``tfcnn.recipe.Recipe``.
        force, overwrite: as for ``run_recipe``. Default to False.
        train_only: bool, the train stage alone (``tfcnn train``).
            Defaults to False.

    Returns:
        list of str, ``"<stage>: <what it would do>"``.
    """
    retrain = force or overwrite
    force = _Force(force, retrain)
    stages = [_train] if train_only else _stages(recipe)
    lines = []
    for stage in stages:
        name = stage.__name__.lstrip("_")
        if stage in (_prepare_digits, _prepare_digit_scenes):
            name = "prepare"
        line = _PLANS[stage](recipe, force)
        if line is not None:
            lines.append(f"{name}: {line}")
    return lines


def _plan_prepare(recipe, force):
    if stages_lib.is_prepared(recipe):
        return f"{recipe.data.path} is complete: skipped"
    return (f"would write the generated {recipe.data.source.value} images "
            f"to {recipe.data.path}")


def _plan_ingest(recipe, force):
    from tfcnn.data import ingest_plan
    from tfcnn.errors import DataError

    out = recipe.data.shard_dir
    complete = ingest_plan.is_complete(out, verify_sha256=False)
    if complete and not force.every_stage:
        if not stages_lib.shard_differences(recipe):
            return f"{out} is complete: skipped"
        if not force.training:
            try:
                stages_lib.check_shards(recipe)
            except DataError as error:
                return f"would stop with exit status 2: {error}"
        return (f"would write shards of {recipe.data.path} to {out} again, "
                "replacing those of other ingest options")
    return f"would write shards of {recipe.data.path} to {out}"


def _plan_stats(recipe, force):
    from tfcnn.tasks import task as task_lib

    if not task_lib.reads_stats(recipe):
        return None
    size = recipe.data.resize_size
    if stages_lib.has_stats(recipe) and not force.every_stage:
        return f"statistics at {size}px exist: skipped"
    return f"would compute the mean image and RGB PCA at {size}px"


def _plan_train(recipe, force):
    from tfcnn.errors import RecipeError
    from tfcnn.errors import UnknownModelError
    from tfcnn.train import fit

    folder = RunFolder(recipe.train.model_dir)
    try:
        _check_model_name(recipe)
    except UnknownModelError as error:
        return f"would stop with exit status 2: {error}"
    try:
        folder.check_is_folder()
        if not force.training:
            folder.check_recipe(recipe)
    except RecipeError as error:
        return f"would stop with exit status 2: {error}"
    holder = folder.holder()
    if holder is not None:
        return (f"would stop with exit status 2: process {holder} is "
                f"training {folder.path}")
    config, model = recipe.train, recipe.model
    what = (f"{model.name} for {config.epochs} epochs of batch "
            f"{config.batch_size} at learning rate {config.learning_rate}"
            + (f" from {model.weights}" if model.weights else ""))
    if force.training and folder.path.exists():
        return f"would replace the run in {folder.path} and train {what}"
    if fit.is_complete(recipe):
        return (f"{folder.path} holds a finished run of this recipe: "
                "skipped")
    if folder.backup.is_dir():
        return (f"would resume the run in {folder.path} from its backup "
                f"and train {what}")
    return f"would train {what} into {folder.path}"


def _plan_evaluate(recipe, force):
    return (f"would evaluate the trained model on the "
            f"{recipe.data.eval_split!r} split (else validation) and write "
            f"{RunFolder(recipe.train.model_dir).metrics}")


def _plan_export(recipe, force):
    return (f"would publish the trained model as a new version under "
            f"{stages_lib.exported_model(recipe)} (top-k "
            f"{recipe.export.top_k}) unless "
            f"{RunFolder(recipe.train.model_dir).export_record} records "
            f"this model there")


def _plan_tflite(recipe, force):
    from tfcnn.export import tflite

    path = stages_lib.tflite_file(recipe)
    quantization = recipe.export.quantization.value
    model = RunFolder(recipe.train.model_dir).model
    # A model about to be trained (again) is not the one on disk.
    state = (tflite.state(path, sharding.file_sha256(model), quantization)
             if model.is_file() and not force.training else None)
    if state is tflite.State.COMPLETE:
        return f"{path} holds this model: skipped"
    if state is tflite.State.OTHER:
        return (f"would stop with exit status 2: {path} holds another "
                "model's TFLite export (--force replaces it)")
    return (f"would write the trained model to {path} ({quantization}) "
            f"unless it holds this model")


def _plan_predict(recipe, force):
    images = list(recipe.predict.images) or ["a held-out example"]
    return (f"would predict {', '.join(images)} through the exported "
            f"model")


def _run_stage(stage, recipe, force, echo):
    """Runs one stage and echoes its line; None if it had nothing to do."""
    return _echo(_call_stage(stage, recipe, force), echo)


def _call_stage(stage, recipe, force, stdout_to_stderr=False):
    with (contextlib.redirect_stdout(sys.stderr) if stdout_to_stderr
          else contextlib.nullcontext()):
        return stage(recipe, force)


def _own_line(stage, result):
    """A stage's own result line (``tfcnn.console.Result.line``) without
    its "stage: " prefix: it says more than a summary here could."""
    return result.line.removeprefix(f"{stage}: ")


def _echo(report, echo):
    if report is not None:
        prefix = "skip" if report.skipped else "done"
        echo(f"[{prefix}] {report.stage}: {report.message}")
    return report


def _run_in_child(stages, recipe, force, echo):
    """Runs ``stages`` in one child process, echoing each one's line.

    ``MultiWorkerMirroredStrategy`` configures collective ops only on a
    TensorFlow runtime that has run no op yet ("Collective ops must be
    configured at program startup"). Prepare, ingest and stats run ops,
    so under ``multi_worker`` the chief runs them in a fresh (spawned)
    process and keeps its own runtime for training.
    """
    import multiprocessing
    from concurrent import futures

    # Under --json the command's stdout carries one object: the child's
    # output goes to stderr, as the parent's does.
    to_stderr = sys.stdout is not sys.__stdout__
    context = multiprocessing.get_context("spawn")
    with futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        return [_echo(pool.submit(_call_stage, stage, recipe, force,
                                  to_stderr).result(), echo)
                for stage in stages]


def _run_as_worker(recipe, role, stages, force, echo):
    """A non-chief worker's run: wait for the chief's data, train, stop."""
    train_at = stages.index(_train)
    outputs = [(stage_name, what, check)
               for stage in stages[:train_at]
               for stage_name, what, check in [_chief_output(stage, recipe)]
               if what is not None]
    reports = wait_for_chief(outputs, role, recipe.train.join_timeout, echo)
    report = _call_stage(_train, recipe, force)
    if not report.skipped:
        report.message = (f"trained with the chief ({role.chief}), which "
                          f"saved the model in {recipe.train.model_dir}")
    reports.append(_echo(report, echo))
    names = [stage.__name__.lstrip("_") for stage in stages[train_at + 1:]]
    message = f"the chief ({role.chief}) runs them; {role.task} is done"
    echo(f"[skip] {', '.join(names)}: {message}")
    reports += [StageReport(name, True, message) for name in names]
    return reports


def wait_for_chief(outputs, role, timeout, echo=print, poll_seconds=1.0):
    """Waits until every output the chief writes is complete.

    Args:
        outputs: list of ``(stage, what, is_complete)``: the stage's name,
            a description of its output, and a callable that returns
            whether that output is complete.
        role: ``tfcnn.train.strategy.WorkerRole`` of this worker.
        timeout: seconds to wait in all (``train.join_timeout``).
        echo: callable taking one line. Defaults to print.
        poll_seconds: float, seconds between checks. Defaults to 1.

    Returns:
        list of ``StageReport``, one skipped stage per output.

    Raises:
        DataError: an output was still incomplete after ``timeout``
            seconds (the message names it).
    """
    deadline = time.monotonic() + timeout
    pending = [output for output in outputs if not output[2]()]
    if pending:
        echo(f"[wait] {', '.join(what for _, what, _ in pending)}: up to "
             f"train.join_timeout = {timeout} s for the chief "
             f"({role.chief}) to complete them")
    while pending:
        if time.monotonic() >= deadline:
            raise DataError(
                f"{pending[0][0]}: the chief ({role.chief}) did not "
                f"complete {', '.join(what for _, what, _ in pending)} "
                f"within train.join_timeout = {timeout} s (start the same "
                "`tfcnn run` on the chief, or raise train.join_timeout)")
        time.sleep(poll_seconds)
        pending = [output for output in pending if not output[2]()]
    return [_echo(StageReport(stage, True, f"{what}: complete, written by "
                                           f"the chief ({role.chief})"),
                  echo)
            for stage, what, _ in outputs]


def _stages(recipe):
    source = recipe.data.source
    stages = []
    if source is Source.DIGITS:
        stages.append(_prepare_digits)
    if source is Source.DIGIT_SCENES:
        stages.append(_prepare_digit_scenes)
    if source in (Source.DIGITS, Source.DIGIT_SCENES, Source.FOLDER):
        stages.append(_ingest)
    if source is not Source.SYNTHETIC:
        stages.append(_stats)
    stages += [_train, _evaluate, _export]
    if recipe.export.format is ExportFormat.TFLITE:
        stages.append(_tflite)
    stages.append(_predict)
    return stages


def _prepare_digits(recipe, force):
    return _prepare(recipe)


def _prepare_digit_scenes(recipe, force):
    return _prepare(recipe)


def _prepare(recipe):
    wrote, message = stages_lib.prepare(recipe)
    return StageReport("prepare", not wrote, message)


def _ingest(recipe, force):
    from tfcnn.data import ingest_plan

    out = recipe.data.shard_dir
    stages_lib.check_source_folder(recipe)
    # Shards are renamed into place only when complete, so sizes and record
    # counts suffice here; hashing every shard on each run would not scale.
    overwrite = force.every_stage
    if ingest_plan.is_complete(out, verify_sha256=False) and not overwrite:
        if not stages_lib.shard_differences(recipe):
            return StageReport("ingest", True, f"{out} is complete")
        # Shards of other ingest options: written again under --overwrite
        # (run_recipe refused them without it).
        overwrite = force.training
    manifest = stages_lib.ingest(recipe, overwrite=overwrite)
    return StageReport("ingest", False, _own_line("ingest", manifest))


def _stats(recipe, force):
    from tfcnn.tasks import task as task_lib

    if not task_lib.reads_stats(recipe):
        return None
    data = recipe.data
    where = (f"tfds dataset {data.tfds_name}" if data.source is Source.TFDS
             else str(data.shard_dir))
    if stages_lib.has_stats(recipe) and not force.every_stage:
        return StageReport("stats", True,
                           f"{where} has stats at {data.resize_size}px")
    result = stages_lib.compute_stats(recipe)
    return StageReport("stats", False, _own_line("stats", result))


def _chief_output(stage, recipe):
    """What a stage before training writes, as ``(stage name, what,
    is_complete)``; ``what`` is None when the stage writes nothing. The
    checks are the stages' own skip checks."""
    from tfcnn.data import ingest_plan
    from tfcnn.datasets import digit_scenes
    from tfcnn.datasets import digits
    from tfcnn.tasks import task as task_lib

    data = recipe.data
    path = Path(data.path)
    if stage is _prepare_digits:
        return "prepare", f"the digit images in {path}", functools.partial(
            digits.is_complete, path)
    if stage is _prepare_digit_scenes:
        return "prepare", f"the digit scenes in {path}", functools.partial(
            digit_scenes.is_complete, path)
    if stage is _ingest:
        return "ingest", f"the shards in {data.shard_dir}", functools.partial(
            ingest_plan.is_complete, data.shard_dir, verify_sha256=False)
    if stage is _stats and task_lib.reads_stats(recipe):
        where = (f"tfds dataset {data.tfds_name}"
                 if data.source is Source.TFDS else str(data.shard_dir))
        return ("stats", f"the statistics of {where} at {data.resize_size}px",
                functools.partial(stages_lib.has_stats, recipe))
    return "", None, None


def _train(recipe, force):
    from tfcnn.train import fit

    if fit.is_complete(recipe) and not force.training:
        return StageReport("train", True,
                           f"{recipe.train.model_dir} is trained")
    summary = fit.train(recipe, overwrite=force.training)
    # A worker that is not the chief has no line: its message is its own
    # (``_run_as_worker``).
    return StageReport("train", bool(summary.get("skipped")),
                       _own_line("train", summary), summary)


def _evaluate(recipe, force):
    from tfcnn.train import evaluate

    folder = RunFolder(recipe.train.model_dir)
    # A model trained from another recipe answers for that recipe.
    folder.check_recipe(recipe)
    metrics = evaluate.evaluate(recipe, verbose=False)
    path = folder.metrics
    atomic_files.write_json_atomic(path, metrics)
    return StageReport("evaluate", False,
                       f"{evaluate.format_metrics(metrics)} (saved {path})",
                       metrics)


def _export(recipe, force):

    folder = RunFolder(recipe.train.model_dir)
    folder.check_recipe(recipe)
    record_path = folder.export_record
    digest = sharding.file_sha256(folder.model)
    if record_path.is_file() and not force.every_stage:
        path = _recorded_export(recipe, json.loads(record_path.read_text()),
                                digest)
        if path is not None:
            return StageReport("export", True, f"{path} holds this model",
                               path)
    path = stages_lib.export(recipe, folder.path)
    # The export as the recipe names it (export.export_dir is relative to
    # the folder the recipe runs in), so a moved or copied project never
    # points at another project's SavedModel.
    record = {"model_sha256": digest,
              "export_dir": str(recipe.export.export_dir),
              "name": recipe.export.name, "version": int(path.name),
              "top_k": recipe.export.top_k}
    atomic_files.write_json_atomic(record_path, record)
    return StageReport("export", False, f"published SavedModel {path}",
                       path)


def _tflite(recipe, force):
    """Writes the recipe's ``.tflite`` beside the SavedModel; skipped when
    the file holds this model (``tfcnn.export.tflite.state``), finished
    when a conversion of this model was interrupted. A file of another
    model is replaced only under ``--force`` or ``--overwrite`` (the model
    was retrained in place); otherwise the stage stops, naming it."""
    from tfcnn.export import tflite

    folder = RunFolder(recipe.train.model_dir)
    folder.check_recipe(recipe)
    path = stages_lib.tflite_file(recipe)
    quantization = recipe.export.quantization.value
    state = tflite.state(path, sharding.file_sha256(folder.model),
                         quantization)
    if state is tflite.State.COMPLETE and not force.every_stage:
        return StageReport("tflite", True, f"{path} holds this model", path)
    if state is tflite.State.OTHER and not force.training:
        raise DataError(
            f"tflite: {path} holds another model's TFLite export; move it "
            "away, or replace it with `tfcnn run RECIPE --force`. "
            f"Received: export.export_dir={recipe.export.export_dir!r}, "
            f"export.name={recipe.export.name!r}")
    path = stages_lib.export_tflite(recipe, folder.path, replace=True)
    return StageReport(
        "tflite", False, f"wrote TFLite model {path} ({quantization}, "
        f"{path.stat().st_size:,} bytes)", path)


def _recorded_export(recipe, record, digest):
    """The recorded export's folder if it is this model exported as the
    recipe asks (same model, export_dir, name, top-k and version), else
    None."""
    config = recipe.export
    if "dir" in record:  # written before export.dir became export_dir
        record.setdefault("export_dir", record.pop("dir"))
    wanted = {"model_sha256": digest, "export_dir": str(config.export_dir),
              "name": config.name, "top_k": config.top_k}
    if any(record.get(key) != value for key, value in wanted.items()):
        return None
    version = record.get("version")
    if not isinstance(version, int) or config.version not in (0, version):
        return None
    path = Path(config.export_dir) / config.name / str(version)
    return path if (path / "saved_model.pb").is_file() else None


def _export_path(recipe):
    record = json.loads(
        RunFolder(recipe.train.model_dir).export_record.read_text())
    return Path(recipe.export.export_dir) / recipe.export.name / str(
        record["version"])


def _predict(recipe, force):
    from tfcnn.serve import predict

    export_path = str(_export_path(recipe))
    images = list(recipe.predict.images)
    truth = None
    if not images:
        image, truth = _held_out_image(recipe)
        if image is None:
            return None
        images = [image]
    # Segmentation class maps: a new folder in the run folder each time.
    result = predict.predict(
        export_path, images, top_k=recipe.export.top_k,
        output_dir=predict.new_folder(
            RunFolder(recipe.train.model_dir).path / predict.DEFAULT_OUTPUT))
    lines = predict.format_predictions(result)
    if truth is not None:
        lines += f"\n  (true class of the held-out image: {truth})"
    return StageReport("predict", False,
                       f"through {export_path}:\n{lines}", result)


def _held_out_image(recipe):
    """Writes one example of the evaluation split to a file for predict."""
    import tensorflow as tf

    from tfcnn.data import features

    if recipe.data.source not in (Source.DIGITS, Source.DIGIT_SCENES,
                                  Source.FOLDER, Source.TFRECORD):
        return None, None
    manifest = stages_lib.describe(recipe)
    split = recipe.data.eval_split
    if not manifest.has_split(split):
        split = "validation"
    files = manifest.files(split)
    record = next(iter(tf.data.TFRecordDataset(files[:1]).take(1)))
    # The image keys both schemas share; segmentation records carry a mask
    # instead of a label (-1 here), and their truth is no one class.
    spec = {key: features.FEATURE_SPEC[key] for key in (
        features.IMAGE_ENCODED, features.IMAGE_FORMAT,
        features.IMAGE_HEIGHT, features.IMAGE_WIDTH)}
    spec[features.LABEL] = tf.io.FixedLenFeature([], tf.int64, -1)
    example = tf.io.parse_single_example(record, spec)
    fmt = example[features.IMAGE_FORMAT].numpy().decode() or "jpeg"
    encoded = example[features.IMAGE_ENCODED]
    if fmt == features.IMAGE_FORMAT_RAW:
        # Serving takes encoded images: a lossless PNG of the raw pixels
        # decodes to exactly what training read.
        from tfcnn.data import preprocess

        fmt, encoded = "png", tf.io.encode_png(preprocess.decode_raw(
            encoded, example[features.IMAGE_HEIGHT],
            example[features.IMAGE_WIDTH]))
    suffix = {"jpeg": ".jpg", "jpg": ".jpg"}.get(fmt.lower(), f".{fmt}")
    path = RunFolder(recipe.train.model_dir).held_out(suffix)
    atomic_files.write_bytes_atomic(path, encoded.numpy())
    stored = int(example[features.LABEL].numpy())
    if stored < 0:
        return str(path), None
    return str(path), manifest.class_names[stored + recipe.data.label_offset]


# What each stage's plan line says (``plan``).
_PLANS = {_prepare_digits: _plan_prepare,
          _prepare_digit_scenes: _plan_prepare,
          _ingest: _plan_ingest,
          _stats: _plan_stats,
          _train: _plan_train,
          _evaluate: _plan_evaluate,
          _export: _plan_export,
          _tflite: _plan_tflite,
          _predict: _plan_predict}
