"""Image classification: one label per image (Krizhevsky et al. 2012).

The TRAINING MODEL::

    uint8 [S, S, 3] "image" -> tfcnn.augment.build_preprocessing(...) layers
        -> tfcnn.models.build(name, (C, C, 3), K, **options) (no softmax)
        -> float32 softmax "probabilities" [K]

trained with ``tfcnn.losses.CrossEntropy`` (label smoothing, MixUp
and CutMix labels) and reporting top-1 and top-5 accuracy.
"""

from tfcnn.tasks import task as task_lib


class ImageClassificationTask(task_lib.Task):
    """One class per image."""

    name = "classification"
    monitor = "accuracy"
    log_keys = ("loss", "accuracy", "val_loss", "val_accuracy",
                "val_top5_accuracy")
    output_rank = 2  # [batch, classes]
    serving_model = "tfcnn.export.classification_serving:ServingModel"
    preview_examples = "tfcnn.preview.classification:augmented_examples"

    def decoder(self, source, *, resize_size, training, label_offset=0,
                raw_shape=None, inception_crop=None):
        from tfcnn.data import classification_pipeline

        return classification_pipeline.ClassificationDecoder(
            source, resize_size=resize_size, label_offset=label_offset,
            raw_shape=raw_shape,
            inception_crop=inception_crop if training else None)

    def ingest(self, src, out, **options):
        from tfcnn.data import classification_ingest

        return classification_ingest.ingest(src, out, **options)

    def reads_tfds(self, data):
        return not data.tfds_mask_key

    def describe_tfds(self, data, class_names=None):
        from tfcnn.data import readers

        del class_names  # tfds' own label names
        return readers.describe_tfds(data.tfds_name,
                                     data_dir=data.tfds_data_dir or None)

    def read_tfds(self, data, split):
        from tfcnn.data import readers

        return readers.read_tfds(data.tfds_name, split,
                                 data_dir=data.tfds_data_dir or None)

    def label_counts(self, manifest, split):
        return manifest.class_counts(split)

    def build_training_model(self, recipe, num_classes, stats=None,
                             class_names=None):
        """See the module docstring; ``stats`` feed the mean and PCA."""
        import keras

        from tfcnn.augment import build_preprocessing

        size, crop = recipe.data.resize_size, recipe.data.crop_size
        inputs = keras.Input((size, size, 3), dtype="uint8", name="image")
        x = inputs
        # augment.mean = "auto" follows the weights the network starts from.
        augment = task_lib.resolved_augment(recipe)
        for layer in build_preprocessing(augment, crop_size=crop,
                                         stats=stats, seed=recipe.data.seed):
            x = layer(x)
        x = task_lib.build_network(recipe, (crop, crop, 3), num_classes,
                                   class_names)(x)
        return keras.Model(inputs, task_lib.probabilities(x),
                           name=f"{recipe.model.name}_training")

    def build_loss(self, recipe, class_names=(), label_counts=None):
        from tfcnn import losses

        return losses.CrossEntropy(
            label_smoothing=recipe.train.label_smoothing)

    def build_metrics(self, num_classes, dense_labels=False):
        from tfcnn import metrics

        return metrics.build_metrics(dense_labels, num_classes)

    def summary_callbacks(self, log_dir, data):
        from tfcnn import summaries

        images, labels = summaries.sample_batch(data.local_train, 16,
                                                with_labels=True)
        return [summaries.ImageSummaries(
            log_dir, images, data.local_validation, data.num_classes,
            sample_labels=labels, class_names=data.class_names)]

    def evaluate(self, model, data, recipe, verbose=True):
        """Loss, top-1 and top-5 accuracy (and 10-crop figures).

        The TRAINING MODEL at inference (its crop layer takes the centre
        crop) over one pass, every image counted once (the last batch is
        not dropped). With ``evaluate.ten_crop`` also the AlexNet paper's
        10-crop figures (four corners and the centre, each with its mirror
        image, softmax averaged) through ``tfcnn.ten_crop``.

        Returns:
            dict: ``loss``, ``accuracy``, ``top5_accuracy``; with 10-crop
            also ``ten_crop_accuracy``, ``ten_crop_top5_accuracy``,
            ``ten_crop_loss`` and ``views`` (10; 5 when the recipe trains
            without flips).
        """
        from tfcnn import console
        from tfcnn import losses
        from tfcnn import metrics as metrics_lib

        model.compile(loss=losses.CrossEntropy(),
                      metrics=metrics_lib.build_metrics(
                          num_classes=model.output_shape[-1]))
        progress = console.keras_verbosity() if verbose else 0
        results = model.evaluate(data.dataset, steps=data.steps,
                                 return_dict=True, verbose=progress)
        metrics = {key: float(results[key])
                   for key in ("loss", "accuracy", "top5_accuracy")
                   if key in results}
        if recipe.evaluate.ten_crop:
            from tfcnn import ten_crop

            # Mirror views only for a model that trained on mirror images.
            metrics.update(ten_crop.evaluate_ten_crop(
                model, data.dataset, steps=data.steps,
                verbose=progress, flip=recipe.augment.flip))
        return metrics

    def format_metrics(self, metrics):
        """Split, count, top-1, top-5, loss (and the 10-crop figures)."""
        text = (f"{metrics['split']} ({metrics['num_examples']} images): "
                f"top-1 {metrics['accuracy']:.2%}, "
                + _top5(metrics, "top5_accuracy")
                + f"loss {metrics['loss']:.4f}")
        if "ten_crop_accuracy" in metrics:
            text += (f"; {metrics['views']}-crop top-1 "
                     f"{metrics['ten_crop_accuracy']:.2%}"
                     + _top5(metrics, "ten_crop_top5_accuracy", ", "))
        return text


def _top5(metrics, key, before=""):
    """The top-5 figure where there is one (more than 5 classes)."""
    if key not in metrics:
        return ""
    return f"{before}top-5 {metrics[key]:.2%}" + ("" if before else ", ")
