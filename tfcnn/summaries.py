"""TensorBoard beyond Keras' callback: speed, inputs, filters, confusion.

Keras' ``TensorBoard`` callback writes the epoch scalars (loss, top-1, top-5
and the learning rate, for train and validation), weight histograms and the
optional profiler trace. The callbacks here add what a person watching a
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
- ``SegmentationSummaries`` (semantic segmentation): image, ground truth
  and prediction overlays and the IoU of each class after each validation.

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
        self._reset()

    def on_train_begin(self, logs=None):
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(self.log_dir)
        self._install_timer()
        self._reset()

    def on_train_batch_end(self, batch, logs=None):
        self._steps += self.model.steps_per_execution
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
        self._writers = {
            run: tf.summary.create_file_writer(f"{self.log_dir}/{run}")
            for run in ("train", "validation")}
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
                    confusion_image(matrix, self.class_names)[None],
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
                filter_grid(kernel, grey=self.grey_input)[None],
                description="Kernels of the first convolution, each "
                            "scaled to its own range (cf. Fig. 3 of "
                            "Krizhevsky et al. 2012).")

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


class SegmentationSummaries(keras.callbacks.Callback):
    """Overlays and per-class IoU after each validation (segmentation).

    Writes to ``logs/validation`` at the global step:

    - ``segmentation_overlays``: one row per sample image, the image, its
      ground truth and the model's prediction, the masks blended over the
      image in Pascal VOC's colours (void in VOC's void colour);
    - ``iou/<class name>``: each class's IoU over the whole validation
      pass, from the confusion matrix the compiled ``mean_iou`` metric
      accumulated (Keras leaves the validation state in the metrics until
      the next epoch begins), so it costs no second pass.

    Args:
        log_dir: str or Path, the ``logs`` folder.
        sample_batch: ``(uint8 images [B, S, S, 3], masks [B, S, S])``, a
            validation batch; its first ``max_images`` are shown.
        class_names: list of str, in label order.
        max_images: int. Defaults to 4.
    """

    def __init__(self, log_dir, sample_batch, class_names, max_images=4):
        super().__init__()
        self.log_dir = str(log_dir)
        images, masks = sample_batch
        self.images = np.asarray(images)[:max_images]
        self.masks = np.asarray(masks)[:max_images]
        self.class_names = list(class_names)
        self._writer = None

    def on_epoch_end(self, epoch, logs=None):
        from tfcnn import metrics as metrics_lib

        if self._writer is None:
            self._writer = tf.summary.create_file_writer(
                f"{self.log_dir}/validation")
        probabilities = self.model(self.images, training=False)
        predicted = keras.ops.convert_to_numpy(
            keras.ops.argmax(probabilities, axis=-1))
        step = int(self.model.optimizer.iterations.numpy())
        with self._writer.as_default(step=step):
            tf.summary.image("segmentation_overlays", overlay_grid(
                self.images, self.masks, predicted)[None])
            metric = _find_metric(self.model, "mean_iou")
            if metric is not None:
                confusion = keras.ops.convert_to_numpy(metric.total_cm)
                for name, iou in zip(self.class_names,
                                     metrics_lib.per_class_iou(confusion)):
                    if iou is not None:
                        tf.summary.scalar(f"iou/{name}", iou)
        self._writer.flush()


def sample_batch(dataset, count, with_labels=False):
    """The first ``count`` images of a dataset's first batch (uint8), and
    their labels too when ``with_labels``."""
    images, labels = next(iter(dataset.take(1)))
    if with_labels:
        return images[:count], labels[:count]
    return images[:count]


def overlay_grid(images, masks, predicted, alpha=0.5):
    """Rows of image | ground truth | prediction, masks over the image.

    Args:
        images: uint8 ``[N, H, W, 3]``.
        masks: int ``[N, H, W]`` class ids (255 void).
        predicted: int ``[N, H, W]`` class ids.
        alpha: float, the masks' opacity. Defaults to 0.5.

    Returns:
        float32 ``[rows, columns, 3]`` in [0, 1].
    """
    from tfcnn.data.segmentation_masks import voc_palette

    palette = voc_palette().astype(np.float32)
    images = np.asarray(images, np.float32)

    def blend(ids):
        colours = palette[np.asarray(ids).astype(np.int64) % 256]
        return (1 - alpha) * images + alpha * colours

    tiles = np.stack([images, blend(masks), blend(predicted)], axis=1)
    count, _, height, width, _ = tiles.shape
    return _tile(tiles.reshape(-1, height, width, 3) / 255.0, columns=3)


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
    if captions is None:
        return _tile(x.numpy(), columns)[None]
    return _captioned_grid(x.numpy(), captions, columns)[None]


def _captioned_grid(tiles, captions, columns=None, side=64):
    """Tiles enlarged to ``side`` px with a caption under each, small
    enough (4 columns: 276 px) for TensorBoard to show at full size."""
    from PIL import Image
    from PIL import ImageDraw

    count = tiles.shape[0]
    columns = columns or math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    pad, caption_h = 4, 16
    canvas = Image.new("RGB", (columns * (side + pad) + pad,
                               rows * (side + caption_h + pad) + pad),
                       (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    font = _font(12)
    pixels = np.round(tiles * 255.0).astype(np.uint8)
    for i in range(count):
        left = pad + (i % columns) * (side + pad)
        top = pad + (i // columns) * (side + caption_h + pad)
        canvas.paste(Image.fromarray(pixels[i]).resize((side, side),
                                                       Image.NEAREST),
                     (left, top))
        text = _clip(draw, captions[i], side, font)
        _centred(draw, text, left + side / 2, top + side + caption_h / 2,
                 font, (0, 0, 0))
    return np.asarray(canvas, np.float32) / 255.0


def first_conv_kernel(model):
    """The kernel ``[kh, kw, c_in, c_out]`` of the first 2-D convolution."""
    for layer in _walk(model):
        if isinstance(layer, keras.layers.Conv2D) and hasattr(layer,
                                                              "kernel"):
            return keras.ops.convert_to_numpy(layer.kernel)
    return None


def filter_grid(kernel, min_side=48, grey=False):
    """The kernels of a convolution as a grid, each scaled to [0, 1].

    RGB kernels (``c_in = 3``) are shown in colour, others (and all when
    ``grey``) as the mean over their input channels; small kernels are
    enlarged (nearest neighbour) to at least ``min_side`` pixels.

    Args:
        kernel: ``[kh, kw, c_in, c_out]`` array.
        min_side: int. Defaults to 48.
        grey: bool, the input is grey (three equal channels): show each
            kernel's channel mean in grey. Defaults to False.

    Returns:
        float32 ``[H, W, 3]``.
    """
    kernel = np.asarray(kernel, np.float32)
    if kernel.shape[2] == 3 and not grey:
        tiles = np.transpose(kernel, (3, 0, 1, 2))
    else:
        tiles = np.repeat(np.transpose(kernel.mean(axis=2, keepdims=True),
                                       (3, 0, 1, 2)), 3, axis=-1)
    low = tiles.min(axis=(1, 2, 3), keepdims=True)
    high = tiles.max(axis=(1, 2, 3), keepdims=True)
    tiles = (tiles - low) / np.maximum(high - low, 1e-6)
    scale = max(1, math.ceil(min_side / tiles.shape[1]))
    tiles = tiles.repeat(scale, axis=1).repeat(scale, axis=2)
    return _tile(tiles, pad=3)


def confusion_image(matrix, class_names=None, max_side=240):
    """A confusion matrix drawn for TensorBoard's image card.

    Rows are the true classes and columns the predicted ones, each cell
    coloured by its share of the row (viridis: dark 0%, yellow 100%) with
    its count written in it; class names label both axes, with axis titles
    and a colour scale. Beyond about 30 classes the cells are too small
    for text: names and counts are left out, the colours stay.

    Args:
        matrix: ``[K, K]`` counts, rows true, columns predicted.
        class_names: list of K str, or None ("0", "1", ...). Defaults to
            None.
        max_side: int, the matrix part's side in pixels at most: with the
            labels the image then fits TensorBoard's card (about 340 px)
            without being scaled down. Defaults to 240.

    Returns:
        float32 ``[H, W, 3]`` in [0, 1].
    """
    from PIL import Image
    from PIL import ImageDraw

    counts = np.asarray(matrix, np.int64)
    k = counts.shape[0]
    names = ([str(i) for i in range(k)] if class_names is None
             else [str(n) for n in class_names])
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    cell = min(40, max_side / k)
    labelled = cell >= 16
    cell = int(cell) if cell >= 1 else cell
    font = _font(12)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    name_len = (min(80, max(probe.textlength(n, font=font) for n in names))
                + 6 if labelled else 0)
    title_h, bar_w = 18, 14
    left = title_h + int(name_len)
    top = 8
    side = int(round(cell * k))
    right_labels = int(probe.textlength("100%", font=font)) + 6
    width = left + side + 12 + bar_w + right_labels + 4
    height = top + side + int(name_len) + title_h + 4
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    colours = _viridis(shares)
    # Cells as pixels, enlarged (or, for hundreds of classes, averaged)
    # to the matrix's side.
    canvas.paste(Image.fromarray(colours).resize(
        (side, side), Image.NEAREST if cell >= 1 else Image.BOX),
        (left, top))
    for r in range(k if labelled else 0):
        for c in range(k):
            x, y = left + c * cell, top + r * cell
            if counts[r, c]:
                text = str(counts[r, c])
                ink = (0, 0, 0) if shares[r, c] > 0.6 else (255, 255, 255)
                _centred(draw, text, x + cell / 2, y + cell / 2, font, ink)
    if labelled:
        for i, name in enumerate(names):
            name = _clip(probe, name, name_len - 6, font)
            draw.text((left - 4, top + i * cell + cell / 2), name,
                      fill=(0, 0, 0), font=font, anchor="rm")
            label = _text_image(name, font, anchor_right=False)
            label = label.rotate(90, expand=True)
            canvas.paste(label, (int(left + i * cell + cell / 2
                                     - label.width / 2), top + side + 4))
    # Axis titles.
    _centred(draw, "predicted class", left + side / 2,
             top + side + name_len + title_h / 2, font, (0, 0, 0))
    title = _text_image("true class", font).rotate(90, expand=True)
    canvas.paste(title, (2, int(top + side / 2 - title.height / 2)))
    # Colour scale: 100% at the top, 0% at the bottom.
    bar_x = left + side + 12
    ramp = _viridis(np.linspace(1.0, 0.0, side)[:, None])
    for y in range(side):
        draw.line([bar_x, top + y, bar_x + bar_w - 1, top + y],
                  fill=tuple(ramp[y, 0]))
    draw.text((bar_x + bar_w + 3, top), "100%", fill=(0, 0, 0), font=font,
              anchor="lt")
    draw.text((bar_x + bar_w + 3, top + side), "0%", fill=(0, 0, 0),
              font=font, anchor="lb")
    return np.asarray(canvas, np.float32) / 255.0


# Viridis (matplotlib's default colour map) at five stops.
_VIRIDIS = np.array([[68, 1, 84], [59, 82, 139], [33, 145, 140],
                     [94, 201, 98], [253, 231, 37]], np.float64)


def _viridis(values):
    """``[...]`` values in [0, 1] -> ``[..., 3]`` uint8 colours."""
    scaled = np.clip(np.asarray(values, np.float64), 0, 1) * 4
    low = np.minimum(np.floor(scaled).astype(int), 3)
    frac = (scaled - low)[..., None]
    colours = _VIRIDIS[low] * (1 - frac) + _VIRIDIS[low + 1] * frac
    return np.round(colours).astype(np.uint8)


def _font(size):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: bitmap font
        return ImageFont.load_default()


def _centred(draw, text, x, y, font, fill):
    draw.text((x, y), text, fill=fill, font=font, anchor="mm")


def _text_image(text, font, anchor_right=False):
    """White image with ``text`` in black, to paste rotated."""
    from PIL import Image
    from PIL import ImageDraw

    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    left, top, right, bottom = probe.textbbox((0, 0), text, font=font)
    image = Image.new("RGB", (int(right - left) + 2, int(bottom - top) + 2),
                      (255, 255, 255))
    ImageDraw.Draw(image).text((1 - left, 1 - top), text, fill=(0, 0, 0),
                               font=font)
    return image


def _clip(draw, text, width, font):
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "...", font=font) > width:
        text = text[:-1]
    return text + "..."


def _name(class_names, index):
    return class_names[index] if 0 <= index < len(class_names) else str(
        index)


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
