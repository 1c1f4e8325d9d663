"""Semantic segmentation: one label per pixel (Shelhamer et al. 2015).

The INFERENCE MODEL (saved as ``model.keras``, exported, evaluated) takes
uint8 images of any size::

    uint8 [H, W, 3] "image" -> PCA lighting (training; image only)
        -> MeanSubtraction (channel mean: a mean image has one size)
        -> PadToMultiple(32) (bottom and right, with the mean)
        -> tfcnn.models.build(name, (None, None, 3), K) (no softmax)
        -> CropLike back to H x W -> float32 softmax "probabilities"
           [H, W, K]

so it scores a whole image at its own resolution: the padding makes the
sides multiples of every model's stride (FCN-8s adds stride 32, 16 and 8
scores; DeepLab-v3 resizes to its input anyway).

The TRAINING MODEL (``JointAugmentationModel``) wraps it: Keras hands a
model its inputs and the loss its labels, but a random crop of an image
must crop its mask alike, so the joint geometric augmentation
(``tfcnn.augment.segmentation.augmentation_from_recipe``: random scale,
padded crop to ``data.crop_size``, flip) runs at the start of
``train_step``, Keras' documented place to customise ``fit``:
per replica, on the device, before Keras' own step. Labels are masks
``[B, S, S]`` of class ids with ``IGNORE_VALUE`` (255) for void pixels,
which count in neither the loss (``PixelCrossEntropy``) nor the metrics
(pixel accuracy and mean IoU).
"""

import dataclasses

import keras
import numpy as np

from tfcnn.errors import DataError
from tfcnn.label_values import IGNORE_VALUE
from tfcnn.recipe import ClassWeighting
from tfcnn.recipe import MeanMode
from tfcnn.tasks import task as task_lib

# Every registered dense-prediction model's coarsest stride divides it.
PAD_MULTIPLE = 32


