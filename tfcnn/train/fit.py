"""The fit loop: recipe -> trained model, resumable after any crash.

``train(recipe)`` creates the distribution strategy first (collective ops
must be configured before any other TensorFlow op), builds the TRAINING
MODEL under its scope::

    uint8 [S, S, 3] "image" -> tfcnn.augment.build_preprocessing(...) layers
        -> tfcnn.models.build(name, (C, C, 3), K, **options) (no softmax)
        -> float32 softmax "probabilities"

and fits it. Everything lands in ``train.model_dir``: ``model.keras``,
``classes.json``, the resolved ``recipe.toml``, ``checkpoints/`` (last and
best), ``backup/`` (deleted once the model is saved) and ``logs/`` for
TensorBoard, plus ``training.json`` (epochs done, final metrics).

Run again after a crash (``kill -9`` included), the same command restores
``backup/`` and continues at the saved step, inside the epoch it was in; a
transient failure of a collective (a worker lost under
``MultiWorkerMirroredStrategy``) restarts ``fit`` from the backup up to
``max_restarts`` times in-process.
"""

import json
import os
import shutil
import sys
from pathlib import Path

from tfcnn.errors import RecipeError
from tfcnn.errors import TfcnnError

TRAINING_STATE = "training.json"
MODEL_NAME = "model.keras"
CLASSES_NAME = "classes.json"
RECIPE_NAME = "recipe.toml"

# Errors of a lost or restarted peer: worth a restart from the backup.
_RETRYABLE = ("UnavailableError", "AbortedError", "DeadlineExceededError",
              "CancelledError")


class DivergedError(TfcnnError, ArithmeticError):
    """The loss became NaN or infinite; training stopped."""


def train(recipe, *, verbose="auto", callbacks=(), max_restarts=2):
    """Trains a recipe's model; resumes from its backup if one exists.

    The backup is deleted once the model is saved, so running a finished
    recipe again trains it afresh (``is_complete`` tells beforehand).

    Args:
        recipe: ``tfcnn.recipe.Recipe``.
        verbose: Keras ``fit`` verbosity ("auto", 0, 1 or 2). Defaults to
            "auto" (a progress bar).
        callbacks: extra ``keras.callbacks.Callback`` objects. Defaults to
            none.
        max_restarts: int, in-process restarts of ``fit`` from the backup
            after a collective-op failure. Defaults to 2.

    Returns:
        dict: ``epochs`` (requested), ``epochs_run`` (by this call),
        ``resumed_from`` (``{"epoch", "step"}`` or None), ``metrics`` (the
        last epoch's logs), ``best`` (best checkpoint's epoch and metric),
        ``num_replicas``, ``steps_per_epoch`` and the written ``paths``.

    Raises:
        DivergedError: the loss became NaN or infinite (the message names
            the step and the checkpoint that is kept).
        RecipeError: a bad strategy, batch size or schedule setting.
        DataError: missing data.
    """
    # First TensorFlow op of the run: MultiWorkerMirroredStrategy needs it.
    from tfcnn.train import strategy as strategy_lib

    placement = strategy_lib.make_strategy(recipe.train)

    import keras

    config = recipe.train
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy(config.precision.value)
    try:
        return _train(recipe, placement, callbacks, verbose, max_restarts)
    finally:
        # The model keeps its layers' policies; the caller keeps theirs.
        keras.config.set_dtype_policy(policy)


