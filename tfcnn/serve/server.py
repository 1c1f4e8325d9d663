"""A local model server compatible with TF Serving's REST and gRPC APIs.

It serves the models under an export root (``<export_dir>/<name>/
<version>/``, the layout ``tfcnn export`` writes; each ``<export_dir>/
<name>`` is what ``tensorflow_model_server --model_base_path`` reads), or
those of a TF Serving model config file, with the same URLs, JSON bodies
and gRPC services as TF Serving, so a client written against one works
against the other:

- ``GET /v1/models/<name>[/versions/<v> | /labels/<l>]``: version status;
- ``GET .../metadata``: signatures;
- ``POST ...:predict``: ``instances`` (row) or ``inputs`` (columnar)
  bodies, ``{"b64": ...}`` for bytes;
- ``POST ...:classify`` and ``...:regress``: ``tf.Example`` features as
  JSON (``tfcnn.serve.rest``);
- ``GET /monitoring/prometheus/metrics``: TF Serving's metrics
  (``tfcnn.serve.metrics``);
- gRPC ``PredictionService`` and ``ModelService`` (``tfcnn.serve.grpc_api``)
  on a second port.

Versions are loaded and unloaded by a polling ``ModelRepository``; both
front ends share one ``Inference`` (admission limit, deadlines, batching).
Bad requests get a 4xx answer ``{"error": "..."}``; a full server answers
429. The HTTP layer is uvicorn's httptools protocol (on uvloop where it is
installed) with a header read timeout (slow clients are disconnected) and a
body read timeout; TF Serving's URLs are answered by a small ASGI
application of their own, everything else by Starlette; model calls run in
the app's own thread pool. ``serve`` drains the requests
in flight on SIGTERM (or Ctrl-C) and returns.
"""

import asyncio
import collections
import concurrent.futures
import contextlib
import dataclasses
import functools
import json
import logging
import os
import pathlib
import re
import socket
import threading
import time

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.routing import Route
from uvicorn.protocols.http import httptools_impl

from tfcnn.errors import ServeError
from tfcnn.errors import ServingError
from tfcnn.errors import StatusCode
from tfcnn.export import arguments
from tfcnn.export import layout
from tfcnn.serve import batching
from tfcnn.serve import config as config_lib
from tfcnn.serve import inference as inference_lib
from tfcnn.serve import inputs as inputs_lib
from tfcnn.serve import repository as repository_lib
from tfcnn.serve import rest

DEFAULT_MAX_BODY_BYTES = 32 * 2**20
_log = logging.getLogger(__name__)
_MODELS_PREFIX = "/v1/models/"
# The scope key of the future that serve's HTTP protocol resolves when the
# connection of a request is lost.
_CONNECTION_LOST = "tfcnn.connection_lost"
_PATH = re.compile(
    r"(?P<name>[^/:]+)"
    r"(?:/versions/(?P<version>[^/:]+)|/labels/(?P<label>[^/:]+))?"
    r"(?:(?P<metadata>/metadata)|:(?P<method>[A-Za-z]+))?")


