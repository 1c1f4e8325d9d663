"""The ``tfcnn`` command: parses arguments and calls the library.

Each subcommand is a pair: ``_add_<name>(subparsers)`` declares its
arguments, ``_<name>(args)`` calls the library. Bad input (a ``TfcnnError``,
a missing file) ends with one line on stderr and exit status 2.
"""

import argparse
import contextlib
import errno
import json
import os
import pathlib
import sys

from tfcnn import console
from tfcnn import storage


def main(argv=None):
    """Entry point of the ``tfcnn`` console script."""
    parser = _parser()
    args = parser.parse_args(argv)
    # TensorFlow's start-up notices are shown when asked for: --verbose, or
    # a TF_CPP_MIN_LOG_LEVEL of the user's own.
    quiet = not args.verbose and "TF_CPP_MIN_LOG_LEVEL" not in os.environ
    _configure_runtime(quiet)
    with (console.quiet_native_logs() if quiet
          else contextlib.nullcontext()), console.command_flags():
        return _call(args)


def _call(args):
    from tfcnn.errors import TfcnnError

    try:
        if not getattr(args, "json", False):
            return args.handler(args) or 0
        # stdout carries the one JSON object; progress and Keras' lines go
        # to stderr.
        args.json_stream = sys.stdout
        with contextlib.redirect_stdout(sys.stderr):
            return args.handler(args) or 0
    except (TfcnnError, FileNotFoundError, NotADirectoryError) as error:
        print(f"tfcnn {args.command}: error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # Output piped into `head` and closed early: not an error.
        sys.stdout = open(os.devnull, "w")
        return 0
    except OSError as error:
        if error.errno not in _USER_ERRNOS:
            raise
        print(f"tfcnn {args.command}: error: {_os_error_line(error)}",
              file=sys.stderr)
        return 2
    except Exception as error:  # noqa: BLE001 - re-raised unless TF's
        line = _tensorflow_error_line(error)
        if line is None:
            raise
        print(f"tfcnn {args.command}: error: {line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"tfcnn {args.command}: interrupted", file=sys.stderr)
        return 130


# Failures of the file system that the user fixes (permissions, a
# read-only mount, a full disk), not bugs: one line, exit 2.
_USER_ERRNOS = frozenset(
    getattr(errno, name) for name in (
        "EACCES", "EPERM", "EROFS", "ENOSPC", "EDQUOT", "EISDIR",
        "ENOTDIR", "ENAMETOOLONG", "ELOOP", "EFBIG", "EMFILE")
    if hasattr(errno, name))


def _os_error_line(error):
    where = error.filename
    if error.filename2:
        where = f"{where} -> {error.filename2}"
    return f"{error.strerror}: {where}" if where else str(error)


def _tensorflow_error_line(error):
    """One line for TensorFlow's file-system errors (its own writers raise
    these instead of ``OSError``), or None for anything else."""
    tf = sys.modules.get("tensorflow")
    if tf is None:
        return None
    user_errors = (tf.errors.PermissionDeniedError,
                   tf.errors.ResourceExhaustedError)
    if not isinstance(error, user_errors):
        return None
    message = error.message.strip().splitlines()[0] if error.message else ""
    if isinstance(error, tf.errors.ResourceExhaustedError) and not any(
            word in message.lower() for word in ("space", "quota")):
        return None  # out of accelerator memory: keeps its traceback
    return message


def _configure_runtime(quiet):
    # Must happen before TensorFlow is imported: oneDNN is off by default on
    # AMD CPUs and made AlexNet CPU training 1.2-1.6x faster here.
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    if quiet:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"


def _parser():
    parser = argparse.ArgumentParser(
        prog="tfcnn", formatter_class=_HelpFormatter,
        description="Train convolutional networks from image folders to "
                    "served SavedModels.")
    parser.add_argument("--version", action="version",
                        version=f"%(prog)s {_version()}")
    parser.add_argument("--verbose", action="store_true",
                        help="show TensorFlow's own start-up and runtime "
                             "log lines")
    subparsers = parser.add_subparsers(dest="command", required=True,
                                       metavar="COMMAND")
    add_parser = subparsers.add_parser
    subparsers.add_parser = lambda *a, **k: add_parser(
        *a, formatter_class=_HelpFormatter, **k)
    for add in (_add_prepare, _add_ingest, _add_stats, _add_preview, _add_train,
                _add_evaluate, _add_export, _add_predict, _add_serve,
                _add_run, _add_compare, _add_recipes, _add_recipe,
                _add_keys, _add_models):
        add(subparsers)
    return parser


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows every option's default, and no "(default: None)"."""

    def _get_help_string(self, action):
        if (action.default is None or action.default is argparse.SUPPRESS
                or action.nargs == 0 or action.default == []):
            return action.help
        return super()._get_help_string(action)


def _version():
    from importlib import metadata

    try:
        return metadata.version("tfcnn")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def _add_recipe_arguments(parser):
    parser.add_argument(
        "recipe", help="recipe TOML file, or the name of a packaged recipe "
                       "(`tfcnn recipes` lists them)")
    _add_overrides(parser)


def _add_overrides(parser):
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a recipe key; repeatable. The value is read as TOML "
             "(a bare word is a string).")


def _load_recipe(args):
    """The recipe ``args.recipe`` names: a TOML file, a packaged recipe's
    name, or a run folder (the recipe.toml it was trained with)."""
    from tfcnn import recipe
    from tfcnn.run_folder import RunFolder

    if pathlib.Path(args.recipe).is_dir():
        return RunFolder(args.recipe).load_recipe(args.overrides)
    return recipe.load_recipe(args.recipe, args.overrides)


def _print_json(args, obj):
    print(json.dumps(obj, indent=None, sort_keys=False, default=_plain),
          file=args.json_stream, flush=True)


def _plain(value):
    """JSON for numpy values and paths in results."""
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def _add_json(parser):
    parser.add_argument("--json", action="store_true",
                        help="print exactly one JSON object on stdout "
                             "(everything else goes to stderr)")


def _recipe_or_none(text, overrides):
    """The recipe ``text`` names (a .toml file, a run folder with its
    recipe.toml, or a packaged recipe name), or None when it is another
    path (a shard folder, a SavedModel, a .keras or .tflite file)."""
    from tfcnn import recipe
    from tfcnn.run_folder import RunFolder

    if storage.is_url(text):  # a run folder on object storage
        folder = RunFolder(text)
        return (folder.load_recipe(overrides) if folder.recipe.is_file()
                else None)
    path = pathlib.Path(text)
    if path.is_dir() and RunFolder(path).recipe.is_file():
        return RunFolder(path).load_recipe(overrides)
    if path.is_dir() or path.suffix in (".keras", ".tflite"):
        return None
    if (path.suffix == ".toml" or path.is_file()
            or text in recipe.packaged_recipes()):
        return recipe.load_recipe(text, overrides)
    return None


# prepare --------------------------------------------------------------------

def _add_prepare(subparsers):
    p = subparsers.add_parser(
        "prepare", help="write a recipe's generated images (the digits)",
        description="Write the images of a recipe whose data tfcnn "
                    "generates (data.source = \"digits\" or "
                    "\"digit_scenes\": scikit-learn's digits) to its "
                    "data.path, ready for `tfcnn ingest RECIPE`. A "
                    "complete folder is left as it is.")
    _add_recipe_arguments(p)
    p.set_defaults(handler=_prepare)


def _prepare(args):
    from tfcnn import stages

    _, message = stages.prepare(_load_recipe(args))
    print(f"prepare: {message}")


# ingest ---------------------------------------------------------------------

def _add_ingest(subparsers):
    p = subparsers.add_parser(
        "ingest", help="image folders -> sharded TFRecords",
        description="Write class folders of images (or train/, validation/, "
                    "test/ folders of class folders) as TFRecord shards in "
                    "the ImageNet schema, or image/mask pairs (Pascal VOC's "
                    "JPEGImages/ and SegmentationClass/, or images/ and "
                    "masks/ folders) in TF Model Garden's segmentation "
                    "schema, with manifest.json.")
    p.add_argument("src", help="folder of class folders or of image/mask "
                               "pairs, or a recipe (its data.path, "
                               "data.shards, ...)")
    p.add_argument("out", nargs="?", default=None,
                   help="output folder for shards and manifest.json "
                        "(with a recipe: data.shards)")
    _add_overrides(p)
    p.add_argument("--validation-split", type=float, default=None,
                   help="stratified fraction of train held out when SRC has "
                        "no validation folder (default: the recipe's "
                        "data.validation_split, else 0.1)")
    # data.shards is the shard folder; the count is data.num_shards.
    p.add_argument("--num-shards", type=int, default=None,
                   help="shards per split; 0: one per ~128 MB (default: "
                        "the recipe's data.num_shards, else 0)")
    p.add_argument("--seed", type=int, default=None,
                   help="seeds the validation split and shard assignment "
                        "(default: the recipe's data.seed, else 0)")
    p.add_argument("--max-pixels", type=int, default=89_478_485,
                   help="skip images with more pixels (decompression bombs)")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--max-side", type=int, default=0, metavar="N",
                      help="compact shards: store images whose longer side "
                           "exceeds N downscaled to N (Lanczos), as JPEG")
    size.add_argument("--shorter-side", type=int, default=0, metavar="N",
                      help="compact shards: store images whose shorter side "
                           "exceeds N downscaled to N (256 for a 256 "
                           "pipeline), as JPEG")
    p.add_argument("--jpeg-quality", type=int, default=90,
                   help="JPEG quality of downscaled images")
    p.add_argument("--raw", action="store_true",
                   help="store 8-bit RGB pixels instead of encoded images "
                        "(small images, e.g. 32x32: reading beats decoding)")
    p.add_argument("--lossless", action="store_true",
                   help="store images that are not RGB or grey JPEGs as "
                        "PNG (exact pixels) instead of JPEG at quality 95")
    p.add_argument("--raw-masks", action="store_true", default=None,
                   help="segmentation: store masks as raw bytes instead of "
                        "PNG (faster to read; Model Garden reads only PNG); "
                        "default: the recipe's data.raw_masks")
    p.add_argument("--workers", type=int, default=0,
                   help="parallel workers; 0: all cores")
    p.add_argument("--overwrite", action="store_true",
                   help="rewrite a complete output")
    _add_json(p)
    p.set_defaults(handler=_ingest)