def _train(recipe, placement, callbacks, verbose, max_restarts):
    import keras

    from tfcnn import recipe as recipe_lib
    from tfcnn.train import callbacks as callbacks_lib
    from tfcnn.train import inputs as inputs_lib
    from tfcnn.train import strategy as strategy_lib

    config = recipe.train
    keras.utils.set_random_seed(config.seed)
    model_dir = Path(config.model_dir)
    write_dir = Path(strategy_lib.worker_dir(model_dir, placement))
    data = inputs_lib.training_inputs(recipe,
                                      num_workers=placement.num_workers)
    with placement.strategy.scope():
        model = build_training_model(recipe, data.num_classes, data.stats)
        compile_model(model, recipe, data.steps_per_epoch, data.dense_labels)
        _build_before_fit(model, data.train)

    if placement.is_chief:
        model_dir.mkdir(parents=True, exist_ok=True)
        _write_text(model_dir / CLASSES_NAME,
                    json.dumps({"class_names": data.class_names}, indent=2))
        _write_text(model_dir / RECIPE_NAME, recipe_lib.dump_toml(recipe))
        _write_text(model_dir / TRAINING_STATE, json.dumps({
            "epochs": config.epochs, "epochs_completed": 0,
            "complete": False}, indent=2))

    guard = callbacks_lib.NanGuard()
    backup = callbacks_lib.Backup(write_dir / "backup", config.backup_steps)
    backup.steps_per_epoch = data.steps_per_epoch
    checkpoints = callbacks_lib.Checkpoints(write_dir / "checkpoints")
    all_callbacks = [guard, backup, checkpoints,
                     *_tensorboard_callbacks(recipe, data, write_dir),
                     *list(callbacks)]
    plateau = _plateau(config)
    if plateau is not None:
        all_callbacks.insert(3, plateau)

    # Every worker reads the chief's backup (model_dir on shared storage).
    with placement.strategy.scope():
        state = callbacks_lib.restore_backup(model, model_dir / "backup")
    resumed_from = None
    if state is None:
        checkpoints.state = {}
    else:
        resumed_from = {"epoch": state["epoch"], "step": state["step"]}
        _say(f"train: resuming from {model_dir / 'backup'} at epoch "
             f"{state['epoch'] + 1}, step {state['step']} "
             f"(global step {state['global_step']})")

    fit_args = dict(validation_data=data.validation, shuffle=False,
                    validation_steps=data.validation_steps,
                    callbacks=all_callbacks, verbose=verbose)
    history = {}
    for attempt in range(max_restarts + 1):
        try:
            _fit_from(model, data, config.epochs, fit_args, history)
            break
        except Exception as error:  # noqa: BLE001 - filtered by name below
            if (type(error).__name__ not in _RETRYABLE
                    or attempt == max_restarts):
                raise
            _say(f"train: {type(error).__name__} ({error}); restarting fit "
                 f"from the backup ({attempt + 1}/{max_restarts})")
            with placement.strategy.scope():
                callbacks_lib.restore_backup(model, model_dir / "backup")

    if guard.diverged is not None:
        raise DivergedError(_diverged_message(guard.diverged, model_dir,
                                              checkpoints))
    if placement.is_chief:
        save_inference_model(model, model_dir / MODEL_NAME)
    metrics = {k: v[-1] for k, v in history.items() if v}
    summary = {
        "epochs": config.epochs,
        "epochs_run": len(history.get("loss", [])),
        "resumed_from": resumed_from,
        "metrics": metrics,
        "best": checkpoints.state.get("best"),
        "num_replicas": placement.num_replicas,
        "steps_per_epoch": data.steps_per_epoch,
        "paths": {"model": str(model_dir / MODEL_NAME),
                  "classes": str(model_dir / CLASSES_NAME),
                  "recipe": str(model_dir / RECIPE_NAME),
                  "checkpoints": str(model_dir / "checkpoints"),
                  "logs": str(model_dir / "logs")},
    }
    if placement.is_chief:
        _write_text(model_dir / TRAINING_STATE, json.dumps({
            "epochs": config.epochs, "epochs_completed": config.epochs,
            "complete": True, **summary}, indent=2, default=float))
        shutil.rmtree(model_dir / "backup", ignore_errors=True)
        epochs = f"{config.epochs} epoch" + "s" * (config.epochs != 1)
        _say(f"train: wrote {MODEL_NAME}, {CLASSES_NAME}, {RECIPE_NAME}, "
             f"checkpoints/ and logs/ in {model_dir} ({epochs}, "
             f"{_format_logs(metrics)})")
    strategy_lib.remove_worker_dir(write_dir, placement)
    return summary


