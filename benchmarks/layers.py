"""Forward+backward time of each tfcnn layer against its TF/Keras counterpart.

Each case times one ``tf.function`` that runs the layer and returns the
gradients of its output (against a fixed random upstream gradient) with
respect to the input and the weights, for the candidate and the reference
alternately in the same process; the ratio is candidate / reference of the
medians. Targets: <= 1.05 (group norm <= 1.0); LRN's real goal
<= 0.8 of ``tf.nn.local_response_normalization``.

Usage:
    python benchmarks/layers.py [--quick | --smoke] [--repeats N]

``--smoke`` runs every case at batch 2 and a quarter of the spatial size,
once: it proves the script in seconds, and its figures mean nothing.

The last line printed is one JSON object with every figure.
"""

import argparse
import json
import os
import time

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import tfcnn.layers  # noqa: E402

# name: (input shape, candidate factory, reference factory). The factories
# return a callable on the input (a layer or a function of the tensor).
CASES = {
    "lrn": (
        (32, 55, 55, 96),
        lambda: tfcnn.layers.LocalResponseNormalization(),
        lambda: (lambda x: tf.nn.local_response_normalization(
            x, depth_radius=2, bias=2.0, alpha=1e-4, beta=0.75)),
    ),
    # AlexNet's second LRN (after conv2): 256 channels, the slices path.
    "lrn_conv2": (
        (32, 27, 27, 256),
        lambda: tfcnn.layers.LocalResponseNormalization(),
        lambda: (lambda x: tf.nn.local_response_normalization(
            x, depth_radius=2, bias=2.0, alpha=1e-4, beta=0.75)),
    ),
    "group_norm": (
        (32, 56, 56, 256),
        lambda: tfcnn.layers.GroupNormalization(groups=32),
        lambda: keras.layers.GroupNormalization(groups=32, epsilon=1e-5),
    ),
    "transposed_conv": (
        (16, 64, 64, 128),
        lambda: tfcnn.layers.TransposedConv2D(64, 4, strides=2,
                                              padding="same"),
        lambda: keras.layers.Conv2DTranspose(64, 4, strides=2,
                                             padding="same"),
    ),
    "dilated_conv": (
        (16, 64, 64, 128),
        lambda: tfcnn.layers.DilatedConv2D(64, 3, dilation_rate=2),
        lambda: keras.layers.Conv2D(64, 3, dilation_rate=2, padding="same"),
    ),
}


def fwd_bwd_step(fn, x, upstream):
    """A compiled step: output and gradients for input and weights."""
    weights = getattr(fn, "trainable_weights", [])

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = fn(x)
        grads = tape.gradient(y, [x] + list(weights),
                              output_gradients=upstream)
        return y, grads

    return step


def time_pair(candidate, reference, repeats):
    """Seconds of each step per repeat, interleaved, after a warm-up."""
    for step in (candidate, reference):
        tf.nest.map_structure(lambda t: t.numpy(), step())
    times = ([], [])
    for repeat in range(repeats):
        # Alternate which goes first, so neither always runs right after
        # the other's memory traffic (or a neighbour's burst).
        order = (0, 1) if repeat % 2 == 0 else (1, 0)
        for i in order:
            step = (candidate, reference)[i]
            start = time.perf_counter()
            out = step()
            # Fetching one value waits for the whole step.
            out[1][0].numpy().ravel()[:1]
            times[i].append(time.perf_counter() - start)
    return np.array(times[0]), np.array(times[1])


def run_case(name, repeats, quick, smoke=False):
    shape, make_candidate, make_reference = CASES[name]
    if smoke:
        shape = (2, shape[1] // 4, shape[2] // 4, shape[3])
    elif quick:
        shape = (max(2, shape[0] // 4),) + shape[1:]
    rng = np.random.default_rng(0)
    # LRN inputs are post-ReLU conv activations in AlexNet: positive, ~10.
    x = rng.standard_normal(shape)
    if name.startswith("lrn"):
        x = np.abs(x) * 10.0
    x = tf.constant(x, tf.float32)
    candidate, reference = make_candidate(), make_reference()
    y_candidate = candidate(x)
    if hasattr(reference, "build") and hasattr(candidate, "weights"):
        reference.build(shape)
        for target, source in zip(reference.weights, candidate.weights):
            target.assign(source)
    y_reference = reference(x)
    scale_out = float(tf.reduce_max(tf.abs(y_reference)))
    max_error = float(tf.reduce_max(tf.abs(y_candidate - y_reference)))
    upstream = tf.constant(rng.standard_normal(y_reference.shape),
                           tf.float32)
    t_cand, t_ref = time_pair(fwd_bwd_step(candidate, x, upstream),
                              fwd_bwd_step(reference, x, upstream),
                              repeats)
    median_cand, median_ref = np.median(t_cand), np.median(t_ref)
    return {
        "shape": list(shape),
        "candidate_ms": round(float(median_cand) * 1e3, 2),
        "reference_ms": round(float(median_ref) * 1e3, 2),
        "ratio": round(float(median_cand / median_ref), 3),
        # Other processes only ever add time: the ratio of the fastest
        # runs is a second, less noisy reading on shared cores.
        "ratio_of_minima": round(float(t_cand.min() / t_ref.min()), 3),
        "max_rel_error": max_error / scale_out,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="a quarter of the batch, 5 repeats")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny shapes, one repeat: seconds; the "
                             "figures mean nothing")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed repeats per case (default 9, quick 5)")
    parser.add_argument("--cases", nargs="*", default=list(CASES),
                        choices=list(CASES))
    args = parser.parse_args()
    repeats = args.repeats or (1 if args.smoke else 5 if args.quick else 9)
    results = {name: run_case(name, repeats, args.quick, args.smoke)
               for name in args.cases}
    references = {
        "lrn": "tf.nn.local_response_normalization",
        "lrn_conv2": "tf.nn.local_response_normalization",
        "group_norm": "keras.layers.GroupNormalization",
        "transposed_conv": "keras.layers.Conv2DTranspose",
        "dilated_conv": "keras.layers.Conv2D(dilation_rate=2)",
    }
    print(f"fwd+bwd, median of {repeats}; ratio = tfcnn / reference")
    print(f"{'layer':16s} {'shape':20s} {'tfcnn ms':>10s} {'ref ms':>10s} "
          f"{'ratio':>7s} {'min/min':>7s} {'max rel err':>12s}  reference")
    for name, r in results.items():
        print(f"{name:16s} {str(tuple(r['shape'])):20s} "
              f"{r['candidate_ms']:10.1f} {r['reference_ms']:10.1f} "
              f"{r['ratio']:7.3f} {r['ratio_of_minima']:7.3f} "
              f"{r['max_rel_error']:12.2e}  "
              f"{references[name]}")
    summary = {f"{name}_ratio": r["ratio"] for name, r in results.items()}
    summary.update({"quick": args.quick, "smoke": args.smoke,
                    "repeats": repeats,
                    "cases": results})
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