@dataclasses.dataclass(frozen=True)
class ServerOptions:
    """How the server bounds and batches its work.

    Attributes:
        max_body_bytes: int, larger request bodies get 413. Defaults to
            32 MiB.
        poll_seconds: float, how often to look for new versions; 0 looks
            once, at start. Defaults to 1.0.
        limits: ``inputs.Limits``, instances per request and image pixels.
        max_in_flight: int, requests in flight or queued at once (REST and
            gRPC together); more get 429 / RESOURCE_EXHAUSTED. Defaults
            to 64.
        request_timeout_s: float, the longest a request waits before its
            call starts (gRPC: at most the client's deadline). Defaults to
            30.0.
        header_timeout_s: float, time to receive a request's headers.
            Defaults to 10.0.
        body_timeout_s: float, time to receive a request's body. Defaults
            to 30.0.
        batching: ``config.BatchingParameters`` or None (no batching).
        metrics_path: str or None, the URL path of the Prometheus metrics
            page; None serves none. Defaults to
            "/monitoring/prometheus/metrics".
        access_log: bool, log one line per REST request (uvicorn's access
            log). Defaults to False.
    """

    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    poll_seconds: float = 1.0
    limits: inputs_lib.Limits = inputs_lib.Limits()
    max_in_flight: int = 64
    request_timeout_s: float = 30.0
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    batching: config_lib.BatchingParameters | None = None
    metrics_path: str | None = config_lib.DEFAULT_METRICS_PATH
    access_log: bool = False

    def __post_init__(self):
        arguments.check_positive_int(self.max_body_bytes, "max_body_bytes")
        if isinstance(self.poll_seconds, bool) or not isinstance(
                self.poll_seconds, (int, float)) or self.poll_seconds < 0:
            raise arguments.ArgumentError(
                "poll_seconds must be >= 0. "
                f"Received: poll_seconds={self.poll_seconds!r}")
        for name in ("request_timeout_s",
                     "header_timeout_s", "body_timeout_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(
                    value, (int, float)) or not value > 0:
                raise arguments.ArgumentError(
                    f"{name} must be > 0. Received: {name}={value!r}")


def _json_response(body, status=200, headers=None):
    return Response(json.dumps(body), status_code=status,
                    media_type="application/json", headers=headers)


def _error(message, status, headers=None):
    return _json_response({"error": message}, status, headers)


def create_app(export_dir=None, *, model_configs=None, options=None,
               **option_kwargs):
    """Returns the ASGI application serving the models.

    The application loads the models and starts polling for new versions
    when it starts (ASGI lifespan) and stops polling when it shuts down.

    Args:
        export_dir: str or path, the export root (every model folder
            under it, newest version). Ignored with
            ``model_configs``.
        model_configs: sequence of ``config.ModelConfig`` (a model config
            file), or None.
        options: ``ServerOptions``, or None to build one from
            ``option_kwargs`` (``max_body_bytes=...``, ...).

    Returns:
        a ``starlette.applications.Starlette``; ``app.state.inference`` is
        its ``Inference`` and ``app.state.repository`` its
        ``ModelRepository``.
    """
    options = options or ServerOptions(**option_kwargs)
    models = repository_lib.ModelRepository(
        export_dir, options.poll_seconds, model_configs=model_configs)
    inference = inference_lib.Inference(
        models, options.limits, options.batching, options.max_in_flight,
        options.request_timeout_s)

    # Requests run here, not through Starlette's run_in_threadpool: a
    # request is handed over with one submit and one call_soon_threadsafe,
    # where anyio adds a capacity limiter, a cancel scope and run-variable
    # look-ups (a tenth of the event loop's time per request, profiled at
    # one client). Requests that wait in a batch queue hold a worker each.
    workers = concurrent.futures.ThreadPoolExecutor(
        max_workers=max(40, options.max_in_flight + 8),
        thread_name_prefix="tfcnn-rest")

    @contextlib.asynccontextmanager
    async def lifespan(app):
        await run_in_threadpool(models.start)
        try:
            yield
        finally:
            workers.shutdown(wait=False)
            await run_in_threadpool(models.stop)

    async def models_endpoint(request):
        start = time.perf_counter()
        match = _PATH.fullmatch(request.url.path[len(_MODELS_PREFIX):])
        name = match["name"] if match else ""
        api, code = "status", "OK"
        try:
            if match is None:
                raise rest.RequestError(
                    f"malformed URL path {request.url.path!r}", 404)
            # Only known APIs become metrics labels (bounded, as names).
            api = ("metadata" if match["metadata"] else
                   "status" if match["method"] is None else
                   match["method"] if match["method"] in _METHODS else
                   "other")
            return await _dispatch(request, match, inference, options,
                                   workers)
        except ServingError as error:
            code = error.code.name
            headers = {"Connection": "close"} if error.status == 408 \
                else None
            return _error(str(error), error.status, headers)
        except ClientDisconnect:
            code = "CANCELLED"
            client = request.client
            _log.info("client %s:%s disconnected before sending the whole "
                      "request body of %s", client.host if client else "?",
                      client.port if client else "?", request.url.path)
            return Response(status_code=499)
        except Exception as error:  # noqa: BLE001  (answered as 500)
            code = "INTERNAL"
            return await server_error(request, error)
        finally:
            inference.metrics.observe(name, api, "REST", code,
                                      time.perf_counter() - start)

    async def metrics_endpoint(request):
        return Response(inference.metrics.render(inference.in_flight),
                        media_type="text/plain; version=0.0.4")

    async def http_error(request, error):
        return _error(error.detail, error.status_code)

    async def server_error(request, error):
        _log.exception("internal error on %s", request.url.path,
                       exc_info=error)
        return _error(f"internal error: {type(error).__name__}", 500)

    routes = []
    if options.metrics_path is not None:
        routes.append(Route(options.metrics_path, metrics_endpoint,
                            methods=["GET"]))
    app = _App(models_endpoint, Starlette(
        routes=routes,
        exception_handlers={HTTPException: http_error,
                            Exception: server_error},
        lifespan=lifespan))
    app.state.repository = models
    app.state.inference = inference
    app.state.options = options
    return app


