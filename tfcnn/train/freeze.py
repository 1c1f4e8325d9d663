"""Which layers train: freezing and the two-stage fine-tuning schedule.

``train.trainable`` picks the layers of the network that train:

* ``"all"``: every layer (as built);
* ``"head"``: the layers that start fresh: every layer that received no
  weights (or not all of its weights) from ``model.weights``, and every
  layer after ``model.weights_until`` (the new top on the pretrained
  backbone: keras.applications' VGG16 without its top leaves fc1, fc2 and
  the classifier fresh, and all three train); without weights, the
  classifier alone (the network's last layer with weights that trains as
  built);
* ``"from:<layer name>"``: that layer and every layer after it.

The others are frozen the Keras way, ``layer.trainable = False``: their
weights get no updates and a frozen batch norm runs in inference mode
(its moving statistics stay as loaded), as Keras' transfer-learning guide
prescribes for fine-tuning.

With ``train.head_epochs = N`` a run has two stages (Yosinski et al. 2014;
Howard & Ruder 2018): the first N epochs train the head alone (the new
classifier settles on frozen features), the rest train ``train.trainable``
with the learning rate divided by ``train.unfreeze_lr_divisor``
(``tfcnn.train.optimizers.DividedAfter``). The stage is a function of the
epoch alone, so a run killed in either stage resumes in it: the optimizer
is built over every variable before anything is frozen, so its slots (and
the backup file, which holds them) have the same variables in both stages;
frozen variables' slots simply stay as they are.
"""

import dataclasses

import numpy as np

from tfcnn import console
from tfcnn.errors import RecipeError
from tfcnn.models.weights import network_of  # noqa: F401  (re-exported)

ALL = "all"
HEAD = "head"
FROM = "from:"


@dataclasses.dataclass(frozen=True)
class ParameterCounts:
    """A network's parameters by what training does with them.

    Attributes:
        trainable: int, parameters that train now.
        frozen: int, parameters that would train as built and are frozen
            by choice (``train.trainable``, the head stage).
        non_trainable: int, parameters that never train: batch-norm
            moving statistics and the weights a builder fixes (FCN's
            bilinear upsampling).
    """

    trainable: int
    frozen: int
    non_trainable: int


@dataclasses.dataclass(frozen=True)
class Stage:
    """Epochs ``[first_epoch, end_epoch)`` training ``trainable``."""

    first_epoch: int
    end_epoch: int
    trainable: str


def training_stages(config):
    """The stages of a ``TrainConfig``, in order.

    Args:
        config: ``tfcnn.recipe.TrainConfig``.

    Returns:
        tuple of ``Stage``: one, or the head stage and the rest.
    """
    if not config.head_epochs:
        return (Stage(0, config.epochs, config.trainable),)
    return (Stage(0, config.head_epochs, HEAD),
            Stage(config.head_epochs, config.epochs, config.trainable))




class Freezer:
    """Sets a network's trainable layers; remembers how they were built.

    Args:
        network: a functional ``keras.Model``. Its layers' ``trainable``
            flags at construction are what ``"all"`` restores (a builder
            may freeze a layer on purpose).
        head_after: str or None, the layer after which the head starts
            (``model.weights_until``). Defaults to None.
        fresh_layers: iterable of the names of the layers that received
            no weights (``tfcnn.models.weights.LoadReport.fresh_layers``);
            they belong to the head. Without them or ``head_after`` the
            head is the last layer with weights. Defaults to none.
    """

    def __init__(self, network, head_after=None, fresh_layers=()):
        self.network = network
        self.head_after = head_after or None
        self.fresh_layers = frozenset(fresh_layers)
        self._built = {layer.name: layer.trainable
                       for layer in network.layers}
        # Keras 3 marks every variable of a frozen layer non-trainable, so
        # what never trains is recorded as built.
        self._fixed = {v.path for v in network.non_trainable_weights}
        self.current = ALL

    def apply(self, trainable):
        """Freezes every layer outside ``trainable``.

        Args:
            trainable: str, a ``train.trainable`` value (validated by the
                recipe).

        Returns:
            bool, whether any layer's flag changed (the caller then
            rebuilds its train function).

        Raises:
            RecipeError: ``from:`` names no layer of the network.
        """
        chosen = self._trainable_layers(trainable)
        changed = False
        for layer in self.network.layers:
            if not layer.weights:
                continue
            flag = self._built[layer.name] and layer.name in chosen
            if layer.trainable != flag:
                layer.trainable = flag
                changed = True
        self.current = trainable
        return changed

    def counts(self):
        """The network's ``ParameterCounts`` now.

        Frozen counts the weights that train as built and are frozen by
        ``apply``; the moving statistics of batch norm are non-trainable
        whether their layer trains or not.
        """
        trainable = {v.path for v in self.network.trainable_weights}
        fixed = [v for v in self.network.weights if v.path in self._fixed]
        frozen = [v for v in self.network.weights
                  if v.path not in trainable and v.path not in self._fixed]
        return ParameterCounts(_count(self.network.trainable_weights),
                               _count(frozen), _count(fixed))

    def _trainable_layers(self, trainable):
        layers = self.network.layers
        if trainable == ALL:
            return {layer.name for layer in layers}
        if trainable == HEAD and self.head_after is None:
            if self.fresh_layers:
                return set(self.fresh_layers)
            # The last layer that trains as built: FCN's final bilinear
            # upsampling has weights but stays fixed (Shelhamer et al.).
            weighted = [layer for layer in layers
                        if layer.weights and self._built[layer.name]]
            return {weighted[-1].name} if weighted else set()
        if trainable == HEAD:
            key, name, first = "model.weights_until", self.head_after, 1
        else:
            key, name, first = "train.trainable", trainable[len(FROM):], 0
        names = [layer.name for layer in layers]
        if name not in names:
            raise RecipeError(
                f"{key}: {self.network.name} has no layer "
                f"{name!r} (its layers with weights: "
                f"{', '.join(_weighted_names(layers)[:6])}, ...). "
                f"Received: {name!r}")
        chosen = set(names[names.index(name) + first:])
        return chosen | self.fresh_layers if trainable == HEAD else chosen


