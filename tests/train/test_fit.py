"""Tests of tfcnn.train.fit: the fit loop under strategies, NaN, resume."""

import json
import math
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.train.conftest import assert_same_steps
from tests.train.conftest import tiny_recipe
from tests.train.conftest import two_step_setup
from tfcnn import losses  # noqa: F401 - registers CrossEntropy
from tfcnn import tasks
from tfcnn.train import callbacks as callbacks_lib
from tfcnn.train import fit
from tfcnn.train import inputs
from tfcnn.train.strategy import mirrored


@pytest.fixture
def trained(trained_run):
    return trained_run


def test_train_writes_the_run_and_learns(trained):
    recipe, summary = trained
    model_dir = tf.io.gfile.join(recipe.train.model_dir)
    for name in ("model.keras", "classes.json", "recipe.toml",
                 "training.json", "checkpoints/last.keras",
                 "checkpoints/best.keras", "logs/train",
                 "logs/validation"):
        assert tf.io.gfile.exists(f"{model_dir}/{name}"), name
    assert not tf.io.gfile.exists(f"{model_dir}/backup")
    assert summary["epochs_run"] == 3 and summary["resumed_from"] is None
    # 4 classes: chance is ln(4) = 1.386.
    assert summary["metrics"]["val_loss"] < math.log(4) - 0.2
    classes = json.loads(open(f"{model_dir}/classes.json").read())
    assert classes == {"class_names": [f"class_{i}" for i in range(4)]}
    assert fit.is_complete(recipe)
    assert not fit.is_complete(recipe.replace(train={"epochs": 4}))


def test_trained_model_keeps_the_contract(trained):
    recipe, _ = trained
    model = keras.saving.load_model(f"{recipe.train.model_dir}/model.keras")
    # Saved without compile settings: loading needs no tfcnn.train loss.
    assert not model.compiled
    assert model.inputs[0].dtype == "uint8"
    assert tuple(model.input_shape) == (None, 20, 20, 3)
    images = np.zeros((2, 20, 20, 3), np.uint8)
    probabilities = keras.ops.convert_to_numpy(model(images))
    assert probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_mirrored_over_two_cpus_trains(make_recipe):
    recipe = make_recipe(strategy="mirrored", devices=["/cpu:0", "/cpu:1"],
                         epochs=3)
    summary = fit.train(recipe, verbose=0)
    assert summary["num_replicas"] == 2
    assert summary["metrics"]["val_loss"] < math.log(4) - 0.2


def _two_steps(recipe, strategy, initial_weights, batch):
    with strategy.scope():
        model = fit.build_training_model(recipe, 4)
        fit.compile_model(model, recipe, steps_per_epoch=2)
    model.set_weights(initial_weights)
    dataset = tf.data.Dataset.from_tensors(batch).repeat()
    model.fit(dataset, epochs=1, steps_per_epoch=2, verbose=0, shuffle=False)
    return model.get_weights()


def test_two_replicas_match_one_device(tmp_path):
    # Guards against Keras-on-TF multi-replica bugs where gradients were not
    # aggregated or were scaled twice (keras#19891, #21061).
    recipe, initial, batch = two_step_setup(tmp_path)
    one = _two_steps(recipe, tf.distribute.OneDeviceStrategy("/cpu:0"),
                     initial, batch)
    two = _two_steps(recipe, mirrored(["/cpu:0", "/cpu:1"]), initial, batch)
    assert_same_steps(initial, one, two)


class _Poison(keras.callbacks.Callback):
    """Makes every weight NaN at the start of the second epoch."""

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 1:
            for variable in self.model.trainable_variables:
                variable.assign(tf.fill(variable.shape, math.nan))