class _App:
    """The ASGI application: TF Serving's API, then Starlette for the rest.

    Requests under ``/v1/models/`` go straight to ``models`` with a
    ``_Request``; the metrics page, unknown paths and the lifespan go to
    Starlette. Profiled at one keep-alive client, Starlette's middleware,
    router and request and response wrappers took a fifth of the event
    loop's Python time per predict request (a few percent of the server's
    CPU: with the model call replaced by a constant, this and one ``send``
    per answer took a request from 0.69 to 0.67 ms of server CPU).
    """

    def __init__(self, models, starlette):
        self._models = models
        self._starlette = starlette
        self.state = starlette.state

    async def __call__(self, scope, receive, send):
        if (scope["type"] != "http"
                or not scope["path"].startswith(_MODELS_PREFIX)):
            await self._starlette(scope, receive, send)
        elif scope["method"] not in ("GET", "HEAD", "POST"):
            await _error("Method Not Allowed", 405,
                         {"Allow": "GET, HEAD, POST"})(scope, receive, send)
        else:
            request = _Request(scope, receive)
            await (await self._models(request))(scope, receive, send)


class _Request:
    """What the TF Serving API reads of an ASGI request (the attributes of
    Starlette's ``Request`` it used)."""

    __slots__ = ("method", "url", "client", "receive", "connection_lost",
                 "_scope")

    def __init__(self, scope, receive):
        self._scope = scope
        self.method = scope["method"]
        self.url = _Url(scope["path"])
        client = scope.get("client")
        self.client = _Client(*client) if client else None
        self.receive = receive
        # serve's protocol puts a future in the scope that is done once
        # the client's connection is lost (None under another server).
        self.connection_lost = scope.get(_CONNECTION_LOST)

    def header(self, name):
        """The value of header ``name`` (lower-case bytes), or None."""
        for key, value in self._scope["headers"]:
            if key == name:
                return value.decode("latin-1")
        return None


_Url = collections.namedtuple("_Url", "path")
_Client = collections.namedtuple("_Client", "host port")


