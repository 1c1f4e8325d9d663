"""``tfcnn compare``: what differs between runs, and how they scored.

A run folder (``train.model_dir``) holds its resolved ``recipe.toml``,
``training.json`` (the last epoch's logs: training and ``val_`` metrics)
and, once ``tfcnn run`` has evaluated it, ``metrics.json`` (the evaluation
split's figures). ``compare_runs`` reads them, with no TensorFlow import,
and keeps the recipe keys whose values differ between the runs and each
run's final validation and evaluation metrics; ``format_table`` prints
them as one table.

``recipe_hparams`` names the keys that make a result (the ``data``,
``augment``, ``model``, ``train`` and ``evaluate`` sections, less the
output folder and logging options) as flat dotted keys; the same dict is
what each run logs to TensorBoard's HParams dashboard
(``tfcnn.train.hparams``), so the table and the dashboard compare the same
keys.
"""

import json
import math

from tfcnn.errors import DataError
from tfcnn.run_folder import RunFolder

# Sections whose keys make a run's result.
_RESULT_SECTIONS = ("data", "augment", "model", "train", "evaluate")
# Keys of those sections that change where things are written or what is
# logged, never the result.
_NOT_RESULT_KEYS = frozenset({
    "train.model_dir", "train.backup_steps", "train.histogram_freq",
    "train.profile_steps", "train.join_timeout", "train.worker_timeout",
})
# Evaluation figures that are not one number of the run.
_NOT_METRICS = frozenset({"task", "split", "num_examples", "model", "views",
                          "pixels"})


def recipe_hparams(recipe):
    """The keys that make a run's result, flat, for comparing runs.

    Nested tables (``model.options``) become dotted keys of their own;
    lists are written as JSON text. Every value is a bool, int, float or
    str, the types TensorBoard's HParams plugin takes.

    Args:
        recipe: ``tfcnn.recipe.Recipe``.

    Returns:
        dict dotted key -> value, in the recipe's order.
    """
    from tfcnn import recipe as recipe_lib

    sections = recipe_lib.recipe_to_dict(recipe)
    flat = {}
    for section in _RESULT_SECTIONS:
        _flatten(sections[section], section, flat)
    return {key: value for key, value in flat.items()
            if key not in _NOT_RESULT_KEYS}


def compare_runs(run_dirs, sort=None):
    """The differing keys and final metrics of run folders.

    Args:
        run_dirs: list of str or Path, run folders (each with its
            ``recipe.toml``); URLs too (``tfcnn.storage``).
        sort: str or None, a metric to order the runs by (ascending for a
            loss, descending for anything else; runs without it last), or
            None for the order given. Defaults to None.

    Returns:
        JSON-ready dict: ``keys`` (the differing dotted keys, sorted),
        ``metrics`` (every metric name, validation then evaluation),
        ``sort`` and ``runs``: one dict per run with ``run`` (the path),
        ``status`` ("complete", or "unfinished (E/N epochs)"), ``values``
        (differing key -> value) and ``metrics`` (name -> float).

    Raises:
        DataError: a path that is not a run folder, an unreadable file in
            one, or a ``sort`` metric no run has (the message lists those
            there are).
    """
    runs = [_read_run(path) for path in run_dirs]
    keys = sorted({key for run in runs for key in run["hparams"]
                   if len({_text(other["hparams"].get(key))
                           for other in runs}) > 1})
    names = []
    for run in runs:
        names += [name for name in run["metrics"] if name not in names]
    names.sort(key=lambda name: (not name.startswith("val_"), name))
    if sort is not None:
        if sort not in names:
            raise DataError(
                f"--sort {sort}: no run has this metric; they have "
                f"{', '.join(names) or 'none'}. Received: sort={sort!r}")
        runs = _sorted_runs(runs, sort)
    return {
        "keys": keys,
        "metrics": names,
        "sort": sort,
        "runs": [{"run": run["run"], "status": run["status"],
                  "values": {key: run["hparams"].get(key) for key in keys},
                  "metrics": run["metrics"]} for run in runs],
    }


def format_table(comparison):
    """The comparison as one aligned text table, one row per run.

    Args:
        comparison: dict from ``compare_runs``.

    Returns:
        str: a header (run, status, the differing keys, the metrics) and
        one line per run; a missing value is "-".
    """
    header = ["run", "status", *comparison["keys"], *comparison["metrics"]]
    rows = [header]
    for run in comparison["runs"]:
        rows.append([
            run["run"], run["status"],
            *(_text(run["values"][key]) for key in comparison["keys"]),
            *(_number(run["metrics"].get(name))
              for name in comparison["metrics"])])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths)
                  ).rstrip() for row in rows)


def _read_run(path):
    folder = RunFolder(path)
    recipe_path = folder.recipe
    if not recipe_path.is_file():
        what = ("no folder" if not folder.path.is_dir()
                else f"no {RunFolder.RECIPE}")
        raise DataError(
            f"{path} is not a run folder ({what}; a run folder is a "
            f"train.model_dir that tfcnn train wrote). Received: {path}")
    from tfcnn import recipe as recipe_lib

    recipe = recipe_lib.load_recipe(recipe_path)
    state = _json(folder.state)
    metrics = {}
    for name, value in (state.get("metrics") or {}).items():
        if name.startswith("val_") and _is_number(value):
            metrics[name] = float(value)
    evaluation = _json(folder.metrics)
    split = evaluation.get("split", "test")
    for name, value in evaluation.items():
        if name not in _NOT_METRICS and _is_number(value):
            metrics[f"{split}_{name}"] = float(value)
    done = state.get("epochs_completed", 0)
    status = ("complete" if state.get("complete") else
              f"unfinished ({done}/{recipe.train.epochs} epochs)")
    return {"run": str(path), "status": status,
            "hparams": recipe_hparams(recipe), "metrics": metrics}


def _json(path):
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DataError(f"{path} is not valid JSON ({error}). Received: "
                        f"{path}") from None


def _sorted_runs(runs, metric):
    lower_is_better = metric.endswith("loss")

    def key(run):
        value = run["metrics"].get(metric)
        if value is None or math.isnan(value):
            return (1, 0.0)
        return (0, value if lower_is_better else -value)

    return sorted(runs, key=key)


def _flatten(values, prefix, flat):
    for name, value in values.items():
        key = f"{prefix}.{name}"
        if isinstance(value, dict):
            _flatten(value, key, flat)
        elif isinstance(value, (list, tuple)):
            flat[key] = json.dumps(value)
        else:
            flat[key] = value


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _text(value):
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _number(value):
    return "-" if value is None else f"{value:.4f}"
