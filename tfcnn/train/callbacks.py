"""Training callbacks: backups, checkpoints and the NaN guard.

- ``Backup``: the training state (weights, optimizer slots and step count)
  every ``train.backup_steps`` steps and at every epoch end, written so that
  a kill at any moment (``kill -9`` included) leaves a complete backup.
  Keras' ``BackupAndRestore`` overwrites one ``.weights.h5`` in place (a kill
  during the write corrupts it) and resumes at the start of the epoch; this
  one writes a new file, then swaps a small pointer file atomically, and
  ``restore`` gives back the exact step, which ``tfcnn.train.fit`` resumes
  at.
- ``Checkpoints``: ``checkpoints/last.keras`` after every epoch and
  ``checkpoints/best.keras`` when the validation top-1 accuracy improves;
  each is a whole model that ``tfcnn export`` accepts.
- ``NanGuard``: stops training at the first non-finite loss; the backup and
  checkpoints written before it are kept (both skip non-finite logs).
- ``EarlyStopping``: ``train.early_stopping_patience``, on the state that
  ``Checkpoints`` keeps on disk, so a resumed run counts on.
- ``AveragedWeights``: ``train.ema_decay``; the moving average replaces the
  weights once, when the run ends (``apply_average``).
"""

import json
import math

import keras

from tfcnn import atomic_files
from tfcnn import storage

STATE_NAME = "state.json"


class Backup(keras.callbacks.Callback):
    """Crash-proof backup of the training state.

    Every worker of a multi-worker run saves at the same steps (reading
    some variables takes a collective); only the chief's ``backup_dir`` is
    the run's, the others point at temporary folders.

    Args:
        backup_dir: str or Path, where this process writes its backups.
        save_steps: int, also back up every this many steps within an
            epoch; 0 backs up at epoch ends only. Defaults to 0.
    """

    def __init__(self, backup_dir, save_steps=0):
        super().__init__()
        if save_steps < 0:
            raise ValueError(
                f"save_steps must be >= 0. Received: save_steps={save_steps}")
        self.backup_dir = storage.path(backup_dir)
        self.save_steps = save_steps
        self.steps_per_epoch = None  # set by the fit loop
        self._epoch_start = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = self._global_step()

    def on_train_batch_end(self, batch, logs=None):
        if not self.save_steps or not _finite(logs):
            return
        # Counted from the epoch's first step, not read from the model:
        # under JAX, reading a variable from a callback copies the whole
        # training state back into the model at every step.
        step = self._epoch_start + batch + 1
        if step % self.save_steps == 0 and not self._at_epoch_end(step):
            self.save()

    def on_epoch_end(self, epoch, logs=None):
        if _finite(logs) and not self.model.stop_training:
            self.save()

    def save(self):
        """Writes the state now: weights file first, then the pointer."""
        self.backup_dir.mkdir(parents=True, exist_ok=True)
        step = self._global_step()
        name = f"backup-{step:010d}.weights.h5"
        with atomic_files.replacing(self.backup_dir / name,
                                    suffix=".weights.h5") as tmp:
            self.model.save_weights(str(tmp), overwrite=True)
        epoch, step_in_epoch = divmod(step, self.steps_per_epoch)
        atomic_files.write_json_atomic(self.backup_dir / STATE_NAME, {
            "weights": name, "global_step": step, "epoch": epoch,
            "step": step_in_epoch, "steps_per_epoch": self.steps_per_epoch})
        for old in self.backup_dir.glob("backup-*.weights.h5"):
            if old.name != name:
                old.unlink(missing_ok=True)

    def _global_step(self):
        return int(self.model.optimizer.iterations.numpy())

    def _at_epoch_end(self, step):
        # on_epoch_end saves this step anyway.
        return step % self.steps_per_epoch == 0