async def _dispatch(request, match, inference, options, workers):
    name = match["name"]
    if not layout.is_model_name(name):
        raise rest.RequestError(f"no model named {name!r}", 404)
    version = label = None
    if match["version"] is not None:
        version = layout.parse_version(match["version"])
        if version is None:
            raise rest.RequestError(
                f"the version must be an integer from 1 to "
                f"{layout.MAX_VERSION}. "
                f"Received: version={match['version']!r}", 404)
    if match["label"] is not None:
        label = match["label"]
    method = match["method"]
    if method is None:
        _require(request, "GET")
        if match["metadata"]:
            return _json_response(
                _metadata(inference.served(name, version, label)))
        return _json_response({"model_version_status": inference.status(
            name, version, label)})
    if method not in _METHODS:
        raise rest.RequestError(
            f"unsupported method {method!r}; this server answers "
            ":predict, :classify and :regress", 404)
    _require(request, "POST")
    served = inference.served(name, version, label)
    with inference.admit():
        body = await _read_body(request, options.max_body_bytes,
                                options.body_timeout_s)
        deadline = inference.deadline()
        cancelled = batching.Cancelled()
        work = asyncio.get_running_loop().run_in_executor(
            workers, functools.partial(_METHODS[method], inference, served,
                                       body, deadline, cancelled))
        watch = None
        gone = request.connection_lost
        if gone is None:
            gone = watch = asyncio.ensure_future(_disconnected(request))
        await asyncio.wait({work, gone},
                           return_when=asyncio.FIRST_COMPLETED)
        if watch is not None:
            watch.cancel()
        if not work.done():
            # The client left: work not yet started is dropped; a call
            # already running can't be stopped, and holds its place.
            cancelled.set()
            client = request.client
            _log.info("client %s:%s disconnected before the answer to %s; "
                      "its request was dropped unless already running",
                      client.host if client else "?",
                      client.port if client else "?", request.url.path)
            with contextlib.suppress(Exception):
                await work
            raise ServingError("the client disconnected",
                               StatusCode.CANCELLED)
        answer = work.result()
    return Response(answer, media_type="application/json")


async def _disconnected(request):
    """Returns once the client has closed its connection. Used under ASGI
    servers other than ``serve``'s, whose protocol resolves
    ``_Request.connection_lost`` instead."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


def _require(request, method):
    # TF Serving answers a method the URL does not take as a malformed
    # request (http_rest_api_handler.cc), 400 rather than 405.
    if request.method != method:
        raise rest.RequestError(
            f"Malformed request: {request.method} {request.url.path} "
            f"(use {method})", 400)


def _metadata(served):
    return {"model_spec": {"name": served.name, "signature_name": "",
                           "version": str(served.version)},
            "metadata": {"signature_def": served.signature_def}}


async def _read_body(request, limit, timeout_s):
    length = request.header(b"content-length")
    if length is not None:
        if not length.isdigit():
            raise rest.RequestError("bad Content-Length header")
        if int(length) > limit:
            raise rest.RequestError(_too_large(int(length), limit), 413)
    chunks, size = [], 0

    def add(message):
        nonlocal size
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise rest.RequestError(_too_large(size, limit), 413)
        chunks.append(chunk)
        return message.get("more_body", False)

    try:
        async with asyncio.timeout(timeout_s):
            while add(await request.receive()):
                pass
    except TimeoutError:
        raise rest.RequestError(
            f"the request body was not received within {timeout_s:g} s "
            f"({size} bytes arrived)", 408) from None
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _too_large(size, limit):
    return (f"the request body is larger than the limit of {limit} bytes. "
            f"Received: {size} bytes or more")


def _predict(inference, served, body, deadline, cancelled=None):
    """Runs one predict request (in a worker thread); returns JSON bytes."""
    request = rest.parse_body(body)
    signature = rest.signature_name(request)
    specs = inference.input_specs(served, signature)
    inputs, row_format = rest.request_inputs(request, specs)
    outputs = inference.predict(served, signature, inputs, deadline,
                                cancelled)
    return json.dumps(rest.response_body(outputs, row_format)).encode()


def _examples_call(answer):
    """A ``:classify``/``:regress`` runner around ``Inference``'s own."""

    def run(inference, served, body, deadline, cancelled=None):
        request = rest.parse_body(body)
        signature = inference.examples_signature(
            served, request.get("signature_name", ""))
        if not isinstance(signature, str):
            raise rest.RequestError("signature_name must be a string. "
                                    f"Received: {signature!r}")
        examples = rest.request_examples(request)
        return json.dumps(answer(inference, served, signature, examples,
                                 deadline, cancelled)).encode()

    return run