def _ingest(args):
    from tfcnn import stages
    from tfcnn.recipe import Recipe

    recipe = _recipe_or_none(args.src, args.overrides)
    if recipe is None:
        if args.out is None:
            raise _usage_error("ingest needs OUT (or a recipe as SRC)")
        recipe = Recipe().replace(data={"path": args.src,
                                        "shards": args.out})
    elif args.out is not None:
        recipe = recipe.replace(data={"shards": args.out})
    stages.check_paths(recipe, "ingest")  # before TensorFlow loads
    manifest = stages.ingest(
        recipe, validation_split=args.validation_split,
        num_shards=args.num_shards, seed=args.seed,
        max_pixels=args.max_pixels, max_side=args.max_side,
        shorter_side=args.shorter_side, jpeg_quality=args.jpeg_quality,
        raw=args.raw, lossless=args.lossless, raw_masks=args.raw_masks,
        workers=args.workers, overwrite=args.overwrite,
        progress=not args.json)
    if args.json:
        _print_json(args, manifest)
    else:
        _print_result(manifest.line)


def _print_result(line):
    """Prints a stage's result line (``tfcnn.console.Result.line``) on
    stdout, where scripts read it; "" prints nothing."""
    if line:
        print(line, flush=True)


def _given(value, default):
    return default if value is None else value


