"""Benchmark: ``tfcnn serve`` under load, REST and gRPC, with and without
batching, against the bare SavedModel call rate; and a 60 s soak.

Everything runs on 127.0.0.1. The server is ``tfcnn serve`` in its own
process. The load generators are not the server's bottleneck:

- REST: ``ab`` (ApacheBench, Debian's apache2-utils, written in C),
  posting a base64 PNG to ``:predict`` with 1, 8 and 32 concurrent clients,
  a new connection per request;
- REST keep-alive: this script in a second process (``--http-client``),
  each client a thread reusing one HTTP/1.1 connection. ``ab -k`` can't
  measure it: ab speaks HTTP/1.0, whose keep-alive uvicorn does not
  implement, so every ``ab -k`` request opened a new connection ("Keep-Alive
  requests: 0") and paid ab's wait for the close on top;
- gRPC: this script in a second process (``--grpc-client``) keeping 1, 8 or
  32 ``Predict`` calls in flight with TF Serving's own stub (futures, one
  thread).

The two Python clients measure their own CPU time (``client_cpu_fraction``
of a core), so a client that would be the bottleneck shows.

Figures, for the quickstart-sized model (LeNet-5 behind the training-model
contract, S=36):

1. ``bare_calls_per_s``: the ``serving_default`` signature called in a loop
   in this process on the same encoded image, batch 1 (no server).
2. For batching off and on, for REST and gRPC, at 1/8/32 clients:
   requests/s, p50 and p99 latency (ms), failures, and requests/s as a
   fraction of the bare call rate measured just before that run (goal >=
   0.8 at 8 clients, >= 0.6 at 1); and the server's CPU ms per request
   with the bare call's CPU ms over it (``cpu_vs_bare``), which other
   work on shared cores moves far less than the rates; and requests/s
   over the bare rate of as many threads calling as the run has clients
   (``vs_bare_same_concurrency``).
3. Batching's gain with a model whose batch-1 call is far from free
   (ResNet-18 at 224 by default): gRPC requests/s at 32 clients, batching
   on over off.
4. Soak: 60 s, 32 gRPC clients (60 s deadline each), while two new
   versions (different weights)
   are exported with ``tfcnn.export.export_model`` (at 15% and 45% of the
   run, without the selfcheck process); every answer is checked
   against the answer of the version that gave it (``model_spec.version``),
   and the server's resident memory is sampled: its level at the end (old
   versions unloaded) over its level under the same load just before the
   first export.

Usage:
    python benchmarks/serve.py [--quick | --smoke] [--seconds 5]
        [--soak-seconds 60]

The last line printed is one JSON object with every figure.
"""

import os

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse  # noqa: E402
import base64  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

ATOL = 1e-5
CLIENTS = (1, 8, 32)


# The gRPC load generator (a separate process) -------------------------------

def grpc_client(target, clients, seconds, images_file, record,
                timeout_s=30.0):
    """Keeps ``clients`` Predict calls in flight for ``seconds``.

    Prints one JSON object: requests, errors by code, latency percentiles,
    this process's CPU seconds and, with ``record``, the first answer per
    (version, image) and the number of answers that differed from it.
    """
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    images = [bytes(a) for a in np.load(images_file, allow_pickle=True)]
    requests = []
    for data in images:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "bench"
        request.inputs["image_bytes"].CopyFrom(
            tf.make_tensor_proto([data]))
        requests.append(request)
    channel = grpc.insecure_channel(target)
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    stub.Predict(requests[0], timeout=60)  # connect and warm up
    lock = threading.Lock()
    latencies, errors = [], {}
    first, differed = {}, {}
    done = threading.Event()
    active = [clients]
    deadline = time.monotonic() + seconds
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)

    def issue(slot, index):
        start = time.perf_counter()
        future = stub.Predict.future(requests[index % len(requests)],
                                     timeout=timeout_s)
        future.add_done_callback(
            lambda f: finished(f, slot, index, start))

    def finished(future, slot, index, start):
        elapsed = time.perf_counter() - start
        try:
            response = future.result()
            code = None
        except grpc.RpcError as error:
            code = error.code().name
        with lock:
            if code is None:
                latencies.append(elapsed)
                if record:
                    _record(response, index % len(requests), first,
                            differed)
            else:
                errors[code] = errors.get(code, 0) + 1
            if time.monotonic() >= deadline:
                active[0] -= 1
                if not active[0]:
                    done.set()
                return
        issue(slot, index + clients)

    start = time.monotonic()
    for slot in range(clients):
        issue(slot, slot)
    done.wait(seconds + 120)
    wall = time.monotonic() - start
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    channel.close()
    ms = np.asarray(latencies) * 1000
    report = {
        "requests": len(latencies) + sum(errors.values()),
        "ok": len(latencies), "errors": errors, "wall_s": wall,
        "requests_per_s": len(latencies) / wall,
        "p50_ms": float(np.percentile(ms, 50)) if len(ms) else None,
        "p99_ms": float(np.percentile(ms, 99)) if len(ms) else None,
        "max_ms": float(ms.max()) if len(ms) else None,
        "client_cpu_s": (cpu1.ru_utime + cpu1.ru_stime
                         - cpu0.ru_utime - cpu0.ru_stime),
    }
    if record:
        report["first"] = {f"{v}:{i}": answer
                           for (v, i), answer in first.items()}
        report["differed"] = sum(differed.values())
    print(json.dumps(report))


