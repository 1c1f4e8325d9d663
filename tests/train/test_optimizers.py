"""Tests of tfcnn.train.optimizers: rates, schedules, weight decay."""

import keras
import numpy as np
import pytest

from tfcnn.errors import RecipeError
from tfcnn.recipe import Optimizer
from tfcnn.recipe import Schedule
from tfcnn.recipe import TrainConfig
from tfcnn.train import optimizers


def _rates(schedule, steps):
    return [float(keras.ops.convert_to_numpy(schedule(s))) for s in steps]


def test_linear_scaling_rule():
    config = TrainConfig(learning_rate=0.1, batch_size=1024,
                         lr_batch_size=256, scale_lr=True)
    assert optimizers.effective_learning_rate(config) == pytest.approx(0.4)
    assert optimizers.effective_learning_rate(
        TrainConfig(learning_rate=0.1, batch_size=1024)) == 0.1


def test_step_schedule_divides_by_ten_at_step_epochs():
    config = TrainConfig(learning_rate=0.1, schedule=Schedule.STEP,
                         step_epochs=(2, 4), epochs=6)
    schedule = optimizers.build_learning_rate(config, steps_per_epoch=10)
    np.testing.assert_allclose(_rates(schedule, [0, 19, 20, 39, 40, 59]),
                               [0.1, 0.1, 0.01, 0.01, 0.001, 0.001],
                               rtol=1e-6)


def test_warmup_ramps_linearly_then_follows_the_schedule():
    config = TrainConfig(learning_rate=0.1, schedule=Schedule.STEP,
                         step_epochs=(3,), warmup_epochs=1, epochs=5)
    schedule = optimizers.build_learning_rate(config, steps_per_epoch=10)
    np.testing.assert_allclose(_rates(schedule, [0, 4, 9, 10, 29, 30]),
                               [0.01, 0.05, 0.1, 0.1, 0.1, 0.01], rtol=1e-6)
    config = keras.optimizers.schedules.serialize(schedule)
    again = keras.optimizers.schedules.deserialize(config)
    assert _rates(again, [4, 30]) == pytest.approx([0.05, 0.01])


def test_cosine_with_warmup_peaks_then_decays_to_zero():
    config = TrainConfig(learning_rate=0.2, schedule=Schedule.COSINE,
                         warmup_epochs=1, epochs=5)
    schedule = optimizers.build_learning_rate(config, steps_per_epoch=10)
    rates = _rates(schedule, [0, 10, 30, 50])
    assert rates[0] == pytest.approx(0.0)
    assert rates[1] == pytest.approx(0.2)
    assert rates[2] == pytest.approx(0.1, rel=1e-5)  # half-way: cos = 0
    assert rates[3] == pytest.approx(0.0, abs=1e-7)


def test_plateau_is_a_plain_rate_with_alexnets_callback():
    config = TrainConfig(schedule=Schedule.PLATEAU, plateau_patience=3)
    assert optimizers.build_learning_rate(config, 10) == 0.01
    callback = optimizers.plateau_callback(config)
    assert (callback.monitor, callback.factor, callback.patience) == (
        "val_accuracy", 0.1, 3)
    with pytest.raises(RecipeError, match="warmup_epochs"):
        optimizers.build_learning_rate(
            TrainConfig(schedule=Schedule.PLATEAU, warmup_epochs=1), 10)


def test_bad_step_epochs_are_named():
    with pytest.raises(RecipeError, match=r"step_epochs=\[4, 2\]"):
        optimizers.build_learning_rate(
            TrainConfig(schedule=Schedule.STEP, step_epochs=(4, 2)), 10)


def test_sgd_weight_decay_is_alexnets_update():
    # v <- 0.9 v - wd * lr * w - lr * grad;  w <- w + v  (Krizhevsky 2012)
    lr, wd, momentum = 0.1, 0.01, 0.9
    config = TrainConfig(learning_rate=lr, weight_decay=wd,
                         momentum=momentum, optimizer=Optimizer.SGD)
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(
        2, kernel_initializer="ones", bias_initializer="ones")(inputs))
    assert optimizers.apply_weight_decay(model, config) == 1  # kernel only
    model.compile(optimizers.build_optimizer(config, 10), loss="mse")
    x = np.array([[1.0, 2.0, 3.0]], np.float32)
    y = np.zeros((1, 2), np.float32)
    w, b = np.ones((3, 2)), np.ones(2)
    v_w, v_b = np.zeros_like(w), np.zeros_like(b)
    for _ in range(2):
        model.train_on_batch(x, y)
        error = x @ w + b  # d(mse)/d(out) = 2 * error / 2 outputs
        grad_w = x.T @ error
        grad_b = error[0]
        v_w = momentum * v_w - wd * lr * w - lr * grad_w
        v_b = momentum * v_b - lr * grad_b
        w, b = w + v_w, b + v_b
    kernel, bias = model.get_weights()
    np.testing.assert_allclose(kernel, w, rtol=1e-5)
    np.testing.assert_allclose(bias, b, rtol=1e-5)