_METHODS = {
    "predict": _predict,
    "classify": _examples_call(lambda inference, *args: rest.classify_body(
        inference.classify(*args))),
    "regress": _examples_call(lambda inference, *args: rest.regress_body(
        inference.regress(*args))),
}


def _timed_protocol(header_timeout_s):
    """uvicorn's httptools protocol with a deadline for each request's
    headers.

    uvicorn times out idle keep-alive connections but not a client that
    sends its headers a byte at a time; this closes such a connection
    with 408 once ``header_timeout_s`` has passed since its first byte
    (or since it connected). httptools (llhttp, in C) rather than h11:
    profiled at one keep-alive client, h11's pure-Python parsing and
    response writing took a quarter of the event loop's time per request.

    Each request's scope carries its connection's ``_CONNECTION_LOST``
    future, which ``connection_lost`` resolves: a request waiting for its
    model call learns from it that its client left. A task per request
    waiting on ASGI ``receive`` instead, and a ``threading.Event`` where a
    ``batching.Cancelled`` does, took the server's CPU per request from
    0.66 to 0.72 ms with one keep-alive client and from 0.73 to 0.81 ms
    with a new connection per request (the model call replaced by a
    constant; medians of six alternating runs).
    """

    class TimedHttpToolsProtocol(httptools_impl.HttpToolsProtocol):

        def connection_made(self, transport):
            super().connection_made(_CorkedTransport(transport, self.loop))
            self._header_timer = None
            self._lost = self.loop.create_future()
            self._arm()

        def on_message_begin(self):
            # The parser's callback for a request's first byte.
            super().on_message_begin()
            if self._header_timer is None:
                self._arm()

        def on_headers_complete(self):
            self._disarm()
            # Before uvicorn starts the request's task with this scope.
            self.scope[_CONNECTION_LOST] = self._lost
            super().on_headers_complete()

        def connection_lost(self, exc):
            self._disarm()
            if not self._lost.done():
                self._lost.set_result(None)
            super().connection_lost(exc)

        def _arm(self):
            self._disarm()
            self._header_timer = self.loop.call_later(
                header_timeout_s, self._headers_too_slow)

        def _disarm(self):
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _headers_too_slow(self):
            self._header_timer = None
            if self.transport.is_closing():
                return
            client = self.client or ("?", "?")
            _log.info("closed the connection of %s:%s: no complete request "
                      "headers within %g s", client[0], client[1],
                      header_timeout_s)
            self.transport.write(
                b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n"
                b"Content-Length: 0\r\n\r\n")
            self.transport.close()

    return TimedHttpToolsProtocol


class _CorkedTransport:
    """A transport whose writes within one event-loop step leave as one.

    uvicorn writes an answer's headers and its body as two writes, two
    ``send`` calls and, with TCP_NODELAY, two packets the client wakes up
    for; this joins what is written before the loop next runs its
    callbacks. Everything else is the wrapped transport's.
    """

    def __init__(self, transport, loop):
        self._transport = transport
        self._loop = loop
        self._pending = []

    def write(self, data):
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(bytes(data))

    def _flush(self):
        if self._pending:
            data, self._pending = b"".join(self._pending), []
            if not self._transport.is_closing():
                self._transport.write(data)

    def close(self):
        self._flush()
        self._transport.close()

    def __getattr__(self, name):
        return getattr(self._transport, name)


def _bind(host, port, what="REST"):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # asyncio sets TCP_NODELAY on a connection only when its socket says
    # IPPROTO_TCP (proto 0 does not), and without it every keep-alive
    # response waits ~40 ms for the client's delayed ACK (Nagle).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise ServeError(f"can't listen for {what} on {host}:{port}: "
                         f"{error.strerror}") from None
    sock.listen(2048)
    return sock


