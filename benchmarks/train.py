"""Training throughput: does the input pipeline starve the model?

Measures images/s of training steps side by side in one process, each pair
taking turns in short ``fit`` windows (the first window of each, which
traces and compiles, is not timed; the median over ``--rounds`` windows is
reported, and each ratio is the median of the ratios of the windows of
the same round):

1. ``real_over_synthetic``: AlexNet's and ResNet-50's TRAINING MODEL (uint8
   input, on-device augmentation, compiled as ``tfcnn train`` compiles it)
   fed by the real pipeline (JPEG shards written to a temporary folder by
   ``tfcnn ingest``, decoded and resized on the host by
   ``tfcnn.data.pipeline``) over the same model fed one synthetic batch
   (``data.source = "synthetic"``, no host work). The target is
   >= 0.95: the input must not starve the model.
2. ``tfcnn_over_keras_builtin``: AlexNet built by ``tfcnn.models`` (our
   ``LocalResponseNormalization``) over the same network from Keras
   built-ins only (LRN through ``tf.nn.local_response_normalization`` in a
   ``Lambda``, fine for a benchmark), both trained on the same synthetic
   float batch with the same optimizer. The target is >= 0.95.
3. On a GPU (or with ``--speed-options``): images/s with ``mixed_float16``
   and with ``mixed_float16`` + XLA (``jit_compile``), synthetic and real.

On a CPU the host pipeline and the model share the same cores (here two,
shared with other jobs), so ``real_over_synthetic`` is a lower bound of
what a GPU machine sees, and every figure is noisy.

    python benchmarks/train.py --quick     # CPU, a few minutes
    python benchmarks/train.py --smoke     # seconds: proves the script
    python benchmarks/train.py             # GPU machine: full sizes

The last line is one JSON object with every figure.
"""

import argparse
import gc
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfcnn import recipe as recipe_lib  # noqa: E402
from tfcnn import summaries  # noqa: E402
from tfcnn.train import fit  # noqa: E402
from tfcnn.train import inputs  # noqa: E402


class EpochTimer(keras.callbacks.Callback):
    """Images/s of each epoch from its first step's end to its last's.

    The first step of a ``fit`` call is left out: it also waits for a new
    iterator's first batch, which a long run pays once.
    """

    def __init__(self, batch_size):
        super().__init__()
        self.batch_size = batch_size
        self.rates = []

    def on_epoch_begin(self, epoch, logs=None):
        self._steps = -1

    def on_train_batch_end(self, batch, logs=None):
        self._steps += 1
        self._end = time.perf_counter()
        if self._steps == 0:
            self._start = self._end

    def on_epoch_end(self, epoch, logs=None):
        if self._steps > 0:
            self.rates.append(self._steps * self.batch_size /
                              (self._end - self._start))


def write_shards(directory, count, classes, resize_size, seed=0):
    """Smooth random JPEGs of ImageNet-like size, ingested to shards, with
    the statistics (mean, RGB PCA) at ``resize_size`` that training needs,
    as ``tfcnn stats`` computes them."""
    from PIL import Image

    from tfcnn.data import stats
    from tfcnn.data.classification_ingest import ingest

    rng = np.random.default_rng(seed)
    src = Path(directory) / "images"
    for i in range(count):
        folder = src / f"class_{i % classes}"
        folder.mkdir(parents=True, exist_ok=True)
        low = rng.uniform(0, 255, (12, 16, 3)).astype(np.uint8)
        image = Image.fromarray(low).resize((500, 375), Image.BILINEAR)
        noise = rng.normal(0, 8, (375, 500, 3))
        pixels = np.clip(np.asarray(image) + noise, 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{i:05d}.jpg", quality=90)
    out = Path(directory) / "shards"
    ingest(src, out, validation_split=0.0, num_shards=4,
           progress=False)
    stats.compute_stats(out, resize_size=resize_size, progress=False)
    return out


def recipe_for(name, model_dir, *, source, batch, steps, classes, size,
               shards=None, precision="float32", jit=False):
    """A training recipe for AlexNet/ResNet-50 on synthetic or real data."""
    data = {"source": source, "crop_size": size,
            "resize_size": resize_size_for(size),
            "synthetic_classes": classes,
            "synthetic_images": batch * steps}
    if source == "tfrecord":
        data["path"] = str(shards)
    return recipe_lib.recipe_from_dict({
        "data": data,
        "augment": {"mean": "channel"},
        "model": {"name": name},
        "train": {"batch_size": batch, "steps_per_epoch": steps,
                  "model_dir": str(model_dir), "precision": precision,
                  "jit_compile": jit},
    })


def resize_size_for(crop_size):
    """The host size S of a crop: 256 for 224, else about 8/7 of it."""
    return 256 if crop_size == 224 else crop_size + crop_size // 7


def alternate(models_and_data, *, batch, steps, rounds, callbacks=()):
    """Interleaved ``fit`` windows; images/s of each (model, data) pair.

    Every pair runs one untimed warm-up window (tracing, compilation),
    then ``rounds`` timed windows, the pairs taking turns so that a change
    in the machine's load hits them alike. ``callbacks`` run in every
    window.
    """
    timers = [EpochTimer(batch) for _ in models_and_data]
    for round_ in range(rounds + 1):
        for (model, dataset), timer in zip(models_and_data, timers):
            model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0,
                      shuffle=False, callbacks=[
                          *callbacks, *([timer] if round_ else [])])
            # Free the window's iterator now: a pipeline's threads left
            # running would slow the next window down.
            gc.collect()
    return [t.rates for t in timers]


