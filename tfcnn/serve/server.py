"""A local REST server compatible with TF Serving's REST API.

It serves every model under a model base directory (``<base>/<name>/
<version>/``, the layout ``tfcnn export`` writes and
``tensorflow_model_server --model_base_path`` reads) with the same URLs and
JSON bodies as TF Serving, so a client written against one works against
the other:

- ``GET /v1/models/<name>[/versions/<v>]``: version status;
- ``GET /v1/models/<name>[/versions/<v>]/metadata``: signatures;
- ``POST /v1/models/<name>[/versions/<v>]:predict``: ``instances`` (row)
  or ``inputs`` (columnar) bodies, ``{"b64": ...}`` for bytes.

The newest loaded version answers by default, and new versions are picked
up by a polling ``ModelRepository`` without a restart. Bad requests
(malformed JSON, wrong shapes or dtypes, unknown models or versions,
undecodable images, bodies over ``max_body_bytes``) get a 4xx answer
``{"error": "..."}``. The HTTP layer is Starlette on uvicorn; model calls
run in Starlette's thread pool, so requests are served concurrently.
"""

import contextlib
import json
import logging
import os
import re
import socket
import threading
import time

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import Route

from tfcnn.export import arguments
from tfcnn.export import layout
from tfcnn.serve import repository as repository_lib
from tfcnn.serve import rest

DEFAULT_MAX_BODY_BYTES = 32 * 2**20
_log = logging.getLogger(__name__)
_PATH = re.compile(
    r"(?P<name>[^/:]+)"
    r"(?:/versions/(?P<version>[^/:]+)|/labels/(?P<label>[^/:]+))?"
    r"(?:(?P<metadata>/metadata)|:(?P<method>[A-Za-z]+))?")


def _json_response(body, status=200):
    return Response(json.dumps(body), status_code=status,
                    media_type="application/json")


def _error(message, status):
    return _json_response({"error": message}, status)


def create_app(base_dir, *, max_body_bytes=DEFAULT_MAX_BODY_BYTES,
               poll_seconds=1.0):
    """Returns the ASGI application serving the models under ``base_dir``.

    The application loads the models and starts polling for new versions
    when it starts (ASGI lifespan) and stops polling when it shuts down.

    Args:
        base_dir: str or path, the model base directory.
        max_body_bytes: int, larger request bodies are refused with 413.
            Defaults to 32 MiB.
        poll_seconds: float, how often to look for new versions. Defaults
            to 1.0.

    Returns:
        a ``starlette.applications.Starlette``; ``app.state.repository`` is
        its ``ModelRepository``.
    """
    arguments.check_positive_int(max_body_bytes, "max_body_bytes")
    models = repository_lib.ModelRepository(base_dir, poll_seconds)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        await run_in_threadpool(models.start)
        try:
            yield
        finally:
            await run_in_threadpool(models.stop)

    async def models_endpoint(request):
        match = _PATH.fullmatch(request.path_params["path"])
        try:
            if match is None:
                raise rest.RequestError(
                    f"malformed URL path {request.url.path!r}", 404)
            return await _dispatch(request, match, models, max_body_bytes)
        except rest.RequestError as error:
            return _error(str(error), error.status)
        except repository_lib.NotFoundError as error:
            return _error(str(error), 404)

    async def http_error(request, error):
        return _error(error.detail, error.status_code)

    async def server_error(request, error):
        _log.exception("internal error on %s", request.url.path,
                       exc_info=error)
        return _error(f"internal error: {type(error).__name__}", 500)

    app = Starlette(
        routes=[Route("/v1/models/{path:path}", models_endpoint,
                      methods=["GET", "POST"])],
        exception_handlers={HTTPException: http_error,
                            Exception: server_error},
        lifespan=lifespan)
    app.state.repository = models
    return app


async def _dispatch(request, match, models, max_body_bytes):
    name = match["name"]
    if not layout.is_model_name(name):
        raise rest.RequestError(f"no model named {name!r}", 404)
    if match["label"] is not None:
        raise rest.RequestError("version labels are not supported; use "
                                "/versions/<number>", 404)
    version = None
    if match["version"] is not None:
        version = layout.parse_version(match["version"])
        if version is None:
            raise rest.RequestError(
                "the version must be a positive integer. "
                f"Received: version={match['version']!r}", 404)
    method = match["method"]
    if method is None:
        _require(request, "GET")
        if match["metadata"]:
            return _json_response(_metadata(models.get(name, version)))
        return _json_response(
            {"model_version_status": models.status(name, version)})
    if method != "predict":
        raise rest.RequestError(
            f"unsupported method {method!r}; this server answers :predict",
            404 if method not in ("classify", "regress") else 400)
    _require(request, "POST")
    served = models.get(name, version)
    body = await _read_body(request, max_body_bytes)
    answer = await run_in_threadpool(_predict, served, body)
    return Response(answer, media_type="application/json")


