"""The fit loop: recipe -> trained model, resumable after any crash.

``train(recipe)`` creates the distribution strategy first (collective ops
must be configured before any other TensorFlow op), builds the TRAINING
MODEL of the data's task under its scope (``tfcnn.tasks``; for image
classification)::

    uint8 [S, S, 3] "image" -> tfcnn.augment.build_preprocessing(...) layers
        -> tfcnn.models.build(name, (C, C, 3), K, **options) (no softmax)
        -> float32 softmax "probabilities"

and fits it with the task's loss and metrics. Everything lands in
``train.model_dir``: ``model.keras``, ``classes.json``, the resolved
``recipe.toml``, ``checkpoints/`` (last and best), ``backup/`` (deleted
once the model is saved) and ``logs/`` for TensorBoard, plus
``training.json`` (epochs done, final metrics).

Run again after a crash (``kill -9`` included), the same command restores
``backup/`` and continues at the saved step, inside the epoch it was in; a
transient failure of a collective (a worker lost under
``MultiWorkerMirroredStrategy``) restarts ``fit`` from the backup up to
``max_restarts`` times in-process.
"""

import contextlib
import dataclasses
import re

from tfcnn import atomic_files
from tfcnn import console
from tfcnn import storage
from tfcnn.errors import DivergedError
from tfcnn.errors import RecipeError
from tfcnn.errors import WorkerLostError
from tfcnn.recipe import Strategy
from tfcnn.run_folder import RunFolder


def train(recipe, *, verbose="auto", callbacks=(), max_restarts=2,
          overwrite=False):
    """Trains a recipe's model; resumes from its backup if one exists.

    The run folder belongs to one recipe and one process
    (``tfcnn.run_folder``): a folder holding a run of another recipe
    is refused, and so is one that another process is training. A
    finished run of this recipe (``is_complete``) is left alone with one
    line saying so. ``overwrite`` trains again from scratch in place.

    Args:
        recipe: ``tfcnn.recipe.Recipe``.
        verbose: Keras ``fit`` verbosity ("auto", 0, 1 or 2). Defaults to
            "auto": a progress bar on a terminal, one line per epoch in a
            log file or pipe.
        callbacks: extra ``keras.callbacks.Callback`` objects. Defaults to
            none.
        max_restarts: int, in-process restarts of ``fit`` from the backup
            after a collective-op failure. Defaults to 2.
        overwrite: bool, train again from scratch, replacing the run in
            ``train.model_dir`` (finished or not, of any recipe).
            Defaults to False.

    Returns:
        ``tfcnn.console.Result``, a dict with the result line (``line``,
        "" on a worker that is not the chief): ``skipped`` (True for a
        finished run left alone: the other keys are then its stored
        summary, with ``epochs_run`` 0), ``epochs`` (requested),
        ``epochs_run`` (by this call), ``resumed_from`` (``{"epoch",
        "step"}`` or None), ``metrics`` (the last epoch's logs), ``best``
        (best checkpoint's epoch and metric), ``num_replicas``,
        ``steps_per_epoch`` and the written ``paths``.

    Raises:
        DivergedError: the loss became NaN or infinite (the message names
            the step and the checkpoint that is kept).
        WorkerLostError: under ``multi_worker``, another worker died or
            stopped answering (for ``train.worker_timeout`` seconds).
        RecipeError: a bad strategy, batch size or schedule setting; a
            ``train.backend`` that Keras does not run in this process
            (``tfcnn.train.backend``); a run folder of another recipe, or
            one another process trains.
        DataError: missing data.
    """
    from tfcnn.train import backend

    backend.check_active(recipe)
    folder = RunFolder(recipe.train.model_dir)
    folder.check_is_folder()
    if not overwrite:
        folder.check_recipe(recipe)
    if verbose == "auto":
        verbose = console.keras_verbosity()
    if not _is_chief(recipe.train):
        return _train_placed(recipe, verbose, callbacks, max_restarts)
    with folder.lock():
        finished = folder.finished_state()
        if finished is not None and not overwrite:
            return _leave_finished_run(recipe, finished)
        if overwrite:
            folder.clear()
        return _train_placed(recipe, verbose, callbacks, max_restarts)