def _usage_error(message):
    from tfcnn.errors import TfcnnError

    return TfcnnError(message)


# stats ----------------------------------------------------------------------

def _add_stats(subparsers):
    p = subparsers.add_parser(
        "stats", help="mean image, channel stats and RGB PCA of a dataset",
        description="One streaming pass over the training shards: the mean "
                    "image, per-channel mean and std, and the RGB covariance "
                    "with its eigen-decomposition, saved beside the shards.")
    p.add_argument("data", help="shard folder (with manifest.json, or "
                                "train-* shards from other tools), or a "
                                "recipe (its data.shards and sizes)")
    _add_overrides(p)
    p.add_argument("--resize-size", type=int, default=None,
                   help="side of the mean image, the host resize size "
                        "(default: the recipe's data.resize_size, else 256)")
    p.add_argument("--split", default="train", help="split to describe")
    p.add_argument("--label-offset", type=int, default=None,
                   help="shards without manifest.json: added to stored "
                        "labels, -1 for the reference ImageNet tools "
                        "(default: the recipe's data.label_offset, else 0)")
    _add_json(p)
    p.set_defaults(handler=_stats)


def _stats(args):
    from tfcnn import stages
    from tfcnn.recipe import Recipe
    from tfcnn.recipe import Source

    recipe = _recipe_or_none(args.data, args.overrides)
    if recipe is None:
        recipe = Recipe().replace(data={"source": Source.TFRECORD,
                                        "path": args.data})
    stages.check_paths(recipe, "stats")  # before TensorFlow loads
    folder = recipe.data.shard_dir
    if recipe.data.source is Source.TFDS:
        # A tfds dataset prepared on disk: its training split, cached
        # under the tfds data folder.
        folder = f"tfds:{recipe.data.tfds_name}"
    result = stages.compute_stats(
        recipe, resize_size=args.resize_size, split=args.split,
        label_offset=args.label_offset, progress=not args.json)
    if not args.json:
        _print_result(result.line)
        return
    _print_json(args, {"data": str(folder),
                       "resize_size": result.resize_size,
                       "split": result.split,
                       "num_images": result.num_images,
                       "channel_mean": result.channel_mean,
                       "channel_std": result.channel_std,
                       "eigenvalues": result.eigenvalues})


# preview --------------------------------------------------------------------

def _add_preview(subparsers):
    p = subparsers.add_parser(
        "preview", help="grid of augmented training images as a PNG",
        description="Write a grid of training images after augmentation, "
                    "with their class names, to check what the model sees.")
    p.add_argument("source", help="a recipe (its data.shards, sizes and "
                                  "augment section), or a shard folder "
                                  "(with manifest.json)")
    p.add_argument("--shards", default=None,
                   help="shard folder (default: the recipe's data.shards)")
    p.add_argument("--out", default="preview.png", help="PNG file to write")
    p.add_argument("--recipe", default=None,
                   help="with a shard folder as SOURCE: the recipe whose "
                        "data/augment sections to use")
    _add_overrides(p)
    p.add_argument("--count", type=int, default=16, help="images in the grid")
    p.set_defaults(handler=_preview)


