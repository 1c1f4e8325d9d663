"""TensorBoard beyond Keras' callback: speed, inputs, filters, confusion.

Keras' ``TensorBoard`` callback writes the epoch scalars (loss, top-1, top-5
and the learning rate, for train and validation), weight histograms and the
optional profiler trace. The two callbacks here add what a person watching a
CNN train wants to see, into the same ``logs/train`` and ``logs/validation``
runs:

- ``StepMonitor``, scalars every few steps at the global step:
  ``images_per_second``, ``input_wait_fraction`` (the share of step time
  spent waiting for the next batch) and ``learning_rate``.
- ``ImageSummaries``: ``augmented_inputs`` (a grid of training images as
  the network sees them, after the on-device augmentation),
  ``first_layer_filters`` (the first convolution's kernels as a grid, like
  Fig. 3 of the AlexNet paper with its 96 kernels), ``confusion_matrix``
  after each validation, and the model's graph.

Input wait is measured exactly where the step waits: Keras' train function
is given an iterator that times each ``next()`` (an eager ``get_next`` that
blocks until the prefetched batch is there) before the compiled step runs.
This needs ``steps_per_execution = 1``; with more steps per call the batches
are fetched inside the graph, and ``input_wait_fraction`` is not written.
"""

import math
import time

import keras
import numpy as np
import tensorflow as tf


class StepMonitor(keras.callbacks.Callback):
    """Writes ``images_per_second``, ``input_wait_fraction`` and the rate.

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
        self._reset()

    def on_train_begin(self, logs=None):
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(self.log_dir)
        self._install_timer()
        self._reset()

    def on_train_batch_end(self, batch, logs=None):
        self._steps += self.model.steps_per_execution
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
        with self._writer.as_default(step=step):
            tf.summary.scalar("images_per_second",
                              self._steps * self.batch_size / elapsed)
            if self._timed:
                tf.summary.scalar("input_wait_fraction",
                                  min(1.0, self._wait / elapsed))
            rate = self.model.optimizer.learning_rate
            tf.summary.scalar("learning_rate",
                              float(keras.ops.convert_to_numpy(rate)))
        self._reset()

    def _reset(self):
        self._start = time.perf_counter()
        self._steps = 0
        self._wait = 0.0

    def _install_timer(self):
        # Keras exposes the compiled step as ``model.train_function`` (set
        # by ``make_train_function``) and offers no hook around the input
        # fetch, so the timer wraps it; the TensorBoard test of
        # ``input_wait_fraction`` fails if Keras stops calling it.
        function = self.model.train_function
        self._timed = self.model.steps_per_execution == 1
        if not self._timed or getattr(function, "_tfcnn_timed", False):
            return
        monitor = self

        def timed_train_function(iterator):
            # Keras runs its compiled one-step function on each element of a
            # Python iterator; ours times the wait for each element.
            return function(_TimedIterator(iterator, monitor))

        timed_train_function._tfcnn_timed = True
        self.model.train_function = timed_train_function


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
    """

    def __init__(self, log_dir, sample_images, validation, num_classes,
                 max_batches=50, validation_steps=None):
        super().__init__()
        self.log_dir = str(log_dir)
        self.sample_images = sample_images
        self.validation = validation
        self.num_classes = num_classes
        self.max_batches = min(max_batches,
                               validation_steps or max_batches)
        self._writers = None
        self._predict = None

    def on_train_begin(self, logs=None):
        if self._writers is not None:
            return  # a resumed epoch's second fit call: written already
        self._writers = {
            run: tf.summary.create_file_writer(f"{self.log_dir}/{run}")
            for run in ("train", "validation")}
        step = self._step()
        with self._writers["train"].as_default(step=step):
            self._write_graph()
            tf.summary.image("augmented_inputs",
                             augmented_grid(self.model, self.sample_images))
            self._write_filters()

    def on_epoch_end(self, epoch, logs=None):
        step = self._step()
        with self._writers["train"].as_default(step=step):
            self._write_filters()
        if self.validation is not None:
            matrix = self._confusion()
            with self._writers["validation"].as_default(step=step):
                tf.summary.image("confusion_matrix",
                                 confusion_image(matrix)[None])
        for writer in self._writers.values():
            writer.flush()

    def _step(self):
        return int(self.model.optimizer.iterations.numpy())

    def _write_filters(self):
        kernel = first_conv_kernel(self.model)
        if kernel is not None:
            tf.summary.image("first_layer_filters",
                             filter_grid(kernel)[None])

    def _write_graph(self):
        spec = tf.TensorSpec([None, *self.model.input_shape[1:]],
                             self.model.inputs[0].dtype)
        graph = tf.function(
            lambda images: self.model(images, training=False)
        ).get_concrete_function(spec).graph
        tf.summary.graph(graph)

    def _confusion(self):
        if self._predict is None:
            self._predict = tf.function(
                lambda images: tf.argmax(self.model(images, training=False),
                                         axis=-1, output_type=tf.int32))
        matrix = np.zeros((self.num_classes, self.num_classes), np.int64)
        for images, labels in self.validation.take(self.max_batches):
            if len(labels.shape) == 2:  # MixUp/CutMix one-hot labels
                labels = tf.argmax(labels, axis=-1, output_type=tf.int32)
            matrix += tf.math.confusion_matrix(
                labels, self._predict(images), self.num_classes,
                dtype=tf.int64).numpy()
        return matrix