def _is_chief(config):
    """Whether this process writes the run folder (without importing
    TensorFlow unless the run has several workers)."""
    if config.strategy is not Strategy.MULTI_WORKER:
        return True
    from tfcnn.train import strategy as strategy_lib

    return strategy_lib.worker_role(config).is_chief


def _train_placed(recipe, verbose, callbacks, max_restarts):
    # First TensorFlow op of the run: MultiWorkerMirroredStrategy needs it.
    from tfcnn.train import strategy as strategy_lib

    placement = strategy_lib.make_strategy(recipe.train)

    import keras

    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy(recipe.train.precision.value)
    try:
        with _keras_distribution(placement):
            return _train(recipe, placement, callbacks, verbose,
                          max_restarts)
    except retryable_errors() as error:
        if placement.num_workers == 1:
            raise
        raise WorkerLostError(_worker_lost_message(error, recipe)) from None
    finally:
        # The model keeps its layers' policies; the caller keeps theirs.
        keras.config.set_dtype_policy(policy)


@contextlib.contextmanager
def _keras_distribution(placement):
    """Keeps a ``keras.distribution`` (JAX's ``DataParallel``) current for
    the whole run: Keras' ``fit`` and ``evaluate`` split each batch by
    the distribution current when they run, not by the one the model was
    built under. Nothing to do under tf.distribute."""
    import keras

    distribution = getattr(placement.strategy, "distribution", None)
    if distribution is None:
        yield
        return
    previous = keras.distribution.distribution()
    keras.distribution.set_distribution(distribution)
    try:
        yield
    finally:
        keras.distribution.set_distribution(previous)


def _train(recipe, placement, extra_callbacks, verbose, max_restarts):
    """The run: the steps below, in order; ``data.task`` (from the
    manifest) supplies the model, loss, metrics and figures."""
    import keras

    from tfcnn.train import freeze as freeze_lib
    from tfcnn.train import inputs as inputs_lib
    from tfcnn.train import strategy as strategy_lib

    config = recipe.train
    keras.utils.set_random_seed(config.seed)
    model_dir = storage.path(config.model_dir)
    write_dir = storage.path(strategy_lib.worker_dir(model_dir, placement))
    data = inputs_lib.training_inputs(recipe,
                                      num_workers=placement.num_workers,
                                      strategy=placement.strategy)
    data = _whole_replica_batches(data, placement, config.batch_size)
    RunFolder(model_dir).check_classes(data.class_names)
    with placement.strategy.scope():
        model = data.task.build_training_model(
            recipe, data.num_classes, data.stats,
            class_names=data.class_names)
        compile_model(model, recipe, data.steps_per_epoch, data.dense_labels,
                      task=data.task, class_names=data.class_names,
                      label_counts=data.label_counts)
        _build_before_fit(model, data.local_train)

    if placement.is_chief:
        prepare_run_folder(recipe, data.class_names)
    callbacks = build_callbacks(recipe, data, write_dir, extra_callbacks)
    resumed_from = resume_from_backup(model, model_dir, placement,
                                      callbacks)
    staged = freeze_lib.StagedTraining(
        model, config, RunFolder(write_dir).logs / "train",
        head_after=recipe.model.weights_until,
        fresh_layers=_fresh_layers(model),
        network=data.task.network(model))
    history = fit_with_restarts(model, data, config.epochs, callbacks,
                                placement, model_dir, verbose=verbose,
                                max_restarts=max_restarts, staged=staged)
    return finish_run(recipe, model, data, callbacks, placement, history,
                      resumed_from, write_dir,
                      counts=staged.freezer.counts())


