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
          else contextlib.nullcontext()):
        return _call(args)


def _call(args):
    from tfcnn.errors import TfcnnError

    try:
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
        prog="tfcnn",
        description="Train convolutional networks from image folders to "
                    "served SavedModels.")
    parser.add_argument("--version", action="version",
                        version=f"%(prog)s {_version()}")
    parser.add_argument("--verbose", action="store_true",
                        help="show TensorFlow's own start-up and runtime "
                             "log lines")
    subparsers = parser.add_subparsers(dest="command", required=True,
                                       metavar="COMMAND")
    for add in (_add_ingest, _add_stats, _add_preview, _add_train,
                _add_evaluate, _add_export, _add_predict, _add_serve,
                _add_run, _add_recipes, _add_recipe, _add_keys,
                _add_models):
        add(subparsers)
    return parser


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
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a recipe key; repeatable. The value is read as TOML "
             "(a bare word is a string).")


def _load_recipe(args):
    from tfcnn import recipe

    return recipe.load_recipe(args.recipe, args.overrides)


def _print_json(obj):
    print(json.dumps(obj, indent=None, sort_keys=False))


# ingest ---------------------------------------------------------------------

def _add_ingest(subparsers):
    p = subparsers.add_parser(
        "ingest", help="image class folders -> sharded TFRecords",
        description="Write class folders of images (or train/, validation/, "
                    "test/ folders of class folders) as TFRecord shards in "
                    "the ImageNet schema, with manifest.json.")
    p.add_argument("src", help="folder of class folders")
    p.add_argument("out", help="output folder for shards and manifest.json")
    p.add_argument("--validation-fraction", type=float, default=0.1,
                   help="stratified fraction of train held out when SRC has "
                        "no validation folder (default 0.1)")
    p.add_argument("--shards", type=int, default=0,
                   help="shards per split (default: one per ~128 MB)")
    p.add_argument("--seed", type=int, default=0)
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
                   help="JPEG quality of downscaled images (default 90)")
    p.add_argument("--raw", action="store_true",
                   help="store 8-bit RGB pixels instead of encoded images "
                        "(small images, e.g. 32x32: reading beats decoding)")
    p.add_argument("--workers", type=int, default=0,
                   help="parallel workers (default: all cores)")
    p.add_argument("--overwrite", action="store_true",
                   help="rewrite a complete output")
    p.set_defaults(handler=_ingest)


def _ingest(args):
    from tfcnn.data import ingest

    ingest.ingest(args.src, args.out,
                  validation_fraction=args.validation_fraction,
                  num_shards=args.shards, seed=args.seed,
                  max_pixels=args.max_pixels, max_side=args.max_side,
                  shorter_side=args.shorter_side,
                  jpeg_quality=args.jpeg_quality, raw=args.raw,
                  workers=args.workers, overwrite=args.overwrite)


# stats ----------------------------------------------------------------------

def _add_stats(subparsers):
    p = subparsers.add_parser(
        "stats", help="mean image, channel stats and RGB PCA of a dataset",
        description="One streaming pass over the training shards: the mean "
                    "image, per-channel mean and std, and the RGB covariance "
                    "with its eigen-decomposition, saved beside the shards.")
    p.add_argument("data", help="shard folder (with manifest.json, or "
                                "train-* shards from other tools)")
    p.add_argument("--size", type=int, default=256,
                   help="side of the mean image (the host resize size)")
    p.add_argument("--split", default="train",
                   help="split to describe (default train)")
    p.add_argument("--label-offset", type=int, default=0,
                   help="shards without manifest.json: added to stored "
                        "labels (-1 for the reference ImageNet tools)")
    p.set_defaults(handler=_stats)


def _stats(args):
    from tfcnn.data import manifest
    from tfcnn.data import stats

    stats.compute_stats(
        manifest.describe(args.data, label_offset=args.label_offset),
        size=args.size, split=args.split)


# preview --------------------------------------------------------------------

def _add_preview(subparsers):
    p = subparsers.add_parser(
        "preview", help="grid of augmented training images as a PNG",
        description="Write a grid of training images after augmentation, "
                    "with their class names, to check what the model sees.")
    p.add_argument("data", help="shard folder (with manifest.json)")
    p.add_argument("--out", required=True, help="PNG file to write")
    p.add_argument("--recipe", default=None,
                   help="recipe whose data/augment sections to use")
    p.add_argument("--set", dest="overrides", action="append", default=[],
                   metavar="SECTION.KEY=VALUE")
    p.add_argument("--count", type=int, default=16, help="images in the grid")
    p.set_defaults(handler=_preview)