class _Server(uvicorn.Server):
    """uvicorn's server; SIGTERM/SIGINT drain it and it returns normally.

    uvicorn re-raises the signal after its graceful shutdown, which ends
    the process with a signal status; a server that drained every
    request in flight has done its job, so ``handle_exit`` forgets the
    signal and ``serve`` returns instead.
    """

    def __init__(self, config, on_exit=None, ready_message=None):
        super().__init__(config)
        self._on_exit = on_exit
        self._ready_message = ready_message

    async def startup(self, sockets=None):
        await super().startup(sockets)
        if self.started and self._ready_message:
            print(self._ready_message, flush=True)

    def handle_exit(self, sig, frame):
        if self._on_exit is not None and not self.should_exit:
            self._on_exit()
        super().handle_exit(sig, frame)
        # uvicorn's capture_signals re-raises what handle_exit recorded.
        self._captured_signals.clear()


def _uvicorn_server(app, log_level, on_exit=None, ready_message=None):
    options = app.state.options
    config = uvicorn.Config(app, log_level=log_level,
                            access_log=options.access_log,
                            timeout_keep_alive=30,
                            http=_timed_protocol(options.header_timeout_s))
    return _Server(config, on_exit, ready_message)


def _grpc_server(app, host, port):
    from tfcnn.serve import grpc_api

    try:
        return grpc_api.create_server(app.state.inference, host, port)
    except OSError as error:
        raise ServeError(f"can't listen for gRPC on {host}:{port}: "
                         f"{error.strerror or error}") from None


def serve(export_dir=None, host="127.0.0.1", port=8501, grpc_port=8500, *,
          model_config_file=None, model_name=None, model_base_path=None,
          options=None, log_level="info"):
    """Serves the models until SIGTERM or Ctrl-C (blocking).

    At start it prints one line per model version loaded, or refuses to
    start (``ServeError``) when nothing is servable. On SIGTERM (or
    SIGINT) both front ends stop accepting, the requests in flight are
    answered, and the function returns.

    Args:
        export_dir: str or path, the export root; None with a
            ``model_config_file`` or ``model_base_path``.
        host: str, the address to bind; only this machine can connect by
            default. Defaults to "127.0.0.1".
        port: int or None, the REST port; 0 picks a free one, None serves
            no REST. Defaults to 8501 (TF Serving's REST port).
        grpc_port: int or None, the gRPC port; 0 picks a free one, None
            serves no gRPC. Defaults to 8500 (TF Serving's gRPC port).
        model_config_file: str or path, a TF Serving model config file,
            or None. Defaults to None.
        model_name: str or None, with ``model_base_path``: the name of
            the one model served (TF Serving's ``--model_name``).
        model_base_path: str or path or None, one model's folder of
            version folders (TF Serving's ``--model_base_path``).
        options: ``ServerOptions`` or None (the defaults).
        log_level: str, uvicorn's log level. Defaults to "info".

    Raises:
        ServeError: a port is in use, a path is missing, or nothing under
            it is servable.
        ConfigError: the model config file is malformed.
    """
    model_configs = None
    if model_config_file is not None:
        model_configs = config_lib.read_model_config_file(model_config_file)
        where = str(model_config_file)
    elif model_base_path is not None:
        _check_export_dir(model_base_path, "model base path")
        layout.check_model_name(model_name)
        model_configs = [config_lib.ModelConfig(
            model_name, pathlib.Path(model_base_path))]
        where = f"model {model_name!r} from {model_base_path}"
    else:
        _check_export_dir(export_dir)
        where = f"models under {export_dir}"
    app = create_app(export_dir, model_configs=model_configs,
                     options=options or ServerOptions())
    # Loaded before either front end answers (the lifespan's start is then
    # a no-op), so the first request finds the models.
    app.state.repository.start()
    try:
        _report_loaded(app.state.repository, export_dir, model_base_path)
    except BaseException:
        app.state.repository.stop()
        raise
    sock = None if port is None else _bind(host, port)
    grpc_server = None
    try:
        if grpc_port is not None:
            grpc_server, grpc_port = _grpc_server(app, host, grpc_port)
    except BaseException:
        if sock is not None:
            sock.close()
        app.state.repository.stop()
        raise
    stopped = []

    def stop_grpc():
        if grpc_server is not None:
            stopped.append(grpc_server.stop(
                grace=app.state.options.request_timeout_s))

    parts = []
    if sock is not None:
        parts.append(f"REST at http://{host}:{sock.getsockname()[1]}"
                     "/v1/models/<name>")
    if grpc_server is not None:
        grpc_server.start()
        parts.append(f"gRPC at {host}:{grpc_port}")
    message = f"tfcnn serve: {where}: " + ", ".join(parts)
    try:
        if sock is not None:
            _uvicorn_server(app, log_level, stop_grpc, message).run(
                sockets=[sock])
        else:
            print(message, flush=True)
            _wait_for_signal(stop_grpc)
    finally:
        if grpc_server is not None:
            if not stopped:
                stop_grpc()
            stopped[0].wait()
        app.state.repository.stop()
    print("tfcnn serve: stopped after answering every request in flight",
          flush=True)