def http_client(url, clients, seconds, body_file):
    """Keeps ``clients`` HTTP/1.1 keep-alive connections posting the body.

    ``ab -k`` can't measure keep-alive against this server: ab speaks
    HTTP/1.0, and uvicorn (h11 and httptools alike) closes an HTTP/1.0
    connection after each answer, so ``ab -k`` opened one per request
    ("Keep-Alive requests: 0"). Each client here is a thread with one
    socket and a prepared request; it reads the status line, the
    Content-Length and the body. Prints one JSON object as
    ``grpc_client`` does.
    """
    host, port = url.split("//", 1)[1].rsplit(":", 1)
    with open(body_file, "rb") as f:
        body = f.read()
    request = (f"POST /v1/models/bench:predict HTTP/1.1\r\nHost: {host}\r\n"
               "Content-Type: application/json\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    lock = threading.Lock()
    latencies, errors = [], {}
    deadline = time.monotonic() + seconds

    def answer(sock, pending):
        while b"\r\n\r\n" not in pending:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            pending += chunk
        head, _, rest = pending.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = int(re.search(rb"(?i)content-length: *(\d+)",
                               head).group(1))
        while len(rest) < length:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            rest += chunk
        return status, rest[length:]

    def client():
        sock = socket.create_connection((host, int(port)))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        pending = b""
        while time.monotonic() < deadline:
            start = time.perf_counter()
            try:
                sock.sendall(request)
                status, pending = answer(sock, pending)
            except OSError as error:
                with lock:
                    name = type(error).__name__
                    errors[name] = errors.get(name, 0) + 1
                sock.close()
                sock = socket.create_connection((host, int(port)))
                pending = b""
                continue
            elapsed = time.perf_counter() - start
            with lock:
                if status == 200:
                    latencies.append(elapsed)
                else:
                    errors[str(status)] = errors.get(str(status), 0) + 1
        sock.close()

    wall, cpu = _in_threads(lambda _: client(), clients)
    ms = np.asarray(latencies) * 1000
    print(json.dumps({
        "requests": len(latencies) + sum(errors.values()),
        "ok": len(latencies), "errors": errors, "wall_s": wall,
        "requests_per_s": len(latencies) / wall,
        "p50_ms": float(np.percentile(ms, 50)) if len(ms) else None,
        "p99_ms": float(np.percentile(ms, 99)) if len(ms) else None,
        "client_cpu_s": cpu}))


def _in_threads(target, count):
    """Runs ``target(i)`` in ``count`` threads at once; returns the wall
    seconds and this process's CPU seconds they took."""
    threads = [threading.Thread(target=target, args=(i,))
               for i in range(count)]
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    return wall, (cpu1.ru_utime + cpu1.ru_stime
                  - cpu0.ru_utime - cpu0.ru_stime)


def _record(response, index, first, differed):
    import tensorflow as tf

    version = response.model_spec.version.value
    ids = tf.make_ndarray(response.outputs["class_ids"])[0].tolist()
    probabilities = tf.make_ndarray(response.outputs["probabilities"])[0]
    key = (version, index)
    if key not in first:
        first[key] = {"class_ids": ids,
                      "probabilities": probabilities.tolist()}
        return
    reference = first[key]
    if ids != reference["class_ids"] or not np.allclose(
            probabilities, reference["probabilities"], atol=ATOL, rtol=0):
        differed[key] = differed.get(key, 0) + 1


# The parent: models, server, load runs -------------------------------------

def contract_model(name, size, crop, num_classes, seed=0):
    """A registry network behind a centre crop and mean subtraction."""
    import keras

    import tfcnn.models

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((size, size, 3), dtype="uint8", name="image")
    x = keras.layers.CenterCrop(crop, crop)(inputs)
    x = keras.layers.Normalization(mean=[124.0, 116.0, 104.0],
                                   variance=[3364.0, 3249.0, 3316.0])(x)
    network = tfcnn.models.build(name, input_shape=(crop, crop, 3),
                                 num_classes=num_classes)
    return keras.Model(inputs, network(x))


def encoded_images(size, count=8):
    import tensorflow as tf

    rng = np.random.default_rng(1)
    return [tf.io.encode_png(rng.integers(
        0, 256, (size + 4 * i, size + 3 * (count - i), 3), np.uint8)).numpy()
        for i in range(count)]


def load_signature(version_dir):
    import tensorflow as tf

    return tf.saved_model.load(str(version_dir)).signatures[
        "serving_default"]


def bare_rate(signature, image, seconds):
    """Batch-1 calls per second of the bytes signature, no server."""
    return bare_figures(signature, image, seconds)[0]


def bare_figures(signature, image, seconds, threads=1):
    """``(calls per second, CPU ms per call)`` of batch-1 calls of the
    bytes signature in this process (idle but for them), no server, from
    ``threads`` threads calling at once."""
    import tensorflow as tf

    batch = tf.constant([image])
    for _ in range(20):
        signature(image_bytes=batch)
    calls = [0] * threads
    start = time.perf_counter()

    def call(index):
        while time.perf_counter() - start < seconds:
            signature(image_bytes=batch)["probabilities"].numpy()
            calls[index] += 1

    wall, cpu = _in_threads(call, threads)
    return sum(calls) / wall, 1000 * cpu / sum(calls)


class Server:
    """``tfcnn serve`` in its own process on free loopback ports."""

    def __init__(self, base, extra=()):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            rest_port = probe.getsockname()[1]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tfcnn.cli", "serve", str(base),
             f"--rest_api_port={rest_port}", "--port=0",
             "--max-in-flight", "256", *extra],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        # One "loaded ..." line per version, then the addresses.
        line = self.proc.stdout.readline()
        while line.startswith("tfcnn serve: loaded "):
            line = self.proc.stdout.readline()
        if "http://" not in line:
            self.proc.kill()
            raise RuntimeError(f"the server did not start: {line!r}")
        self.url = "http://" + line.split("http://")[1].split("/v1/")[0]
        self.grpc = line.strip().rsplit("gRPC at ", 1)[1]

    def cpu_s(self):
        """The server process's CPU seconds so far (user + system)."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf(
            "SC_CLK_TCK")

    def rss_mb(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self):
        self.proc.terminate()
        try:
            return self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def run_ab(url, body_file, clients, seconds):
    """REST load with ApacheBench, a connection per request; returns its
    figures."""
    done = subprocess.run(
        ["ab", "-q", "-t", str(seconds),
         "-n", "10000000", "-c",
         str(clients), "-p", body_file, "-T", "application/json",
         "-s", "60", url + "/v1/models/bench:predict"],
        capture_output=True, text=True, check=False)
    out = done.stdout

    def number(pattern, default=0.0):
        match = re.search(pattern, out, re.MULTILINE)
        return float(match.group(1)) if match else default

    return {
        "requests_per_s": number(r"^Requests per second:\s+([\d.]+)"),
        "p50_ms": number(r"^\s+50%\s+(\d+)"),
        "p99_ms": number(r"^\s+99%\s+(\d+)"),
        "requests": int(number(r"^Complete requests:\s+(\d+)")),
        # ab counts an answer whose length differs from the first one as
        # failed ("Length"): batched answers' floats print with other
        # lengths. Failures are connect, receive and exceptions.
        "failed": sum(int(number(rf"{kind}: (\d+)")) for kind in (
            r"\(Connect", "Receive", "Exceptions")),
        "non_2xx": int(number(r"^Non-2xx responses:\s+(\d+)")),
    }


def run_grpc(target, clients, seconds, images_file, record=False,
             timeout_s=30.0):
    command = [sys.executable, os.path.abspath(__file__), "--grpc-client",
               target, "--clients", str(clients), "--seconds",
               str(seconds), "--images", images_file, "--timeout",
               str(timeout_s)]
    if record:
        command.append("--record")
    return _client_figures(command, "gRPC")


def run_keep_alive(url, clients, seconds, body_file):
    """REST load over kept-alive HTTP/1.1 connections (``http_client``)."""
    return _client_figures(
        [sys.executable, os.path.abspath(__file__), "--http-client", url,
         "--clients", str(clients), "--seconds", str(seconds),
         "--body", body_file], "keep-alive HTTP")


def _client_figures(command, what):
    done = subprocess.run(command, capture_output=True, text=True,
                          check=False)
    try:
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        raise RuntimeError(f"the {what} client failed: "
                           + done.stderr[-2000:]) from None


def _client_row(result, bare, server_cpu_ms, together):
    """A table row of a Python client's figures against the bare rate."""
    return {"requests_per_s": round(result["requests_per_s"], 1),
            "p50_ms": round(result["p50_ms"], 2),
            "p99_ms": round(result["p99_ms"], 2),
            "failed": sum(result["errors"].values()),
            **_bare_columns(result, bare, server_cpu_ms, together),
            "client_cpu_fraction": round(
                result["client_cpu_s"] / result["wall_s"], 3)}