def test_nan_loss_stops_cleanly_and_keeps_last_good_state(make_recipe):
    recipe = make_recipe(epochs=2, backup_steps=0)
    with pytest.raises(fit.DivergedError, match=r"epoch 2, step 0"):
        fit.train(recipe, verbose=0, callbacks=[_Poison()])
    model_dir = recipe.train.model_dir
    assert not fit.is_complete(recipe)
    state = json.loads(open(f"{model_dir}/checkpoints/state.json").read())
    assert state["last"]["epoch"] == 1
    last = keras.saving.load_model(f"{model_dir}/checkpoints/last.keras")
    assert all(np.isfinite(w).all() for w in last.get_weights())
    backup = callbacks_lib.read_backup(f"{model_dir}/backup")
    assert (backup["epoch"], backup["step"]) == (1, 0)


class _Crash(keras.callbacks.Callback):
    def __init__(self, at_step):
        super().__init__()
        self.at_step = at_step

    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.optimizer.iterations.numpy()) == self.at_step:
            raise KeyboardInterrupt("simulated crash")


def test_rerun_resumes_inside_the_epoch_it_stopped_in(make_recipe):
    # 64 images / 16 = 4 steps per epoch; backups every 2 steps. A crash
    # after step 7 leaves the backup of global step 6: epoch 2, step 2.
    recipe = make_recipe(epochs=2)
    with pytest.raises(KeyboardInterrupt):
        fit.train(recipe, verbose=0, callbacks=[_Crash(7)])
    keras.backend.clear_session()
    summary = fit.train(recipe, verbose=0)
    assert summary["resumed_from"] == {"epoch": 1, "step": 2}
    assert summary["epochs_run"] == 1  # the last 2 steps of epoch 2
    assert fit.is_complete(recipe)
    last = keras.saving.load_model(
        f"{recipe.train.model_dir}/checkpoints/last.keras")
    assert int(last.optimizer.iterations.numpy()) == 8


def test_tensorboard_event_files_hold_the_promised_summaries(trained):
    from tensorboard.backend.event_processing import event_accumulator

    recipe, _ = trained
    expected = {
        "train": {"epoch_loss": "scalars", "epoch_accuracy": "scalars",
                  "epoch_learning_rate": "scalars",
                  "training/loss": "scalars",
                  "training/accuracy": "scalars",
                  "training/learning_rate": "scalars",
                  "training/images_per_second": "scalars",
                  "training/input_wait_fraction": "scalars",
                  "inputs/augmented": "images",
                  "filters/first_layer": "images",
                  "conv1/kernel/histogram": "histograms"},
        "validation": {"epoch_loss": "scalars", "epoch_accuracy": "scalars",
                       "evaluation/confusion_matrix": "images"},
    }
    for run, tags in expected.items():
        accumulator = event_accumulator.EventAccumulator(
            f"{recipe.train.model_dir}/logs/{run}",
            size_guidance={event_accumulator.TENSORS: 0})
        accumulator.Reload()
        for tag, plugin in tags.items():
            metadata = accumulator.SummaryMetadata(tag)
            assert metadata.plugin_data.plugin_name == plugin, tag
            if "/" in tag and plugin == "scalars":
                # Cards say what a scalar is and in what unit.
                assert metadata.summary_description, tag
            events = accumulator.Tensors(tag)
            assert events, tag
        if run == "train":
            assert accumulator.Tags()["graph"]
            # Each epoch shows a fresh draw of the augmentation.
            assert len(accumulator.Tensors("inputs/augmented")) > 1
            wait = [tf.make_ndarray(e.tensor_proto)
                    for e in accumulator.Tensors(
                        "training/input_wait_fraction")]
            assert all(0.0 <= w <= 1.0 for w in wait)
            rates = accumulator.Tensors("training/images_per_second")
            assert all(tf.make_ndarray(e.tensor_proto) > 0 for e in rates)
    traces = list(Path(recipe.train.model_dir).glob(
        "logs/train/plugins/profile/*/*.xplane.pb"))
    assert traces, "no profiler trace of steps 2-3"
    confusion = event_accumulator.EventAccumulator(
        f"{recipe.train.model_dir}/logs/validation",
        size_guidance={event_accumulator.TENSORS: 0})
    confusion.Reload()
    # One confusion matrix per validation (3 epochs).
    assert len(confusion.Tensors("evaluation/confusion_matrix")) == 3