def _preview(args):
    from tfcnn.preview import grid as preview

    recipe_path, data = args.recipe, args.shards
    if _recipe_or_none(args.source, args.overrides) is not None:
        recipe_path = args.source
        if pathlib.Path(recipe_path).is_dir():  # a run folder's recipe
            from tfcnn.run_folder import RunFolder

            recipe_path = RunFolder(recipe_path).recipe
    else:
        data = data or args.source
    if data is None:
        from tfcnn import recipe

        data = recipe.load_recipe(recipe_path, args.overrides).data.shard_dir
    path = preview.write_preview(data, args.out, recipe_path=recipe_path,
                                 overrides=args.overrides, count=args.count)
    print(f"preview: wrote {path}")


# train / evaluate -------------------------------------------------------------

def _add_train(subparsers):
    p = subparsers.add_parser(
        "train", help="train the recipe's model",
        description="Train under the recipe's distribution strategy; resumes "
                    "from its backup when run again after a crash.")
    _add_recipe_arguments(p)
    p.add_argument("--overwrite", action="store_true",
                   help="train again from scratch in train.model_dir, "
                        "replacing the run it holds (finished or not, of "
                        "this recipe or another)")
    _add_dry_run(p)
    _add_json(p)
    p.set_defaults(handler=_train)


def _add_dry_run(parser):
    parser.add_argument("--dry-run", action="store_true",
                        help="print the resolved recipe and what each "
                             "stage would do; write nothing")


def _dry_run(recipe, **plan_args):
    from tfcnn import recipe as recipe_lib
    from tfcnn import run

    sys.stdout.write(recipe_lib.dump_toml(recipe))
    print("# what would happen:")
    for line in run.plan(recipe, **plan_args):
        print(f"# {line}")


def _train(args):
    recipe = _load_recipe(args)  # bad keys fail before TensorFlow loads
    _select_backend(recipe)
    if args.dry_run:
        return _dry_run(recipe, overwrite=args.overwrite, train_only=True)
    from tfcnn import stages

    stages.check_paths(recipe, "train")
    # Shards of another split must not train under this recipe's name
    # (train's own --overwrite means training again, not ingesting).
    stages.check_shards(recipe, again="`tfcnn ingest RECIPE --overwrite`")
    from tfcnn.train import fit

    summary = fit.train(recipe, overwrite=args.overwrite)
    # Under --json on stderr (stdout carries the object), as Keras' lines.
    _print_result(summary.line)
    if args.json:
        _print_json(args, summary)


def _select_backend(recipe):
    """Sets KERAS_BACKEND to train.backend before Keras is imported
    (``tfcnn.train.backend``)."""
    from tfcnn.train import backend

    backend.select(recipe)


def _add_evaluate(subparsers):
    p = subparsers.add_parser(
        "evaluate", help="top-1/top-5 accuracy and loss of the trained model",
        description="Evaluate the trained model of a recipe on its "
                    "evaluation split.")
    _add_recipe_arguments(p)
    _add_json(p)
    p.add_argument("--ten-crop", action="store_true",
                   help="also report 10-crop accuracy")
    p.set_defaults(handler=_evaluate)


def _evaluate(args):
    recipe = _load_recipe(args)
    from tfcnn import stages

    stages.check_paths(recipe, "evaluate")  # before TensorFlow loads
    from tfcnn.train import evaluate

    if args.ten_crop:
        recipe = recipe.replace(evaluate={"ten_crop": True})
    metrics = evaluate.evaluate(recipe, verbose=not args.json)
    if args.json:
        _print_json(args, metrics)
    else:
        print(evaluate.format_metrics(metrics))


# export / predict / serve -----------------------------------------------------

def _add_export(subparsers):
    p = subparsers.add_parser(
        "export", help="publish a trained model as a SavedModel",
        description="Export a trained model to <export_dir>/<name>/"
                    "<version>/ in the TF Serving layout, verified before it "
                    "is published. Root, name and top-k come from the "
                    "recipe (the one given, or the run's own recipe.toml); "
                    "options override them.")
    p.add_argument("model", help="a recipe (its train.model_dir and export "
                                 "section), a run folder (train.model_dir, "
                                 "with model.keras and classes.json) or a "
                                 ".keras file")
    _add_overrides(p)
    p.add_argument("--name", default=None,
                   help="model name (default: the recipe's export.name)")
    p.add_argument("--export-dir", default=None,
                   help="export root (default: the recipe's "
                        "export.export_dir, else saved_models)")
    p.add_argument("--version", type=int, default=None,
                   help="version number, 1 to 2^63-1; 0: the next free one "
                        "(default: the recipe's export.version, else 0)")
    p.add_argument("--top-k", type=int, default=None,
                   help="classes per answer (default: the recipe's "
                        "export.top_k, else 5)")
    p.add_argument("--model-config-file", default=None,
                   help="TF Serving model config file to add the model to "
                        "(created if missing, updated atomically)")
    p.add_argument("--label", default=None,
                   help="with --model-config-file: point this version "
                        "label (e.g. stable) at the new version")
    p.add_argument("--format", default=None,
                   choices=("savedmodel", "tflite"),
                   help="savedmodel (TF Serving's layout) or tflite "
                        "(<export-dir>/<name>.tflite) (default: the "
                        "recipe's export.format, else savedmodel)")
    p.add_argument("--quantization", default=None,
                   choices=("float32", "dynamic", "int8"),
                   help="tflite: float32, dynamic (int8 weights) or int8 "
                        "(calibrated on training images) (default: the "
                        "recipe's export.quantization, else float32)")
    _add_json(p)
    p.set_defaults(handler=_export)


