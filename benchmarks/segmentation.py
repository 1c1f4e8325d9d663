"""Segmentation input throughput against the classification input.

Measures images/s of

  (cls) the classification training input on a set of JPEGs: shards
        written by ``tfcnn ingest`` from class folders, ``make_dataset`` at
        256, then the on-device layers of ``build_preprocessing`` (random
        224 crop, flip, PCA lighting, channel mean subtraction);
  (seg) the segmentation training input on the same JPEGs, each with a
        mask: shards written by ``tfcnn ingest`` from images/masks folders,
        ``make_segmentation_dataset`` at 256 (image bilinear, mask nearest),
        then the joint on-device augmentation
        (``RandomScaleCropFlip`` to 224, scale 0.5-2, with the mask) and
        channel mean subtraction;

on JPEGs of about 500x375 made from scikit-image's photos, with masks of
large regions (each photo's smoothed brightness in 8 classes) and a void
rim between them, about as compressible as VOC's. On a
machine without an accelerator the "on-device" layers run on the same
cores as tf.data and are charged to each input; with one they overlap.
The host pipelines alone (each batch only touched) are measured too, so
the host's share and the augmentation's can be told apart.
Each figure is the median of several timed slices of 8 batches (after 2
untimed ones, on a fresh iterator), the two candidates run round-robin in
this process. The target is seg / cls >= 0.8.

It also times one FCN training step (forward, per-pixel cross-entropy,
backward, SGD update) of ``fcn8s_small`` built from tfcnn's layers
(``TransposedConv2D`` with its bilinear initializer) against the same
network with Keras' built-in ``Conv2DTranspose`` in their place (same
weights), both as one ``tf.function`` called alternately on the same
batch; the ratio is tfcnn's steps/s over Keras' (target >= 0.95).

Run: ``python benchmarks/segmentation.py [--quick] [--data DIR]
[--fcn-only]``. The last line printed is one JSON object with every
figure.
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

# The photos and their 500x375 variants of the pipeline benchmark.
from pipeline import PHOTOS
from pipeline import photo_variants

SIZE = 256
CROP = 224
BATCH = 32
CLASSES = 8


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="400 images and fewer repeats")
    parser.add_argument("--data", default="/tmp/tfcnn_bench_segmentation",
                        help="where images, masks and shards go (reused)")
    parser.add_argument("--fcn-only", action="store_true",
                        help="only the FCN training step")
    args = parser.parse_args()
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    count = 400 if args.quick else 1200
    repeats = 3 if args.quick else 7
    figures = {}
    if not args.fcn_only:
        data = Path(args.data)
        _make_data(data, count)
        results = _measure(data, repeats)
        figures.update(_report(results, count))
    figures.update(_fcn_step(repeats))
    print(json.dumps(figures))


# Data ------------------------------------------------------------------------

def _make_data(data, count):
    """JPEGs with masks, as images/masks and as class folders, ingested."""
    done = data / f"done-{count}"
    if done.exists():
        return
    from PIL import Image

    from tfcnn.data import ingest

    pairs, folders = data / "pairs", data / "folders"
    for sub in ("images", "masks"):
        (pairs / sub).mkdir(parents=True, exist_ok=True)
    for index, (label, image) in enumerate(photo_variants(count)):
        stem = f"{index:05d}"
        Image.fromarray(image).save(pairs / "images" / f"{stem}.jpg",
                                    quality=90)
        folder = folders / PHOTOS[label]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{stem}.jpg").write_bytes(
            (pairs / "images" / f"{stem}.jpg").read_bytes())
        Image.fromarray(_mask(image), mode="L").save(
            pairs / "masks" / f"{stem}.png")
    for src, out in ((pairs, data / "seg_shards"),
                     (folders, data / "cls_shards")):
        ingest.ingest(src, out, num_shards=8, validation_split=0.0,
                      overwrite=True, progress=False)
    print(f"wrote {count} JPEGs with masks to {data}", file=sys.stderr)
    done.write_text("")


def _mask(image):
    """Object-like regions: the photo's brightness, smoothed over ~16 px,
    quantised to CLASSES ids, with a void rim where two ids meet (as
    VOC's masks are: large regions, thin void boundaries)."""
    import numpy as np
    from PIL import Image

    grey = Image.fromarray(image).convert("L")
    small = grey.resize((max(1, grey.width // 16), max(1, grey.height // 16)),
                        Image.BILINEAR)
    smooth = np.asarray(small.resize(grey.size, Image.BILINEAR), np.float32)
    mask = np.minimum(smooth * CLASSES / 256.0, CLASSES - 1).astype(np.uint8)
    edge = np.zeros(mask.shape, bool)
    edge[1:] |= mask[1:] != mask[:-1]
    edge[:, 1:] |= mask[:, 1:] != mask[:, :-1]
    mask[edge] = 255
    return mask


# Measurements ----------------------------------------------------------------

def _candidates(data):
    import keras
    import tensorflow as tf

    from tfcnn import augment
    from tfcnn.augment import mean as mean_lib
    from tfcnn.augment import segmentation
    from tfcnn.data import pipeline
    from tfcnn.data import segmentation_pipeline
    from tfcnn.data.manifest import Manifest
    from tfcnn.recipe import AugmentConfig
    from tfcnn.recipe import MeanMode

    cls_files = Manifest.load(data / "cls_shards").files("train")
    seg_files = Manifest.load(data / "seg_shards").files("train")
    common = {"resize_size": SIZE, "batch_size": BATCH, "training": True,
              "shuffle_buffer": 1000, "deterministic": False, "repeat": True}
    cls_data = pipeline.make_dataset(cls_files, **common)
    seg_data = segmentation_pipeline.make_segmentation_dataset(
        seg_files, **common)

    inputs = keras.Input((SIZE, SIZE, 3), dtype="uint8")
    x = inputs
    for layer in augment.build_preprocessing(
            AugmentConfig(mean=MeanMode.CHANNEL), crop_size=CROP):
        x = layer(x)
    cls_model = keras.Model(inputs, x)

    joint = segmentation.build_segmentation_augmentation(
        crop_size=CROP, mean=(124.0, 116.0, 104.0))
    mean = mean_lib.MeanSubtraction("channel")

    @tf.function
    def cls_step(images, labels):
        del labels
        # The summed output keeps grappler from pruning the work.
        return tf.reduce_sum(cls_model(images, training=True)[:, 0, 0, 0])

    @tf.function
    def seg_step(images, masks):
        out = {"images": images, "segmentation_masks": masks}
        for layer in joint:
            out = layer(out, training=True)
        images = mean(out["images"])
        return (tf.reduce_sum(images[:, 0, 0, 0])
                + tf.cast(tf.reduce_sum(out["segmentation_masks"][:, 0, 0]),
                          tf.float32))

    @tf.function
    def host_only(images, labels):
        del labels
        return tf.reduce_sum(tf.cast(images[:, 0, 0, 0], tf.float32))

    return {"cls": (cls_data, cls_step), "seg": (seg_data, seg_step),
            "cls_host": (cls_data, host_only),
            "seg_host": (seg_data, host_only)}


def _measure(data, repeats):
    candidates = _candidates(data)
    for name, candidate in candidates.items():
        _timed_slice(*candidate)  # warm-up: traces, fills the OS cache
    rates = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, candidate in candidates.items():
            rates[name].append(_timed_slice(*candidate))
    for name, values in rates.items():
        print(f"  {name}: {', '.join(f'{v:.0f}' for v in values)} images/s",
              file=sys.stderr)
    return {name: statistics.median(values)
            for name, values in rates.items()}


def _timed_slice(dataset, step, warm=2, timed=8):
    """images/s over ``timed`` batches of a fresh iterator, after ``warm``."""
    batches = iter(dataset)
    for _ in range(warm):
        step(*next(batches)).numpy()
    count = 0
    start = time.perf_counter()
    for _ in range(timed):
        images, labels = next(batches)
        step(images, labels).numpy()
        count += int(images.shape[0])
    return count / (time.perf_counter() - start)


# Report ----------------------------------------------------------------------

def _report(results, count):
    cls, seg = results["cls"], results["seg"]
    print(f"\nimages/s, {count} JPEGs ~500x375, batch {BATCH}, "
          f"{SIZE} -> {CROP}, {os.cpu_count()} CPUs (shared)")
    print(f"  {'(cls) classification input: host + augmentation':58s} "
          f"{cls:8.0f}")
    print(f"  {'(seg) segmentation input: host + joint augmentation':58s} "
          f"{seg:8.0f}")
    print(f"  {'seg/cls (target >= 0.8)':58s} {seg / cls:8.2f}")
    cls_host, seg_host = results["cls_host"], results["seg_host"]
    print(f"  {'(cls host) classification host pipeline alone':58s} "
          f"{cls_host:8.0f}")
    print(f"  {'(seg host) segmentation host pipeline alone':58s} "
          f"{seg_host:8.0f}")
    print(f"  {'seg host/cls host':58s} {seg_host / cls_host:8.2f}")
    return {
        "images": count,
        "classification_input_images_per_s": round(cls, 1),
        "segmentation_input_images_per_s": round(seg, 1),
        "segmentation_input_ratio": round(seg / cls, 3),
        "classification_host_images_per_s": round(cls_host, 1),
        "segmentation_host_images_per_s": round(seg_host, 1),
        "segmentation_host_ratio": round(seg_host / cls_host, 3),
    }


# FCN training step ------------------------------------------------------------

FCN_BATCH = 16
FCN_SIZE = 128
FCN_CLASSES = 21


def _fcn_step(repeats):
    """tfcnn's FCN-8s (small backbone) step against Keras built-ins."""
    import keras
    import numpy as np
    import tensorflow as tf

    import tfcnn.models
    from tfcnn.layers import TransposedConv2D
    from tfcnn.losses import PixelCrossEntropy

    keras.utils.set_random_seed(0)
    ours = tfcnn.models.build("fcn8s_small", num_classes=FCN_CLASSES,
                              input_shape=(FCN_SIZE, FCN_SIZE, 3))

    def builtin(layer):
        if isinstance(layer, TransposedConv2D):
            return keras.layers.Conv2DTranspose(
                layer.filters, layer.kernel_size, strides=layer.strides,
                padding="same", use_bias=False, trainable=layer.trainable,
                name=layer.name)
        return layer.__class__.from_config(layer.get_config())

    theirs = keras.models.clone_model(ours, clone_function=builtin)
    theirs.set_weights(ours.get_weights())
    rng = np.random.default_rng(0)
    images = tf.constant(rng.standard_normal(
        (FCN_BATCH, FCN_SIZE, FCN_SIZE, 3)).astype("float32"))
    masks = rng.integers(0, FCN_CLASSES, (FCN_BATCH, FCN_SIZE, FCN_SIZE))
    masks[:, :4] = 255
    masks = tf.constant(masks.astype("uint8"))
    np.testing.assert_allclose(ours(images[:2]), theirs(images[:2]),
                               atol=1e-4)
    loss_fn = PixelCrossEntropy()

    def step_for(model):
        optimizer = keras.optimizers.SGD(0.01, momentum=0.9)
        optimizer.build(model.trainable_variables)

        @tf.function
        def step(x, y):
            with tf.GradientTape() as tape:
                loss = loss_fn(y, model(x, training=True))
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply(grads, model.trainable_variables)
            return loss

        return step

    steps = {"tfcnn": step_for(ours), "keras": step_for(theirs)}
    for step in steps.values():
        for _ in range(3):
            step(images, masks).numpy()
    rates = {name: [] for name in steps}
    for _ in range(max(repeats, 5)):
        for name, step in steps.items():
            start = time.perf_counter()
            for _ in range(5):
                loss = step(images, masks)
            loss.numpy()
            rates[name].append(5 / (time.perf_counter() - start))
    ours_rate = statistics.median(rates["tfcnn"])
    theirs_rate = statistics.median(rates["keras"])
    print(f"\nFCN-8s (small backbone) training step, batch {FCN_BATCH}, "
          f"{FCN_SIZE}x{FCN_SIZE}, {FCN_CLASSES} classes")
    print(f"  {'tfcnn layers (TransposedConv2D), steps/s':58s} "
          f"{ours_rate:8.2f}")
    print(f"  {'Keras built-ins (Conv2DTranspose), steps/s':58s} "
          f"{theirs_rate:8.2f}")
    print(f"  {'tfcnn/keras (target >= 0.95)':58s} "
          f"{ours_rate / theirs_rate:8.3f}")
    return {"fcn_step_tfcnn_per_s": round(ours_rate, 3),
            "fcn_step_keras_per_s": round(theirs_rate, 3),
            "fcn_step_ratio": round(ours_rate / theirs_rate, 3)}


if __name__ == "__main__":
    main()