def pipeline_rates(name, tmp, shards, *, batch, steps, rounds, classes,
                   size, precision="float32", jit=False):
    """(real, synthetic) images/s of one training model, interleaved.

    The model is the recipe's TRAINING MODEL (uint8 input, on-device
    augmentation), compiled as ``tfcnn train`` compiles it; the datasets
    are what ``tfcnn train`` feeds it: the shard pipeline, or one
    synthetic batch repeated.
    """
    common = dict(batch=batch, steps=steps, classes=classes, size=size,
                  precision=precision, jit=jit)
    real = recipe_for(name, tmp, source="tfrecord", shards=shards, **common)
    synthetic = recipe_for(name, tmp, source="synthetic", **common)
    real_data = inputs.training_inputs(real)
    synthetic_data = inputs.training_inputs(synthetic)
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        model = fit.build_training_model(real, classes, real_data.stats)
        fit.compile_model(model, real, steps)
    finally:
        keras.config.set_dtype_policy(policy)
    # tfcnn train's step-time monitor: its timed iterator is the path
    # every training step takes.
    monitor = summaries.StepMonitor(Path(tmp) / "logs", batch,
                                    every_steps=steps)
    real_rates, synthetic_rates = alternate(
        [(model, real_data.train), (model, synthetic_data.train)],
        batch=batch, steps=steps, rounds=rounds, callbacks=[monitor])
    keras.backend.clear_session()
    return (median(real_rates), median(synthetic_rates),
            paired_ratio(real_rates, synthetic_rates))


def keras_builtin_alexnet(num_classes, size):
    """AlexNet (two towers) from Keras built-ins only, as tfcnn builds it."""
    layers = keras.layers
    inputs = keras.Input((size, size, 3))
    pad = (-(size - 11)) % 4  # to 4k + 11, as tfcnn's conv1_pad
    x = layers.ZeroPadding2D(((0, pad), (0, pad)))(inputs)
    spec = ((96, 11, 4, 1, True, True), (256, 5, 1, 2, True, True),
            (384, 3, 1, 1, False, False), (384, 3, 1, 2, False, False),
            (256, 3, 1, 2, False, True))
    for index, (filters, kernel, stride, groups, lrn, pool) in enumerate(
            spec):
        x = layers.Conv2D(filters, kernel, stride, groups=groups,
                          padding="valid" if index == 0 else "same",
                          activation="relu")(x)
        if lrn:
            x = layers.Lambda(lambda t: tf.nn.local_response_normalization(
                t, depth_radius=2, bias=2.0, alpha=1e-4, beta=0.75))(x)
        if pool:
            x = layers.MaxPooling2D(3, 2)(x)
    x = layers.Flatten()(x)
    for _ in range(2):
        x = layers.Dropout(0.5)(layers.Dense(4096, activation="relu")(x))
    outputs = layers.Dense(num_classes, activation="softmax")(x)
    return keras.Model(inputs, outputs)


def network_rates(models, *, batch, steps, rounds):
    """Images/s of networks trained on one synthetic float batch, in turn."""
    rng = np.random.default_rng(0)
    pairs = []
    for model in models:
        model.compile(keras.optimizers.SGD(0.01, momentum=0.9),
                      "sparse_categorical_crossentropy")
        images = rng.normal(size=(batch, *model.input_shape[1:]))
        labels = rng.integers(0, model.output_shape[-1], batch)
        pairs.append((model, tf.data.Dataset.from_tensors(
            (images.astype(np.float32), labels.astype(np.int32))).repeat()))
    rates = alternate(pairs, batch=batch, steps=steps, rounds=rounds)
    keras.backend.clear_session()
    return [median(r) for r in rates] + [paired_ratio(*rates)]