def _ab_row(result, bare, server_cpu_ms, together):
    """A table row of ``run_ab``'s figures against the bare call rate."""
    return {"requests_per_s": round(result["requests_per_s"], 1),
            "p50_ms": result["p50_ms"], "p99_ms": result["p99_ms"],
            "failed": result["failed"] + result["non_2xx"],
            **_bare_columns(result, bare, server_cpu_ms, together)}


def _bare_columns(result, bare, server_cpu_ms, together):
    """Requests/s over bare calls/s, and bare CPU over the server's CPU
    per request: on cores shared with other work the first swings with
    their load from one second to the next, the second much less.

    ``bare`` is one thread calling (the targets' reference); ``together``
    as many threads as the run has clients, the same concurrency: on two
    cores 8 callers make 2-3x the calls of one, each for less CPU.
    """
    rate, cpu_ms = bare
    return {"bare_calls_per_s": round(rate, 1),
            "bare_same_concurrency_calls_per_s": round(together[0], 1),
            "vs_bare_same_concurrency": round(
                result["requests_per_s"] / together[0], 3),
            "vs_bare": round(result["requests_per_s"] / rate, 3),
            "server_cpu_ms_per_request": round(server_cpu_ms, 3),
            "bare_cpu_ms_per_call": round(cpu_ms, 3),
            "cpu_vs_bare": round(cpu_ms / server_cpu_ms, 3)
            if server_cpu_ms else None}


