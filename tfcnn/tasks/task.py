"""The interface every task implements (TF Model Garden's ``base_task``).

A task answers the questions on which classification and segmentation
differ; the fit loop, the inputs and evaluation ask it and hold no
task-specific code of their own. A saved model is told to its task by
the rank of its output (``tfcnn.tasks.task_of_model``), whose
``serving_model`` ``tfcnn.export`` then exports it with.
"""

import abc
import dataclasses


class Task(abc.ABC):
    """Base class of the tasks.

    Attributes:
        name: str, the name manifests record (``manifest.json``'s "task").
        monitor: str, the validation metric the best checkpoint maximises
            (without Keras' ``val_`` prefix).
        log_keys: tuple of str, the metrics of the one-line training
            summary.
        output_rank: int, the rank of the INFERENCE MODEL's output
            (``[batch, classes]``: 2).
        labels_per_pixel: bool, whether a label is a mask of class ids
            (one per pixel) rather than one class id per image.
        serving_model: str, ``"module:Class"`` of the class that wraps the
            INFERENCE MODEL for export with this task's serving signatures
            (``Class(model, class_names, top_k).archive()``, as
            ``tfcnn.export.classification_serving.ServingModel``), as a
            Model Garden task has its export module. Named, not imported:
            ``tfcnn.export`` sits above the tasks and imports it when it
            exports.
        preview_examples: str, ``"module:function"`` that draws the tiles
            of ``tfcnn preview``: ``function(data_dir, recipe, count=...,
            seed=...)`` returns ``(uint8 images [N, H, W, 3], N captions)``
            (``tfcnn.preview.classification.augmented_examples``). Named,
            not imported, like ``serving_model``.
    """

    name = None
    monitor = None
    log_keys = ()
    output_rank = None
    labels_per_pixel = False
    serving_model = None
    preview_examples = None

    def host_dataset(self, source, *, resize_size, batch_size, training,
                     full_size=False, label_offset=0, raw_shape=None,
                     inception_crop=None, **kwargs):
        """The host pipeline of this task's shards (``tf.data``).

        ``tfcnn.data.pipeline.input_dataset`` with this task's ``decoder``.

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
            label_offset, raw_shape, inception_crop: as ``decoder`` takes
                them.
            **kwargs: the other arguments of
                ``tfcnn.data.pipeline.input_dataset``.

        Returns:
            ``tf.data.Dataset`` of ``(uint8 images, labels)`` batches.
        """
        from tfcnn.data import pipeline

        del full_size  # S x S unless a task scores images of any size
        decoder = self.decoder(
            source, resize_size=resize_size, training=training,
            label_offset=label_offset, raw_shape=raw_shape,
            inception_crop=inception_crop)
        return pipeline.input_dataset(source, decoder, batch_size=batch_size,
                                      training=training, **kwargs)

    @abc.abstractmethod
    def decoder(self, source, *, resize_size, training, label_offset=0,
                raw_shape=None, inception_crop=None):
        """How ``source``'s elements become this task's examples at the
        host size (TF Model Garden's ``Decoder`` and ``Parser``): an
        object with ``decode(*element, seed=...)`` and ``decode_batch``
        (see ``tfcnn.data.pipeline.input_dataset``).

        Args:
            source: as in ``host_dataset``.
            resize_size: int, host size S.
            training: bool.
            label_offset: int, added to image labels (classification).
            raw_shape, inception_crop: classification's decoding options
                (``tfcnn.data.classification_pipeline.make_dataset``).
        """

    def reads_source(self, src):
        """Whether the folder ``src`` is laid out for this task's ingest.

        ``tfcnn.tasks.task_of_source`` asks every task; a folder that no
        task claims holds class folders (the default task's). Defaults to
        False.
        """
        del src
        return False

    @abc.abstractmethod
    def ingest(self, src, out, **options):
        """Writes this task's source folder ``src`` as TFRecord shards and
        a manifest in ``out`` (``tfcnn.tasks.ingest``); options this task
        does not take are refused. Returns the ``tfcnn.console.Result``
        of the manifest dict."""

    @abc.abstractmethod
    def reads_tfds(self, data):
        """Whether a tfds dataset, as ``data`` (``tfcnn.recipe.DataConfig``)
        names it, holds this task's labels."""

    @abc.abstractmethod
    def describe_tfds(self, data, class_names=None):
        """The ``tfcnn.data.readers.TfdsSource`` of ``data.tfds_name``;
        ``class_names`` (from ``data.labels_file``) or None."""

    @abc.abstractmethod
    def read_tfds(self, data, split):
        """The examples of one split of ``data.tfds_name``, as
        ``host_dataset`` takes them."""

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

    def network(self, model):
        """The registered network (``build_network``'s) inside this task's
        TRAINING MODEL: the one ``keras.Model`` nested in its inference
        model, between the preprocessing and the softmax."""
        import keras

        nested = [layer for layer in self.inference_model(model).layers
                  if isinstance(layer, keras.Model)]
        if len(nested) != 1:
            raise ValueError(
                f"a {self.name} model holds its network as its one nested "
                f"model. Received: {len(nested)} nested models in "
                f"{model.name!r}")
        return nested[0]

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


def resolved_augment(recipe):
    """The recipe's ``AugmentConfig`` with ``mean = "auto"`` resolved.

    ``"auto"`` follows the weights the network starts from
    (``tfcnn.models.weights.resolve_mean``); every other field is the
    recipe's own.

    Args:
        recipe: ``tfcnn.recipe.Recipe``.

    Returns:
        ``tfcnn.recipe.AugmentConfig`` whose ``mean`` is never ``AUTO``.
    """
    from tfcnn.models import weights as weights_lib

    mean = weights_lib.resolve_mean(recipe.augment.mean, recipe.model)
    return dataclasses.replace(recipe.augment, mean=mean)


def reads_stats(recipe):
    """Whether training the recipe reads the dataset's statistics.

    ``tfcnn.augment.build.needs_stats`` of ``resolved_augment(recipe)``:
    the one rule that the input pipeline (must the statistics exist?) and
    ``tfcnn run``'s stats stage (compute them?) both follow.

    Args:
        recipe: ``tfcnn.recipe.Recipe``.

    Returns:
        bool.
    """
    from tfcnn.augment import build as augment_build

    return augment_build.needs_stats(resolved_augment(recipe))