def test_adamw_decays_in_the_optimizer_not_the_loss():
    config = TrainConfig(optimizer=Optimizer.ADAMW, weight_decay=0.05)
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    assert optimizers.apply_weight_decay(model, config) == 0
    optimizer = optimizers.build_optimizer(config, 10)
    assert isinstance(optimizer, keras.optimizers.AdamW)
    assert optimizer.weight_decay == pytest.approx(0.05)


@pytest.mark.parametrize("name", ["alexnet_imagenet", "resnet50_gn_imagenet",
                                  "vgg16_imagenet"])
def test_paper_recipes_build_their_optimizers(name):
    from pathlib import Path

    from tfcnn.recipe import load_recipe

    root = Path(__file__).resolve().parents[2]
    config = load_recipe(root / "pipelines" / f"{name}.toml").train
    optimizer = optimizers.build_optimizer(config, steps_per_epoch=100)
    assert isinstance(optimizer, keras.optimizers.SGD)
    assert optimizer.momentum == pytest.approx(0.9)
    # Each recipe's rate is tuned for its own batch: scaling is neutral.
    assert optimizers.effective_learning_rate(config) == config.learning_rate


def _dense_model(optimizer):
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(
        2, kernel_initializer="ones", name="dense")(inputs))
    model.compile(optimizer, loss="mse", jit_compile=False)
    return model


def test_clip_norm_bounds_the_update():
    # Plain SGD at rate 1: the update is the gradient, whose global norm
    # here is in the thousands; clipped, it is at most train.clip_norm.
    x = np.full((4, 3), 100.0, np.float32)
    y = np.full((4, 2), -100.0, np.float32)
    norms = {}
    for clip in (0.0, 0.5):
        config = TrainConfig(learning_rate=1.0, momentum=0.0,
                             clip_norm=clip)
        model = _dense_model(optimizers.build_optimizer(config, 10))
        before = [np.array(v) for v in model.trainable_variables]
        model.train_on_batch(x, y)
        norms[clip] = np.sqrt(sum(
            np.sum((np.array(v) - b) ** 2)
            for v, b in zip(model.trainable_variables, before)))
    assert norms[0.0] > 100
    assert norms[0.5] == pytest.approx(0.5, rel=1e-4)


def test_ema_is_the_running_average_of_the_trained_weights(tmp_path):
    from tfcnn.train import callbacks

    config = TrainConfig(learning_rate=0.1, momentum=0.0, ema_decay=0.9)
    model = _dense_model(optimizers.build_optimizer(config, 10))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 3)).astype(np.float32)
    y = rng.normal(size=(8, 2)).astype(np.float32)
    trained = []

    class Record(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            trained.append([np.array(v) for v in
                            self.model.trainable_variables])

    # Two fit calls, as a resumed tfcnn run makes: the weights stay the
    # trained ones between them.
    for epoch in range(2):
        model.fit(x, y, batch_size=4, epochs=epoch + 1, initial_epoch=epoch,
                  verbose=0, callbacks=[callbacks.AveragedWeights(),
                                        Record()])
    np.testing.assert_array_equal(np.array(model.trainable_variables[0]),
                                  trained[-1][0])
    # By hand: the first step's weights, then a <- 0.9 a + 0.1 w.
    average = trained[0]
    for weights in trained[1:]:
        average = [0.9 * a + 0.1 * w for a, w in zip(average, weights)]
    # The average is in the optimizer's variables: a backup keeps it.
    model.save_weights(tmp_path / "backup.weights.h5")
    restored = _dense_model(optimizers.build_optimizer(config, 10))
    restored.optimizer.build(restored.trainable_variables)
    restored.load_weights(tmp_path / "backup.weights.h5")
    for model_ in (model, restored):
        assert callbacks.apply_average(model_)
        for variable, expected in zip(model_.trainable_variables, average):
            np.testing.assert_allclose(np.array(variable), expected,
                                       rtol=1e-5, atol=1e-6)


def test_ema_off_leaves_the_weights():
    from tfcnn.train import callbacks

    model = _dense_model(optimizers.build_optimizer(TrainConfig(), 10))
    model.train_on_batch(np.ones((2, 3)), np.zeros((2, 2)))
    assert not callbacks.apply_average(model)


@pytest.mark.parametrize("changes, match", [
    (dict(ema_decay=1.0), "train.ema_decay"),
    (dict(clip_norm=-1.0), "train.clip_norm"),
    (dict(ema_decay=0.99, early_stopping_patience=2), "exclude each other"),
])
def test_training_practice_keys_are_checked(changes, match):
    with pytest.raises(RecipeError, match=match):
        TrainConfig(**changes)