def load_matrix(base, body_file, images_file, seconds, bare, label,
                batching_flags):
    """REST and gRPC at each client count, batching off and on.

    ``bare()`` measures the bare call rate (and CPU per call) again just
    before each run (``bare(clients)``: with that many threads calling),
    so each ratio compares runs seconds apart on the same (shared) cores;
    the server's CPU time per request is read from /proc around each run.
    """
    rows = {}
    for batching in (False, True):
        server = Server(base, batching_flags if batching else ())

        def measured(run):
            before = server.cpu_s()
            result = run()
            used = server.cpu_s() - before
            return result, 1000 * used / max(1, result["requests"])

        try:
            run_ab(server.url, body_file, 1, 1)  # warm up
            for clients in CLIENTS:
                key = f"{label}_{'batched' if batching else 'unbatched'}"
                together = bare(clients)
                bare_rest = bare()
                rest, rest_cpu = measured(lambda: run_ab(
                    server.url, body_file, clients, seconds))
                bare_kept = bare()
                kept, kept_cpu = measured(lambda: run_keep_alive(
                    server.url, clients, seconds, body_file))
                bare_grpc = bare()
                grpc_, grpc_cpu = measured(lambda: run_grpc(
                    server.grpc, clients, seconds, images_file))
                rows[f"{key}_rest_{clients}"] = _ab_row(
                    rest, bare_rest, rest_cpu, together)
                rows[f"{key}_rest_keepalive_{clients}"] = _client_row(
                    kept, bare_kept, kept_cpu, together)
                rows[f"{key}_grpc_{clients}"] = _client_row(
                    grpc_, bare_grpc, grpc_cpu, together)
        finally:
            server.stop()
    return rows


