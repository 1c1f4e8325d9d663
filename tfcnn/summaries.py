"""TensorBoard beyond Keras' callback: speed, inputs, filters, confusion.

Keras' ``TensorBoard`` callback writes the epoch scalars (loss, top-1, top-5
and the learning rate, for train and validation) and, when the recipe asks
(``train.histogram_freq``, ``train.profile_steps``), weight histograms and
a profiler trace. The callbacks here add what a person watching a
CNN train wants to see, into the same ``logs/train`` and ``logs/validation``
runs:

- ``StepMonitor``, scalars every few steps at the global step, grouped
  under ``training/`` so that they open together on one step axis:
  ``training/loss`` and ``training/accuracy`` (running means of the epoch
  so far, as Keras' progress bar shows them), ``training/learning_rate``,
  ``training/images_per_second`` and ``training/input_wait_fraction`` (the
  share of step time spent waiting for the next batch). Each carries a
  description with its unit.
- ``ImageSummaries``: ``inputs/augmented`` (training images as the network
  sees them after the on-device augmentation, with their class names, at
  every epoch), ``filters/first_layer`` (the first convolution's kernels,
  enlarged, like Fig. 3 of the AlexNet paper with its 96 kernels; grey when
  the input is grey), ``evaluation/confusion_matrix`` after each
  validation (class names on both axes, counts, a colour scale), and the
  model's graph.
- ``SegmentationSummaries`` (semantic segmentation): augmented inputs
  with their masks, labelled image / truth / prediction overlays and the
  IoU of each class after each validation.
- ``EpochScalars``: Keras' ``TensorBoard`` callback without its second
  copy of every validation metric, so each axis has one tag family.

The drawing itself lives in ``tfcnn.figures``, shared with ``tfcnn
preview``.

Input wait is measured exactly where the step waits: Keras' train function
is given an iterator that times each ``next()`` (an eager ``get_next`` that
blocks until the prefetched batch is there) before the compiled step runs.
This needs ``steps_per_execution = 1``; with more steps per call the batches
are fetched inside the graph, and ``input_wait_fraction`` is not written.
"""

import time

import keras
import numpy as np
import tensorflow as tf

from tfcnn import figures

# Side of each captioned input tile: 4 columns make 274 px, which
# TensorBoard's image card shows at full size.
_INPUT_TILE = 64

# Tags and what their TensorBoard cards say about them.
SCALARS = {
    "training/loss": "Training loss: the running mean over the epoch so "
                     "far (cross-entropy, nats), as Keras' progress bar "
                     "shows it.",
    "training/accuracy": "Training top-1 accuracy: the running mean over "
                         "the epoch so far (fraction, 0-1) on augmented "
                         "images.",
    "training/learning_rate": "Learning rate of the optimizer at this step "
                              "(after warm-up and schedule).",
    "training/images_per_second": "Training throughput: images per second "
                                  "over the last steps (global batch).",
    "training/input_wait_fraction": "Share of step time spent waiting for "
                                    "the next batch (fraction, 0-1); near "
                                    "0 when the input pipeline keeps up.",
}