def is_complete(recipe):
    """Whether ``train.model_dir`` holds a model trained for ``train.epochs``.

    Args:
        recipe: ``tfcnn.recipe.Recipe``.

    Returns:
        bool.
    """
    model_dir = Path(recipe.train.model_dir)
    if not (model_dir / MODEL_NAME).is_file():
        return False
    try:
        state = json.loads((model_dir / TRAINING_STATE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return False
    return bool(state.get("complete")) and (
        state.get("epochs_completed", 0) >= recipe.train.epochs)


def save_inference_model(model, path):
    """Saves the trained model without optimizer or compile settings.

    The file then loads wherever tfcnn's layers are registered, with or
    without ``tfcnn.train`` (whose loss a compiled model would name). The
    write is atomic: a temporary file renamed into place.

    Args:
        model: the trained TRAINING MODEL.
        path: str or Path ending in ``.keras``.
    """
    import keras

    path = Path(path)
    # From the config alone: clone_model would copy the compile settings.
    clone = keras.Model.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    tmp = path.with_name(f".{path.stem}.tmp.keras")
    clone.save(tmp)
    os.replace(tmp, path)


def build_training_model(recipe, num_classes, stats=None):
    """The TRAINING MODEL of the project's contract (uncompiled).

    Build it under the strategy's scope.

    Args:
        recipe: ``tfcnn.recipe.Recipe``.
        num_classes: int, K.
        stats: ``tfcnn.data.stats.DatasetStats`` or None.

    Returns:
        a functional ``keras.Model`` from uint8 ``[B, S, S, 3]`` to float32
        probabilities ``[B, K]``.
    """
    import keras

    import tfcnn.models
    from tfcnn.augment import build_preprocessing

    size, crop = recipe.data.resize_size, recipe.data.image_size
    inputs = keras.Input((size, size, 3), dtype="uint8", name="image")
    x = inputs
    for layer in build_preprocessing(recipe.augment, crop_size=crop,
                                     stats=stats, seed=recipe.data.seed):
        x = layer(x)
    options = dict(recipe.model.options)
    options["classifier_activation"] = None
    network = tfcnn.models.build(
        recipe.model.name, input_shape=(crop, crop, 3),
        num_classes=num_classes, **options)
    if len(network.outputs) != 1:
        raise RecipeError(
            f"model.options: {recipe.model.name!r} built with "
            f"{dict(recipe.model.options)} has {len(network.outputs)} "
            "outputs; tfcnn train trains one classifier output (for "
            "GoogLeNet, leave aux_classifiers off)")
    x = network(x)
    # Softmax in float32 whatever the compute dtype (mixed precision).
    outputs = keras.layers.Activation("softmax", dtype="float32",
                                      name="probabilities")(x)
    return keras.Model(inputs, outputs, name=f"{recipe.model.name}_training")


def compile_model(model, recipe, steps_per_epoch, dense_labels=False):
    """Compiles with the recipe's optimizer, loss, metrics and speed options.

    Call it under the strategy's scope.
    """
    from tfcnn.train import losses
    from tfcnn.train import metrics
    from tfcnn.train import optimizers

    config = recipe.train
    optimizers.apply_weight_decay(model, config)
    model.compile(
        optimizer=optimizers.build_optimizer(config, steps_per_epoch),
        loss=losses.CrossEntropy(label_smoothing=config.label_smoothing),
        metrics=metrics.build_metrics(dense_labels),
        jit_compile=config.jit_compile,
        steps_per_execution=config.steps_per_execution)


def _build_before_fit(model, dataset):
    """Builds the model's, loss's, metrics' and optimizer's state up front.

    Call it under the strategy's scope. ``fit`` would build them from its
    first distributed batch, which it first averages over the replicas with
    ``strategy.reduce``; under ``MultiWorkerMirroredStrategy`` that reduce
    fails on the uint8 images (Keras 3.15: "Attempt to convert a value
    (PerReplica...) to a Tensor"). Only the shapes and dtypes of a batch
    matter, so a local one serves, and ``fit``'s own step is skipped.
    """
    batch = next(iter(dataset.take(1)))
    model._symbolic_build(data_batch=batch)
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    model._maybe_symbolic_build = _already_built


def _already_built(iterator=None, data_batch=None):
    del iterator, data_batch  # built by _build_before_fit


def _fit_from(model, data, epochs, fit_args, history):
    """Fits from the optimizer's step count to ``epochs``.

    A run restored in the middle of an epoch first finishes that epoch
    (its remaining steps), then runs whole epochs.
    """
    steps = data.steps_per_epoch
    epoch, step = divmod(int(model.optimizer.iterations.numpy()), steps)
    guard = fit_args["callbacks"][0]
    if step and epoch < epochs:
        _merge(history, model.fit(data.train, initial_epoch=epoch,
                                  epochs=epoch + 1,
                                  steps_per_epoch=steps - step, **fit_args))
        epoch += 1
        if guard.diverged is not None:
            return
    if epoch < epochs:
        _merge(history, model.fit(data.train, initial_epoch=epoch,
                                  epochs=epochs, steps_per_epoch=steps,
                                  **fit_args))


def _merge(history, result):
    for key, values in result.history.items():
        history.setdefault(key, []).extend(float(v) for v in values)


def _plateau(config):
    from tfcnn.train import optimizers

    return optimizers.plateau_callback(config)


def _tensorboard_callbacks(recipe, data, write_dir):
    import keras

    from tfcnn.train import inputs as inputs_lib
    from tfcnn.train import summaries

    config = recipe.train
    logs = write_dir / "logs"
    profile = _profile_steps(config.profile_steps)
    return [
        keras.callbacks.TensorBoard(
            log_dir=str(logs), histogram_freq=config.histogram_freq,
            write_graph=False, update_freq="epoch", profile_batch=profile),
        summaries.StepMonitor(logs / "train", config.batch_size,
                              every_steps=min(100, data.steps_per_epoch)),
        summaries.ImageSummaries(
            logs, inputs_lib.sample_batch(data.train, 16), data.validation,
            data.num_classes, validation_steps=data.validation_steps),
    ]


def _profile_steps(text):
    """``"a,b"`` (or ``"a"``) -> the steps Keras' profiler traces."""
    if not text:
        return 0
    first, _, last = text.partition(",")
    try:
        steps = (int(first), int(last or first))
    except ValueError:
        steps = None
    if steps is None or not 0 < steps[0] <= steps[1]:
        raise RecipeError(
            "train.profile_steps must be \"first,last\" steps (1-based, "
            f"first <= last) or empty. Received: {text!r}")
    return steps


def _diverged_message(diverged, model_dir, checkpoints):
    last = checkpoints.state.get("last")
    kept = (f"checkpoints/last.keras (epoch {last['epoch']})" if last
            else "no checkpoint (it diverged in the first epoch)")
    return (f"training diverged: the loss became {diverged['loss']} at epoch "
            f"{diverged['epoch'] + 1}, step {diverged['step']}; kept {kept} "
            f"and the last good backup in {model_dir}. Lower "
            f"train.learning_rate or add train.warmup_epochs. Received: "
            f"loss={diverged['loss']}")


def _format_logs(logs):
    keys = ("loss", "accuracy", "val_loss", "val_accuracy",
            "val_top5_accuracy")
    return ", ".join(f"{k} {logs[k]:.4f}" for k in keys if k in logs)


def _write_text(path, text):
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _say(message):
    print(message, file=sys.stderr, flush=True)
