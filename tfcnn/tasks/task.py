"""The interface every task implements (TF Model Garden's ``base_task``).

A task answers the questions on which classification and segmentation
differ; the fit loop, the inputs and evaluation ask it and hold no
task-specific code of their own. Serving differs too, by the trained
model's output alone: ``tfcnn.export`` picks the serving model of a
``[batch, classes]`` or a ``[batch, height, width, classes]`` output.
"""

import abc


class Task(abc.ABC):
    """Base class of the tasks.

    Attributes:
        name: str, the name manifests record (``manifest.json``'s "task").
        monitor: str, the validation metric the best checkpoint maximises
            (without Keras' ``val_`` prefix).
        log_keys: tuple of str, the metrics of the one-line training
            summary.
    """

    name = None
    monitor = None
    log_keys = ()

    @abc.abstractmethod
    def host_dataset(self, source, *, resize_size, batch_size, training,
                     full_size=False, label_offset=0, raw_shape=None,
                     inception_crop=None, **kwargs):
        """The host pipeline of this task's shards (``tf.data``).

        Args:
            source: list of shard paths, or a ``tf.data.Dataset`` of
                examples.
            resize_size: int, host size S.
            batch_size: int, global batch size.
            training: bool, shuffle and drop the last partial batch.
            full_size: bool, for evaluation: each image at its own size
                (one per batch) where the task scores images of any size;
                a classifier's images are resized anyway. Defaults to
                False.
            label_offset: int, added to image labels (classification).
            raw_shape, inception_crop: classification's decoding options
                (``tfcnn.data.pipeline.make_dataset``).
            **kwargs: the other arguments of
                ``tfcnn.data.pipeline.make_dataset``.

        Returns:
            ``tf.data.Dataset`` of ``(uint8 images, labels)`` batches.
        """

    @abc.abstractmethod
    def label_counts(self, manifest, split):
        """dict class name -> labels of that class in ``split`` (images or
        pixels), or {} when the manifest has none."""

    @abc.abstractmethod
    def build_training_model(self, recipe, num_classes, stats=None,
                             class_names=None):
        """The uncompiled TRAINING MODEL: uint8 images -> probabilities.

        Build it under the strategy's scope. ``class_names`` (the labels'
        names, or None) tell ``model.weights`` from a tfcnn run of other
        classes to leave the classifier fresh.
        """

    def inference_model(self, model):
        """The part of the TRAINING MODEL that is saved, evaluated and
        exported (uint8 images -> probabilities). Defaults to all of it."""
        return model

    @abc.abstractmethod
    def build_loss(self, recipe, class_names=(), label_counts=None):
        """The compiled loss."""

    @abc.abstractmethod
    def build_metrics(self, num_classes, dense_labels=False):
        """The compiled metrics (a list)."""

    @abc.abstractmethod
    def summary_callbacks(self, log_dir, data):
        """TensorBoard callbacks of this task's figures (a list)."""

    @abc.abstractmethod
    def evaluate(self, model, data, recipe, verbose=True):
        """The task's figures of a trained model on ``data``
        (``tfcnn.train.inputs.EvalInputs``), a JSON-ready dict. Call it
        under the strategy's scope."""

    @abc.abstractmethod
    def format_metrics(self, metrics):
        """One line for people from ``tfcnn.train.evaluate``'s dict."""


def build_network(recipe, input_shape, num_classes, class_names=None):
    """The recipe's registered network, without its output activation.

    Starts from ``model.weights`` when the recipe names them
    (``tfcnn.models.weights``: matched by layer name and shape, with a
    report of what was taken).

    Args:
        recipe: ``tfcnn.recipe.Recipe``.
        input_shape: tuple ``(H, W, 3)``.
        num_classes: int, K.
        class_names: list of str or None, passed to
            ``tfcnn.models.weights.load_weights``. Defaults to None.

    Returns:
        a functional ``keras.Model`` to class scores (logits); its
        ``weights_report`` is the ``LoadReport`` of ``model.weights``
        (None without).

    Raises:
        RecipeError: the network has more than one output.
    """
    import tfcnn.models
    from tfcnn.errors import RecipeError

    options = dict(recipe.model.options)
    options["classifier_activation"] = None
    network = tfcnn.models.build(recipe.model.name, input_shape=input_shape,
                                 num_classes=num_classes, **options)
    if len(network.outputs) != 1:
        raise RecipeError(
            f"model.options: {recipe.model.name!r} built with "
            f"{dict(recipe.model.options)} has {len(network.outputs)} "
            "outputs; tfcnn train trains one classifier output (for "
            "GoogLeNet, leave aux_classifiers off)")
    network.weights_report = None
    if recipe.model.weights:
        import sys

        from tfcnn.models import weights as weights_lib

        report = weights_lib.load_weights(
            network, recipe.model.weights, model_name=recipe.model.name,
            class_names=class_names, until=recipe.model.weights_until,
            partial=recipe.model.weights_partial)
        # What the head stage trains (tfcnn.train.freeze).
        network.weights_report = report
        print(f"train: {report.message()}", file=sys.stderr, flush=True)
    return network


def probabilities(scores):
    """Softmax in float32 whatever the compute dtype (mixed precision)."""
    import keras

    return keras.layers.Activation("softmax", dtype="float32",
                                   name="probabilities")(scores)
