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
    for add in (_add_ingest, _add_stats, _add_preview, _add_train,
                _add_evaluate, _add_export, _add_predict, _add_serve,
                _add_run, _add_recipes, _add_recipe, _add_keys,
                _add_models):
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
    from tfcnn import recipe

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


def _add_renamed(parser, old, new):
    """Accepts an option's old name only to end with one line naming the
    new one (a concept has one name in recipes, options and Python)."""
    parser.add_argument(old, nargs="?", action=_RenamedOption, new=new,
                        help=argparse.SUPPRESS)


class _RenamedOption(argparse.Action):
    """An option's old name: parsing it is a usage error naming the new."""

    def __init__(self, option_strings, dest, new, **kwargs):
        super().__init__(option_strings, argparse.SUPPRESS,
                         default=argparse.SUPPRESS, **kwargs)
        self.new = new

    def __call__(self, parser, namespace, values, option_string=None):
        given = option_string if values is None else (
            f"{option_string} {values}")
        parser.error(f"{option_string} is now {self.new}; rename it. "
                     f"Received: {given}")


def _recipe_or_none(text, overrides):
    """The recipe ``text`` names (a .toml file or a packaged recipe name),
    or None when it is a plain path (a folder, a .keras or .tflite file)."""
    from tfcnn import recipe

    path = pathlib.Path(text)
    if path.is_dir() or path.suffix in (".keras", ".tflite"):
        return None
    if (path.suffix == ".toml" or path.is_file()
            or text in recipe.packaged_recipes()):
        return recipe.load_recipe(text, overrides)
    return None


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
    _add_renamed(p, "--validation-fraction", "--validation-split")
    p.add_argument("--validation-split", type=float, default=None,
                   help="stratified fraction of train held out when SRC has "
                        "no validation folder (default: the recipe's "
                        "data.validation_split, else 0.1)")
    # data.shards is the shard folder; the count is data.num_shards.
    _add_renamed(p, "--shards", "--num-shards")
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
    p.add_argument("--workers", type=int, default=0,
                   help="parallel workers; 0: all cores")
    p.add_argument("--overwrite", action="store_true",
                   help="rewrite a complete output")
    _add_json(p)
    p.set_defaults(handler=_ingest)


def _ingest(args):
    from tfcnn.recipe import DataConfig

    data = DataConfig()
    src, out = args.src, args.out
    recipe = _recipe_or_none(src, args.overrides)
    if recipe is not None:
        data = recipe.data
        src, out = data.path, out or data.shard_dir
    if out is None:
        raise _usage_error("ingest needs OUT (or a recipe as SRC)")
    from tfcnn.data import ingest

    manifest = ingest.ingest(
        src, out,
        validation_split=_given(args.validation_split,
                                   data.validation_split),
        num_shards=_given(args.num_shards, data.num_shards),
        seed=_given(args.seed, data.seed), max_pixels=args.max_pixels,
        max_side=args.max_side, shorter_side=args.shorter_side,
        jpeg_quality=args.jpeg_quality, raw=args.raw,
        workers=args.workers, overwrite=args.overwrite,
        progress=not args.json)
    if args.json:
        _print_json(args, manifest)


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
    _add_renamed(p, "--size", "--resize-size")
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
    from tfcnn.recipe import DataConfig

    data, folder = DataConfig(), args.data
    recipe = _recipe_or_none(folder, args.overrides)
    if recipe is not None:
        data, folder = recipe.data, recipe.data.shard_dir
    from tfcnn.data import manifest
    from tfcnn.data import stats
    from tfcnn.recipe import Source

    if recipe is not None and data.source is Source.TFDS:
        # A tfds dataset prepared on disk: its training split, cached
        # under the tfds data folder.
        folder = f"tfds:{data.tfds_name}"
        result = stats.compute_tfds_stats(
            data.tfds_name, split=data.tfds_train_split,
            data_dir=data.tfds_data_dir or None,
            resize_size=_given(args.resize_size, data.resize_size),
            progress=not args.json)
    else:
        result = stats.compute_stats(
            manifest.describe(folder, label_offset=_given(
                args.label_offset, data.label_offset)),
            resize_size=_given(args.resize_size, data.resize_size),
            split=args.split,
            progress=not args.json)

    if args.json:
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
    _add_renamed(p, "--data", "--shards")
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
    from tfcnn.preview import images as preview

    recipe_path, data = args.recipe, args.shards
    if _recipe_or_none(args.source, args.overrides) is not None:
        recipe_path = args.source
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
                   help="train a finished run again from scratch, "
                        "replacing its model, checkpoints and logs")
    _add_json(p)
    p.set_defaults(handler=_train)


def _train(args):
    recipe = _load_recipe(args)  # bad keys fail before TensorFlow loads
    from tfcnn.train import fit

    summary = fit.train(recipe, overwrite=args.overwrite)
    if args.json:
        _print_json(args, summary)


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
    _add_renamed(p, "--dir", "--export-dir")
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
    recipe = _recipe_or_none(model, args.overrides)
    run_recipe = pathlib.Path(model, "recipe.toml")
    if recipe is not None:
        model = recipe.train.model_dir
    elif run_recipe.is_file():
        # A run folder carries the recipe it was trained with.
        from tfcnn.recipe import load_recipe

        recipe = load_recipe(run_recipe, args.overrides)
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
    from tfcnn import export

    path = export.export_model(
        model, export_dir=_given(args.export_dir, config.export_dir),
        name=name, version=_given(args.version, config.version),
        top_k=_given(args.top_k, config.top_k))
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
    _add_json(p)
    p.set_defaults(handler=_predict)