def _whole_replica_batches(data, placement, batch_size):
    """Validation batches that split evenly over a ``keras.distribution``.

    JAX's ``DataParallel`` shards every batch over its devices and cannot
    split a batch whose size is not a multiple of their number (jax's
    ``IndivisibleError``), which the last validation batch usually is.
    Each validation batch keeps its largest multiple of the replicas: at
    most ``replicas - 1`` images are left out of the figures during
    training (``tfcnn evaluate`` counts every image). tf.distribute
    splits uneven batches itself: its inputs are left as they are.
    """
    replicas = placement.num_replicas
    if (getattr(placement.strategy, "distribution", None) is None
            or data.local_validation is None):
        return data
    import tensorflow as tf

    def trim(images, labels):
        keep = tf.shape(images)[0] // replicas * replicas
        return images[:keep], tf.nest.map_structure(
            lambda value: value[:keep], labels)

    whole, rest = divmod(data.num_validation_examples, batch_size)
    steps = whole + int(rest >= replicas)  # a last batch with images left
    validation = data.local_validation.map(trim).take(steps) if steps else (
        None)
    return dataclasses.replace(data, validation=validation,
                               local_validation=validation,
                               validation_steps=steps)


def _fresh_layers(model):
    """The layers that ``model.weights`` left fresh (none without)."""
    from tfcnn.train import freeze as freeze_lib

    report = getattr(freeze_lib.network_of(model), "weights_report", None)
    return () if report is None else report.fresh_layers


def prepare_run_folder(recipe, class_names):
    """Creates ``train.model_dir`` with its class names, recipe,
    fingerprint and state (``RunFolder.write_recipe``).

    Call it on the chief only. ``training.json`` starts incomplete, so
    ``is_complete`` is False until ``finish_run`` rewrites it.

    Args:
        recipe: ``tfcnn.recipe.Recipe``.
        class_names: list of str, the label names in label order.
    """
    RunFolder(recipe.train.model_dir).write_recipe(recipe, class_names)


@dataclasses.dataclass(frozen=True)
class TrainingCallbacks:
    """The callbacks of a run, by role.

    Attributes:
        guard: ``NanGuard``; first, so it stops a diverged step before
            the backup and checkpoints see it.
        backup: ``Backup`` of the training state.
        checkpoints: ``Checkpoints`` (last and best).
        plateau: ``ReduceLROnPlateau`` or None; after the checkpoints, so
            an epoch is saved with the learning rate it ran at.
        tensorboard: tuple of the TensorBoard callbacks.
        extra: tuple of the caller's callbacks, last.
    """

    guard: object
    backup: object
    checkpoints: object
    plateau: object
    tensorboard: tuple
    extra: tuple

    def as_list(self):
        """The callbacks in the order ``fit`` calls them."""
        plateau = () if self.plateau is None else (self.plateau,)
        return [self.guard, self.backup, self.checkpoints, *plateau,
                *self.tensorboard, *self.extra]


def build_callbacks(recipe, data, write_dir, extra=()):
    """The run's callbacks, writing under ``write_dir``.

    Args:
        recipe: ``tfcnn.recipe.Recipe``.
        data: ``tfcnn.train.inputs.TrainingInputs``.
        write_dir: Path, this process's folder (``train.model_dir`` on the
            chief; see ``tfcnn.train.strategy.worker_dir``).
        extra: more ``keras.callbacks.Callback`` objects. Defaults to none.

    Returns:
        ``TrainingCallbacks``.
    """
    from tfcnn.train import callbacks as callbacks_lib
    from tfcnn.train import optimizers

    config = recipe.train
    folder = RunFolder(write_dir)
    backup = callbacks_lib.Backup(folder.backup, config.backup_steps)
    backup.steps_per_epoch = data.steps_per_epoch
    checkpoints = callbacks_lib.Checkpoints(
        folder.checkpoints, monitor=f"val_{data.task.monitor}")
    return TrainingCallbacks(
        guard=callbacks_lib.NanGuard(),
        backup=backup,
        checkpoints=checkpoints,
        plateau=optimizers.plateau_callback(config),
        tensorboard=tuple(_tensorboard_callbacks(recipe, data, write_dir)),
        extra=(*callbacks_lib.practice_callbacks(config, checkpoints),
               *extra))