def soak(base, model_args, images, images_file, seconds):
    """32 gRPC clients for ``seconds`` while two versions are exported."""
    import tensorflow as tf

    from tfcnn.export import publish

    server = Server(base, ("--poll-seconds", "0.5"))
    rss = []
    stop = threading.Event()

    def sample():
        while not stop.wait(0.5):
            rss.append((time.monotonic(), server.rss_mb()))

    exported = []
    first_export_at = []

    def export_two():
        # Unverified (the selfcheck process alone takes 15-30 s on two
        # busy cores), so both versions land well inside the run.
        for seed, at in ((1, 0.15), (2, 0.45)):
            time.sleep(max(0.0, start + at * seconds - time.monotonic()))
            first_export_at.append(time.monotonic())
            model = contract_model(*model_args, seed=seed)
            exported.append(publish.export_model(
                model, export_dir=base, name="bench", verify=False))

    try:
        run_grpc(server.grpc, 8, 2, images_file)  # warm up
        rss_warm = server.rss_mb()
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        # The client process takes a few seconds to import TensorFlow.
        start = time.monotonic() + 5
        exporter = threading.Thread(target=export_two)
        exporter.start()
        result = run_grpc(server.grpc, 32, seconds, images_file,
                          record=True, timeout_s=60.0)
        exporter.join()
        time.sleep(3)  # the last poll unloads the previous version
        rss_end = server.rss_mb()
        status = json.loads(subprocess.run(
            ["curl", "-s", server.url + "/v1/models/bench"],
            capture_output=True, text=True, check=False).stdout or "{}")
    finally:
        stop.set()
        server.stop()
    # Version 1's level: the last sample under the full load (the server's
    # 32 RPC threads and their malloc arenas) before the first export.
    before = [mb for at, mb in rss if at < first_export_at[0]]
    rss_first = before[-1] if before else rss_warm
    wrong = 0
    checked = set()
    for key, answer in result["first"].items():
        version, index = (int(x) for x in key.split(":"))
        checked.add(version)
        signature = tf.saved_model.load(
            os.path.join(base, "bench", str(version))).signatures[
            "serving_default"]
        expected = signature(image_bytes=tf.constant([images[index]]))
        ids = expected["class_ids"].numpy()[0].tolist()
        probabilities = expected["probabilities"].numpy()[0]
        if ids != answer["class_ids"] or not np.allclose(
                probabilities, answer["probabilities"], atol=ATOL, rtol=0):
            wrong += 1
    wrong += result["differed"]
    return {
        "soak_seconds": round(result["wall_s"], 1),
        "soak_clients": 32,
        "soak_requests": result["requests"],
        "soak_requests_per_s": round(result["requests_per_s"], 1),
        "soak_p50_ms": round(result["p50_ms"], 1),
        "soak_p99_ms": round(result["p99_ms"], 1),
        "soak_max_ms": round(result["max_ms"], 1),
        "soak_failed_requests": sum(result["errors"].values()),
        "soak_errors": result["errors"],
        "soak_wrong_answers": wrong,
        "soak_versions_answering": sorted(checked),
        "soak_final_status": [(s["version"], s["state"]) for s in
                              status.get("model_version_status", [])],
        "soak_rss_after_warm_up_mb": round(rss_warm, 1),
        "soak_rss_after_first_version_mb": round(rss_first, 1),
        "soak_rss_peak_mb": round(max(r for _, r in rss), 1),
        "soak_rss_end_mb": round(rss_end, 1),
        "soak_rss_end_over_first": round(rss_end / rss_first, 3),
    }