def _predict(args):
    from tfcnn.recipe import ExportConfig

    saved_model, config = args.saved_model, ExportConfig()
    recipe = _recipe_or_none(saved_model, args.overrides)
    if recipe is not None:
        config = recipe.export
        saved_model = pathlib.Path(config.export_dir, config.name)
    from tfcnn.serve import predict

    result = predict.predict(saved_model, args.images,
                             top_k=_given(args.top_k, config.top_k))
    if args.json:
        _print_json(args, result)
    else:
        print(predict.format_predictions(result))


def _add_serve(subparsers):
    p = subparsers.add_parser(
        "serve", help="serve exported models with TF Serving's REST and "
                      "gRPC APIs",
        description="Serve every model under EXPORT_DIR (<name>/<version>/"
                    ", newest version) or those of --model-config-file "
                    "with TF Serving's REST and gRPC APIs. SIGTERM drains "
                    "the requests in flight.")
    p.add_argument("export_dir", nargs="?", default=None,
                   help="export root (a recipe's export.export_dir), e.g. "
                        "saved_models")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on")
    p.add_argument("--port", type=int, default=8501,
                   help="REST port; 0: a free one")
    p.add_argument("--grpc-port", type=int, default=8500,
                   help="gRPC port; 0: a free one; -1: no gRPC")
    p.add_argument("--model-config-file", default=None,
                   help="TF Serving model config file (models, version "
                        "policies, labels) instead of EXPORT_DIR")
    p.add_argument("--max-body-mb", type=float, default=32.0,
                   help="reject request bodies larger than this (413)")
    p.add_argument("--poll-seconds", type=float, default=1.0,
                   help="how often to look for new versions")
    p.add_argument("--max-in-flight", type=int, default=64,
                   help="requests in flight or queued at once, REST and "
                        "gRPC together; more get 429 / RESOURCE_EXHAUSTED")
    p.add_argument("--request-timeout", type=float, default=30.0,
                   help="seconds a request may wait before its call starts")
    p.add_argument("--max-instances", type=int, default=1024,
                   help="instances per request; more get 413")
    p.add_argument("--max-pixels", type=int, default=40_000_000,
                   help="pixels of an encoded image, read from its header "
                        "before decoding; more get 413")
    p.add_argument("--header-timeout", type=float, default=10.0,
                   help="seconds to receive a request's headers")
    p.add_argument("--body-timeout", type=float, default=30.0,
                   help="seconds to receive a request's body; 408 after")
    p.add_argument("--enable-batching", action="store_true",
                   help="merge concurrent requests into one call (TF "
                        "Serving's batching)")
    p.add_argument("--batching-parameters-file", default=None,
                   help="TF Serving BatchingParameters text file (implies "
                        "--enable-batching)")
    p.add_argument("--max-batch-size", type=int, default=None,
                   help="rows per merged call (default 32; implies "
                        "--enable-batching)")
    p.add_argument("--batch-timeout-micros", type=int, default=None,
                   help="how long a batch waits to fill (default 1000)")
    p.add_argument("--num-batch-threads", type=int, default=None,
                   help="merged calls at once (default: the CPU cores)")
    p.add_argument("--max-enqueued-batches", type=int, default=None,
                   help="queued batches per model signature (default 64)")
    p.set_defaults(handler=_serve)


def _serve(args):
    from tfcnn.serve import config
    from tfcnn.serve import inputs
    from tfcnn.serve import server

    if (args.export_dir is None) == (args.model_config_file is None):
        raise _usage_error(
            "give EXPORT_DIR or --model-config-file (one of them)")
    batching_flags = {
        "max_batch_size": args.max_batch_size,
        "batch_timeout_micros": args.batch_timeout_micros,
        "num_batch_threads": args.num_batch_threads,
        "max_enqueued_batches": args.max_enqueued_batches}
    batching = None
    if args.batching_parameters_file is not None:
        batching = config.read_batching_parameters_file(
            args.batching_parameters_file, **batching_flags)
    elif args.enable_batching or args.max_batch_size is not None:
        batching = config.BatchingParameters(
            **{k: v for k, v in batching_flags.items() if v is not None})
    options = server.ServerOptions(
        max_body_bytes=int(args.max_body_mb * 2**20),
        poll_seconds=args.poll_seconds,
        limits=inputs.Limits(max_instances=args.max_instances,
                             max_pixels=args.max_pixels),
        max_in_flight=args.max_in_flight,
        request_timeout_s=args.request_timeout,
        header_timeout_s=args.header_timeout,
        body_timeout_s=args.body_timeout, batching=batching)
    server.serve(args.export_dir, host=args.host, port=args.port,
                 grpc_port=None if args.grpc_port < 0 else args.grpc_port,
                 model_config_file=args.model_config_file, options=options)


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
    _add_json(p)
    p.set_defaults(handler=_run)


def _run(args):
    recipe = _load_recipe(args)
    from tfcnn import run

    with console.command_flags(overwrite="--force"):
        reports = run.run_recipe(recipe, force=args.force)
    if args.json:
        _print_json(args, {"stages": [
            {"stage": r.stage, "skipped": r.skipped, "message": r.message,
             "result": r.result} for r in reports]})


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
    show = actions.add_parser("show", help="print a packaged recipe's TOML")
    show.add_argument("name", help="packaged recipe name (`tfcnn recipes`)")
    p.set_defaults(handler=_recipe)


def _recipe(args):
    from tfcnn import recipe

    sys.stdout.write(recipe.recipe_text(args.name))


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