def median(values):
    return float(statistics.median(values))


def paired_ratio(candidate, reference):
    """The median of the ratios of windows taken in the same round
    (seconds apart): a change in the machine's load moves it less than
    the ratio of two medians."""
    return median([a / b for a, b in zip(candidate, reference)])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="CPU sizes: small batches and few steps")
    parser.add_argument("--smoke", action="store_true",
                        help="the smallest run of every measurement (72x72 "
                             "crops, 2 steps, one timed window): proves the "
                             "script end to end; its figures mean nothing")
    parser.add_argument("--rounds", type=int, default=0,
                        help="timed windows per measurement (default 7 "
                             "with --quick, else 5)")
    parser.add_argument("--skip-resnet", action="store_true")
    parser.add_argument("--speed-options", action="store_true",
                        help="also time mixed_float16 and XLA (default: "
                             "only when a GPU is visible)")
    args = parser.parse_args(argv)
    gpu = bool(tf.config.list_physical_devices("GPU"))
    # (batch, steps per timed window)
    if args.smoke:
        sizes = {"alexnet": (4, 2), "resnet50": (2, 2)}
        images, classes, size = 16, 2, 72
        rounds = args.rounds or 1
    elif args.quick:
        # 2 shared CPU cores: the networks at 112x112 crops of 130x130
        # images (AlexNet is padded to 115, as 224 is to 227).
        sizes = {"alexnet": (16, 6), "resnet50": (8, 4)}
        images, classes, size = 64, 4, 112
        # Windows of a few seconds on shared cores: with 3 of them the
        # AlexNet ratio read from 0.89 to 1.02 in one quiet hour, with 7
        # to 9 from 0.93 to 0.958 (four runs on two machines).
        rounds = args.rounds or 7
    else:
        sizes = {"alexnet": (256, 30), "resnet50": (128, 20)}
        images, classes, size = 2048, 100, 224
        rounds = args.rounds or 5
    models = ["alexnet"] + ([] if args.skip_resnet else ["resnet50"])
    results = {"device": "gpu" if gpu else "cpu",
               "replicas": max(1, len(tf.config.list_physical_devices("GPU")))}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        print(f"writing {images} JPEGs to shards ...", file=sys.stderr)
        shards = write_shards(tmp, images, classes,
                              resize_size_for(size))
        for name in models:
            batch, steps = sizes[name]
            real, synthetic, ratio = pipeline_rates(
                name, tmp / name, shards, batch=batch, steps=steps,
                rounds=rounds, classes=classes, size=size)
            results[f"{name}_synthetic_images_per_second"] = synthetic
            results[f"{name}_real_images_per_second"] = real
            results[f"{name}_real_over_synthetic"] = ratio
            rows.append((f"{name} real pipeline / synthetic", real,
                         synthetic, ratio))
            if gpu or args.speed_options:
                for label, jit in (("mixed_float16", False),
                                   ("mixed_float16_xla", True)):
                    real_fast, value, fast_ratio = pipeline_rates(
                        name, tmp / f"{name}_{label}", shards, batch=batch,
                        steps=steps, rounds=rounds, classes=classes,
                        size=size, precision="mixed_float16", jit=jit)
                    results[f"{name}_{label}_images_per_second"] = value
                    results[f"{name}_{label}_real_images_per_second"] = (
                        real_fast)
                    rows.append((f"{name} {label} / float32 (synthetic)",
                                 value, synthetic, value / synthetic))
                    rows.append((f"{name} {label} real / synthetic",
                                 real_fast, value, fast_ratio))
        batch, steps = sizes["alexnet"]
        import tfcnn.models

        ours, builtin, ratio = network_rates(
            [tfcnn.models.build("alexnet", input_shape=(size, size, 3),
                                num_classes=classes),
             keras_builtin_alexnet(classes, size)],
            batch=batch, steps=steps, rounds=rounds)
        results["alexnet_tfcnn_images_per_second"] = ours
        results["alexnet_keras_builtin_images_per_second"] = builtin
        results["alexnet_tfcnn_over_keras_builtin"] = ratio
        rows.append(("alexnet tfcnn layers / Keras built-ins", ours, builtin,
                     ratio))

    print(f"{'measurement':44s} {'candidate':>10s} {'reference':>10s} "
          f"{'ratio':>7s}   (images/s, {results['device']})")
    for label, candidate, reference, ratio in rows:
        print(f"{label:44s} {candidate:10.1f} {reference:10.1f} "
              f"{ratio:7.3f}")
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v
                      for k, v in results.items()}))


if __name__ == "__main__":
    main()
