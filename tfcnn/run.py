"""``tfcnn run``: a recipe's stages in order, each skipped when already done.

Stages: prepare (the embedded digits and digit scenes only) -> ingest ->
stats -> train -> evaluate -> export -> predict. Each stage prints one line
naming what it wrote (for ingest, stats and train their own result line,
taken over by ``tfcnn.console.capture_results``, so it is printed once). A
stage is skipped when its output exists and is complete, so running the
same command again after a crash or a kill picks up where it stopped
(training itself resumes mid-run from its backup).
"""

import dataclasses
import json
from pathlib import Path

from tfcnn import atomic_files
from tfcnn import console
from tfcnn.data import sharding
from tfcnn.errors import DataError
from tfcnn.recipe import MeanMode
from tfcnn.recipe import Source

_EXPORT_RECORD = "export.json"
# Mean modes that need no statistics of the dataset.
_FIXED_MEANS = (MeanMode.NONE, MeanMode.IMAGENET, MeanMode.CAFFE,
                MeanMode.TORCH, MeanMode.TF)


@dataclasses.dataclass
class StageReport:
    """What one stage did: ran or skipped, and a line for the user."""

    stage: str
    skipped: bool
    message: str
    result: object = None


def run_recipe(recipe, *, force=False, echo=print):
    """Runs every stage of ``recipe`` and returns their reports.

    Args:
        recipe: a ``tfcnn.recipe.Recipe``.
        force: bool, run stages even when their output is complete.
        echo: callable taking one line per stage. Defaults to print.

    Returns:
        list of ``StageReport``.
    """
    reports = []
    for stage in _stages(recipe):
        with console.capture_results() as lines:
            report = stage(recipe, force)
        if report is None:
            continue
        if lines:
            # The stage's own result line says more than the summary here.
            report.message = "\n".join(
                line.removeprefix(f"{report.stage}: ") for line in lines)
        prefix = "skip" if report.skipped else "done"
        echo(f"[{prefix}] {report.stage}: {report.message}")
        reports.append(report)
    return reports


def _stages(recipe):
    source = recipe.data.source
    stages = []
    if source is Source.DIGITS:
        stages.append(_prepare_digits)
    if source is Source.DIGIT_SCENES:
        stages.append(_prepare_digit_scenes)
    if source in (Source.DIGITS, Source.DIGIT_SCENES, Source.FOLDER):
        stages.append(_ingest)
    if source in (Source.DIGITS, Source.DIGIT_SCENES, Source.FOLDER,
                  Source.TFRECORD) or (source is Source.TFDS
                                       and not recipe.data.tfds_mask_key):
        stages.append(_stats)
    stages += [_train, _evaluate, _export, _predict]
    return stages


def _prepare_digits(recipe, force):
    from tfcnn.datasets import digits

    path = Path(recipe.data.path)
    subset = dict(classes=recipe.data.digits,
                  per_class=recipe.data.digits_per_class)
    if digits.is_complete(path) and not force:
        digits.write_digits(path, seed=recipe.data.seed, **subset)  # checks
        return StageReport("prepare", True, f"{path} is complete")
    summary = digits.write_digits(path, seed=recipe.data.seed, **subset)
    return StageReport(
        "prepare", False,
        f"wrote {summary['train']} train and {summary['test']} test PNGs "
        f"of the scikit-learn digits to {path}")


def _prepare_digit_scenes(recipe, force):
    from tfcnn.datasets import digit_scenes

    path = Path(recipe.data.path)
    if digit_scenes.is_complete(path) and not force:
        return StageReport("prepare", True, f"{path} is complete")
    summary = digit_scenes.write_digit_scenes(path, seed=recipe.data.seed)
    return StageReport(
        "prepare", False,
        f"wrote {summary['train']} train and {summary['test']} test scenes "
        f"of scikit-learn digits with their masks to {path}")


def _ingest(recipe, force):
    from tfcnn.data import ingest

    src, out = Path(recipe.data.path), recipe.data.shard_dir
    if not src.is_dir():
        raise DataError(f"data.path: image folder not found: {src}")
    # Shards are renamed into place only when complete, so sizes and record
    # counts suffice here; hashing every shard on each run would not scale.
    if ingest.is_complete(out, verify_sha256=False) and not force:
        return StageReport("ingest", True, f"{out} is complete")
    ingest.ingest(
        src, out, validation_split=recipe.data.validation_split,
        num_shards=recipe.data.num_shards, seed=recipe.data.seed,
        overwrite=force)
    return StageReport("ingest", False, f"shards and manifest.json in {out}")


