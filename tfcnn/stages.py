"""A recipe's stages as library calls: the one map from recipe keys to the
arguments of prepare, ingest, stats, export and predict.

``tfcnn.cli`` (one stage per command, options overriding the recipe) and
``tfcnn.run`` (every stage in order, each skipped when done) both call
these, so a recipe key reaches its stage the same way from either.
``check_paths`` looks for the folders a stage reads before TensorFlow is
imported (importing it takes seconds; a typo should not).
"""

from pathlib import Path

from tfcnn import storage
from tfcnn.errors import DataError
from tfcnn.recipe import Source

# Sources whose images tfcnn writes itself (``prepare``).
GENERATED = (Source.DIGITS, Source.DIGIT_SCENES)
# The data keys that reach ingest and change the shards' content; ingest
# records them in the manifest's "options" (``shard_differences``).
INGEST_KEYS = ("validation_split", "num_shards", "seed", "raw_masks")


def is_prepared(recipe):
    """Whether the generated images of the recipe are complete (True for
    sources that are not generated)."""
    module = _generator(recipe.data.source)
    return module is None or module.is_complete(Path(recipe.data.path))


def prepare(recipe):
    """Writes the images of a recipe whose data is generated (the
    scikit-learn digits, or digit scenes with masks) to ``data.path``.

    A complete folder is checked and left as it is.

    Args:
        recipe: ``tfcnn.recipe.Recipe``.

    Returns:
        ``(wrote, message)``: bool, whether images were written, and one
        line saying what is there.

    Raises:
        DataError: the recipe's data is not generated (the message names
            data.source).
    """
    data = recipe.data
    path = Path(data.path)
    if data.source is Source.DIGITS:
        from tfcnn.datasets import digits

        subset = dict(classes=data.digits, per_class=data.digits_per_class)
        complete = digits.is_complete(path)
        # On a complete folder this checks the subset and writes nothing.
        summary = digits.write_digits(path, seed=data.seed, **subset)
        if complete:
            return False, f"{path} is complete"
        return True, (f"wrote {summary['train']} train and "
                      f"{summary['test']} test PNGs of the scikit-learn "
                      f"digits to {path}")
    if data.source is Source.DIGIT_SCENES:
        from tfcnn.datasets import digit_scenes

        if digit_scenes.is_complete(path):
            return False, f"{path} is complete"
        summary = digit_scenes.write_digit_scenes(path, seed=data.seed)
        return True, (f"wrote {summary['train']} train and "
                      f"{summary['test']} test scenes of scikit-learn "
                      f"digits with their masks to {path}")
    raise DataError(
        f"tfcnn prepare writes generated data (data.source = \"digits\" "
        f"or \"digit_scenes\"); this recipe reads its images from "
        f"data.path. Received: data.source={data.source.value!r}")


def ingest(recipe, **options):
    """``tfcnn.tasks.ingest`` of ``data.path`` into the shard folder,
    with the recipe's split, shard count, seed and mask storage.

    Args:
        recipe: ``tfcnn.recipe.Recipe``.
        **options: more ``ingest`` arguments; ``validation_split``,
            ``num_shards``, ``seed`` and ``raw_masks`` given here (not
            None) override the recipe's.

    Returns:
        the manifest dict ``ingest`` returns.

    Raises:
        DataError: as ``tfcnn.tasks.ingest``; without ``overwrite``,
            complete shards of other ingest options (``check_shards``).
    """
    from tfcnn import tasks

    data = recipe.data
    check_source_folder(recipe)
    arguments = _ingest_arguments(recipe, options)
    if not arguments.get("overwrite"):
        check_shards(recipe, **options)
    return tasks.ingest(data.path, data.shard_dir, **arguments)


def shard_differences(recipe, **options):
    """The recipe keys on which the complete shards in ``data.shards``
    were ingested otherwise than ``ingest(recipe, **options)`` would write
    them (their manifest's ``options``).

    Only the keys that reach ingest and change the shards' content
    (``INGEST_KEYS``) are compared; shards without those options (another
    tool's, ``data.source = "tfrecord"``) and incomplete ones (ingest
    rewrites them anyway) have none.

    Args:
        recipe: ``tfcnn.recipe.Recipe``.
        **options: as for ``ingest``.

    Returns:
        list of ``(recipe key, the shards' value, the recipe's value)``.
    """
    data = recipe.data
    if data.source not in (*GENERATED, Source.FOLDER):
        return []
    from tfcnn.data import ingest_plan
    from tfcnn.data import manifest as manifest_lib

    if not ingest_plan.is_complete(data.shard_dir, verify_sha256=False):
        return []
    written = manifest_lib.Manifest.load(data.shard_dir).to_dict().get(
        "options")
    if not isinstance(written, dict):
        return []
    # Ingest records raw_masks only when set (its fingerprint).
    written = {"raw_masks": False, **written}
    wanted = _ingest_arguments(recipe, options)
    return [(f"data.{name}", written[name], wanted[name])
            for name in INGEST_KEYS
            if name in written and written[name] != wanted[name]]