class StepMonitor(keras.callbacks.Callback):
    """Writes the ``training/`` scalars every few steps (``SCALARS``).

    Args:
        log_dir: str or Path, the ``logs/train`` folder.
        batch_size: int, the global batch.
        every_steps: int, steps between two writes. Defaults to 100.
    """

    def __init__(self, log_dir, batch_size, every_steps=100):
        super().__init__()
        self.log_dir = str(log_dir)
        self.batch_size = batch_size
        self.every_steps = max(1, int(every_steps))
        self._writer = None
        self._wait = 0.0
        self._logs = {}
        self._steps_per_call = 1
        self._reset()

    def on_train_begin(self, logs=None):
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(self.log_dir)
        self._install_timer()
        # Read once: under JAX every read of self.model in a step's
        # callback copies the training state back into the model.
        self._steps_per_call = self.model.steps_per_execution
        self._reset()

    def on_train_batch_end(self, batch, logs=None):
        self._steps += self._steps_per_call
        self._logs = logs or {}
        if self._steps >= self.every_steps:
            self._write()

    def on_epoch_end(self, epoch, logs=None):
        if self._steps:
            self._write()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.flush()

    def _write(self):
        elapsed = time.perf_counter() - self._start
        step = int(self.model.optimizer.iterations.numpy())
        rate = self.model.optimizer.learning_rate
        values = {
            "training/loss": self._logs.get("loss"),
            "training/accuracy": self._logs.get("accuracy"),
            "training/learning_rate": float(
                keras.ops.convert_to_numpy(rate)),
            "training/images_per_second":
                self._steps * self.batch_size / elapsed,
            "training/input_wait_fraction":
                min(1.0, self._wait / elapsed) if self._timed else None,
        }
        with self._writer.as_default(step=step):
            for tag, value in values.items():
                if value is not None:
                    tf.summary.scalar(tag, float(value),
                                      description=SCALARS[tag])
        self._reset()

    def _reset(self):
        self._start = time.perf_counter()
        self._steps = 0
        self._wait = 0.0

    def _install_timer(self):
        # Keras exposes the compiled step as ``model.train_function`` (set
        # by ``make_train_function``) and offers no hook around the input
        # fetch, so the timer wraps it; tests/train/test_summaries.py
        # fails if Keras stops calling it with a Python iterator.
        function = self.model.train_function
        self._timed = self.model.steps_per_execution == 1
        if not self._timed or getattr(function, "_tfcnn_timed", False):
            return
        monitor = self

        def timed_train_function(*args):
            # Keras runs its compiled one-step function on each element of a
            # Python iterator, its last argument (JAX's step function takes
            # the training state first); ours times the wait for each.
            *state, iterator = args
            return function(*state, _TimedIterator(iterator, monitor))

        timed_train_function._tfcnn_timed = True
        self.model.train_function = timed_train_function


class EpochScalars(keras.callbacks.TensorBoard):
    """Keras' ``TensorBoard`` callback, each validation written once.

    Keras writes the validation metrics twice: ``epoch_<metric>`` in the
    ``validation`` run on the epoch axis, and again at the end of every
    validation as ``evaluation_<metric>_vs_iterations`` on the step axis.
    The step axis belongs to the ``training/`` scalars (``StepMonitor``),
    so the second copy is left out: loss and accuracy then have one tag
    family per axis. Everything else (``epoch_*`` scalars, histograms,
    the profiler trace) is Keras' own.
    """

    def on_test_end(self, logs=None):
        # Keras' on_test_end writes one scalar per entry of ``logs`` and
        # then restores the writer; with no entries it only restores.
        super().on_test_end({})


class _TimedIterator:
    """Adds the time each ``next()`` blocks to ``monitor._wait``."""

    def __init__(self, iterator, monitor):
        self._iterator = iterator
        self._monitor = monitor

    def __iter__(self):
        return self

    def __next__(self):
        start = time.perf_counter()
        try:
            element = next(self._iterator)
        except tf.errors.OutOfRangeError:
            raise StopIteration from None
        self._monitor._wait += time.perf_counter() - start
        return element