def _export(args):
    from tfcnn.recipe import ExportConfig

    model = args.model
    # A run folder carries the recipe it was trained with.
    recipe = _recipe_or_none(model, args.overrides)
    if recipe is not None:
        model = recipe.train.model_dir
    config = recipe.export if recipe is not None else ExportConfig()
    name = _given(args.name, None if recipe is None else config.name)
    if name is None:
        raise _usage_error(
            "export needs --name for a .keras file (a recipe or run folder "
            "names it in export.name)")
    if args.label is not None and args.model_config_file is None:
        raise _usage_error("--label needs --model-config-file. "
                           f"Received: --label={args.label}")
    fmt = _given(args.format, None if recipe is None
                 else config.format.value)
    if fmt == "tflite":
        return _export_tflite(args, model, recipe, config, name)
    from tfcnn import stages
    from tfcnn.recipe import Recipe

    path = stages.export(
        recipe if recipe is not None else Recipe().replace(export=config),
        model, export_dir=args.export_dir, name=name,
        version=args.version, top_k=args.top_k)
    if args.model_config_file is not None:
        from tfcnn.serve import config as serve_config

        serve_config.update_model_config_file(
            args.model_config_file, name, path.parent, label=args.label,
            version=int(path.name))
    if args.json:
        _print_json(args, {"path": str(path), "name": name,
                           "version": int(path.name)})
    else:
        print(f"published SavedModel {path}")
        if args.model_config_file is not None:
            print(f"model config: {args.model_config_file} serves {name!r}"
                  + (f", label {args.label!r} -> version {path.name}"
                     if args.label else ""))


def _export_tflite(args, model, recipe, config, name):
    from tfcnn.export import tflite

    path = tflite.export_run(
        model, export_dir=_given(args.export_dir, config.export_dir),
        name=name, quantization=_given(args.quantization,
                                       config.quantization.value),
        recipe=recipe)
    if args.json:
        _print_json(args, {"path": str(path), "name": name,
                           "size": path.stat().st_size})
    else:
        print(f"wrote TFLite model {path} ({path.stat().st_size:,} bytes)")


def _add_predict(subparsers):
    p = subparsers.add_parser(
        "predict", help="top-k classes of images from an exported model",
        description="Classify image files with an exported SavedModel "
                    "(a version directory, or a model directory: newest "
                    "version), or with the one a recipe exports.")
    p.add_argument("saved_model", help="an exported SavedModel: "
                                       "saved_models/<name>[/<version>], "
                                       "a .tflite file, "
                                       "or a recipe (its export.export_dir "
                                       "and export.name)")
    p.add_argument("images", nargs="+", help="image files")
    _add_overrides(p)
    p.add_argument("--top-k", type=int, default=None,
                   help="classes per image (default: the recipe's "
                        "export.top_k, else 5)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="segmentation: the folder class maps are written "
                        "to, never over an existing file (default: a new "
                        "folder class_maps, class_maps_2, ... here)")
    p.add_argument("--max-pixels", type=int, default=40_000_000,
                   help="refuse images whose header declares more pixels "
                        "(width x height), before decoding them")
    _add_json(p)
    p.set_defaults(handler=_predict)


def _predict(args):
    from tfcnn.recipe import ExportConfig

    saved_model, config = args.saved_model, ExportConfig()
    recipe = _recipe_or_none(saved_model, args.overrides)
    if recipe is not None:
        from tfcnn import stages

        config = recipe.export
        saved_model = stages.exported_model(recipe)
    from tfcnn.serve import predict

    result = predict.predict(saved_model, args.images,
                             top_k=_given(args.top_k, config.top_k),
                             output_dir=args.out,
                             max_pixels=args.max_pixels)
    if args.json:
        _print_json(args, result)
    else:
        print(predict.format_predictions(result))


def _flag_bool(value):
    """TF Serving's boolean flag values: true/false, 1/0 (argparse)."""
    if value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise argparse.ArgumentTypeError(
        f"must be true or false. Received: {value!r}")


