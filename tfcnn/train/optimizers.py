"""Optimizers, learning-rate schedules, warm-up and weight decay.

The recipes of the papers:

- AlexNet (Krizhevsky et al. 2012): SGD, momentum 0.9, weight decay 5e-4,
  batch 128, learning rate 0.01 divided by 10 when the validation error
  stops improving (``schedule = "plateau"``, a ``ReduceLROnPlateau`` on
  ``val_accuracy``).
- Step schedules (ResNet, VGG): divide by 10 at ``train.step_epochs``.
- Cosine decay to 0 (Loshchilov & Hutter 2017), after a linear warm-up of
  ``train.warmup_epochs`` (Goyal et al. 2017) when one is asked for.

Learning-rate scaling rule: ``train.learning_rate`` is the rate for a global
batch of ``train.lr_batch_size`` images. With ``train.scale_lr`` on, the rate
used is ``learning_rate * batch_size / lr_batch_size`` (the linear scaling
rule of Goyal et al. 2017, "Accurate, Large Minibatch SGD"). Adding replicas
with the same ``batch_size`` needs no change at all (the batch is global);
to keep the per-replica batch when adding replicas, multiply ``batch_size``
by the replica ratio, keep ``scale_lr = true``, and add a few epochs of
warm-up.

Training practice: ``train.clip_norm`` clips the gradients to a global
norm and ``train.ema_decay`` keeps an exponential moving average of the
weights, both Keras' own optimizer options (``global_clipnorm``,
``use_ema``/``ema_momentum``); the average lives in the optimizer's
variables, so the run's backup saves and restores it.

Weight decay: AdamW decays decoupled from the gradient (Loshchilov & Hutter
2019). For SGD and Adam it is the paper's L2 term ``wd/2 * ||w||^2`` added
to the loss, so that under SGD with momentum the update is AlexNet's
``v <- 0.9 v - wd * lr * w - lr * grad``. Only kernels (weights with two or
more dimensions) decay; biases and normalization scales do not.
"""

import math

import keras

from tfcnn.errors import RecipeError
from tfcnn.recipe import Optimizer
from tfcnn.recipe import Schedule


def effective_learning_rate(config):
    """The peak learning rate after the linear scaling rule.

    Args:
        config: ``tfcnn.recipe.TrainConfig``.

    Returns:
        float, ``learning_rate * batch_size / lr_batch_size`` when
        ``scale_lr`` is on, else ``learning_rate``.
    """
    if not config.scale_lr:
        return config.learning_rate
    return config.learning_rate * config.batch_size / config.lr_batch_size


def build_learning_rate(config, steps_per_epoch):
    """The learning rate: a float (plateau, constant) or a schedule.

    Args:
        config: ``tfcnn.recipe.TrainConfig``.
        steps_per_epoch: int, optimizer steps per epoch (computed from the
            dataset, never from the recipe).

    Returns:
        float or ``keras.optimizers.schedules.LearningRateSchedule``.

    Raises:
        RecipeError: warm-up with the plateau schedule (``ReduceLROnPlateau``
            needs a plain rate), or step epochs that are not increasing.
    """
    rate = effective_learning_rate(config)
    warmup_steps = int(round(config.warmup_epochs * steps_per_epoch))
    total_steps = config.epochs * steps_per_epoch
    if config.schedule is Schedule.PLATEAU:
        if config.head_epochs:
            raise RecipeError(
                "train.head_epochs must be 0 with train.schedule = "
                "\"plateau\" (the stage switch divides a scheduled rate). "
                f"Received: head_epochs={config.head_epochs}")
        if warmup_steps:
            raise RecipeError(
                "train.warmup_epochs must be 0 with train.schedule = "
                "\"plateau\" (the rate is divided on validation, not on a "
                f"schedule). Received: warmup_epochs={config.warmup_epochs}")
        return rate
    if config.schedule is Schedule.COSINE:
        # Keras' CosineDecay warms up linearly from initial_learning_rate
        # to warmup_target, then decays to 0 over decay_steps.
        return keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=0.0 if warmup_steps else rate,
            decay_steps=max(1, total_steps - warmup_steps),
            warmup_target=rate if warmup_steps else None,
            warmup_steps=warmup_steps)
    if config.schedule is Schedule.STEP:
        boundaries = _step_boundaries(config, steps_per_epoch)
        schedule = rate
        if boundaries:
            schedule = keras.optimizers.schedules.PiecewiseConstantDecay(
                boundaries,
                [rate * 0.1 ** i for i in range(len(boundaries) + 1)])
    else:
        schedule = rate
    if warmup_steps:
        schedule = LinearWarmup(schedule, warmup_steps)
    if config.head_epochs:
        # tfcnn.train.freeze: after the head stage, everything trains at a
        # fraction of the rate.
        schedule = DividedAfter(schedule, config.head_epochs * steps_per_epoch,
                                config.unfreeze_lr_divisor)
    return schedule