def resume_from_backup(model, model_dir, placement, callbacks):
    """Loads the run's backup into the compiled model, if there is one.

    Every worker reads the chief's backup (``model_dir`` on shared
    storage). Without a backup the run starts afresh, so checkpoints of an
    earlier, finished run do not count as this run's best.

    Args:
        model: the compiled TRAINING MODEL.
        model_dir: Path, ``train.model_dir``.
        placement: ``tfcnn.train.strategy.Placement``.
        callbacks: ``TrainingCallbacks``.

    Returns:
        ``{"epoch", "step"}`` the run resumes at, or None.
    """
    from tfcnn.train import callbacks as callbacks_lib

    backup_dir = RunFolder(model_dir).backup
    with placement.strategy.scope():
        state = callbacks_lib.restore_backup(model, backup_dir)
    if state is None:
        callbacks.checkpoints.state = {}
        return None
    console.progress(f"train: resuming from {backup_dir} at epoch "
                     f"{state['epoch'] + 1}, step {state['step']} "
                     f"(global step {state['global_step']})")
    return {"epoch": state["epoch"], "step": state["step"]}


def retryable_errors():
    """Errors of a lost or restarted peer: worth a restart from the backup.

    Returns:
        tuple of ``tf.errors.OpError`` subclasses.
    """
    import tensorflow as tf

    return (tf.errors.UnavailableError, tf.errors.AbortedError,
            tf.errors.DeadlineExceededError, tf.errors.CancelledError)


def fit_with_restarts(model, data, epochs, callbacks, placement, model_dir,
                      *, verbose="auto", max_restarts=2, staged=None):
    """Fits to ``train.epochs``, restarting from the backup on a lost peer.

    Args:
        model: the compiled TRAINING MODEL, restored from its backup.
        data: ``tfcnn.train.inputs.TrainingInputs``.
        epochs: int, ``train.epochs``.
        callbacks: ``TrainingCallbacks``.
        placement: ``tfcnn.train.strategy.Placement``.
        model_dir: Path, ``train.model_dir`` (whose backup a restart loads).
        verbose: Keras ``fit`` verbosity. Defaults to "auto".
        max_restarts: int, restarts after one of ``retryable_errors()``;
            the next such error is raised. Defaults to 2.
        staged: ``tfcnn.train.freeze.StagedTraining`` or None (one stage
            training the model as built). Defaults to None.

    Returns:
        dict, the merged Keras history of every ``fit`` call.
    """
    from tfcnn.train import callbacks as callbacks_lib

    fit_args = dict(validation_data=data.validation, shuffle=False,
                    validation_steps=data.validation_steps,
                    callbacks=callbacks.as_list(), verbose=verbose)
    history = {}
    retryable = retryable_errors()
    for attempt in range(max_restarts + 1):
        try:
            _fit_in_stages(model, data, epochs, fit_args, history,
                           callbacks.guard, staged)
            break
        except retryable as error:
            # Under several workers the aborted collectives stay aborted
            # in this process ("Restart your program to reset").
            if attempt == max_restarts or placement.num_workers > 1:
                raise
            console.progress(
                f"train: {type(error).__name__} ({error}); restarting fit "
                f"from the backup ({attempt + 1}/{max_restarts})")
            with placement.strategy.scope():
                callbacks_lib.restore_backup(model,
                                             RunFolder(model_dir).backup)
    return history


