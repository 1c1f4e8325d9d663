"""Benchmark: serving latency and a bounded load test of ``tfcnn serve``.

Two measurements, both on a small model that follows the training-model
contract (uint8 input at S, centre crop, mean subtraction, a registered
network from ``tfcnn.models``):

1. Batch-1 latency of the exported SavedModel against calling the Keras
   model directly, on the same uint8 ``[1, S, S, 3]`` image (target: ratio
   <= 1.2); and of the bytes signature against decoding on the host and
   calling Keras. Candidates and references alternate, median of repeats.
2. A bounded load test: ``tfcnn serve`` in its own process on 127.0.0.1,
   8 concurrent clients for 10 s posting base64 images to ``:predict``;
   every answer is checked against the SavedModel's own answer computed
   in this process. Reports requests/s, p50/p99 latency, the 5xx count
   (must be 0) and wrong answers (must be 0).

Usage:
    python benchmarks/serve.py [--quick] [--model lenet5] [--size 36]

The last line printed is one JSON object with every figure.
"""

import os

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse  # noqa: E402
import base64  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
import requests  # noqa: E402
import tensorflow as tf  # noqa: E402

import tfcnn.models  # noqa: E402
from tfcnn.data import preprocess  # noqa: E402
from tfcnn.export import publish  # noqa: E402

ATOL = 1e-5


def contract_model(name, size, crop, num_classes):
    """The registry network behind a centre crop and mean subtraction."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((size, size, 3), dtype="uint8", name="image")
    x = keras.layers.CenterCrop(crop, crop)(inputs)
    x = keras.layers.Normalization(mean=[124.0, 116.0, 104.0],
                                   variance=[3364.0, 3249.0, 3316.0])(x)
    network = tfcnn.models.build(name, input_shape=(crop, crop, 3),
                                 num_classes=num_classes)
    return keras.Model(inputs, network(x))


def median_ms(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def latency(model, loaded, size, rounds, repeats):
    """Median batch-1 latencies (ms), candidates and references alternating."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (1, size, size, 3), dtype=np.uint8)
    encoded = tf.constant([tf.io.encode_jpeg(image[0]).numpy()])
    pixels = tf.constant(image)
    uint8_sig = loaded.signatures["predict_images_uint8"]
    bytes_sig = loaded.signatures["serving_default"]

    def keras_direct():
        return model(pixels, training=False)

    def keras_from_bytes():
        images = tf.stack([preprocess.decode_and_resize(encoded[0], size)])
        return model(images, training=False)

    candidates = {
        "keras_batch1_ms": keras_direct,
        "savedmodel_batch1_ms": lambda: uint8_sig(images=pixels),
        "keras_bytes_batch1_ms": keras_from_bytes,
        "savedmodel_bytes_batch1_ms": lambda: bytes_sig(image_bytes=encoded),
        "keras_predict_on_batch_ms": lambda: model.predict_on_batch(pixels),
    }
    for fn in candidates.values():  # warm up every path
        for _ in range(3):
            fn()
    samples = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, fn in candidates.items():
            samples[name].append(median_ms(fn, repeats))
    return {name: statistics.median(values)
            for name, values in samples.items()}


