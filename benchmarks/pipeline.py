"""Input pipeline throughput: ours against the decode floor and plain Keras.

Measures images/s of

  (a)  the decode floor: our host pipeline alone (parse + decode + resize to
       256, batched as uint8), i.e. ``make_dataset`` without augmentation;
  (a0) the naive decode floor: parse + ``decode_jpeg`` of the whole image
       + bilinear resize of the shorter side + centre crop, the usual
       tf.data recipe;
  (b)  the full training input: ``make_dataset`` plus the on-device
       augmentation layers of ``build_preprocessing`` (random 224 crop,
       flip, PCA lighting, mean subtraction), run on each batch in training
       mode as the model would;
  (c)  what a typical Keras user writes: ``image_dataset_from_directory``
       at 256x256 plus ``RandomCrop(224)``, ``RandomFlip`` and
       ``Rescaling`` on each batch;
  (bc) (b) on compact shards of the same images (``tfcnn ingest
       --shorter-side 256``: stored once at the size the pipeline keeps);
  (ai) (a) with the Inception crop (``augment.crop = "inception"``): a
       random window decoded with ``decode_and_crop_jpeg``, resized to 224;
  (p32, r32) the host pipeline at 32x32 on 32x32 images ingested as PNG
       shards and as raw shards (``tfcnn ingest --raw``, decoded a batch at
       a time), batches of 256;

on ~2,000 JPEGs of about 500x375 made from scikit-image's photos, in
shards (and the same files in class folders for (c) and ingest), and
8,000 32x32 crops of the same photos. On this CPU-only
machine the "on-device" layers run on the same cores as tf.data, so (b) is
charged for them; on a GPU they overlap with the host. Each figure is the
median of several timed slices of 8 batches (after 2 untimed ones, on a
fresh iterator); all run in this process, side by side, round-robin. The
1-to-2-core scaling runs (a) and (b) in subprocesses pinned to 1 and then 2
CPUs (``sched_setaffinity`` and TensorFlow's thread pools set to the same
count).

Run: ``python benchmarks/pipeline.py [--quick | --smoke] [--data DIR]``
(``--smoke``: 24 images and 64 small ones, one short slice of each
candidate, to prove the script in seconds; its figures mean nothing). The
last line printed is one JSON object with every figure.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

SIZE = 256
CROP = 224
BATCH = 64
SMALL = 32
SMALL_BATCH = 256
DEFAULT_DATA = "/tmp/tfcnn_bench_pipeline"
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field",
          "immunohistochemistry", "retina", "stereo_motorcycle")


def main():
    args = _parse_args()
    if args.worker:
        _pin(args.threads)
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    data = Path(args.data or DEFAULT_DATA + ("_smoke" if args.smoke else ""))
    if args.worker:
        results = _measure(data, args.repeats, ("a", "b"), args.threads,
                           args.smoke)
        print(json.dumps(results))
        return
    count = 24 if args.smoke else 400 if args.quick else 2000
    repeats = 1 if args.smoke else 3 if args.quick else 7
    _make_data(data, count)
    _make_small_data(data, 64 if args.smoke else 2000 if args.quick
                     else 8000)
    results = _measure(data, repeats,
                       ("a0", "a", "b", "c", "bc", "ai", "p32", "r32"), None,
                       args.smoke)
    scaling = {}
    for threads in (1, 2):
        scaling[threads] = _run_worker(data, threads, repeats, args.smoke)
    _report(results, scaling, count)


def _parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="400 images and fewer repeats")
    parser.add_argument("--smoke", action="store_true",
                        help="the smallest run of every measurement, in "
                             "seconds; its figures mean nothing")
    parser.add_argument("--data", default=None,
                        help="where the benchmark images and shards go "
                             f"(reused when present; default {DEFAULT_DATA}"
                             ", with --smoke ..._smoke)")
    parser.add_argument("--worker", action="store_true",
                        help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=0,
                        help=argparse.SUPPRESS)
    parser.add_argument("--repeats", type=int, default=3,
                        help=argparse.SUPPRESS)
    return parser.parse_args()


def _pin(threads):
    # Before TensorFlow starts: it sizes its pools from the CPUs it may use.
    cpus = sorted(os.sched_getaffinity(0))[:threads]
    os.sched_setaffinity(0, cpus)


# Data ------------------------------------------------------------------------

def _make_data(data, count):
    """Writes ``count`` JPEGs as shards and as class folders, once."""
    done = data / f"done-{count}"
    if done.exists():
        return
    import tensorflow as tf

    from tfcnn.data import features
    from tfcnn.data import sharding

    shards = data / "shards"
    shards.mkdir(parents=True, exist_ok=True)
    folders = data / "folders"
    num_shards = 8
    writers = [tf.io.TFRecordWriter(str(
        shards / sharding.shard_filename("train", i, num_shards)))
        for i in range(num_shards)]
    total_bytes = 0
    for index, (label, image) in enumerate(photo_variants(count)):
        encoded = tf.io.encode_jpeg(image, quality=90).numpy()
        total_bytes += len(encoded)
        folder = folders / PHOTOS[label]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{index:05d}.jpg").write_bytes(encoded)
        writers[index % num_shards].write(features.make_example(
            encoded, image_format="jpeg", height=image.shape[0],
            width=image.shape[1], label=label, text=PHOTOS[label],
            filename=f"{index:05d}.jpg").SerializeToString())
    for writer in writers:
        writer.close()
    print(f"wrote {count} JPEGs, {total_bytes / count / 1e3:.0f} KB each on "
          f"average, to {data}")
    done.write_text("")


def _make_small_data(data, count):
    """Ingests ``count`` 32x32 PNGs as PNG shards and as raw shards, and
    the 500x375 JPEGs as compact shards (shorter side 256), once."""
    from tfcnn.data.classification_ingest import ingest

    done = data / f"done-small-{count}"
    folders = data / "folders"
    if not done.exists():
        import numpy as np
        from PIL import Image

        small = data / f"small-{count}"
        rng = np.random.default_rng(1)
        names = sorted(p.name for p in folders.iterdir())
        for index in range(count):
            source = folders / names[index % len(names)]
            files = sorted(source.iterdir())
            path = files[index // len(names) % min(50, len(files))]
            with Image.open(path) as photo:
                left = rng.integers(0, photo.width - 128)
                top = rng.integers(0, photo.height - 128)
                side = rng.integers(32, 128)
                crop = photo.crop((left, top, left + side, top + side))
                crop = crop.resize((SMALL, SMALL), Image.Resampling.LANCZOS)
            target = small / names[index % len(names)] / f"{index:05d}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            crop.save(target)
        for out, options in (("png32", {}), ("raw32", {"raw": True})):
            ingest(small, data / out, validation_split=0.0,
                   num_shards=8, overwrite=True, progress=False,
                   **options)
        done.write_text("")
    ingest(folders, data / "compact", validation_split=0.0,
           num_shards=8, shorter_side=SIZE, progress=False)


def photo_variants(count):
    """Yields ``(label, image)`` for ``count`` seeded 500x375 variants of
    ``PHOTOS`` (scikit-image's sample data), in turn."""
    import numpy as np
    import skimage.data

    rng = np.random.default_rng(0)
    photos = []
    for name in PHOTOS:
        photo = getattr(skimage.data, name)()
        photo = photo[0] if isinstance(photo, tuple) else photo
        photos.append(np.asarray(photo[..., :3], np.uint8))
    for index in range(count):
        label = index % len(PHOTOS)
        yield label, _variant(photos[label], rng)


def _variant(photo, rng):
    """A random crop of a photo resized to 500x375 (a quarter portrait)."""
    import numpy as np
    import tensorflow as tf

    height, width = (375, 500) if rng.random() < 0.75 else (500, 375)
    scale = rng.uniform(0.6, 1.0)
    aspect = width / height
    crop_h = int(min(photo.shape[0], photo.shape[1] / aspect) * scale)
    crop_w = int(crop_h * aspect)
    top = rng.integers(0, photo.shape[0] - crop_h + 1)
    left = rng.integers(0, photo.shape[1] - crop_w + 1)
    crop = photo[top:top + crop_h, left:left + crop_w]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    image = tf.image.resize(crop, [height, width], antialias=True)
    image = image * rng.uniform(0.8, 1.2)
    return np.asarray(tf.clip_by_value(image, 0, 255), np.uint8)


# Measurements ----------------------------------------------------------------

def _measure(data, repeats, which, threads, smoke=False):
    import tensorflow as tf

    if threads:
        tf.config.threading.set_inter_op_parallelism_threads(threads)
        tf.config.threading.set_intra_op_parallelism_threads(threads)
    candidates = _candidates(data, threads)
    # The smoke run's slices: one batch each.
    sizes = {"timed": 1, "warm": 1} if smoke else {}

    def timed_slice(dataset, step, timed=8):
        return _timed_slice(dataset, step, **{"timed": timed, **sizes})

    for name in which:
        timed_slice(*candidates[name])  # warm-up: traces, fills OS cache
    # Short slices, round-robin, so bursts of load from other users of the
    # machine hit every candidate alike; the median of each is reported.
    rates = {name: [] for name in which}
    for _ in range(repeats):
        for name in which:
            rates[name].append(timed_slice(*candidates[name]))
    results = {}
    for name in which:
        results[name] = statistics.median(rates[name])
        print(f"  {name}: {results[name]:7.0f} images/s  "
              f"({', '.join(f'{r:.0f}' for r in rates[name])})",
              file=sys.stderr)
    return results


def _candidates(data, threads):
    import keras
    import tensorflow as tf

    from tfcnn import augment
    from tfcnn.data import classification_pipeline
    from tfcnn.data import pipeline
    from tfcnn.data.manifest import Manifest
    from tfcnn.recipe import AugmentConfig

    files = pipeline.list_shards(data / "shards", "train")
    options = tf.data.Options()
    if threads:
        options.threading.private_threadpool_size = threads

    def ours(shards=files, **kwargs):
        kwargs = {"resize_size": SIZE, "batch_size": BATCH, **kwargs}
        return classification_pipeline.make_dataset(
            shards, training=True, shuffle_buffer=1000, deterministic=False,
            repeat=True, **kwargs).with_options(options)

    def small(name):
        # Exactly what training reads: the manifest gives raw_shape.
        manifest = Manifest.load(data / name)
        return ours(manifest.files("train"), resize_size=SMALL,
                    batch_size=SMALL_BATCH, raw_shape=manifest.raw_shape)

    def naive_decode(serialized):
        # The usual recipe: decode everything, bilinear resize of the
        # shorter side to 256, centre crop.
        example = tf.io.parse_single_example(
            serialized, {"image/encoded": tf.io.FixedLenFeature([], tf.string),
                         "image/class/label": tf.io.FixedLenFeature(
                             [], tf.int64)})
        image = tf.io.decode_jpeg(example["image/encoded"], channels=3)
        shape = tf.cast(tf.shape(image)[:2], tf.float32)
        scale = SIZE / tf.reduce_min(shape)
        new_shape = tf.cast(tf.math.ceil(shape * scale), tf.int32)
        image = tf.image.resize(image, new_shape)
        image = tf.image.resize_with_crop_or_pad(image, SIZE, SIZE)
        return (tf.cast(image, tf.uint8),
                tf.cast(example["image/class/label"], tf.int32))

    naive = (tf.data.TFRecordDataset(files, num_parallel_reads=len(files))
             .shuffle(1000, seed=0).repeat()
             .map(naive_decode, num_parallel_calls=tf.data.AUTOTUNE,
                  deterministic=False)
             .batch(BATCH).with_options(options)
             .prefetch(tf.data.AUTOTUNE))

    inputs = keras.Input((SIZE, SIZE, 3), dtype="uint8")
    x = inputs
    for layer in augment.build_preprocessing(AugmentConfig(),
                                             crop_size=CROP):
        x = layer(x)
    ours_model = keras.Model(inputs, x)

    keras_inputs = keras.Input((SIZE, SIZE, 3))
    y = keras.layers.RandomCrop(CROP, CROP, seed=0)(keras_inputs)
    y = keras.layers.RandomFlip("horizontal", seed=0)(y)
    y = keras.layers.Rescaling(1 / 255.0)(y)
    keras_model = keras.Model(keras_inputs, y)
    typical = keras.utils.image_dataset_from_directory(
        data / "folders", image_size=(SIZE, SIZE), batch_size=BATCH,
        shuffle=True, seed=0, verbose=False).repeat().with_options(
            options).prefetch(tf.data.AUTOTUNE)

    def run_model(model):
        @tf.function
        def step(images):
            # The summed output keeps grappler from pruning the work.
            return tf.reduce_sum(model(images, training=True)[:, 0, 0, 0])
        return step

    compact = Manifest.load(data / "compact").files("train")
    return {
        "a0": (naive, None),
        "a": (ours(), None),
        "b": (ours(), run_model(ours_model)),
        "c": (typical, run_model(keras_model)),
        "bc": (ours(compact), run_model(ours_model)),
        "ai": (ours(inception_crop=CROP), None),
        # Small images go fast: longer slices for a steady figure.
        "p32": (small("png32"), None, 32),
        "r32": (small("raw32"), None, 32),
    }


def _timed_slice(dataset, step, timed=8, warm=2):
    """images/s over ``timed`` batches of a fresh iterator, after ``warm``.

    A fresh iterator per slice, so no candidate prefetches in the
    background while another one is timed.
    """
    batches = iter(dataset)
    for _ in range(warm):
        images, _ = next(batches)
        if step is not None:
            step(images).numpy()
    count = 0
    start = time.perf_counter()
    for _ in range(timed):
        images, labels = next(batches)
        if step is not None:
            step(images).numpy()
        count += int(labels.shape[0])
    return count / (time.perf_counter() - start)


def _run_worker(data, threads, repeats, smoke=False):
    command = [sys.executable, __file__, "--worker", "--data", str(data),
               "--threads", str(threads), "--repeats", str(repeats),
               *(["--smoke"] if smoke else [])]
    print(f"scaling: {threads} core(s)", file=sys.stderr)
    out = subprocess.run(command, check=True, capture_output=True,
                         text=True)
    sys.stderr.write("\n".join(
        line for line in out.stderr.splitlines()
        if line.startswith("  ")) + "\n")
    return json.loads(out.stdout.strip().splitlines()[-1])


# Report ----------------------------------------------------------------------

def _report(results, scaling, count):
    a0, a, b, c, bc, ai, p32, r32 = (results[k] for k in (
        "a0", "a", "b", "c", "bc", "ai", "p32", "r32"))
    rows = [
        ("(a0) naive decode floor: decode whole + resize", a0),
        ("(a)  decode floor: our host pipeline", a),
        ("(b)  full training input: (a) + augmentation layers", b),
        ("(c)  typical Keras: image_dataset_from_directory + layers", c),
        ("(bc) (b) on compact shards (--shorter-side 256)", bc),
        ("(ai) (a) with the Inception crop (decode_and_crop_jpeg)", ai),
        ("(p32) host pipeline, 32x32 PNG shards", p32),
        ("(r32) host pipeline, 32x32 raw shards", r32),
    ]
    print(f"\nimages/s, {count} JPEGs ~500x375, batch {BATCH}, "
          f"{SIZE} -> {CROP}, {os.cpu_count()} CPUs (shared)")
    for label, value in rows:
        print(f"  {label:58s} {value:8.0f}")
    print(f"  {'b/a  (target >= 0.9)':58s} {b / a:8.2f}")
    print(f"  {'b/c  (target >= 2)':58s} {b / c:8.2f}")
    print(f"  {'a/a0 (host work saved by the fused decode)':58s} "
          f"{a / a0:8.2f}")
    ratios = {
        "compact_over_typical_keras": bc / c,
        "compact_over_originals": bc / b,
        "raw_over_png": r32 / p32,
        "inception_over_host": ai / a,
    }
    targets = {"compact_over_typical_keras": 2.0,
               "compact_over_originals": 1.5, "raw_over_png": 3.0,
               "inception_over_host": 0.9}
    for name, value in ratios.items():
        print(f"  {name + f'  (target >= {targets[name]:g})':58s} "
              f"{value:8.2f}")
    one, two = scaling[1], scaling[2]
    print("scaling from 1 to 2 cores (subprocesses, pinned):")
    for key in ("a", "b"):
        print(f"  ({key}) {one[key]:7.0f} -> {two[key]:7.0f} images/s, "
              f"x{two[key] / one[key]:.2f}")
    figures = {
        "images": count,
        "decode_floor_naive_images_per_s": round(a0, 1),
        "decode_floor_images_per_s": round(a, 1),
        "full_training_input_images_per_s": round(b, 1),
        "typical_keras_images_per_s": round(c, 1),
        "b_over_a": round(b / a, 3),
        "b_over_c": round(b / c, 3),
        "a_over_a0": round(a / a0, 3),
        "compact_full_training_input_images_per_s": round(bc, 1),
        "inception_host_images_per_s": round(ai, 1),
        "png32_host_images_per_s": round(p32, 1),
        "raw32_host_images_per_s": round(r32, 1),
        **{name: round(value, 3) for name, value in ratios.items()},
        "scaling_1_core": {k: round(v, 1) for k, v in one.items()},
        "scaling_2_cores": {k: round(v, 1) for k, v in two.items()},
        "scaling_2_over_1": {k: round(two[k] / one[k], 3) for k in one},
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