def finish_run(recipe, model, data, callbacks, placement, history,
               resumed_from, write_dir, counts=None):
    """Saves the model, records the run, and returns its summary.

    ``counts`` (``tfcnn.train.freeze.ParameterCounts`` of the last stage;
    None: counted on the model as it is, every layer as built) go into
    the summary as ``parameters``.

    On the chief: ``model.keras``, a complete ``training.json``, and the
    backup deleted; every worker then removes its temporary folder.

    Raises:
        DivergedError: the NaN guard stopped the run (nothing is saved;
            the backup and checkpoints written before are kept).

    Returns:
        ``tfcnn.console.Result``, see ``train``.
    """
    from tfcnn.train import callbacks as callbacks_lib
    from tfcnn.train import freeze as freeze_lib
    from tfcnn.train import strategy as strategy_lib

    config = recipe.train
    folder = RunFolder(config.model_dir)
    model_dir = folder.path
    checkpoints = callbacks.checkpoints
    if counts is None:
        counts = freeze_lib.Freezer(data.task.network(model)).counts()
    if callbacks.guard.diverged is not None:
        raise DivergedError(_diverged_message(callbacks.guard.diverged,
                                              model_dir, checkpoints))
    with placement.strategy.scope():
        callbacks_lib.apply_average(model)  # train.ema_decay
    if placement.is_chief:
        save_inference_model(data.task.inference_model(model),
                             folder.model)
    metrics = {k: v[-1] for k, v in history.items() if v}
    summary = {
        "epochs": config.epochs,
        "epochs_run": len(history.get("loss", [])),
        "resumed_from": resumed_from,
        "metrics": metrics,
        "best": checkpoints.state.get("best"),
        "num_replicas": placement.num_replicas,
        "steps_per_epoch": data.steps_per_epoch,
        "parameters": dataclasses.asdict(counts),
        "paths": {"model": str(folder.model),
                  "classes": str(folder.classes),
                  "recipe": str(folder.recipe),
                  "fingerprint": str(folder.fingerprint),
                  "checkpoints": str(folder.checkpoints),
                  "logs": str(folder.logs)},
    }
    line = ""
    if placement.is_chief:
        atomic_files.write_json_atomic(folder.state, {
            "epochs": config.epochs, "epochs_completed": config.epochs,
            "complete": True, **summary}, default=float)
        storage.rmtree(folder.backup)
        epochs = f"{config.epochs} epoch" + "s" * (config.epochs != 1)
        # The result line, printed on stdout by the command as ingest's
        # and stats' are; notices such as resuming go to stderr as they
        # happen. The chief alone wrote the model, so it alone says so.
        line = (f"train: wrote {folder.MODEL}, {folder.CLASSES}, "
                f"{folder.RECIPE}, checkpoints/ and logs/ in "
                f"{model_dir} ({epochs}, "
                f"{freeze_lib.format_counts(counts)}, "
                f"{_format_logs(metrics, data.task.log_keys)})")
    strategy_lib.remove_worker_dir(write_dir, placement)
    return console.Result(summary, line)


def is_complete(recipe):
    """Whether ``train.model_dir`` holds a finished run of this recipe.

    Args:
        recipe: ``tfcnn.recipe.Recipe``.

    Returns:
        bool.
    """
    folder = RunFolder(recipe.train.model_dir)
    return folder.finished_state() is not None and not folder.differences(
        recipe)


def _leave_finished_run(recipe, state):
    # Its backup is gone, so training again would start from scratch and
    # replace the model: never without being asked.
    done = state.get("epochs_completed", 0)
    return console.Result(
        {**state, "epochs_run": 0, "resumed_from": None, "skipped": True},
        f"train: {recipe.train.model_dir} is complete ({done} epoch"
        f"{'s' * (done != 1)} of this recipe); left as it is "
        f"({console.option_text('overwrite')} or another train.model_dir "
        "trains again)")


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

    path = storage.path(path)
    # From the config alone: clone_model would copy the compile settings.
    clone = keras.Model.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    with atomic_files.replacing(path, suffix=".keras") as tmp:
        clone.save(str(tmp))