def batching_gain(model_name, size, images_file_for, seconds, clients,
                  batching_file):
    """gRPC requests/s at ``clients`` with batching on over off."""
    from tfcnn.export import publish

    crop = size * 7 // 8
    with tempfile.TemporaryDirectory(prefix="tfcnn-bench-big-") as base:
        publish.export_model(contract_model(model_name, size, crop, 10),
                             export_dir=base, name="bench", verify=False)
        images_file = images_file_for(size, base)
        figures = {}
        for batching, flags in ((False, ()), (True, (
                "--batching-parameters-file", batching_file,
                "--batch-timeout-micros", "20000"))):
            server = Server(base, flags)
            try:
                # Warm up every padded batch size the run will use.
                run_grpc(server.grpc, clients, seconds / 2, images_file)
                result = run_grpc(server.grpc, clients, seconds,
                                  images_file)
            finally:
                server.stop()
            key = "batched" if batching else "unbatched"
            figures[f"big_{key}_grpc_{clients}_requests_per_s"] = round(
                result["requests_per_s"], 2)
            figures[f"big_{key}_grpc_{clients}_p50_ms"] = round(
                result["p50_ms"], 1)
            figures[f"big_{key}_grpc_{clients}_failed"] = sum(
                result["errors"].values())
    figures["big_model"] = f"{model_name}@{size}"
    figures["big_batching_gain_32_clients"] = round(
        figures[f"big_batched_grpc_{clients}_requests_per_s"]
        / figures[f"big_unbatched_grpc_{clients}_requests_per_s"], 3)
    return figures


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="2 s runs, a 20 s soak, no big model")
    parser.add_argument("--smoke", action="store_true",
                        help="1 s runs (ab counts whole seconds), a 6 s "
                             "soak, no big model, no selfcheck of the "
                             "export: proves the script; its figures mean "
                             "nothing")
    parser.add_argument("--seconds", type=float, default=5.0,
                        help="seconds per load run (default 5)")
    parser.add_argument("--soak-seconds", type=float, default=60.0)
    parser.add_argument("--model", default="lenet5")
    parser.add_argument("--size", type=int, default=36)
    parser.add_argument("--crop", type=int, default=32)
    parser.add_argument("--big-model", default="resnet18")
    parser.add_argument("--big-size", type=int, default=224)
    parser.add_argument("--batch-timeout-micros", type=int, default=2000)
    parser.add_argument("--soak-only", action="store_true",
                        help="only the soak (with --soak-seconds)")
    parser.add_argument("--matrix-only", action="store_true",
                        help="only the REST/gRPC load runs")
    parser.add_argument("--grpc-client", default=None,
                        help=argparse.SUPPRESS)
    parser.add_argument("--http-client", default=None,
                        help=argparse.SUPPRESS)
    parser.add_argument("--body", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--clients", type=int, default=8,
                        help=argparse.SUPPRESS)
    parser.add_argument("--images", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--record", action="store_true",
                        help=argparse.SUPPRESS)
    parser.add_argument("--timeout", type=float, default=30.0,
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.grpc_client:
        grpc_client(args.grpc_client, args.clients, args.seconds,
                    args.images, args.record, args.timeout)
        return 0
    if args.http_client:
        http_client(args.http_client, args.clients, args.seconds,
                    args.body)
        return 0
    if shutil.which("ab") is None:
        print("benchmarks/serve.py needs ab: apt-get install apache2-utils",
              file=sys.stderr)
        return 2
    seconds = 1.0 if args.smoke else 2.0 if args.quick else args.seconds
    soak_seconds = (6.0 if args.smoke else 20.0 if args.quick
                    else args.soak_seconds)
    from tfcnn.export import publish

    figures = {"model": args.model, "image_size": args.size,
               "cpu_cores": os.cpu_count(), "seconds_per_run": seconds}
    work = tempfile.mkdtemp(prefix="tfcnn-bench-")
    try:
        base = os.path.join(work, "models")
        model_args = (args.model, args.size, args.crop, 10)
        # The smoke run skips the selfcheck process (15-30 s on two busy
        # cores; tests/export checks it), as the soak's exports do.
        version_dir = publish.export_model(
            contract_model(*model_args), export_dir=base, name="bench",
            verify=not args.smoke)
        images = encoded_images(args.size)

        def images_file_for(size, folder):
            path = os.path.join(folder, f"images-{size}.npy")
            np.save(path, np.array(
                [np.frombuffer(i, np.uint8) for i in encoded_images(size)],
                dtype=object), allow_pickle=True)
            return path

        images_file = images_file_for(args.size, work)
        body_file = os.path.join(work, "body.json")
        with open(body_file, "w") as f:
            json.dump({"instances": [
                {"b64": base64.b64encode(images[0]).decode()}]}, f)
        signature = load_signature(version_dir)
        bare = bare_rate(signature, images[0], min(seconds, 5.0))
        figures["bare_calls_per_s"] = round(bare, 1)
        batching_file = os.path.join(work, "batching.config")
        with open(batching_file, "w") as f:
            f.write(f"max_batch_size {{ value: 32 }}\n"
                    f"batch_timeout_micros {{ value: "
                    f"{args.batch_timeout_micros} }}\n"
                    + "".join(f"allowed_batch_sizes: {n}\n"
                              for n in (1, 2, 4, 8, 16, 32)))
        figures["loadavg_start"] = os.getloadavg()[0]
        rows = {} if args.soak_only else load_matrix(
            base, body_file, images_file, seconds,
            lambda threads=1: bare_figures(
                signature, images[0], min(seconds, 2.0), threads),
            "quickstart",
            ("--batching-parameters-file", batching_file))
        print(f"bare SavedModel calls/s (batch 1, bytes): {bare:.1f}")
        print(f"{'run':40s} {'req/s':>9s} {'p50 ms':>8s} {'p99 ms':>8s} "
              f"{'failed':>6s} {'vs bare':>7s} {'vs bare xN':>10s} "
              f"{'cpu ms':>7s} {'cpu vs bare':>11s}")
        for name, row in rows.items():
            print(f"{name:40s} {row['requests_per_s']:9.1f} "
                  f"{row['p50_ms']:8.2f} {row['p99_ms']:8.2f} "
                  f"{row['failed']:6d} {row['vs_bare']:7.3f} "
                  f"{row['vs_bare_same_concurrency']:10.3f} "
                  f"{row['server_cpu_ms_per_request']:7.3f} "
                  f"{row['cpu_vs_bare'] or 0:11.3f}")
            for key, value in row.items():
                figures[f"{name}_{key}"] = value
        if not (args.quick or args.smoke or args.soak_only
                or args.matrix_only):
            big = batching_gain(args.big_model, args.big_size,
                                images_file_for, max(seconds, 10.0), 32,
                                batching_file)
            figures.update(big)
            print(f"batching gain, {big['big_model']}, gRPC, 32 clients: "
                  f"{big['big_batching_gain_32_clients']:.2f}x")
        if args.matrix_only:
            print(json.dumps(figures))
            return 0
        result = soak(base, model_args, images, images_file, soak_seconds)
        figures.update(result)
        print(f"soak: {result['soak_requests']} requests in "
              f"{result['soak_seconds']} s, "
              f"{result['soak_failed_requests']} failed, "
              f"{result['soak_wrong_answers']} wrong, versions "
              f"{result['soak_versions_answering']}, RSS "
              f"{result['soak_rss_after_first_version_mb']} -> "
              f"{result['soak_rss_end_mb']} MB "
              f"({result['soak_rss_end_over_first']}x)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    figures["loadavg_end"] = os.getloadavg()[0]
    print(json.dumps(figures))
    ok = (figures["soak_failed_requests"] == 0
          and figures["soak_wrong_answers"] == 0)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