def check_shards(recipe, *, again=None, **options):
    """Raises ``DataError`` when the complete shards in ``data.shards``
    were ingested with other options than the recipe asks for
    (``shard_differences``): the line names each differing key with both
    values, and the ways on: re-ingest (``again``, the way to ask for it;
    None: this command's ``--overwrite``), or another ``data.shards``."""
    from tfcnn import console

    again = again or console.option_text("overwrite")
    changes = shard_differences(recipe, **options)
    if not changes:
        return
    data = recipe.data
    key = "data.shards" if data.shards else "data.path"
    shown = console.differences_text(changes, "in the shards",
                                     "in the recipe")
    raise DataError(
        f"the shards in {data.shard_dir} were ingested with other options "
        f"({shown}); ingest them again with {again}, or choose another "
        f"data.shards. Received: {key}="
        f"{str(data.shards or data.path)!r}")


def _ingest_arguments(recipe, options):
    """``tfcnn.tasks.ingest``'s arguments: the recipe's ``INGEST_KEYS``,
    overridden by ``options`` given (not None)."""
    data = recipe.data
    arguments = {name: getattr(data, name) for name in INGEST_KEYS}
    arguments.update({k: v for k, v in options.items() if v is not None})
    return arguments


def check_source_folder(recipe):
    """Raises ``DataError`` when ``data.path`` is no folder; for generated
    data the message names ``tfcnn prepare``."""
    data = recipe.data
    path = Path(data.path)
    if path.is_dir():
        return
    if data.source in GENERATED:
        raise DataError(
            f"data.path: {path} does not exist yet: this recipe's images "
            f"are generated (data.source = \"{data.source.value}\"); write "
            "them with `tfcnn prepare RECIPE` (or run every stage with "
            f"`tfcnn run RECIPE`). Received: data.path={data.path!r}")
    raise DataError(f"data.path: image folder not found: {path}. "
                    f"Received: data.path={data.path!r}")


def compute_stats(recipe, *, resize_size=None, split="train",
                  label_offset=None, progress=True):
    """Mean image and RGB PCA of the recipe's training data, saved beside
    it (the shard folder, or tfds' cache for a tfds dataset).

    Args:
        recipe: ``tfcnn.recipe.Recipe``.
        resize_size: int or None; None: ``data.resize_size``.
        split: str, the split of a shard folder to describe. Defaults to
            "train" (a tfds dataset: ``data.tfds_train_split``).
        label_offset: int or None; None: ``data.label_offset``.
        progress: bool, show a progress bar. Defaults to True.

    Returns:
        ``tfcnn.data.stats.DatasetStats``, with its result ``line``.
    """
    from tfcnn.data import stats

    data = recipe.data
    size = data.resize_size if resize_size is None else resize_size
    if data.source is Source.TFDS:
        task = _tfds_task(recipe)
        return stats.compute_tfds_stats(
            _tfds_source(recipe),
            task.read_tfds(data, data.tfds_train_split),
            split=data.tfds_train_split, resize_size=size, progress=progress)
    offset = data.label_offset if label_offset is None else label_offset
    return stats.compute_stats(describe(recipe, label_offset=offset),
                               resize_size=size, split=split,
                               progress=progress)


def has_stats(recipe):
    """Whether the statistics the recipe's augmentation reads exist."""
    from tfcnn.data import stats

    data = recipe.data
    if data.source is Source.TFDS:
        return stats.load_tfds_stats(
            _tfds_source(recipe), required=False,
            split=data.tfds_train_split,
            resize_size=data.resize_size) is not None
    existing = stats.load_stats(data.shard_dir, required=False)
    return existing is not None and existing.resize_size == data.resize_size


def _tfds_task(recipe):
    """The task whose labels the recipe's tfds dataset holds."""
    from tfcnn import tasks

    return tasks.task_of_tfds(recipe.data)


def _tfds_source(recipe):
    """The recipe's tfds dataset as its task describes it; statistics
    need no class names, so none are looked for."""
    return _tfds_task(recipe).describe_tfds(recipe.data, class_names=())


