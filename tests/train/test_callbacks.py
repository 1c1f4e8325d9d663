"""Tests of tfcnn.train.callbacks: backups, checkpoints, NaN guard."""

import json

import keras
import numpy as np

from tfcnn.train import callbacks


def _model(steps_per_epoch=None):
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    model.compile(keras.optimizers.SGD(0.1, momentum=0.9), loss="mse")
    model.optimizer.build(model.trainable_variables)
    return model


def test_backup_round_trip_keeps_weights_slots_and_step(tmp_path):
    model = _model()
    x, y = np.ones((4, 3), np.float32), np.zeros((4, 2), np.float32)
    for _ in range(5):
        model.train_on_batch(x, y)
    backup = callbacks.Backup(tmp_path / "backup", save_steps=2)
    backup.set_model(model)
    backup.steps_per_epoch = 3
    backup.save()
    state = callbacks.read_backup(tmp_path / "backup")
    assert (state["global_step"], state["epoch"], state["step"]) == (5, 1, 2)
    assert [p.name for p in (tmp_path / "backup").iterdir()
            if p.suffix == ".h5"] == ["backup-0000000005.weights.h5"]

    fresh = _model()
    restored = callbacks.restore_backup(fresh, tmp_path / "backup")
    assert restored["global_step"] == 5
    assert int(fresh.optimizer.iterations.numpy()) == 5
    for a, b in zip(fresh.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(fresh.optimizer.variables, model.optimizer.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_a_half_written_backup_is_never_read(tmp_path):
    backup_dir = tmp_path / "backup"
    assert callbacks.read_backup(backup_dir) is None
    backup_dir.mkdir()
    # A kill between writing the weights and the pointer leaves only a
    # temporary file, or a pointer to a file that is not there.
    (backup_dir / ".backup-0000000007.weights.h5.tmp.weights.h5").write_text(
        "partial")
    assert callbacks.read_backup(backup_dir) is None
    (backup_dir / "state.json").write_text(json.dumps(
        {"weights": "backup-0000000007.weights.h5", "global_step": 7,
         "epoch": 0, "step": 7, "steps_per_epoch": 10}))
    assert callbacks.read_backup(backup_dir) is None
    (backup_dir / "state.json").write_text('{"weights": "backup-')
    assert callbacks.read_backup(backup_dir) is None


def test_backup_skips_non_finite_losses(tmp_path):
    model = _model()
    backup = callbacks.Backup(tmp_path / "backup", save_steps=1)
    backup.set_model(model)
    backup.steps_per_epoch = 4
    backup.on_train_batch_end(0, {"loss": float("nan")})
    assert callbacks.read_backup(tmp_path / "backup") is None


def test_best_checkpoint_survives_a_restart(tmp_path):
    model = _model()
    first = callbacks.Checkpoints(tmp_path)
    first.set_model(model)
    first.on_epoch_end(0, {"loss": 1.0, "val_accuracy": 0.8})
    first.on_epoch_end(1, {"loss": 0.9, "val_accuracy": 0.6})
    # A new run over the same folder (resumed) knows the best so far.
    second = callbacks.Checkpoints(tmp_path)
    second.set_model(model)
    second.on_epoch_end(2, {"loss": 0.8, "val_accuracy": 0.7})
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["best"]["epoch"] == 1 and state["best"]["value"] == 0.8
    assert state["last"]["epoch"] == 3
    assert (tmp_path / "best.keras").is_file()
    assert (tmp_path / "last.keras").is_file()
    second.on_epoch_end(3, {"loss": float("nan"), "val_accuracy": 0.9})
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["last"]["epoch"] == 3  # a NaN epoch is not kept


def test_nan_guard_records_the_first_bad_step():
    model = _model()
    guard = callbacks.NanGuard()
    guard.set_model(model)
    guard.on_epoch_begin(2)
    guard.on_train_batch_end(0, {"loss": 0.5})
    assert guard.diverged is None and not model.stop_training
    guard.on_train_batch_end(1, {"loss": float("inf")})
    guard.on_train_batch_end(2, {"loss": float("nan")})
    assert guard.diverged == {"epoch": 2, "step": 1, "loss": float("inf")}
    assert model.stop_training


def test_backup_and_checkpoints_on_object_storage(tmp_path):
    """On ram:// (TensorFlow's in-memory filesystem, standing in for gs://)
    the backup round-trips and both checkpoints are written."""
    import tensorflow as tf

    root = f"ram://{tmp_path.name}"
    model = _model()
    x, y = np.ones((4, 3), np.float32), np.zeros((4, 2), np.float32)
    for _ in range(3):
        model.train_on_batch(x, y)
    backup = callbacks.Backup(f"{root}/backup", save_steps=2)
    backup.set_model(model)
    backup.steps_per_epoch = 3
    backup.save()
    fresh = _model()
    assert callbacks.restore_backup(fresh, f"{root}/backup")[
        "global_step"] == 3
    for a, b in zip(fresh.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)

    checkpoints = callbacks.Checkpoints(f"{root}/checkpoints")
    checkpoints.set_model(model)
    checkpoints.on_epoch_end(0, {"loss": 1.0, "val_accuracy": 0.5})
    assert sorted(tf.io.gfile.listdir(f"{root}/checkpoints")) == [
        "best.keras", "last.keras", "state.json"]
    again = callbacks.Checkpoints(f"{root}/checkpoints")
    assert again.state["best"]["value"] == 0.5
    tf.io.gfile.rmtree(root)
def _stopping_run(tmp_path, patience):
    model = _model()
    checkpoints = callbacks.Checkpoints(tmp_path / "checkpoints")
    stopping = callbacks.EarlyStopping(checkpoints, patience)
    for callback in (checkpoints, stopping):
        callback.set_model(model)
    return model, checkpoints, stopping


def _epoch(model, checkpoints, stopping, epoch, accuracy):
    # The weights of epoch e are all e, so a restore shows which it was.
    for variable in model.trainable_variables:
        variable.assign(np.full(variable.shape, float(epoch), np.float32))
    logs = {"loss": 1.0, "val_accuracy": accuracy}
    checkpoints.on_epoch_end(epoch, logs)
    stopping.on_epoch_end(epoch, logs)


def test_early_stopping_stops_and_restores_the_best_epoch(tmp_path):
    model, checkpoints, stopping = _stopping_run(tmp_path, patience=2)
    for epoch, accuracy in enumerate((0.5, 0.7, 0.6)):
        _epoch(model, checkpoints, stopping, epoch, accuracy)
        assert not model.stop_training
    _epoch(model, checkpoints, stopping, 3, 0.65)
    assert model.stop_training and stopping.stopped_epoch == 4
    stopping.on_train_end()
    for variable in model.trainable_variables:
        np.testing.assert_array_equal(np.array(variable), 1.0)


def test_early_stopping_counts_on_after_a_restart(tmp_path):
    model, checkpoints, stopping = _stopping_run(tmp_path, patience=2)
    for epoch, accuracy in enumerate((0.5, 0.7, 0.6)):
        _epoch(model, checkpoints, stopping, epoch, accuracy)
    # A new process: the callbacks start from the checkpoints' state, so
    # one more epoch without improvement stops (not two).
    model, checkpoints, stopping = _stopping_run(tmp_path, patience=2)
    _epoch(model, checkpoints, stopping, 3, 0.6)
    assert model.stop_training
    stopping.on_train_end()
    np.testing.assert_array_equal(np.array(model.trainable_variables[0]),
                                  1.0)