def read_backup(backup_dir):
    """The backup's state dict, or None when there is no complete backup.

    Args:
        backup_dir: str or Path.

    Returns:
        dict with ``weights`` (a Path), ``global_step``, ``epoch``, ``step``
        and ``steps_per_epoch``, or None.
    """
    backup_dir = storage.path(backup_dir)
    try:
        state = json.loads((backup_dir / STATE_NAME).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    weights = backup_dir / state["weights"]
    if not weights.is_file():
        return None
    state["weights"] = weights
    return state


def restore_backup(model, backup_dir):
    """Loads a backup into a compiled model.

    Args:
        model: a compiled ``keras.Model`` (under its strategy's scope).
        backup_dir: str or Path.

    Returns:
        the state dict of ``read_backup``, or None when there was nothing
        to restore.
    """
    state = read_backup(backup_dir)
    if state is None:
        return None
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    model.load_weights(str(state["weights"]))
    return state


class Checkpoints(keras.callbacks.Callback):
    """``last.keras`` every epoch, ``best.keras`` on a better validation.

    ``checkpoints/state.json`` records the epoch and metrics of each, so
    that a restarted run keeps its best and never overwrites it with a
    worse epoch.

    Args:
        directory: str or Path, the ``checkpoints`` folder.
        monitor: str, the log key to maximise. Defaults to "val_accuracy";
            when the logs lack it (no validation split), the training
            metric ("accuracy").
    """

    def __init__(self, directory, monitor="val_accuracy"):
        super().__init__()
        self.directory = storage.path(directory)
        self.monitor = monitor
        self.state = _read_json(self.directory / STATE_NAME) or {}

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        if not _finite(logs):
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        metrics = {k: float(v) for k, v in logs.items()
                   if isinstance(v, (int, float)) or hasattr(v, "__float__")}
        with atomic_files.replacing(self.directory / "last.keras",
                                    suffix=".keras") as tmp:
            self.model.save(str(tmp))
        self.state["last"] = {"epoch": epoch + 1, "metrics": metrics}
        monitor = (self.monitor if self.monitor in logs
                   else self.monitor.removeprefix("val_"))
        value = metrics.get(monitor)
        best = self.state.get("best")
        if value is not None and (best is None or value > best["value"]):
            # The same model as last.keras: copy the file, don't re-save.
            with atomic_files.replacing(self.directory / "best.keras") as tmp:
                storage.copy_file(self.directory / "last.keras", tmp)
            self.state["best"] = {"epoch": epoch + 1, "monitor": monitor,
                                  "value": value, "metrics": metrics}
        atomic_files.write_json_atomic(self.directory / STATE_NAME,
                                       self.state)


class NanGuard(keras.callbacks.Callback):
    """Stops training at the first NaN or infinite loss.

    Attributes:
        diverged: None, or a dict with ``epoch``, ``step`` (0-based, within
            the epoch) and ``loss`` of the first non-finite loss.
    """

    def __init__(self):
        super().__init__()
        self.diverged = None
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None or self.diverged is not None:
            return
        loss = float(loss)
        if not math.isfinite(loss):
            self.diverged = {"epoch": self._epoch, "step": batch,
                             "loss": loss}
            self.model.stop_training = True


class EarlyStopping(keras.callbacks.Callback):
    """Stops when the monitored metric has not improved for ``patience``
    epochs and restores the best epoch's weights.

    Keras' ``EarlyStopping`` keeps its counter and the best weights in
    memory and resets them in every ``fit`` call; a tfcnn run calls
    ``fit`` several times (the rest of an interrupted epoch, the stages of
    ``train.head_epochs``) and resumes in another process. This one reads
    the best and last epochs from the ``Checkpoints`` callback's state
    (``checkpoints/state.json``, written before it at each epoch end) and
    restores ``checkpoints/best.keras``, so it holds nothing of its own.
    Place it after the ``Checkpoints``.

    Args:
        checkpoints: the run's ``Checkpoints`` callback.
        patience: int > 0, epochs without a better best.

    Attributes:
        stopped_epoch: None, or the 1-based epoch after which it stopped.
    """

    def __init__(self, checkpoints, patience):
        super().__init__()
        if patience <= 0:
            raise ValueError(
                f"patience must be > 0. Received: patience={patience}")
        self.checkpoints = checkpoints
        self.patience = patience
        self.stopped_epoch = None

    def on_epoch_end(self, epoch, logs=None):
        best = self.checkpoints.state.get("best")
        last = self.checkpoints.state.get("last")
        if best is None or last is None or last["epoch"] != epoch + 1:
            return
        if last["epoch"] - best["epoch"] >= self.patience:
            self.stopped_epoch = epoch + 1
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch is None:
            return
        best = self.checkpoints.directory / "best.keras"
        self.model.load_weights(best)
        print(f"train: stopped early after epoch {self.stopped_epoch}; "
              f"restored epoch {self.checkpoints.state['best']['epoch']} "
              f"from {best}", flush=True)


class AveragedWeights(keras.callbacks.Callback):
    """Holds back Keras' swap to the weights' moving average until the end.

    An optimizer with ``use_ema`` overwrites the weights with their
    average at the end of every ``fit`` call; a tfcnn run calls ``fit``
    several times, and each swap would restart training from the average.
    This callback turns the swap off for the run; ``apply_average`` does
    it once, before the model is saved.
    """

    def on_train_begin(self, logs=None):
        hold_average(self.model.optimizer)


def hold_average(optimizer):
    """Makes ``optimizer.finalize_variable_values`` do nothing.

    Args:
        optimizer: a ``keras.optimizers.Optimizer`` (or its loss-scale
            wrapper).
    """
    optimizer.finalize_variable_values = _keep_weights


def _keep_weights(var_list):
    del var_list  # tfcnn.train.callbacks.apply_average swaps once


def apply_average(model):
    """Replaces the trained weights with their moving average (EMA).

    Does nothing when the optimizer keeps no average. The optimizer was
    built on every trainable variable (``tfcnn.train.fit``), and its
    average is in that order, so the swap uses that list whatever the
    current stage freezes.

    Args:
        model: the compiled TRAINING MODEL.

    Returns:
        bool, whether the weights were replaced.
    """
    optimizer = model.optimizer
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    if not getattr(inner, "use_ema", False):
        return False
    type(inner).finalize_variable_values(inner, inner._trainable_variables)
    return True


def practice_callbacks(config, checkpoints):
    """The callbacks of ``train.early_stopping_patience`` and
    ``train.ema_decay`` (none when both are off).

    Args:
        config: ``tfcnn.recipe.TrainConfig``.
        checkpoints: the run's ``Checkpoints``; the callbacks go after it.

    Returns:
        list of callbacks.
    """
    found = []
    if config.early_stopping_patience:
        found.append(EarlyStopping(checkpoints,
                                   config.early_stopping_patience))
    if config.ema_decay:
        found.append(AveragedWeights())
    return found


def _finite(logs):
    loss = (logs or {}).get("loss")
    return loss is None or math.isfinite(float(loss))


def _read_json(path):
    try:
        return json.loads(storage.path(path).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