def _add_serve(subparsers):
    p = subparsers.add_parser(
        "serve", help="serve exported models with TF Serving's REST and "
                      "gRPC APIs",
        description="Serve every model under EXPORT_DIR (<name>/<version>/"
                    ", newest version), one model (--model_name and "
                    "--model_base_path) or those of --model_config_file "
                    "with TF Serving's REST and gRPC APIs. "
                    "tensorflow_model_server's flags are accepted with "
                    "their meanings (--port is gRPC, --rest_api_port "
                    "REST), in either spelling (--rest_api_port=8501 or "
                    "--rest-api-port 8501). SIGTERM drains the requests "
                    "in flight.")
    p.add_argument("export_dir", nargs="?", default=None,
                   help="export root (a recipe's export.export_dir), e.g. "
                        "saved_models")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (0.0.0.0: every interface, "
                        "as in a container)")
    p.add_argument("--port", "--grpc-port", "--grpc_port", type=int,
                   default=8500, dest="grpc_port",
                   help="gRPC port (as tensorflow_model_server); 0: a free "
                        "one; -1: no gRPC")
    p.add_argument("--rest_api_port", "--rest-api-port", type=int,
                   default=8501, dest="rest_api_port",
                   help="REST port; 0: no REST (as tensorflow_model_server)"
                        " (default: 8501)")
    p.add_argument("--model_name", "--model-name", default=None,
                   dest="model_name",
                   help="with --model_base_path: the name clients ask for "
                        "(default: 'default', as tensorflow_model_server)")
    p.add_argument("--model_base_path", "--model-base-path", default=None,
                   dest="model_base_path",
                   help="one model's folder of version folders, served "
                        "as --model_name")
    p.add_argument("--model_config_file", "--model-config-file",
                   default=None, dest="model_config_file",
                   help="TF Serving model config file (models, version "
                        "policies, labels) instead of EXPORT_DIR")
    p.add_argument("--max-body-mb", type=float, default=32.0,
                   help="reject request bodies larger than this (413)")
    p.add_argument("--file_system_poll_wait_seconds",
                   "--file-system-poll-wait-seconds", "--poll-seconds",
                   type=float, default=1.0, dest="poll_seconds",
                   help="how often to look for new versions; 0: once, at "
                        "start")
    p.add_argument("--max-in-flight", type=int, default=64,
                   help="requests in flight or queued at once, REST and "
                        "gRPC together; more get 429 / RESOURCE_EXHAUSTED")
    p.add_argument("--request-timeout", type=float, default=30.0,
                   help="seconds a request may wait before its call starts")
    p.add_argument("--rest_api_timeout_in_ms", "--rest-api-timeout-in-ms",
                   type=int, default=None, dest="rest_api_timeout_in_ms",
                   help="--request-timeout in milliseconds (as "
                        "tensorflow_model_server)")
    p.add_argument("--max-instances", type=int, default=1024,
                   help="instances per request; more get 413")
    p.add_argument("--max-pixels", type=int, default=40_000_000,
                   help="pixels of an encoded image, read from its header "
                        "before decoding; more get 413")
    p.add_argument("--header-timeout", type=float, default=10.0,
                   help="seconds to receive a request's headers")
    p.add_argument("--body-timeout", type=float, default=30.0,
                   help="seconds to receive a request's body; 408 after")
    p.add_argument("--enable_batching", "--enable-batching", nargs="?",
                   const=True, default=None, type=_flag_bool,
                   dest="enable_batching",
                   help="merge concurrent requests into one call (TF "
                        "Serving's batching); =false turns it off")
    p.add_argument("--batching_parameters_file",
                   "--batching-parameters-file", default=None,
                   dest="batching_parameters_file",
                   help="TF Serving BatchingParameters text file "
                        "(implies --enable_batching unless =false)")
    p.add_argument("--max-batch-size", type=int, default=None,
                   help="rows per merged call (default 32; implies "
                        "--enable-batching)")
    p.add_argument("--batch-timeout-micros", type=int, default=None,
                   help="how long a batch waits to fill (default 1000)")
    p.add_argument("--num-batch-threads", type=int, default=None,
                   help="merged calls at once (default: the CPU cores)")
    p.add_argument("--max-enqueued-batches", type=int, default=None,
                   help="queued batches per model signature (default 64)")
    p.add_argument("--monitoring_config_file", "--monitoring-config-file",
                   default=None, dest="monitoring_config_file",
                   help="TF Serving MonitoringConfig text file: whether and "
                        "where the Prometheus metrics page is served "
                        "(default: at /monitoring/prometheus/metrics)")
    p.add_argument("--access-log", action="store_true",
                   help="log one line per REST request (off by default)")
    p.add_argument("--tensorflow_intra_op_parallelism",
                   "--tensorflow-intra-op-parallelism", type=int, default=0,
                   dest="intra_op_threads",
                   help="threads one operation may use; 0: TensorFlow's "
                        "choice (as tensorflow_model_server). 1 suits small "
                        "models under concurrent load")
    p.add_argument("--tensorflow_inter_op_parallelism",
                   "--tensorflow-inter-op-parallelism", type=int, default=0,
                   dest="inter_op_threads",
                   help="operations run at once; 0: TensorFlow's choice "
                        "(as tensorflow_model_server)")
    p.set_defaults(handler=_serve)