def test_synthetic_inputs_are_global_batches(make_recipe):
    data = inputs.training_inputs(make_recipe())
    images, labels = next(iter(data.train))
    assert images.dtype == tf.uint8 and images.shape == (16, 20, 20, 3)
    assert labels.dtype == tf.int32 and labels.shape == (16,)
    assert data.steps_per_epoch == 4 and data.num_classes == 4


@pytest.mark.slow
def test_run_killed_with_sigkill_resumes_from_its_backup(tmp_path):
    import subprocess
    import sys

    from tests.train.conftest import kill_after
    from tests.train.conftest import subprocess_env
    from tests.train.conftest import write_run_files

    # 96 images / 16 = 6 steps per epoch, a backup every 2 steps.
    recipe = tiny_recipe(tmp_path / "run", epochs=3)
    recipe = recipe.replace(data={"synthetic_images": 96})
    driver, recipe_path = write_run_files(tmp_path, recipe)
    command = [sys.executable, str(driver), str(recipe_path), "0.25"]
    backup_dir = tmp_path / "run" / "backup"
    process = subprocess.Popen(command, env=subprocess_env(),
                               stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    def inside_second_epoch():
        state = callbacks_lib.read_backup(backup_dir)
        return state if state and state["global_step"] >= 8 else None

    kill_after(process, inside_second_epoch, timeout=120)
    state = callbacks_lib.read_backup(backup_dir)
    assert state["epoch"] >= 1 and state["global_step"] < 18

    rerun = subprocess.run(command, env=subprocess_env(), timeout=120,
                           capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert (f"at epoch {state['epoch'] + 1}, step {state['step']} "
            f"(global step {state['global_step']})") in rerun.stderr
    record = json.loads((tmp_path / "run" / "training.json").read_text())
    assert record["complete"] and record["epochs_completed"] == 3
    assert record["resumed_from"] == {"epoch": state["epoch"],
                                      "step": state["step"]}
    assert record["epochs_run"] == 3 - state["epoch"]
    last = keras.saving.load_model(tmp_path / "run/checkpoints/last.keras")
    assert int(last.optimizer.iterations.numpy()) == 18


@pytest.mark.slow
def test_speed_options_mixed_bfloat16_xla_steps_per_execution(make_recipe):
    recipe = make_recipe(epochs=1, precision="mixed_bfloat16",
                         jit_compile=True, steps_per_execution=2)
    summary = fit.train(recipe, verbose=0)
    assert math.isfinite(summary["metrics"]["loss"])
    assert keras.config.dtype_policy().name == "float32"  # restored
    model = keras.saving.load_model(f"{recipe.train.model_dir}/model.keras")
    network = model.get_layer("lenet5")
    assert network.get_layer("conv1").compute_dtype == "bfloat16"
    probabilities = model(np.zeros((1, 20, 20, 3), np.uint8))
    assert keras.ops.convert_to_numpy(probabilities).dtype == np.float32


class _LosePeerOnce(keras.callbacks.Callback):
    """Raises what a collective raises when a worker dies, once."""

    def __init__(self, at_step):
        super().__init__()
        self.at_step = at_step
        self.raised = False

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        if step == self.at_step and not self.raised:
            self.raised = True
            raise tf.errors.UnavailableError(None, None, "peer lost")


def test_collective_failure_restarts_fit_from_the_backup(make_recipe,
                                                         capfd):
    recipe = make_recipe(epochs=2)
    lose = _LosePeerOnce(at_step=5)
    summary = fit.train(recipe, verbose=0, callbacks=[lose])
    assert lose.raised
    assert "UnavailableError" in capfd.readouterr().err
    assert fit.is_complete(recipe)
    last = keras.saving.load_model(
        f"{recipe.train.model_dir}/checkpoints/last.keras")
    # Restored at the backup of step 4, then ran to the end: 8 steps.
    assert int(last.optimizer.iterations.numpy()) == 8
    assert summary["metrics"]


class _RecordLossScale(keras.callbacks.Callback):
    """Records the optimizer's loss scale and a float16 kernel per step."""

    def __init__(self):
        super().__init__()
        self.scales = []
        self.kernels = []

    def on_train_batch_end(self, batch, logs=None):
        optimizer = self.model.optimizer
        if not isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
            raise TypeError(f"no loss scaling: {type(optimizer).__name__}")
        self.scales.append(float(optimizer.dynamic_scale.numpy()))
        network = self.model.get_layer("lenet5")
        self.kernels.append(keras.ops.convert_to_numpy(
            network.get_layer("conv1").kernel).copy())


def test_mixed_float16_trains_with_dynamic_loss_scaling(make_recipe,
                                                        monkeypatch):
    """A few steps in float16 with float32 variables: the optimizer is
    Keras' LossScaleOptimizer (the gradients of the scaled loss are
    unscaled before the update), every step moves the weights, and the
    loss stays finite and falls."""
    recorder = _RecordLossScale()
    real_fit = keras.Model.fit

    def fit_recording(self, *args, callbacks=None, **kwargs):
        return real_fit(self, *args, callbacks=[*callbacks, recorder],
                        **kwargs)

    monkeypatch.setattr(keras.Model, "fit", fit_recording)
    recipe = make_recipe(epochs=2, precision="mixed_float16")
    summary = fit.train(recipe, verbose=0)
    assert keras.config.dtype_policy().name == "float32"  # restored
    assert math.isfinite(summary["metrics"]["loss"])
    assert summary["metrics"]["val_loss"] < math.log(4)
    # The loss was scaled: Keras starts at 2**15 and halves on overflow.
    assert recorder.scales and all(s >= 1.0 for s in recorder.scales)
    assert recorder.scales[0] <= 2.0**15
    kernels = recorder.kernels
    assert kernels[0].dtype == np.float32  # float32 master weights
    assert sum(not np.array_equal(a, b)
               for a, b in zip(kernels, kernels[1:])) >= len(kernels) - 2
    model = keras.saving.load_model(f"{recipe.train.model_dir}/model.keras")
    network = model.get_layer("lenet5")
    assert network.get_layer("conv1").compute_dtype == "float16"
    assert network.get_layer("conv1").variable_dtype == "float32"
    probabilities = model(np.zeros((1, 20, 20, 3), np.uint8))
    assert keras.ops.convert_to_numpy(probabilities).dtype == np.float32


def test_two_replicas_match_one_device_on_a_segmentation_step(tmp_path):
    # Void pixels sit unevenly between the replicas' halves of the batch:
    # the loss must be the mean over the whole batch's valid pixels. No
    # batch norm: its statistics are per replica by design.
    recipe = tiny_recipe(tmp_path, optimizer="sgd", learning_rate=0.1)
    recipe = recipe.replace(
        model={"name": "fcn8s_small",
               "options": {"widths": [4, 4, 8, 8, 8], "norm": None}},
        data={"crop_size": 32, "resize_size": 32},
        augment={"flip": False, "scale_min": 1.0, "scale_max": 1.0})
    task = tasks.get_task("segmentation")
    keras.utils.set_random_seed(1)
    initial = task.build_training_model(recipe, 3).get_weights()
    rng = np.random.default_rng(0)
    masks = rng.integers(0, 3, (4, 32, 32)).astype(np.uint8)
    masks[0, :24] = 255
    masks[1, :, :5] = 255
    batch = (rng.integers(0, 256, (4, 32, 32, 3)).astype(np.uint8), masks)
    results = []
    for strategy in (tf.distribute.OneDeviceStrategy("/cpu:0"),
                     mirrored(["/cpu:0", "/cpu:1"])):
        with strategy.scope():
            model = task.build_training_model(recipe, 3)
            fit.compile_model(model, recipe, steps_per_epoch=2, task=task)
        model.set_weights(initial)
        history = model.fit(tf.data.Dataset.from_tensors(batch).repeat(),
                            epochs=1, steps_per_epoch=2, verbose=0,
                            shuffle=False)
        results.append((model.get_weights(), history.history))
    (one, logs_one), (two, logs_two) = results
    moved = 0
    for w0, w1, w2 in zip(initial, one, two):
        np.testing.assert_allclose(w2, w1, rtol=1e-4, atol=1e-5)
        moved += not np.allclose(w0, w1)
    assert moved >= 10
    for key in ("loss", "mean_iou", "pixel_accuracy"):
        assert logs_two[key][0] == pytest.approx(logs_one[key][0], rel=1e-4)


def test_lost_worker_message_is_one_line_without_graph_context(tmp_path):
    """The message TensorFlow gives the survivors when a worker stops
    sending heartbeats (as a killed worker in
    tests/train/test_strategy.py), reduced to its cause and lost task."""
    error = tf.errors.UnavailableError(None, None, (
        "{{function_node __wrapped__CollectiveReduceV2_Nordering_token_1_"
        "device_/job:worker/replica:0/task:0/device:CPU:0}} Collective ops "
        "is aborted by: The following tasks are unhealthy (stopped sending "
        "heartbeats):\n/job:worker/replica:0/task:1\nThe tasks have "
        "crashed. Check the task logs for an earlier error to debug "
        "further. [Op:CollectiveReduceV2]\n\t [[{{node CollectiveReduceV2}}]]"
        " [Op:__inference_one_step_on_data_1234]"))
    message = fit._worker_lost_message(error, tiny_recipe(tmp_path / "run"))
    assert "\n" not in message
    assert "function_node" not in message and "[Op:" not in message
    assert message.startswith(
        "a worker of this multi-worker run was lost (UnavailableError: "
        "Collective ops is aborted by: The following tasks are unhealthy "
        "(stopped sending heartbeats): /job:worker/replica:0/task:1)")
class _RecordWeights(keras.callbacks.Callback):
    """The trained weights after each global step, by step."""

    def __init__(self, steps):
        super().__init__()
        self.steps = steps

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        self.steps[step] = [np.array(v)
                            for v in self.model.trainable_variables]


def test_ema_run_saves_the_average_across_a_restart(make_recipe):
    # train.ema_decay: the saved model holds the moving average of the
    # weights over all 8 steps, through a crash after step 7 (resumed
    # from the backup of step 6); the checkpoint holds the raw weights.
    recipe = make_recipe(epochs=2, ema_decay=0.5)
    steps = {}
    with pytest.raises(KeyboardInterrupt):
        fit.train(recipe, verbose=0,
                  callbacks=[_RecordWeights(steps), _Crash(7)])
    keras.backend.clear_session()
    fit.train(recipe, verbose=0, callbacks=[_RecordWeights(steps)])
    average = steps[1]
    for step in range(2, 9):
        average = [0.5 * a + 0.5 * w for a, w in zip(average, steps[step])]
    model_dir = recipe.train.model_dir
    saved = keras.saving.load_model(f"{model_dir}/model.keras")
    last = keras.saving.load_model(f"{model_dir}/checkpoints/last.keras")
    saved_weights = [np.array(v) for v in saved.trainable_variables]
    for got, expected in zip(saved_weights, average):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    for got, raw in zip([np.array(v) for v in last.trainable_variables],
                        steps[8]):
        np.testing.assert_allclose(got, raw, rtol=1e-5, atol=1e-6)
    assert not np.allclose(saved_weights[0], steps[8][0])