def start_server(base_dir):
    """Starts ``tfcnn serve`` on a free loopback port; returns (proc, url)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tfcnn.cli", "serve", str(base_dir),
         "--host", "127.0.0.1", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    if "http://" not in line:
        proc.kill()
        raise RuntimeError(f"the server did not start: {line!r}")
    url = line.split("http://", 1)[1].split("/v1/", 1)[0]
    return proc, "http://" + url


def load_test(url, cases, clients, duration_s):
    """Runs ``clients`` threads for ``duration_s``; checks every answer."""
    latencies, statuses, wrong = [], [], [0]
    lock = threading.Lock()
    deadline = time.monotonic() + duration_s

    def client(index):
        session = requests.Session()
        i = index
        while time.monotonic() < deadline:
            body, expected_ids, expected_probs = cases[i % len(cases)]
            i += 1
            start = time.perf_counter()
            try:
                answer = session.post(url, data=body, timeout=30,
                                      headers={"Content-Type":
                                               "application/json"})
                status = answer.status_code
            except requests.RequestException:
                status = 599
            elapsed = time.perf_counter() - start
            bad = status != 200
            if not bad:
                prediction = answer.json()["predictions"][0]
                bad = (prediction["class_ids"] != expected_ids or not
                       np.allclose(prediction["probabilities"],
                                   expected_probs, atol=ATOL, rtol=0))
            with lock:
                latencies.append(elapsed)
                statuses.append(status)
                wrong[0] += bad
        session.close()

    threads = [threading.Thread(target=client, args=(i,), daemon=True)
               for i in range(clients)]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=duration_s + 60)
    wall = time.monotonic() - start
    ms = np.asarray(latencies) * 1000
    return {
        "clients": clients,
        "duration_s": round(wall, 2),
        "requests": len(statuses),
        "requests_per_s": round(len(statuses) / wall, 1),
        "p50_latency_ms": round(float(np.percentile(ms, 50)), 2),
        "p99_latency_ms": round(float(np.percentile(ms, 99)), 2),
        "5xx_count": sum(1 for s in statuses if s >= 500),
        "4xx_count": sum(1 for s in statuses if 400 <= s < 500),
        "wrong_answers": wrong[0],
    }


def request_cases(loaded, size, count=8):
    """Predict bodies of images of varied sizes, with the expected answer."""
    rng = np.random.default_rng(1)
    classify = loaded.signatures["serving_default"]
    cases = []
    for i in range(count):
        shape = (size + 8 * i, size + 5 * (count - i), 3)
        data = tf.io.encode_jpeg(rng.integers(0, 256, shape, np.uint8))
        data = data.numpy()
        out = classify(image_bytes=tf.constant([data]))
        body = json.dumps({"instances": [
            {"b64": base64.b64encode(data).decode()}]}).encode()
        cases.append((body, out["class_ids"].numpy()[0].tolist(),
                      out["probabilities"].numpy()[0]))
    return cases


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="3 s load test and fewer latency repeats")
    parser.add_argument("--model", default="lenet5",
                        help="registered network (default lenet5)")
    parser.add_argument("--size", type=int, default=36,
                        help="host resize size S (default 36)")
    parser.add_argument("--crop", type=int, default=32,
                        help="crop size C (default 32)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    duration = 3.0 if args.quick else args.seconds
    rounds, repeats = (3, 20) if args.quick else (7, 50)

    model = contract_model(args.model, args.size, args.crop, 10)
    with tempfile.TemporaryDirectory(prefix="tfcnn-bench-") as base:
        start = time.perf_counter()
        version_dir = publish.export_model(
            model, export_dir=base, name="bench", top_k=5)
        export_s = time.perf_counter() - start
        loaded = tf.saved_model.load(str(version_dir))
        lat = latency(model, loaded, args.size, rounds, repeats)
        cases = request_cases(loaded, args.size)
        proc, url = start_server(base)
        try:
            predict_url = url + "/v1/models/bench:predict"
            for body, _, _ in cases:  # warm-up, not counted
                requests.post(predict_url, data=body, timeout=60)
            load = load_test(predict_url, cases, args.clients, duration)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()

    ratio = lat["savedmodel_batch1_ms"] / lat["keras_batch1_ms"]
    bytes_ratio = (lat["savedmodel_bytes_batch1_ms"]
                   / lat["keras_bytes_batch1_ms"])
    compiled_ratio = (lat["savedmodel_batch1_ms"]
                      / lat["keras_predict_on_batch_ms"])
    print(f"model {args.model}, S={args.size}, C={args.crop}, "
          f"export with verification {export_s:.1f} s")
    print(f"{'batch-1 latency':44s} {'ms':>9s}")
    for name, value in lat.items():
        print(f"  {name:42s} {value:9.3f}")
    print(f"  {'SavedModel / Keras (uint8 image)':42s} {ratio:9.3f}x"
          "  (target <= 1.2)")
    print(f"  {'SavedModel / Keras predict_on_batch':42s} "
          f"{compiled_ratio:9.3f}x")
    print(f"  {'SavedModel / Keras (encoded bytes)':42s} {bytes_ratio:9.3f}x")
    print(f"load test: {load['clients']} clients, {load['duration_s']} s, "
          "127.0.0.1")
    for key in ("requests", "requests_per_s", "p50_latency_ms",
                "p99_latency_ms", "5xx_count", "4xx_count",
                "wrong_answers"):
        print(f"  {key:42s} {load[key]:>9}")
    figures = {"model": args.model, "image_size": args.size,
               "export_s": round(export_s, 2)}
    figures.update({k: round(v, 3) for k, v in lat.items()})
    figures["savedmodel_vs_keras_batch1"] = round(ratio, 3)
    figures["savedmodel_vs_keras_predict_on_batch"] = round(
        compiled_ratio, 3)
    figures["savedmodel_vs_keras_bytes_batch1"] = round(bytes_ratio, 3)
    figures.update(load)
    print(json.dumps(figures))
    return 0 if load["5xx_count"] == 0 and load["wrong_answers"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