class _WrappedSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Base of the schedules that modify another schedule or a constant:
    ``self.schedule`` is read by ``_inner`` and (de)serialized here."""

    def _inner(self, step):
        if callable(self.schedule):
            return keras.ops.cast(self.schedule(step), "float32")
        return keras.ops.convert_to_tensor(self.schedule, "float32")

    def get_config(self):
        schedule = self.schedule
        schedules = keras.optimizers.schedules
        if isinstance(schedule, schedules.LearningRateSchedule):
            schedule = schedules.serialize(schedule)
        return {"schedule": schedule}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config["schedule"], dict):
            config["schedule"] = keras.optimizers.schedules.deserialize(
                config["schedule"])
        return cls(**config)


@keras.saving.register_keras_serializable(package="tfcnn")
class LinearWarmup(_WrappedSchedule):
    """Linear warm-up from 0 in front of another schedule or a constant.

    Keras' ``CosineDecay`` has its own warm-up; this one adds the same to a
    constant rate or to ``PiecewiseConstantDecay``, whose step count it does
    not shift (boundaries stay in global steps).

    Args:
        schedule: float or ``LearningRateSchedule``, the rate after warm-up.
        warmup_steps: int, steps of the linear ramp from 0. Must be > 0.
    """

    def __init__(self, schedule, warmup_steps):
        if warmup_steps <= 0:
            raise ValueError(
                f"warmup_steps must be > 0. Received: "
                f"warmup_steps={warmup_steps}")
        self.schedule = schedule
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        ramp = keras.ops.minimum(1.0, (step + 1.0) / self.warmup_steps)
        return self._inner(step) * ramp

    def get_config(self):
        return {**super().get_config(), "warmup_steps": self.warmup_steps}


@keras.saving.register_keras_serializable(package="tfcnn")
class DividedAfter(_WrappedSchedule):
    """Another schedule (or a constant), divided from a step on.

    The second stage of fine-tuning (``tfcnn.train.freeze``) trains at the
    rate divided by ``train.unfreeze_lr_divisor``. A function of the step
    alone, so a resumed run gets the rate of its stage.

    Args:
        schedule: float or ``LearningRateSchedule``.
        boundary: int, the first step (optimizer iterations done) that
            gets the divided rate.
        divisor: float > 0.
    """

    def __init__(self, schedule, boundary, divisor):
        if divisor <= 0:
            raise ValueError(
                f"divisor must be > 0. Received: divisor={divisor}")
        self.schedule = schedule
        self.boundary = int(boundary)
        self.divisor = float(divisor)

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        rate = self._inner(step)
        return keras.ops.where(step >= self.boundary, rate / self.divisor,
                               rate)

    def get_config(self):
        return {**super().get_config(), "boundary": self.boundary,
                "divisor": self.divisor}


def build_optimizer(config, steps_per_epoch):
    """The optimizer of a ``TrainConfig`` with its learning rate.

    Build it inside ``strategy.scope()``.

    Args:
        config: ``tfcnn.recipe.TrainConfig``.
        steps_per_epoch: int, optimizer steps per epoch.

    Returns:
        a ``keras.optimizers.Optimizer``.
    """
    learning_rate = build_learning_rate(config, steps_per_epoch)
    # Keras' own weight averaging and clipping; tfcnn.train.callbacks.
    # AveragedWeights decides when the average replaces the weights.
    practice = dict(global_clipnorm=config.clip_norm or None,
                    use_ema=bool(config.ema_decay),
                    ema_momentum=config.ema_decay or 0.99)
    if config.optimizer is Optimizer.SGD:
        return keras.optimizers.SGD(learning_rate, momentum=config.momentum,
                                    **practice)
    if config.optimizer is Optimizer.ADAM:
        return keras.optimizers.Adam(learning_rate, **practice)
    return keras.optimizers.AdamW(learning_rate,
                                  weight_decay=config.weight_decay,
                                  **practice)


def apply_weight_decay(model, config):
    """Adds the L2 term ``wd/2 * ||w||^2`` of every kernel to the loss.

    Does nothing for AdamW (decoupled decay lives in the optimizer) or
    ``weight_decay = 0``. The regularizers are attached to the variables of
    this model instance only; they are not saved with it.

    Args:
        model: a built ``keras.Model``.
        config: ``tfcnn.recipe.TrainConfig``.

    Returns:
        int, the number of variables that decay.
    """
    if config.weight_decay <= 0 or config.optimizer is Optimizer.ADAMW:
        return 0
    # Keras' L2(l2) is l2 * sum(w^2), whose gradient is 2 * l2 * w.
    regularizer = keras.regularizers.L2(config.weight_decay / 2.0)
    count = 0
    for variable in model.trainable_weights:
        if len(variable.shape) >= 2:
            variable.regularizer = regularizer
            count += 1
    return count


def plateau_callback(config):
    """AlexNet's rule as a callback, or None for other schedules.

    The rate is divided by 10 when validation top-1 accuracy has not
    improved for ``train.plateau_patience`` epochs.
    """
    if config.schedule is not Schedule.PLATEAU:
        return None
    return keras.callbacks.ReduceLROnPlateau(
        monitor="val_accuracy", mode="max", factor=0.1,
        patience=config.plateau_patience, min_lr=0.0, verbose=1)


def _step_boundaries(config, steps_per_epoch):
    epochs = list(config.step_epochs)
    if any(not isinstance(e, (int, float)) or e <= 0 for e in epochs) or (
            epochs != sorted(set(epochs))):
        raise RecipeError(
            "train.step_epochs must be increasing positive epochs. "
            f"Received: step_epochs={list(config.step_epochs)}")
    # PiecewiseConstantDecay switches after a boundary; the optimizer asks
    # for the rate at ``iterations`` = steps done, so the first step of
    # epoch e (iterations = e * steps_per_epoch) gets the new rate.
    return [int(math.floor(e * steps_per_epoch)) - 1 for e in epochs]