def build_training_model(recipe, num_classes, stats=None, task=None,
                         class_names=None):
    """The TRAINING MODEL of a task (uncompiled).

    Build it under the strategy's scope.

    Args:
        recipe: ``tfcnn.recipe.Recipe``.
        num_classes: int, K.
        stats: ``tfcnn.data.stats.DatasetStats`` or None.
        task: ``tfcnn.tasks.task.Task`` or None (image classification).
        class_names: list of str or None; with ``model.weights`` from a
            tfcnn run of other classes, the classifier starts fresh.

    Returns:
        a functional ``keras.Model`` from uint8 images to float32
        probabilities (``tfcnn.tasks``: ``[B, K]`` per image, or
        ``[B, H, W, K]`` per pixel).
    """
    return _task(task).build_training_model(recipe, num_classes, stats,
                                            class_names=class_names)


def compile_model(model, recipe, steps_per_epoch, dense_labels=False, *,
                  task=None, class_names=(), label_counts=None):
    """Compiles with the recipe's optimizer and the task's loss and metrics.

    Call it under the strategy's scope.

    Args:
        model: the TRAINING MODEL.
        recipe: ``tfcnn.recipe.Recipe``.
        steps_per_epoch: int, for the learning-rate schedule.
        dense_labels: bool, MixUp/CutMix labels. Defaults to False.
        task: ``tfcnn.tasks.task.Task`` or None (image classification).
        class_names: list of str, for class weights. Defaults to none.
        label_counts: dict class name -> labels, for class weights.
            Defaults to None.
    """
    from tfcnn.train import backend
    from tfcnn.train import optimizers

    config = recipe.train
    task = _task(task)
    optimizers.apply_weight_decay(model, config)
    # train.jit_compile is TensorFlow's choice; JAX compiles every step
    # with XLA (jax.jit), and runs op by op without it.
    jit_compile = config.jit_compile if backend.is_tensorflow() else True
    model.compile(
        optimizer=optimizers.build_optimizer(config, steps_per_epoch),
        loss=task.build_loss(recipe, class_names, label_counts),
        metrics=task.build_metrics(
            task.inference_model(model).output_shape[-1], dense_labels),
        jit_compile=jit_compile,
        steps_per_execution=config.steps_per_execution)


def _task(task):
    from tfcnn import tasks

    return task if task is not None else tasks.default_task()


def _build_before_fit(model, dataset):
    """Builds the model's, loss's, metrics' and optimizer's state up front.

    Call it under the strategy's scope. ``fit`` would build them from its
    first distributed batch, which it first averages over the replicas with
    ``strategy.reduce``; under ``MultiWorkerMirroredStrategy`` that reduce
    fails on the uint8 images (Keras 3.15: "Attempt to convert a value
    (PerReplica...) to a Tensor"). Only the shapes and dtypes of a batch
    matter, so a local one serves, and ``fit``'s own step is skipped.

    Keras has no public way to skip that step, hence the private
    ``_symbolic_build`` (what ``fit`` itself calls) and the replaced
    ``_maybe_symbolic_build``. The multi-worker failures of Keras 3 on
    ``tf.distribute`` are keras-team/keras#20585 (open) and
    tensorflow/tensorflow#72388; ``tests/train/test_keras_patches.py``
    fails once Keras builds from a distributed uint8 batch by itself.
    """
    batch = next(iter(dataset.take(1)))
    model._symbolic_build(data_batch=batch)
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    model._maybe_symbolic_build = _already_built


def _already_built(iterator=None, data_batch=None):
    del iterator, data_batch  # built by _build_before_fit