def describe(stage, counts):
    """One line for a stage: its epochs, what trains, the counts."""
    if stage.end_epoch - stage.first_epoch == 1:
        epochs = f"epoch {stage.end_epoch} trains"
    else:
        epochs = f"epochs {stage.first_epoch + 1}-{stage.end_epoch} train"
    return f"{epochs} {stage.trainable}: {format_counts(counts)}"


def format_counts(counts):
    """``"1,290 trainable, 14,714,688 frozen, 0 non-trainable
    parameters"``: the frozen ones only when there are any."""
    frozen = f"{counts.frozen:,} frozen, " if counts.frozen else ""
    return (f"{counts.trainable:,} trainable, {frozen}"
            f"{counts.non_trainable:,} non-trainable parameters")


def _weighted_names(layers):
    return [layer.name for layer in layers if layer.weights]


def _count(weights):
    return int(sum(np.prod(w.shape) for w in weights))


class StagedTraining:
    """Enters each stage of a run: freezes, rebuilds the train function,
    and reports the counts (stderr and TensorBoard).

    Args:
        model: the compiled TRAINING MODEL, its optimizer already built
            over every variable (``tfcnn.train.fit`` builds it before the
            first stage).
        config: ``tfcnn.recipe.TrainConfig``.
        log_dir: Path or None, where the counts go for TensorBoard
            (``parameters/trainable`` and ``parameters/frozen`` at the
            stage's first epoch). Defaults to None.
        head_after: str or None, as for ``Freezer``. Defaults to None.
        fresh_layers: as for ``Freezer``. Defaults to none.
        network: the ``keras.Model`` of the network inside ``model``
            (``tfcnn.tasks.task.Task.network``), or None to find it with
            ``network_of``. Defaults to None.
    """

    def __init__(self, model, config, log_dir=None, head_after=None,
                 fresh_layers=(), network=None):
        self.model = model
        self.stages = training_stages(config)
        self.freezer = Freezer(
            network_of(model) if network is None else network, head_after,
            fresh_layers)
        self.log_dir = log_dir

    def enter(self, stage):
        """Makes ``stage``'s layers the trainable ones."""
        if self.freezer.apply(stage.trainable):
            # Keras traces train_step with the trainable variables of the
            # moment; a cached train function would keep the old set.
            self.model.make_train_function(force=True)
        counts = self.freezer.counts()
        if len(self.stages) > 1 or stage.trainable != ALL:
            console.progress(f"train: {describe(stage, counts)}")
        if self.log_dir is not None:
            _log_counts(self.log_dir, stage, counts)
        return counts


def _log_counts(log_dir, stage, counts):
    import tensorflow as tf

    writer = tf.summary.create_file_writer(str(log_dir))
    with writer.as_default():
        tf.summary.scalar(
            "parameters/trainable", counts.trainable,
            step=stage.first_epoch,
            description="Parameters that train from this epoch on "
                        "(train.trainable, train.head_epochs).")
        tf.summary.scalar(
            "parameters/frozen", counts.frozen, step=stage.first_epoch,
            description="Parameters that train as built and are frozen "
                        "from this epoch on (train.trainable, "
                        "train.head_epochs).")
        tf.summary.scalar(
            "parameters/non_trainable", counts.non_trainable,
            step=stage.first_epoch,
            description="Parameters that never train: batch-norm moving "
                        "statistics and weights the builder fixes.")
        tf.summary.text("stages", describe(stage, counts),
                        step=stage.first_epoch)
    writer.close()