def augmented_grid(model, images, columns=None):
    """A grid image of ``images`` after the model's preprocessing layers.

    The layers between the uint8 input and the network run with
    ``training=True``; each image is rescaled to [0, 1] for display (they
    are mean-subtracted by then).

    Args:
        model: the TRAINING MODEL.
        images: uint8 ``[N, S, S, 3]``.
        columns: int or None (about square).

    Returns:
        float32 ``[1, H, W, 3]``.
    """
    x = tf.convert_to_tensor(images)
    for layer in model.layers[1:]:
        if isinstance(layer, keras.Model) or layer.name == "probabilities":
            break
        x = layer(x, training=True)
    x = tf.cast(x, tf.float32)
    low = tf.reduce_min(x, axis=[1, 2, 3], keepdims=True)
    high = tf.reduce_max(x, axis=[1, 2, 3], keepdims=True)
    x = (x - low) / tf.maximum(high - low, 1e-6)
    return _tile(x.numpy(), columns)[None]


def first_conv_kernel(model):
    """The kernel ``[kh, kw, c_in, c_out]`` of the first 2-D convolution."""
    for layer in _walk(model):
        if isinstance(layer, keras.layers.Conv2D) and hasattr(layer,
                                                              "kernel"):
            return keras.ops.convert_to_numpy(layer.kernel)
    return None


def filter_grid(kernel, min_side=24):
    """The kernels of a convolution as a grid, each scaled to [0, 1].

    RGB kernels (``c_in = 3``) are shown in colour, others as the mean over
    their input channels; small kernels are enlarged (nearest neighbour) to
    at least ``min_side`` pixels.

    Args:
        kernel: ``[kh, kw, c_in, c_out]`` array.
        min_side: int. Defaults to 24.

    Returns:
        float32 ``[H, W, 3]``.
    """
    kernel = np.asarray(kernel, np.float32)
    if kernel.shape[2] == 3:
        tiles = np.transpose(kernel, (3, 0, 1, 2))
    else:
        tiles = np.repeat(np.transpose(kernel.mean(axis=2, keepdims=True),
                                       (3, 0, 1, 2)), 3, axis=-1)
    low = tiles.min(axis=(1, 2, 3), keepdims=True)
    high = tiles.max(axis=(1, 2, 3), keepdims=True)
    tiles = (tiles - low) / np.maximum(high - low, 1e-6)
    scale = max(1, math.ceil(min_side / tiles.shape[1]))
    tiles = tiles.repeat(scale, axis=1).repeat(scale, axis=2)
    return _tile(tiles)


def confusion_image(matrix, min_side=256):
    """A confusion matrix as an image: rows (true classes) normalized.

    Args:
        matrix: ``[K, K]`` counts, rows true, columns predicted.
        min_side: int, enlarge to at least this many pixels. Defaults to 256.

    Returns:
        float32 ``[H, W, 3]`` in [0, 1], bright where counts are high.
    """
    matrix = np.asarray(matrix, np.float64)
    rows = np.maximum(matrix.sum(axis=1, keepdims=True), 1.0)
    image = (matrix / rows).astype(np.float32)
    scale = max(1, math.ceil(min_side / image.shape[0]))
    image = image.repeat(scale, axis=0).repeat(scale, axis=1)
    return np.repeat(image[..., None], 3, axis=-1)


def _tile(tiles, columns=None, pad=1):
    count, height, width, channels = tiles.shape
    columns = columns or math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    grid = np.ones((rows * (height + pad) + pad,
                    columns * (width + pad) + pad, channels), np.float32)
    for i in range(count):
        top = pad + (i // columns) * (height + pad)
        left = pad + (i % columns) * (width + pad)
        grid[top:top + height, left:left + width] = tiles[i]
    return grid


def _walk(layer):
    """Layers in order, descending into nested models."""
    for sub in getattr(layer, "layers", ()):
        yield sub
        yield from _walk(sub)