class ImageSummaries(keras.callbacks.Callback):
    """Augmented inputs, first-layer filters, confusion matrix and graph.

    Args:
        log_dir: str or Path, the ``logs`` folder (writes to its ``train``
            and ``validation`` runs).
        sample_images: uint8 ``[N, S, S, 3]`` training images to show after
            augmentation (16 is plenty).
        validation: ``tf.data.Dataset`` of validation batches, or None.
        num_classes: int.
        max_batches: int, validation batches the confusion matrix counts
            at most (fewer when ``validation_steps`` is smaller). Defaults
            to 50.
        validation_steps: int or None, batches in one validation pass
            (needed when ``validation`` repeats). Defaults to None.
        sample_labels: int ``[N]`` labels of ``sample_images`` (captions of
            the input grid), or None. Defaults to None.
        class_names: list of K str, or None ("0", "1", ...). Defaults to
            None.
    """

    def __init__(self, log_dir, sample_images, validation, num_classes,
                 max_batches=50, validation_steps=None, sample_labels=None,
                 class_names=None):
        super().__init__()
        self.log_dir = str(log_dir)
        self.sample_images = sample_images
        self.sample_labels = sample_labels
        self.validation = validation
        self.num_classes = num_classes
        self.class_names = (list(class_names) if class_names is not None
                            else [str(i) for i in range(num_classes)])
        # Grey images (digits, scans) come as three equal channels: their
        # filters are shown in grey, since colour means nothing there.
        images = np.asarray(sample_images)
        self.grey_input = bool(
            np.all(images[..., 0] == images[..., 1])
            and np.all(images[..., 1] == images[..., 2]))
        self.max_batches = min(max_batches,
                               validation_steps or max_batches)
        self._writers = None
        self._predict = None

    def on_train_begin(self, logs=None):
        if self._writers is not None:
            return  # a resumed epoch's second fit call: written already
        self._writers = _run_writers(self.log_dir)
        step = self._step()
        with self._writers["train"].as_default(step=step):
            self._write_graph()
            self._write_inputs()
            self._write_filters()

    def on_epoch_end(self, epoch, logs=None):
        step = self._step()
        with self._writers["train"].as_default(step=step):
            # A fresh draw of the random augmentation each epoch.
            self._write_inputs()
            self._write_filters()
        if self.validation is not None:
            matrix = self._confusion()
            with self._writers["validation"].as_default(step=step):
                tf.summary.image(
                    "evaluation/confusion_matrix",
                    figures.confusion_image(matrix, self.class_names)[None],
                    description="Validation predictions: rows are the true "
                                "classes, columns the predicted ones; each "
                                "cell shows its count, coloured by its "
                                "share of the true class.")
        for writer in self._writers.values():
            writer.flush()

    def _step(self):
        return int(self.model.optimizer.iterations.numpy())

    def _write_inputs(self):
        captions = None
        if self.sample_labels is not None:
            labels = np.asarray(self.sample_labels)
            if labels.ndim == 1:
                captions = [_name(self.class_names, int(label))
                            for label in labels]
        tf.summary.image(
            "inputs/augmented",
            augmented_grid(self.model, self.sample_images,
                           captions=captions),
            description="Training images after the on-device augmentation "
                        "(crop, flip, lighting), as the network sees them, "
                        "each rescaled to its own range; captions are the "
                        "labels.")

    def _write_filters(self):
        kernel = first_conv_kernel(self.model)
        if kernel is not None:
            tf.summary.image(
                "filters/first_layer",
                figures.filter_grid(kernel, grey=self.grey_input)[None],
                description="Kernels of the first convolution, each "
                            "scaled to its own range (cf. Fig. 3 of "
                            "Krizhevsky et al. 2012).")

    def _write_graph(self):
        if keras.backend.backend() != "tensorflow":
            return  # the graph is a traced tf.function's
        spec = tf.TensorSpec([None, *self.model.input_shape[1:]],
                             self.model.inputs[0].dtype)
        graph = tf.function(
            lambda images: self.model(images, training=False)
        ).get_concrete_function(spec).graph
        tf.summary.graph(graph)

    def _confusion(self):
        if self._predict is None:
            self._predict = class_predictor(self.model)
        matrix = np.zeros((self.num_classes, self.num_classes), np.int64)
        for images, labels in self.validation.take(self.max_batches):
            if len(labels.shape) == 2:  # MixUp/CutMix one-hot labels
                labels = tf.argmax(labels, axis=-1, output_type=tf.int32)
            matrix += tf.math.confusion_matrix(
                labels, self._predict(images), self.num_classes,
                dtype=tf.int64).numpy()
        return matrix