def _fit_in_stages(model, data, epochs, fit_args, history, guard,
                   staged=None):
    """Fits each stage of ``staged`` that is not done yet, in order.

    The stage of a resumed run follows from the optimizer's step count.
    """
    if staged is None:
        _fit_from(model, data, epochs, fit_args, history, guard)
        return
    for stage in staged.stages:
        done = int(model.optimizer.iterations.numpy())
        if done >= stage.end_epoch * data.steps_per_epoch:
            continue
        staged.enter(stage)
        _fit_from(model, data, stage.end_epoch, fit_args, history, guard)
        if guard.diverged is not None or model.stop_training:
            return  # diverged, or stopped early (train.early_stopping_...)


def _fit_from(model, data, epochs, fit_args, history, guard):
    """Fits from the optimizer's step count to ``epochs``.

    A run restored in the middle of an epoch first finishes that epoch
    (its remaining steps), then runs whole epochs.
    """
    steps = data.steps_per_epoch
    epoch, step = divmod(int(model.optimizer.iterations.numpy()), steps)
    if step and epoch < epochs:
        _merge(history, model.fit(data.train, initial_epoch=epoch,
                                  epochs=epoch + 1,
                                  steps_per_epoch=steps - step, **fit_args))
        epoch += 1
        if guard.diverged is not None or model.stop_training:
            return
    if epoch < epochs:
        _merge(history, model.fit(data.train, initial_epoch=epoch,
                                  epochs=epochs, steps_per_epoch=steps,
                                  **fit_args))


def _merge(history, result):
    for key, values in result.history.items():
        history.setdefault(key, []).extend(float(v) for v in values)


def _tensorboard_callbacks(recipe, data, write_dir):
    from tfcnn import summaries
    from tfcnn.train import hparams

    config = recipe.train
    logs = RunFolder(write_dir).logs
    profile = _profile_steps(config.profile_steps)
    return [
        summaries.EpochScalars(
            log_dir=str(logs), histogram_freq=config.histogram_freq,
            write_graph=False, update_freq="epoch", profile_batch=profile),
        summaries.StepMonitor(logs / "train", config.batch_size,
                              every_steps=min(100, data.steps_per_epoch)),
        *data.task.summary_callbacks(logs, data),
        hparams.RunHParams(logs, recipe),
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


_TF_CONTEXT = re.compile(r"\{\{function_node [^}]*\}\}|\[\[\{\{node [^]]*\]\]"
                         r"|\[Op:[^\]]*\]|\s*\[\[[^\]]*\]\]")


def _worker_lost_message(error, recipe):
    lines = [line.strip() for line in str(error.message).splitlines()]
    found = [i for i, line in enumerate(lines)
             if "abort" in line.lower() or "unhealthy" in line.lower()]
    first = found[0] if found else 0
    # The unhealthy tasks' names follow on their own lines.
    names = [line for line in lines[first + 1:first + 4]
             if line.startswith("/job:")]
    cause = " ".join([lines[first] if lines else "", *names])
    # TensorFlow appends the graph function that ran the collective
    # ("[[{{node ...}}]] [Op:__inference_...]", "{{function_node ...}}"):
    # noise to a user, who needs the cause and the lost task.
    cause = _TF_CONTEXT.sub("", cause)
    return (f"a worker of this multi-worker run was lost "
            f"({type(error).__name__}: {cause.strip()[:300]}). Start the same "
            f"command on every worker again: training resumes from "
            f"{RunFolder(recipe.train.model_dir).backup} at its last saved "
            f"step")


def _diverged_message(diverged, model_dir, checkpoints):
    last = checkpoints.state.get("last")
    kept = (f"checkpoints/last.keras (epoch {last['epoch']})" if last
            else "no checkpoint (it diverged in the first epoch)")
    return (f"training diverged: the loss became {diverged['loss']} at epoch "
            f"{diverged['epoch'] + 1}, step {diverged['step']}; kept {kept} "
            f"and the last good backup in {model_dir}. Lower "
            f"train.learning_rate or add train.warmup_epochs. Received: "
            f"loss={diverged['loss']}")


def _format_logs(logs, keys):
    return ", ".join(f"{k} {logs[k]:.4f}" for k in keys if k in logs)