def _serve(args):
    from tfcnn.serve import config
    from tfcnn.serve import inputs
    from tfcnn.serve import server

    sources = [name for name, value in (
        ("EXPORT_DIR", args.export_dir),
        ("--model_base_path", args.model_base_path),
        ("--model_config_file", args.model_config_file)) if value]
    if len(sources) != 1:
        raise _usage_error(
            "give one of EXPORT_DIR, --model_base_path or "
            f"--model_config_file. Received: {sources or 'none'}")
    if args.model_name is not None and args.model_base_path is None:
        raise _usage_error("--model_name needs --model_base_path. "
                           f"Received: --model_name={args.model_name}")
    if not -1 <= args.grpc_port <= 65535:
        raise _usage_error("--port (gRPC) must be a port number from 0 to "
                           f"65535, or -1 for no gRPC. Received: "
                           f"--port={args.grpc_port}")
    if not 0 <= args.rest_api_port <= 65535:
        raise _usage_error("--rest_api_port must be a port number from 0 "
                           "to 65535 (0: no REST). Received: "
                           f"--rest_api_port={args.rest_api_port}")
    if args.rest_api_port == 0 and args.grpc_port < 0:
        raise _usage_error("--rest_api_port=0 and --port=-1 leave nothing "
                           "to serve on")
    for flag, threads in (
            ("--tensorflow_intra_op_parallelism", args.intra_op_threads),
            ("--tensorflow_inter_op_parallelism", args.inter_op_threads)):
        if threads < 0:
            raise _usage_error(f"{flag} must be >= 0 (0: TensorFlow's "
                               f"choice). Received: {flag}={threads}")
    _set_tensorflow_threads(args.intra_op_threads, args.inter_op_threads)
    batching_flags = {
        "max_batch_size": args.max_batch_size,
        "batch_timeout_micros": args.batch_timeout_micros,
        "num_batch_threads": args.num_batch_threads,
        "max_enqueued_batches": args.max_enqueued_batches}
    # Batching is on with --enable_batching, or implied by its file or
    # --max-batch-size unless --enable_batching=false says otherwise.
    enabled = args.enable_batching
    if enabled is None:
        enabled = (args.batching_parameters_file is not None
                   or args.max_batch_size is not None)
    batching = None
    if enabled and args.batching_parameters_file is not None:
        batching = config.read_batching_parameters_file(
            args.batching_parameters_file, **batching_flags)
    elif enabled:
        batching = config.BatchingParameters(
            **{k: v for k, v in batching_flags.items() if v is not None})
    request_timeout = args.request_timeout
    if args.rest_api_timeout_in_ms is not None:
        if args.rest_api_timeout_in_ms <= 0:
            raise _usage_error(
                "--rest_api_timeout_in_ms must be > 0. Received: "
                f"--rest_api_timeout_in_ms={args.rest_api_timeout_in_ms}")
        request_timeout = args.rest_api_timeout_in_ms / 1000
    metrics_path = config.DEFAULT_METRICS_PATH
    if args.monitoring_config_file is not None:
        metrics_path = config.read_monitoring_config_file(
            args.monitoring_config_file)
    options = server.ServerOptions(
        max_body_bytes=int(args.max_body_mb * 2**20),
        poll_seconds=args.poll_seconds,
        limits=inputs.Limits(max_instances=args.max_instances,
                             max_pixels=args.max_pixels),
        max_in_flight=args.max_in_flight,
        request_timeout_s=request_timeout,
        header_timeout_s=args.header_timeout,
        body_timeout_s=args.body_timeout, batching=batching,
        metrics_path=metrics_path, access_log=args.access_log)
    server.serve(args.export_dir, host=args.host,
                 port=args.rest_api_port or None,
                 grpc_port=None if args.grpc_port < 0 else args.grpc_port,
                 model_config_file=args.model_config_file,
                 model_name=args.model_name or "default",
                 model_base_path=args.model_base_path, options=options)


def _set_tensorflow_threads(intra_op, inter_op):
    """TensorFlow's thread pools, before anything runs (0: its own
    choice)."""
    if not intra_op and not inter_op:
        return
    import tensorflow as tf

    if intra_op:
        tf.config.threading.set_intra_op_parallelism_threads(intra_op)
    if inter_op:
        tf.config.threading.set_inter_op_parallelism_threads(inter_op)


# run / models -----------------------------------------------------------------

def _add_run(subparsers):
    p = subparsers.add_parser(
        "run", help="run a recipe's stages end to end",
        description="Run prepare, ingest, stats, train, evaluate, export and "
                    "predict in order, skipping stages whose output exists "
                    "and is complete.")
    _add_recipe_arguments(p)
    p.add_argument("--force", action="store_true",
                   help="run every stage even if its output exists")
    p.add_argument("--overwrite", action="store_true",
                   help="train again from scratch in train.model_dir, "
                        "replacing the run it holds (of this recipe or "
                        "another); the other stages skip what is complete")
    _add_dry_run(p)
    _add_json(p)
    p.set_defaults(handler=_run)