class SegmentationSummaries(keras.callbacks.Callback):
    """Augmented inputs, labelled overlays and per-class IoU (segmentation).

    Writes at the global step:

    - ``inputs/augmented`` (``logs/train``, at the start and after each
      epoch): training images after the joint augmentation of the TRAINING
      MODEL (``model.augmentation``, a fresh random draw each time), each
      beside its mask overlaid, captioned with the classes it shows, as
      ``tfcnn preview`` draws them (``tfcnn.figures.mask_pairs``);
    - ``segmentation_overlays`` (``logs/validation``): one row per sample
      image under the column titles image / truth / prediction, the masks
      blended over the image in Pascal VOC's colours, with a legend naming
      each class shown (``tfcnn.figures.segmentation_figure``);
    - ``iou/<class name>`` (``logs/validation``): each class's IoU over the
      whole validation pass, from the confusion matrix the compiled
      ``mean_iou`` metric accumulated (Keras leaves the validation state
      in the metrics until the next epoch begins), so it costs no second
      pass.

    Args:
        log_dir: str or Path, the ``logs`` folder.
        sample_batch: ``(uint8 images [B, S, S, 3], masks [B, S, S])``, a
            validation batch; its first ``max_images`` are shown.
        class_names: list of str, in label order.
        max_images: int. Defaults to 4.
        train_batch: ``(uint8 images, masks)``, a training batch whose
            first ``max_images`` are shown augmented, or None. Defaults to
            None.
        ignore_value: int, the masks' void value. Defaults to 255.
    """

    def __init__(self, log_dir, sample_batch, class_names, max_images=4,
                 train_batch=None, ignore_value=255):
        super().__init__()
        self.log_dir = str(log_dir)
        images, masks = sample_batch
        self.images = np.asarray(images)[:max_images]
        self.masks = np.asarray(masks)[:max_images]
        self.train_batch = None
        if train_batch is not None:
            self.train_batch = tuple(np.asarray(part)[:max_images]
                                     for part in train_batch)
        self.class_names = list(class_names)
        self.ignore_value = ignore_value
        self._writers = None

    def on_train_begin(self, logs=None):
        if self._writers is not None:
            return  # a resumed epoch's second fit call: written already
        self._writers = _run_writers(self.log_dir)
        self._write_inputs()

    def on_epoch_end(self, epoch, logs=None):
        from tfcnn import metrics as metrics_lib

        self._write_inputs()
        probabilities = self.model(np.asarray(self.images), training=False)
        predicted = keras.ops.convert_to_numpy(
            keras.ops.argmax(probabilities, axis=-1))
        with self._writers["validation"].as_default(step=self._step()):
            tf.summary.image(
                "segmentation_overlays",
                figures.segmentation_figure(
                    self.images, self.masks, predicted, self.class_names,
                    ignore_value=self.ignore_value)[None],
                description="Validation images (left), their ground truth "
                            "(middle) and the model's prediction (right) "
                            "in Pascal VOC's colours; the legend names "
                            "each class shown.")
            metric = _find_metric(self.model, "mean_iou")
            if metric is not None:
                confusion = keras.ops.convert_to_numpy(metric.total_cm)
                for name, iou in zip(self.class_names,
                                     metrics_lib.per_class_iou(confusion)):
                    if iou is not None:
                        tf.summary.scalar(f"iou/{name}", iou)
        for writer in self._writers.values():
            writer.flush()

    def _step(self):
        return int(self.model.optimizer.iterations.numpy())

    def _write_inputs(self):
        if self.train_batch is None:
            return
        images, masks = self.train_batch
        batch = {"images": keras.ops.convert_to_tensor(np.asarray(images)),
                 "segmentation_masks": keras.ops.convert_to_tensor(
                     np.asarray(masks))}
        for layer in self.model.augmentation:
            batch = layer(batch, training=True)
        pixels = np.clip(np.round(keras.ops.convert_to_numpy(
            batch["images"]).astype(np.float32)), 0, 255).astype(np.uint8)
        tiles, captions = figures.mask_pairs(
            pixels, keras.ops.convert_to_numpy(batch["segmentation_masks"]),
            self.class_names, ignore_value=self.ignore_value)
        with self._writers["train"].as_default(step=self._step()):
            tf.summary.image(
                "inputs/augmented",
                figures.captioned_grid(tiles, captions, columns=2)[None],
                description="Training images after the joint augmentation "
                            "(scale, crop, flip), each beside its mask in "
                            "Pascal VOC's colours; captions name the "
                            "classes shown.")