def _stats(recipe, force):
    from tfcnn.data import stats

    if (recipe.augment.mean in _FIXED_MEANS
            and recipe.augment.pca_lighting == 0):
        return None
    if recipe.data.source is Source.TFDS:
        return _tfds_stats(recipe, force)
    data_dir = recipe.data.shard_dir
    existing = stats.load_stats(data_dir, required=False)
    if (existing is not None and existing.resize_size == recipe.data.resize_size
            and not force):
        return StageReport("stats", True,
                           f"{data_dir} has stats at {existing.resize_size}px")
    result = stats.compute_stats(_describe(recipe),
                                 resize_size=recipe.data.resize_size)
    return StageReport(
        "stats", False,
        f"mean image and RGB PCA of {result.num_images} training images "
        f"saved in {data_dir}")


def _tfds_stats(recipe, force):
    from tfcnn.data import stats

    data = recipe.data
    where = dict(split=data.tfds_train_split,
                 data_dir=data.tfds_data_dir or None,
                 resize_size=data.resize_size)
    if not force and stats.load_tfds_stats(data.tfds_name, required=False,
                                           **where) is not None:
        return StageReport("stats", True,
                           f"tfds dataset {data.tfds_name} has stats at "
                           f"{data.resize_size}px")
    result = stats.compute_tfds_stats(data.tfds_name, **where)
    return StageReport(
        "stats", False,
        f"mean image and RGB PCA of {result.num_images} training images of "
        f"tfds dataset {data.tfds_name} saved")


def _train(recipe, force):
    from tfcnn.train import fit

    if fit.is_complete(recipe) and not force:
        return StageReport("train", True,
                           f"{recipe.train.model_dir} is trained")
    summary = fit.train(recipe, overwrite=force)
    if summary.get("skipped"):
        return StageReport("train", True,
                           f"{recipe.train.model_dir} holds a finished run "
                           f"of {summary.get('epochs_completed')} epochs",
                           summary)
    return StageReport("train", False,
                       f"trained model saved in {recipe.train.model_dir}",
                       summary)


def _evaluate(recipe, force):
    from tfcnn.train import evaluate

    metrics = evaluate.evaluate(recipe, verbose=False)
    path = Path(recipe.train.model_dir) / "metrics.json"
    atomic_files.write_json_atomic(path, metrics)
    return StageReport("evaluate", False,
                       f"{evaluate.format_metrics(metrics)} (saved {path})",
                       metrics)


def _export(recipe, force):
    from tfcnn import export

    model_dir = Path(recipe.train.model_dir)
    record_path = model_dir / _EXPORT_RECORD
    digest = sharding.file_sha256(model_dir / "model.keras")
    if record_path.is_file() and not force:
        path = _recorded_export(recipe, json.loads(record_path.read_text()),
                                digest)
        if path is not None:
            return StageReport("export", True, f"{path} holds this model",
                               path)
    path = export.export_model(
        model_dir, export_dir=recipe.export.export_dir,
        name=recipe.export.name, version=recipe.export.version,
        top_k=recipe.export.top_k)
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
        (Path(recipe.train.model_dir) / _EXPORT_RECORD).read_text())
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
    result = predict.predict(export_path, images, top_k=recipe.export.top_k)
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
    manifest = _describe(recipe)
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
    path = Path(recipe.train.model_dir) / f"held_out_example{suffix}"
    atomic_files.write_bytes_atomic(path, encoded.numpy())
    stored = int(example[features.LABEL].numpy())
    if stored < 0:
        return str(path), None
    return str(path), manifest.class_names[stored + recipe.data.label_offset]


def _describe(recipe):
    """The shard folder's manifest; shards from other tools have none, so
    they are described from their files (their labels may be 1-based)."""
    from tfcnn.data import manifest as manifest_lib

    return manifest_lib.describe(
        recipe.data.shard_dir, label_offset=recipe.data.label_offset,
        labels_file=recipe.data.labels_file or None)
