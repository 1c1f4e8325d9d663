"""Image classification: one label per image (Krizhevsky et al. 2012).

The TRAINING MODEL::

    uint8 [S, S, 3] "image" -> tfcnn.augment.build_preprocessing(...) layers
        -> tfcnn.models.build(name, (C, C, 3), K, **options) (no softmax)
        -> float32 softmax "probabilities" [K]

trained with ``tfcnn.train.losses.CrossEntropy`` (label smoothing, MixUp
and CutMix labels) and reporting top-1 and top-5 accuracy.
"""

from tfcnn.tasks import task as task_lib


class ImageClassificationTask(task_lib.Task):
    """One class per image."""

    name = "classification"
    monitor = "accuracy"
    log_keys = ("loss", "accuracy", "val_loss", "val_accuracy",
                "val_top5_accuracy")
    output_rank = 2

    def host_dataset(self, source, *, size, batch_size, training,
                     full_size=False, label_offset=0, raw_shape=None,
                     inception_crop=None, **kwargs):
        from tfcnn.data import pipeline

        del full_size  # the network takes S x S images (centre crop)
        return pipeline.make_dataset(
            source, size=size, batch_size=batch_size, training=training,
            label_offset=label_offset, raw_shape=raw_shape,
            inception_crop=inception_crop, **kwargs)

    def label_counts(self, manifest, split):
        return manifest.class_counts(split)

    def build_training_model(self, recipe, num_classes, stats=None,
                             class_names=None):
        """See the module docstring; ``stats`` feed the mean and PCA."""
        import dataclasses

        import keras

        from tfcnn.augment import build_preprocessing
        from tfcnn.models import weights as weights_lib

        size, crop = recipe.data.resize_size, recipe.data.crop_size
        inputs = keras.Input((size, size, 3), dtype="uint8", name="image")
        x = inputs
        # augment.mean = "auto" follows the weights the network starts from.
        mean = weights_lib.resolve_mean(recipe.augment.mean, recipe.model)
        augment = dataclasses.replace(recipe.augment, mean=mean)
        for layer in build_preprocessing(augment, crop_size=crop,
                                         stats=stats, seed=recipe.data.seed):
            x = layer(x)
        x = task_lib.build_network(recipe, (crop, crop, 3), num_classes,
                                   class_names)(x)
        return keras.Model(inputs, task_lib.probabilities(x),
                           name=f"{recipe.model.name}_training")

    def build_loss(self, recipe, class_names=(), label_counts=None):
        from tfcnn.train import losses

        return losses.CrossEntropy(
            label_smoothing=recipe.train.label_smoothing)

    def build_metrics(self, num_classes, dense_labels=False):
        from tfcnn.train import metrics

        return metrics.build_metrics(dense_labels)

    def summary_callbacks(self, log_dir, data):
        from tfcnn.train import inputs as inputs_lib
        from tfcnn.train import summaries

        images, labels = inputs_lib.sample_batch(data.local_train, 16,
                                                 with_labels=True)
        return [summaries.ImageSummaries(
            log_dir, images, data.local_validation, data.num_classes,
            sample_labels=labels, class_names=data.class_names)]

    def evaluate(self, model, data, recipe, verbose=True):
        from tfcnn.train import evaluate as evaluate_lib

        return evaluate_lib.classification_figures(model, data, recipe,
                                                   verbose=verbose)

    def format_metrics(self, metrics):
        from tfcnn.train import evaluate as evaluate_lib

        return evaluate_lib.format_classification(metrics)

    def serving_model(self, model, class_names, top_k=5):
        from tfcnn.export import serving

        return serving.ServingModel(model, class_names, top_k)