class SemanticSegmentationTask(task_lib.Task):
    """One class per pixel; void pixels (255) ignored."""

    name = "segmentation"
    monitor = "mean_iou"
    log_keys = ("loss", "mean_iou", "val_loss", "val_pixel_accuracy",
                "val_mean_iou")
    output_rank = 4  # [batch, height, width, classes]
    labels_per_pixel = True
    serving_model = ("tfcnn.export.segmentation_serving:"
                     "SegmentationServingModel")
    preview_examples = "tfcnn.preview.segmentation:augmented_pairs"

    def host_dataset(self, source, *, resize_size, batch_size, training,
                     full_size=False, **kwargs):
        if full_size:
            from tfcnn.data import segmentation_pipeline

            return segmentation_pipeline.read_full_size(source).batch(1)
        return super().host_dataset(
            source, resize_size=resize_size, batch_size=batch_size,
            training=training, **kwargs)

    def decoder(self, source, *, resize_size, training, label_offset=0,
                raw_shape=None, inception_crop=None):
        from tfcnn.data import segmentation_pipeline

        # Masks hold class ids; images and masks are resized together.
        del training, label_offset, raw_shape, inception_crop
        return segmentation_pipeline.SegmentationDecoder(
            source, resize_size=resize_size)

    def reads_source(self, src):
        from tfcnn.data import segmentation_folders

        # Pascal VOC's folders, or images/ and masks/.
        return segmentation_folders.is_segmentation_source(src)

    def ingest(self, src, out, *, max_side=0, shorter_side=0,
               jpeg_quality=90, raw=False, lossless=False, **options):
        """``tfcnn.data.segmentation_ingest.ingest_segmentation``; images
        are stored as they are (``lossless`` changes nothing)."""
        from tfcnn.data import classification_ingest
        from tfcnn.data import image_check
        from tfcnn.data import segmentation_ingest

        storage = classification_ingest.storage_options(max_side, shorter_side,
                                         jpeg_quality, raw, lossless)
        if dataclasses.replace(storage, lossless=False) != (
                image_check.Storage()):
            raise DataError(
                "compact and raw storage (max_side, shorter_side, "
                "jpeg_quality, raw) are for classification sources; "
                f"{src} is a segmentation source. Received: {storage}")
        return segmentation_ingest.ingest_segmentation(src, out, **options)

    def reads_tfds(self, data):
        # data.tfds_mask_key names the image feature holding the masks.
        return bool(data.tfds_mask_key)

    def describe_tfds(self, data, class_names=None):
        from tfcnn.data import segmentation_tfds

        return segmentation_tfds.describe_segmentation_tfds(
            data.tfds_name, mask_key=data.tfds_mask_key,
            data_dir=data.tfds_data_dir or None, class_names=class_names)

    def read_tfds(self, data, split):
        from tfcnn.data import segmentation_tfds

        return segmentation_tfds.read_segmentation_tfds(
            data.tfds_name, split, mask_key=data.tfds_mask_key,
            data_dir=data.tfds_data_dir or None)

    def label_counts(self, manifest, split):
        return manifest.pixel_counts(split)

    def build_training_model(self, recipe, num_classes, stats=None,
                             class_names=None):
        """``JointAugmentationModel`` around ``build_inference_model``."""
        del class_names  # a segmentation head is loaded whenever it fits
        from tfcnn.augment import segmentation as segmentation_augment

        augmentation = segmentation_augment.augmentation_from_recipe(
            recipe, stats)
        network = self.build_inference_model(recipe, num_classes, stats)
        return JointAugmentationModel(network, augmentation,
                                      name=f"{recipe.model.name}_training")

    def inference_model(self, model):
        return model.network

    def build_inference_model(self, recipe, num_classes, stats=None):
        """See the module docstring; ``stats`` feed the mean and PCA."""
        from tfcnn.augment import build as augment_build
        from tfcnn.augment import lighting as lighting_lib
        from tfcnn.layers import CropLike
        from tfcnn.layers import PadToMultiple

        config = task_lib.resolved_augment(recipe)
        inputs = keras.Input((None, None, 3), dtype="uint8", name="image")
        x = inputs
        if config.pca_lighting > 0:
            eigenvalues, eigenvectors = augment_build.pca_from_stats(stats)
            x = lighting_lib.PCALighting(
                stddev=config.pca_lighting, eigenvalues=eigenvalues,
                eigenvectors=eigenvectors, seed=recipe.data.seed + 2,
                name="pca_lighting")(x)
        mode = config.mean
        if mode is MeanMode.IMAGE:
            mode = MeanMode.CHANNEL
        x = augment_build.mean_subtraction(mode, stats)(x)
        x = PadToMultiple(PAD_MULTIPLE, name="pad")(x)
        x = task_lib.build_network(recipe, (None, None, 3), num_classes)(x)
        x = CropLike(name="crop")([x, inputs])
        return keras.Model(inputs, task_lib.probabilities(x),
                           name=recipe.model.name)

    def build_loss(self, recipe, class_names=(), label_counts=None):
        from tfcnn import losses

        weights = None
        if recipe.train.class_weighting is ClassWeighting.MEDIAN_FREQUENCY:
            weights = median_frequency_weights(class_names,
                                               label_counts or {})
        return losses.PixelCrossEntropy(ignore_class=IGNORE_VALUE,
                                        class_weights=weights)

    def build_metrics(self, num_classes, dense_labels=False):
        from tfcnn import metrics

        return metrics.build_segmentation_metrics(num_classes,
                                                  ignore_class=IGNORE_VALUE)

    def summary_callbacks(self, log_dir, data):
        from tfcnn import summaries

        if data.local_validation is None:
            return []
        return [summaries.SegmentationSummaries(
            log_dir, next(iter(data.local_validation.take(1))),
            data.class_names, ignore_value=IGNORE_VALUE,
            train_batch=summaries.sample_batch(data.local_train, 4,
                                               with_labels=True))]

    def evaluate(self, model, data, recipe, verbose=True):
        """Mean IoU, pixel accuracy and per-class IoU, void ignored.

        One image at a time at its own resolution (``data.dataset`` from
        ``host_dataset(full_size=True)``), one confusion matrix over all
        pixels of the split.
        """
        from tfcnn import metrics as metrics_lib
        from tfcnn import summaries

        num_classes = len(data.class_names)
        predict = summaries.class_predictor(model)
        confusion = np.zeros((num_classes, num_classes), np.int64)
        for images, masks in data.dataset:
            confusion += confusion_matrix(masks.numpy(),
                                          np.asarray(predict(images)),
                                          num_classes)
        per_class = metrics_lib.per_class_iou(confusion)
        defined = [iou for iou in per_class if iou is not None]
        total = confusion.sum()
        return {
            "mean_iou": float(np.mean(defined)) if defined else 0.0,
            "pixel_accuracy": (float(np.trace(confusion) / total)
                               if total else 0.0),
            "per_class_iou": dict(zip(data.class_names, per_class)),
            "pixels": int(total),
        }

    def format_metrics(self, metrics):
        return (f"{metrics['split']} ({metrics['num_examples']} images): "
                f"mean IoU {metrics['mean_iou']:.2%}, pixel accuracy "
                f"{metrics['pixel_accuracy']:.2%}")