def class_predictor(model):
    """images -> the predicted class (``int32``, the arg max over the
    last axis: ``[B]`` per image, ``[B, H, W]`` per pixel): a
    tf.function under TensorFlow, else Keras' compiled ``predict`` step
    (JAX has no tf.function to trace the model into)."""
    if keras.backend.backend() == "tensorflow":
        return tf.function(
            lambda images: tf.argmax(model(images, training=False),
                                     axis=-1, output_type=tf.int32),
            reduce_retracing=True)

    def predict(images):
        probabilities = model.predict_on_batch(np.asarray(images))
        return np.argmax(probabilities, axis=-1).astype(np.int32)

    return predict


def _run_writers(log_dir):
    """Summary writers of the ``train`` and ``validation`` runs."""
    return {run: tf.summary.create_file_writer(f"{log_dir}/{run}")
            for run in ("train", "validation")}


def sample_batch(dataset, count, with_labels=False):
    """The first ``count`` images of a dataset's first batch (uint8), and
    their labels too when ``with_labels``."""
    images, labels = next(iter(dataset.take(1)))
    if with_labels:
        return images[:count], labels[:count]
    return images[:count]


def _find_metric(model, name):
    """The compiled metric named ``name`` (inside Keras' container)."""
    pending = list(model.metrics)
    while pending:
        metric = pending.pop()
        if metric.name == name:
            return metric
        pending.extend(getattr(metric, "metrics", ()))
    return None


def augmented_grid(model, images, columns=None, captions=None):
    """A grid image of ``images`` after the model's preprocessing layers.

    The layers between the uint8 input and the network run with
    ``training=True``; each image is rescaled to [0, 1] for display (they
    are mean-subtracted by then).

    Args:
        model: the TRAINING MODEL.
        images: uint8 ``[N, S, S, 3]``.
        columns: int or None (about square).
        captions: list of N str written under the tiles, or None.
            Defaults to None.

    Returns:
        ``[1, H, W, 3]``: float32 in [0, 1], or uint8 with captions.
    """
    x = keras.ops.convert_to_tensor(np.asarray(images))
    for layer in model.layers[1:]:
        if isinstance(layer, keras.Model) or layer.name == "probabilities":
            break
        x = layer(x, training=True)
    x = keras.ops.convert_to_numpy(x).astype(np.float32)
    low = x.min(axis=(1, 2, 3), keepdims=True)
    high = x.max(axis=(1, 2, 3), keepdims=True)
    x = (x - low) / np.maximum(high - low, 1e-6)
    if captions is None:
        return figures.tile(x, columns)[None]
    pixels = np.round(x * 255.0).astype(np.uint8)
    return figures.captioned_grid(pixels, captions, columns=columns,
                                  side=_INPUT_TILE)[None]


def first_conv_kernel(model):
    """The kernel ``[kh, kw, c_in, c_out]`` of the first 2-D convolution."""
    for layer in _walk(model):
        if isinstance(layer, keras.layers.Conv2D) and hasattr(layer,
                                                              "kernel"):
            return keras.ops.convert_to_numpy(layer.kernel)
    return None


def _name(class_names, index):
    return class_names[index] if 0 <= index < len(class_names) else str(
        index)


def _walk(layer):
    """Layers in order, descending into nested models."""
    for sub in getattr(layer, "layers", ()):
        yield sub
        yield from _walk(sub)