def _require(request, method):
    if request.method != method:
        raise rest.RequestError(
            f"{request.method} is not allowed here; use {method}", 405)


def _metadata(served):
    return {"model_spec": {"name": served.name, "signature_name": "",
                           "version": str(served.version)},
            "metadata": {"signature_def": served.signature_def}}


async def _read_body(request, limit):
    length = request.headers.get("content-length")
    if length is not None:
        if not length.isdigit():
            raise rest.RequestError("bad Content-Length header")
        if int(length) > limit:
            raise rest.RequestError(_too_large(int(length), limit), 413)
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise rest.RequestError(_too_large(size, limit), 413)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(size, limit):
    return (f"the request body is larger than the limit of {limit} bytes. "
            f"Received: {size} bytes or more")


def _predict(served, body):
    """Runs one predict request (in a worker thread); returns JSON bytes."""
    import tensorflow as tf

    request = rest.parse_body(body)
    signature = rest.signature_name(request)
    if signature not in served.signatures:
        raise rest.RequestError(
            f"serving signature {signature!r} not found; the model has "
            f"{sorted(served.signatures)}")
    specs = served.input_specs(signature)
    inputs, row_format = rest.request_inputs(request, specs)
    tensors = {name: tf.constant(value, dtype=specs[name].dtype)
               for name, value in inputs.items()}
    try:
        outputs = served.signatures[signature](**tensors)
    except tf.errors.InvalidArgumentError as error:
        raise rest.RequestError(_op_message(error)) from None
    except tf.errors.ResourceExhaustedError as error:
        raise rest.RequestError(_op_message(error), 503) from None
    arrays = {name: value.numpy() for name, value in outputs.items()}
    return json.dumps(rest.response_body(arrays, row_format)).encode()


def _op_message(error):
    """The line of a graph error that says what was wrong with the input."""
    lines = [line for line in str(error.message).splitlines()
             if line.strip()]
    for before, line in zip(lines, lines[1:]):
        if "[[{{node" in line:
            return before.strip()
    return lines[-1].strip() if lines else type(error).__name__


def _bind(host, port):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    return sock


def _uvicorn_server(app, log_level):
    config = uvicorn.Config(app, log_level=log_level, access_log=False,
                            timeout_keep_alive=30)
    return uvicorn.Server(config)


def serve(base_dir, host="127.0.0.1", port=8501,
          max_body_bytes=DEFAULT_MAX_BODY_BYTES, poll_seconds=1.0,
          log_level="info"):
    """Serves the models under ``base_dir`` until interrupted (blocking).

    Args:
        base_dir: str or path, the model base directory.
        host: str, the address to bind; only this machine can connect by
            default. Defaults to "127.0.0.1".
        port: int, the port; 0 picks a free one. Defaults to 8501 (TF
            Serving's REST port).
        max_body_bytes: int, larger request bodies get 413. Defaults to
            32 MiB.
        poll_seconds: float, how often to look for new versions. Defaults
            to 1.0.
        log_level: str, uvicorn's log level. Defaults to "info".

    Raises:
        NotADirectoryError: ``base_dir`` is not a directory.
    """
    _check_base_dir(base_dir)
    app = create_app(base_dir, max_body_bytes=max_body_bytes,
                     poll_seconds=poll_seconds)
    sock = _bind(host, port)
    bound_port = sock.getsockname()[1]
    print(f"tfcnn serve: models under {base_dir} at "
          f"http://{host}:{bound_port}/v1/models/<name>", flush=True)
    _uvicorn_server(app, log_level).run(sockets=[sock])


def _check_base_dir(base_dir):
    if not os.path.isdir(base_dir):
        raise NotADirectoryError(
            f"the model base directory {str(base_dir)!r} does not exist")


class BackgroundServer:
    """Runs the server in a thread: for tests, benchmarks and notebooks.

    Args:
        base_dir: str or path, the model base directory.
        host: str. Defaults to "127.0.0.1".
        port: int, 0 picks a free port. Defaults to 0.
        **app_kwargs: passed to ``create_app``.

    Example:

    >>> with BackgroundServer("saved_models") as server:
    ...     requests.get(server.url + "/v1/models/digits")
    """

    def __init__(self, base_dir, host="127.0.0.1", port=0, **app_kwargs):
        _check_base_dir(base_dir)
        self.app = create_app(base_dir, **app_kwargs)
        self.host = host
        self._port = port
        self._server = None
        self._thread = None
        self.url = None

    @property
    def repository(self):
        return self.app.state.repository

    def start(self, timeout=120.0):
        """Starts serving; returns once the models are loaded."""
        sock = _bind(self.host, self._port)
        self.url = f"http://{self.host}:{sock.getsockname()[1]}"
        self._server = _uvicorn_server(self.app, "warning")
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]},
            name="tfcnn-serve", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the server did not start")
            time.sleep(0.02)
        return self

    def stop(self):
        """Stops serving and waits for the thread to end."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=30)
        self._server = self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()