def confusion_matrix(masks, predicted, num_classes):
    """Pixels of label i predicted as j, void pixels left out.

    Args:
        masks: int array of class ids (``IGNORE_VALUE`` for void).
        predicted: int array of the same shape.
        num_classes: int, K.

    Returns:
        int64 ``[K, K]``.
    """
    masks = np.asarray(masks).astype(np.int64).ravel()
    predicted = np.asarray(predicted).astype(np.int64).ravel()
    valid = masks != IGNORE_VALUE
    return np.bincount(num_classes * masks[valid] + predicted[valid],
                       minlength=num_classes ** 2).reshape(
        num_classes, num_classes)


def median_frequency_weights(class_names, pixel_counts):
    """Class weights ``median(f) / f_c`` (Eigen & Fergus 2015).

    ``f_c`` is the share of class ``c`` among the labelled pixels; rare
    classes weigh more. A class without pixels gets weight 0 (it cannot
    occur in the loss anyway).

    Args:
        class_names: list of str, in label order.
        pixel_counts: dict class name -> pixels (the manifest's).

    Returns:
        list of float, one per class.

    Raises:
        DataError: no pixel counts to weigh by.
    """
    counts = np.array([pixel_counts.get(name, 0) for name in class_names],
                      dtype=np.float64)
    if not counts.sum():
        raise DataError(
            "train.class_weighting = \"median_frequency\" needs the pixel "
            "counts per class that `tfcnn ingest` records in the manifest; "
            "these shards have none. Received: "
            "train.class_weighting=\"median_frequency\"")
    frequency = counts / counts.sum()
    median = np.median(frequency[frequency > 0])
    return [float(median / f) if f > 0 else 0.0 for f in frequency]


def _current(scope, variable, value):
    updated = scope.get_current_value(variable)
    return value if updated is None else updated


@keras.saving.register_keras_serializable(package="tfcnn")
class JointAugmentationModel(keras.Model):
    """A network trained on jointly augmented images and masks.

    Calling the model calls ``network``; ``fit``'s train step first passes
    ``{"images", "segmentation_masks"}`` through ``augmentation`` (in
    training mode), then runs Keras' own step on the result (under JAX
    with the augmentation's seeds carried in the step's state).
    Evaluation and prediction see the data as it comes.

    Args:
        network: the inference ``keras.Model``, uint8 images to per-pixel
            probabilities.
        augmentation: list of layers taking and returning the dict
            ``{"images": [B, H, W, 3], "segmentation_masks": [B, H, W]}``.
            Defaults to none.
        **kwargs: ``keras.Model`` arguments (``name``).
    """

    def __init__(self, network, augmentation=(), **kwargs):
        super().__init__(**kwargs)
        self.network = network
        self.augmentation = list(augmentation)

    def build(self, input_shape=None):
        # The network is built; the augmentation layers have no weights
        # and build on their first call, inside the train step.
        self.built = True

    def call(self, inputs, training=False):
        return self.network(inputs, training=training)

    def train_step(self, *args):
        if keras.backend.backend() == "jax":
            return self._stateless_train_step(*args)
        (data,) = args
        return super().train_step(self._augment(data))

    def _augment(self, data):
        images, masks = data
        batch = {"images": images, "segmentation_masks": masks}
        for layer in self.augmentation:
            batch = layer(batch, training=True)
        return batch["images"], batch["segmentation_masks"]

    def _stateless_train_step(self, state, data):
        """JAX's step is a pure function of the training state: the
        augmentation's random seeds (non-trainable variables) are read
        from it and their next values written back, as Keras does for
        the layers inside a model (``keras.StatelessScope``)."""
        trainable, non_trainable, optimizer, metrics = state
        with keras.StatelessScope(state_mapping=list(zip(
                self.non_trainable_variables, non_trainable))) as scope:
            data = self._augment(data)
        non_trainable = [
            _current(scope, variable, value) for variable, value in zip(
                self.non_trainable_variables, non_trainable)]
        return super().train_step(
            (trainable, non_trainable, optimizer, metrics), data)

    def get_config(self):
        return {"name": self.name,
                "network": keras.saving.serialize_keras_object(self.network),
                "augmentation": [keras.saving.serialize_keras_object(layer)
                                 for layer in self.augmentation]}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        network = keras.saving.deserialize_keras_object(config.pop("network"))
        augmentation = [keras.saving.deserialize_keras_object(layer)
                        for layer in config.pop("augmentation")]
        return cls(network, augmentation, **config)