def _report_loaded(repository, export_dir, model_base_path):
    """Prints a line per loaded version; ServeError when there is none."""
    loaded = repository.loaded()
    for name, version, path in loaded:
        print(f"tfcnn serve: loaded {name} version {version} from {path}",
              flush=True)
    if loaded:
        return
    hint = ""
    if export_dir is not None and layout.list_versions(export_dir):
        hint = (f"; {export_dir} holds version folders, so it is one "
                "model's base path: serve its parent folder, or pass "
                f"--model_name=NAME --model_base_path={export_dir}")
    elif model_base_path is not None:
        hint = (f"; {model_base_path} must hold version folders "
                "(<version>/saved_model.pb)")
    source = export_dir or model_base_path or "the model config file"
    raise ServeError(f"nothing servable: no model version loaded from "
                     f"{source}{hint}")


def _wait_for_signal(on_exit):
    """Blocks until SIGTERM or SIGINT (gRPC alone: no uvicorn loop)."""
    import signal

    done = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: done.set())
                for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        done.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    on_exit()


def _check_export_dir(export_dir, what="export root"):
    if export_dir is None or not os.path.isdir(export_dir):
        raise ServeError(
            f"the {what} {str(export_dir)!r} does not exist")


class BackgroundServer:
    """Runs the server in a thread: for tests, benchmarks and notebooks.

    Args:
        export_dir: str or path, the export root (or None with
            ``model_configs``).
        host: str. Defaults to "127.0.0.1".
        port: int, 0 picks a free port. Defaults to 0.
        grpc_port: int or None, 0 picks a free port, None serves no gRPC.
            Defaults to None.
        **app_kwargs: passed to ``create_app``.

    Example:

    >>> with BackgroundServer("saved_models") as server:
    ...     requests.get(server.url + "/v1/models/digits")
    """

    def __init__(self, export_dir, host="127.0.0.1", port=0, grpc_port=None,
                 **app_kwargs):
        if app_kwargs.get("model_configs") is None:
            _check_export_dir(export_dir)
        self.app = create_app(export_dir, **app_kwargs)
        self.host = host
        self._port = port
        self._grpc_port = grpc_port
        self._server = None
        self._thread = None
        self._grpc = None
        self.url = None
        self.grpc_target = None

    @property
    def repository(self):
        return self.app.state.repository

    @property
    def inference(self):
        return self.app.state.inference

    def start(self, timeout=120.0):
        """Starts serving; returns once the models are loaded."""
        sock = _bind(self.host, self._port)
        self.url = f"http://{self.host}:{sock.getsockname()[1]}"
        if self._grpc_port is not None:
            self._grpc, port = _grpc_server(self.app, self.host,
                                            self._grpc_port)
            self._grpc.start()
            self.grpc_target = f"{self.host}:{port}"
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
        if self._grpc is not None:
            self._grpc.stop(grace=None)
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=30)
        self._server = self._thread = self._grpc = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()