def _run(args):
    recipe = _load_recipe(args)
    _select_backend(recipe)
    if args.dry_run:
        return _dry_run(recipe, force=args.force, overwrite=args.overwrite)
    from tfcnn import run

    reports = run.run_recipe(recipe, force=args.force,
                             overwrite=args.overwrite)
    if args.json:
        _print_json(args, {"stages": [
            {"stage": r.stage, "skipped": r.skipped, "message": r.message,
             "result": r.result} for r in reports]})


def _add_compare(subparsers):
    p = subparsers.add_parser(
        "compare", help="the keys that differ between runs, and their "
                        "final metrics",
        description="Print one table of run folders: the recipe keys whose "
                    "values differ between them and each run's final "
                    "validation metrics (val_*) and, where `tfcnn run` "
                    "evaluated it, its evaluation metrics (test_*).")
    p.add_argument("runs", nargs="+", metavar="RUN",
                   help="run folders (train.model_dir, with recipe.toml)")
    p.add_argument("--sort", default=None, metavar="METRIC",
                   help="order the runs by this metric, e.g. val_accuracy "
                        "(ascending for a loss, else descending); default: "
                        "the order given")
    _add_json(p)
    p.set_defaults(handler=_compare)


def _compare(args):
    from tfcnn import compare

    comparison = compare.compare_runs(args.runs, sort=args.sort)
    if args.json:
        _print_json(args, comparison)
    else:
        print(compare.format_table(comparison))


def _add_recipes(subparsers):
    p = subparsers.add_parser(
        "recipes", help="list the recipes shipped with tfcnn",
        description="List the packaged recipes; `tfcnn run NAME` runs one, "
                    "`tfcnn recipe show NAME > my.toml` copies it.")
    _add_json(p)
    p.set_defaults(handler=_recipes)


def _recipes(args):
    from tfcnn import recipe

    rows = {name: _first_comment(recipe.recipe_text(name))
            for name in recipe.packaged_recipes()}
    if args.json:
        _print_json(args, rows)
        return
    for name, about in rows.items():
        print(f"{name:24s} {about}")


def _first_comment(text, width=72):
    """The recipe's opening comment, cut to about one line."""
    words = []
    for line in text.splitlines():
        if not line.startswith("#") or not line.strip("# "):
            break
        words += line.strip("# ").split()
    about = " ".join(words)
    return about if len(about) <= width else about[:width - 3] + "..."


def _add_recipe(subparsers):
    p = subparsers.add_parser(
        "recipe", help="print a packaged recipe (to start one's own)",
        description="`tfcnn recipe show NAME > my.toml` writes a packaged "
                    "recipe, comments included, to edit and run.")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    show = actions.add_parser(
        "show", help="print a packaged recipe's TOML, or the resolved "
                     "recipe of a file or run folder")
    show.add_argument("name", help="packaged recipe name (`tfcnn recipes`), "
                                   "recipe file or run folder")
    _add_overrides(show)
    p.set_defaults(handler=_recipe)


def _recipe(args):
    from tfcnn import recipe

    if args.name in recipe.packaged_recipes() and not args.overrides \
            and not pathlib.Path(args.name).exists():
        # Comments included: a recipe to copy and edit.
        sys.stdout.write(recipe.recipe_text(args.name))
        return
    sys.stdout.write(recipe.dump_toml(_load_recipe(
        argparse.Namespace(recipe=args.name, overrides=args.overrides))))


def _add_keys(subparsers):
    p = subparsers.add_parser(
        "keys", help="list every recipe key with its type, default and doc")
    _add_json(p)
    p.set_defaults(handler=_keys)


def _keys(args):
    from tfcnn import recipe

    rows = recipe.key_docs()
    if args.json:
        _print_json(args, {key: {"type": kind, "default": default,
                                 "doc": doc}
                           for key, kind, default, doc in rows})
        return
    for key, kind, default, doc in rows:
        print(f"{key:28s} {kind:34s} {default!r:16s} {doc}")


def _add_models(subparsers):
    p = subparsers.add_parser(
        "models", help="list the registered models with parameter counts")
    _add_json(p)
    p.set_defaults(handler=_models)


def _models(args):
    import tfcnn.models

    # describe() builds each model in turn without allocating its weights
    # (about 0.3 s of CPU for VGG-16); print as we go.
    rows = {}
    if not args.json:
        print(f"{'model':24s} {'parameters':>14s}  default input",
              flush=True)
    for name in tfcnn.models.list_models():
        info = tfcnn.models.describe(name)
        rows[name] = {"parameters": info["parameters"],
                      "input_shape": list(info["input_shape"])}
        if not args.json:
            print(f"{name:24s} {info['parameters']:>14,d}  "
                  f"{info['input_shape']}", flush=True)
    if args.json:
        _print_json(args, rows)


if __name__ == "__main__":
    sys.exit(main())