def describe(recipe, label_offset=None):
    """The shard folder's manifest; shards from other tools have none, so
    they are described from their files (their labels may be 1-based)."""
    from tfcnn.data import manifest as manifest_lib

    data = recipe.data
    return manifest_lib.describe(
        data.shard_dir,
        label_offset=(data.label_offset if label_offset is None
                      else label_offset),
        labels_file=data.labels_file or None)


def export(recipe, model=None, **options):
    """``tfcnn.export.export_model`` of the run folder with the recipe's
    export section; where Keras runs on another backend than TensorFlow
    (``train.backend = "jax"``), in a fresh TensorFlow process.

    Args:
        recipe: ``tfcnn.recipe.Recipe``.
        model: the model to export (a run folder or ``.keras`` file), or
            None: ``train.model_dir``.
        **options: ``export_dir``, ``name``, ``version``, ``top_k``; given
            (not None) they override the recipe's.

    Returns:
        Path of the published version folder.
    """
    from tfcnn.train import backend

    if not backend.is_tensorflow():  # a run trained under JAX
        return backend.in_tensorflow_process(export, recipe, model,
                                             **options)
    from tfcnn import export as export_lib

    config = recipe.export
    arguments = dict(export_dir=config.export_dir, name=config.name,
                     version=config.version, top_k=config.top_k)
    arguments.update({k: v for k, v in options.items() if v is not None})
    return export_lib.export_model(
        recipe.train.model_dir if model is None else model, **arguments)


def export_tflite(recipe, model=None, *, replace=False):
    """``tfcnn.export.tflite.export_run`` of the run folder with the
    recipe's export section: ``tflite_file(recipe)``, "int8" calibrated on
    the training split.

    Args:
        recipe: ``tfcnn.recipe.Recipe``.
        model: the model to convert (a run folder or ``.keras`` file), or
            None: ``train.model_dir``.
        replace: bool, replace an existing file. Defaults to False.

    Returns:
        Path of the ``.tflite`` file.
    """
    from tfcnn.export import tflite

    config = recipe.export
    return tflite.export_run(
        recipe.train.model_dir if model is None else model,
        export_dir=config.export_dir, name=config.name,
        quantization=config.quantization.value, recipe=recipe,
        replace=replace)


def tflite_file(recipe):
    """The ``.tflite`` a recipe exports to (``export.format = "tflite"``):
    ``<export_dir>/<name>.tflite``, or ``<name>_<quantization>.tflite``."""
    from tfcnn.export import tflite

    config = recipe.export
    return tflite.file_path(config.export_dir, config.name,
                            config.quantization.value)


def exported_model(recipe):
    """The model folder a recipe exports to (its newest version serves)."""
    return Path(recipe.export.export_dir) / recipe.export.name


def check_paths(recipe, stage):
    """Raises ``DataError`` when a folder that ``stage`` reads is missing.

    Free of TensorFlow: call it before the stage imports it.

    Args:
        recipe: ``tfcnn.recipe.Recipe``.
        stage: str, "ingest", "stats", "train", "evaluate" or "export".
    """
    data = recipe.data
    if stage == "ingest":
        check_source_folder(recipe)
        return
    reads_shards = data.source in (*GENERATED, Source.FOLDER,
                                   Source.TFRECORD)
    # A URL is checked where it is read (asking needs TensorFlow's gfile).
    if stage in ("stats", "train", "evaluate") and reads_shards \
            and not storage.is_url(data.shard_dir) \
            and not Path(data.shard_dir).is_dir():
        hint = ("`tfcnn prepare RECIPE` then `tfcnn ingest RECIPE`"
                if data.source in GENERATED else "`tfcnn ingest RECIPE`")
        key = "data.shards" if data.shards else "data.path"
        raise DataError(
            f"{key}: shard folder not found: {data.shard_dir} (write it "
            f"with {hint}, or run every stage with `tfcnn run RECIPE`). "
            f"Received: {key}={data.shards or data.path!r}")
    if stage in ("evaluate", "export"):
        from tfcnn.run_folder import RunFolder

        folder = RunFolder(recipe.train.model_dir)
        if not folder.model.is_file():
            raise DataError(
                f"no trained model at {folder.model}: run `tfcnn train` "
                f"first. Received: train.model_dir="
                f"{recipe.train.model_dir!r}")


def _generator(source):
    if source is Source.DIGITS:
        from tfcnn.datasets import digits

        return digits
    if source is Source.DIGIT_SCENES:
        from tfcnn.datasets import digit_scenes

        return digit_scenes
    return None
