"""Benchmark: the model zoo against keras.applications, and describe() cost.

Measured side by side in this process, each figure the median of the
repeats, candidate and reference alternating which runs first:

- ``build_s`` / ``describe_s``: building a full-size model with its weights
  (``tfcnn.models.build``) against describing it without computing them
  (``tfcnn.models.describe``, what ``tfcnn models`` runs), for VGG-16 and
  ResNet-50; ``list_all_s`` is one ``describe`` of every registered model;
- ``forward_images_per_s``: inference images/s of tfcnn's ResNet-50 and
  VGG-16 against ``keras.applications`` (same architectures; Keras'
  ResNet-50 has convolution biases) at 224x224 on this machine's CPU,
  compiled with ``tf.function`` (no XLA), and the ratio tfcnn / Keras.

Run: ``python benchmarks/models.py [--quick | --smoke]`` (``--smoke``:
one repeat of everything at batch 1 and 32x32 images, ``list_all_s`` over
the first three registered models, to prove the script; its figures mean
nothing; ``list_all_models`` says how many were described). The last
line is one JSON object with all figures.
"""

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import tfcnn.models  # noqa: E402

REFERENCES = {
    "resnet50": lambda shape: keras.applications.ResNet50(
        weights=None, input_shape=shape),
    "vgg16": lambda shape: keras.applications.VGG16(
        weights=None, input_shape=shape),
}


def _time(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _alternating(candidate, reference, repeats):
    """Medians of ``repeats`` timings, alternating which runs first."""
    times = {"candidate": [], "reference": []}
    for repeat in range(repeats):
        order = [("candidate", candidate), ("reference", reference)]
        for key, fn in order[::1 if repeat % 2 == 0 else -1]:
            times[key].append(_time(fn))
    return (statistics.median(times["candidate"]),
            statistics.median(times["reference"]))


def build_costs(repeats, shape, listed):
    """Seconds to build with weights vs to describe, per model, and to
    describe each of ``listed``."""
    rows = {}
    for name in ("vgg16", "resnet50"):
        def build(name=name):
            tfcnn.models.build(name, input_shape=shape)
            keras.backend.clear_session()

        def describe(name=name):
            tfcnn.models.describe(name, input_shape=shape)
            keras.backend.clear_session()

        build_s, describe_s = _alternating(build, describe, repeats)
        rows[name] = {"build_s": build_s, "describe_s": describe_s,
                      "ratio": build_s / describe_s}
    start = time.perf_counter()
    for name in listed:
        tfcnn.models.describe(name)
        keras.backend.clear_session()
    rows["list_all_s"] = time.perf_counter() - start
    return rows


def forward_throughput(repeats, batch_size, shape):
    """Inference images/s, tfcnn against keras.applications."""
    x = tf.constant(np.random.default_rng(0).uniform(
        0, 255, (batch_size, *shape)).astype("float32"))
    rows = {}
    for name, reference_fn in REFERENCES.items():
        ours = tfcnn.models.build(name, input_shape=shape)
        theirs = reference_fn(shape)
        run_ours = tf.function(lambda v, m=ours: m(v, training=False))
        run_theirs = tf.function(lambda v, m=theirs: m(v, training=False))
        run_ours(x).numpy()  # trace and warm up both
        run_theirs(x).numpy()
        ours_s, theirs_s = _alternating(lambda: run_ours(x).numpy(),
                                        lambda: run_theirs(x).numpy(),
                                        repeats)
        rows[name] = {"tfcnn": batch_size / ours_s,
                      "keras_applications": batch_size / theirs_s,
                      "ratio": theirs_s / ours_s}
        del ours, theirs
        keras.backend.clear_session()
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="fewer repeats and a smaller batch")
    parser.add_argument("--smoke", action="store_true",
                        help="one repeat, batch 1: proves the script")
    args = parser.parse_args()
    repeats = 1 if args.smoke else 3 if args.quick else 7
    batch_size = 1 if args.smoke else 2 if args.quick else 8
    # 32x32 (the smallest both families take) makes VGG-16's first dense
    # layer 2M weights instead of 103M: seconds instead of a minute.
    size = 32 if args.smoke else 224
    shape = (size, size, 3)

    # Describing all 65 registered models is most of a smoke run's time
    # (tests/models describes each of them).
    listed = tfcnn.models.list_models()[:3 if args.smoke else None]
    builds = build_costs(repeats, shape, listed)
    forward = forward_throughput(repeats, batch_size, shape)

    print(f"{'model':10s} {'build s':>9s} {'describe s':>11s} {'ratio':>7s}")
    for name in ("vgg16", "resnet50"):
        row = builds[name]
        print(f"{name:10s} {row['build_s']:9.2f} {row['describe_s']:11.2f} "
              f"{row['ratio']:7.1f}x")
    print(f"describe {len(listed)} registered models: "
          f"{builds['list_all_s']:.1f} s")
    print()
    print(f"forward at {size}x{size}, batch {batch_size} (images/s)")
    print(f"{'model':10s} {'tfcnn':>8s} {'keras.app':>10s} {'ratio':>7s}")
    for name, row in forward.items():
        print(f"{name:10s} {row['tfcnn']:8.1f} "
              f"{row['keras_applications']:10.1f} {row['ratio']:7.2f}x")
    print(json.dumps({"build_vs_describe": {
        name: builds[name] for name in ("vgg16", "resnet50")},
        "list_all_s": builds["list_all_s"], "list_all_models": len(listed),
        "forward_images_per_s": forward, "batch_size": batch_size,
        "image_size": size, "repeats": repeats}))


if __name__ == "__main__":
    main()
