"""TF Serving's Prometheus metrics: request counts and latency histograms.

``GET /monitoring/prometheus/metrics`` answers in the Prometheus text
exposition format with the metrics TF Serving exports
(``servables/tensorflow/util.cc``), under the names its Prometheus exporter
gives them (``/`` becomes ``:``):

- ``:tensorflow:serving:request_count{model_name, status}``: requests by
  model and canonical status code (``OK``, ``INVALID_ARGUMENT``, ...);
- ``:tensorflow:serving:request_latency{model_name, API, entrypoint}``:
  a histogram of wall time in microseconds (buckets 10 * 1.8^i, i < 33, as
  TF Serving's), API ``predict``, ``classify``, ``metadata`` or
  ``status`` and entrypoint ``REST`` or ``GRPC``;
- ``:tfcnn:serving:requests_in_flight``: a gauge of admitted requests.

Only the models the server serves get a ``model_name`` label of their own;
requests for any other name (a client's typo, or a scan of made-up names)
are counted under ``model_name=""``, so the metrics page stays as small as
the set of served models whatever clients ask for.
"""

import threading

_COUNT = ":tensorflow:serving:request_count"
_LATENCY = ":tensorflow:serving:request_latency"
_IN_FLIGHT = ":tfcnn:serving:requests_in_flight"
BUCKETS = tuple(10 * 1.8 ** i for i in range(33))


class Metrics:
    """Thread-safe counters and histograms, rendered for Prometheus.

    Args:
        served: callable returning the names of the served models (the
            only names labelled as such), or None to label every name.
    """

    def __init__(self, served=None):
        self._served = served
        self._lock = threading.Lock()
        self._counts = {}     # (model, status) -> int
        self._latency = {}    # (model, api, entrypoint) -> [buckets, sum]

    def observe(self, model, api, entrypoint, status, seconds):
        """Records one finished request.

        Args:
            model: str, the model name asked for.
            api: str, "predict", "classify", "metadata" or "status".
            entrypoint: str, "REST" or "GRPC".
            status: str, the canonical status code name ("OK", ...).
            seconds: float, wall time of the request.
        """
        micros = seconds * 1e6
        if self._served is not None and model not in self._served():
            model = ""
        with self._lock:
            key = (model, status)
            self._counts[key] = self._counts.get(key, 0) + 1
            cell = self._latency.setdefault(
                (model, api, entrypoint), [[0] * (len(BUCKETS) + 1), 0.0])
            index = next((i for i, bound in enumerate(BUCKETS)
                          if micros <= bound), len(BUCKETS))
            cell[0][index] += 1
            cell[1] += micros

    def render(self, in_flight=0):
        """The metrics in the Prometheus text format (version 0.0.4)."""
        lines = [f"# TYPE {_COUNT} counter"]
        with self._lock:
            for (model, status), count in sorted(self._counts.items()):
                lines.append(f"{_COUNT}{{model_name={_quote(model)},"
                             f"status={_quote(status)}}} {count}")
            lines.append(f"# TYPE {_LATENCY} histogram")
            for (model, api, entry), (counts, total) in sorted(
                    self._latency.items()):
                labels = (f"model_name={_quote(model)},API={_quote(api)},"
                          f"entrypoint={_quote(entry)}")
                cumulative = 0
                for bound, count in zip(BUCKETS + (float("inf"),), counts):
                    cumulative += count
                    le = "+Inf" if bound == float("inf") else f"{bound:.6g}"
                    lines.append(f"{_LATENCY}_bucket{{{labels},le=\"{le}\"}}"
                                 f" {cumulative}")
                lines.append(f"{_LATENCY}_sum{{{labels}}} {total:.1f}")
                lines.append(f"{_LATENCY}_count{{{labels}}} {cumulative}")
        lines.append(f"# TYPE {_IN_FLIGHT} gauge")
        lines.append(f"{_IN_FLIGHT} {in_flight}")
        return "\n".join(lines) + "\n"


def _quote(value):
    escaped = (str(value).replace("\\", "\\\\").replace("\n", "\\n")
               .replace('"', '\\"'))
    return f'"{escaped}"'