def _preview(args):
    from tfcnn.preview import images as preview

    path = preview.write_preview(args.data, args.out,
                                 recipe_path=args.recipe,
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
    p.set_defaults(handler=_train)


def _train(args):
    recipe = _load_recipe(args)  # bad keys fail before TensorFlow loads
    from tfcnn.train import fit

    fit.train(recipe, overwrite=args.overwrite)


def _add_evaluate(subparsers):
    p = subparsers.add_parser(
        "evaluate", help="top-1/top-5 accuracy and loss of the trained model",
        description="Evaluate the trained model of a recipe on its "
                    "evaluation split.")
    _add_recipe_arguments(p)
    p.add_argument("--json", action="store_true",
                   help="print exactly one JSON object on stdout")
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
        _print_json(metrics)
    else:
        print(evaluate.format_metrics(metrics))


# export / predict / serve -----------------------------------------------------

def _add_export(subparsers):
    p = subparsers.add_parser(
        "export", help="publish a trained model as a SavedModel",
        description="Export a trained model to <dir>/<name>/<version>/ in "
                    "the TF Serving layout, verified before it is published.")
    p.add_argument("model", help="train.model_dir (with model.keras and "
                                 "classes.json) or a .keras file")
    p.add_argument("--name", required=True, help="model name")
    p.add_argument("--dir", default="saved_models", help="export root")
    p.add_argument("--version", type=int, default=0,
                   help="version number (default: the next free one)")
    p.add_argument("--top-k", type=int, default=5)
    p.set_defaults(handler=_export)


def _export(args):
    from tfcnn import export

    print("export: writing the SavedModel and checking it in a fresh "
          "process (about 15 s)...", file=sys.stderr, flush=True)
    path = export.export_model(args.model, export_dir=args.dir,
                               name=args.name, version=args.version,
                               top_k=args.top_k)
    print(f"published SavedModel {path}")


def _add_predict(subparsers):
    p = subparsers.add_parser(
        "predict", help="top-k classes of images from an exported model",
        description="Classify image files with an exported SavedModel "
                    "(a version directory, or a model directory: newest "
                    "version).")
    p.add_argument("model_dir", help="saved_models/<name>[/<version>]")
    p.add_argument("images", nargs="+", help="image files")
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--json", action="store_true",
                   help="print exactly one JSON object on stdout")
    p.set_defaults(handler=_predict)


def _predict(args):
    from tfcnn.serve import predict

    result = predict.predict(args.model_dir, args.images, top_k=args.top_k)
    if args.json:
        _print_json(result)
    else:
        print(predict.format_predictions(result))


def _add_serve(subparsers):
    p = subparsers.add_parser(
        "serve", help="serve exported models with TF Serving's REST API",
        description="Serve every model under MODEL_BASE "
                    "(<name>/<version>/) with TF Serving's REST API.")
    p.add_argument("model_base", help="export root, e.g. saved_models")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8501)
    p.add_argument("--max-body-mb", type=float, default=32.0,
                   help="reject request bodies larger than this")
    p.add_argument("--poll-seconds", type=float, default=1.0,
                   help="how often to look for new versions (default 1)")
    p.set_defaults(handler=_serve)


def _serve(args):
    from tfcnn.serve import server

    server.serve(args.model_base, host=args.host, port=args.port,
                 max_body_bytes=int(args.max_body_mb * 2**20),
                 poll_seconds=args.poll_seconds)


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
    p.set_defaults(handler=_run)


def _run(args):
    recipe = _load_recipe(args)
    from tfcnn import run

    run.run_recipe(recipe, force=args.force)


def _add_recipes(subparsers):
    p = subparsers.add_parser(
        "recipes", help="list the recipes shipped with tfcnn",
        description="List the packaged recipes; `tfcnn run NAME` runs one, "
                    "`tfcnn recipe show NAME > my.toml` copies it.")
    p.add_argument("--json", action="store_true",
                   help="print exactly one JSON object on stdout")
    p.set_defaults(handler=_recipes)


def _recipes(args):
    from tfcnn import recipe

    rows = {name: _first_comment(recipe.recipe_text(name))
            for name in recipe.packaged_recipes()}
    if args.json:
        _print_json(rows)
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
    p.set_defaults(handler=_keys)


def _keys(args):
    from tfcnn import recipe

    for key, kind, default, doc in recipe.key_docs():
        print(f"{key:28s} {kind:34s} {default!r:16s} {doc}")


def _add_models(subparsers):
    p = subparsers.add_parser(
        "models", help="list the registered models with parameter counts")
    p.set_defaults(handler=_models)


def _models(args):
    import tfcnn.models

    # describe() builds each model in turn without allocating its weights
    # (about 0.3 s of CPU for VGG-16); print as we go.
    print(f"{'model':24s} {'parameters':>14s}  default input", flush=True)
    for name in tfcnn.models.list_models():
        info = tfcnn.models.describe(name)
        print(f"{name:24s} {info['parameters']:>14,d}  "
              f"{info['input_shape']}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
