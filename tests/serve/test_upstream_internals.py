"""The private parts of uvicorn that tfcnn.serve.server uses.

``tfcnn.serve.server`` subclasses uvicorn's ``HttpToolsProtocol`` (a
header deadline) and clears ``uvicorn.Server._captured_signals`` (a drained
server returns instead of re-raising the signal). Neither is a documented
API: each test here fails when upstream changes what tfcnn relies on, and
setup.cfg pins uvicorn to the minor version they passed on.
"""

import asyncio
import inspect
import signal

import uvicorn
from uvicorn.protocols.http import httptools_impl
from uvicorn.server import ServerState

from tfcnn.serve import server as server_lib


async def _app(scope, receive, send):
    pass


class _Transport(asyncio.Transport):
    """A connection with no socket behind it."""

    def __init__(self):
        super().__init__()
        self.closed = False
        self.written = b""

    def get_extra_info(self, name, default=None):
        return default

    def is_closing(self):
        return self.closed

    def write(self, data):
        self.written += data

    def close(self):
        self.closed = True


def test_uvicorn_records_signals_where_tfcnn_clears_them():
    plain = uvicorn.Server(uvicorn.Config(_app))
    plain.handle_exit(signal.SIGTERM, None)
    assert plain._captured_signals == [signal.SIGTERM]
    # ... and re-raises from that list after a graceful shutdown.
    assert "self._captured_signals" in inspect.getsource(
        uvicorn.Server.capture_signals)
    drained = server_lib._Server(uvicorn.Config(_app))
    drained.handle_exit(signal.SIGTERM, None)
    assert drained.should_exit and drained._captured_signals == []


def test_httptools_protocol_hooks_the_header_deadline_uses():
    for name in ("connection_made", "on_message_begin",
                 "on_headers_complete", "connection_lost"):
        assert name in vars(httptools_impl.HttpToolsProtocol)
    loop = asyncio.new_event_loop()
    try:
        protocol = server_lib._timed_protocol(0.05)(
            uvicorn.Config(_app), ServerState(), {}, _loop=loop)
        transport = _Transport()
        protocol.connection_made(transport)
        assert protocol.loop is loop
        assert protocol.transport._transport is transport
        # Headers that complete in time disarm the deadline ...
        protocol.data_received(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert protocol._header_timer is None
        # The request's scope holds the future that says its connection
        # is lost, before uvicorn starts the request's task with it.
        lost = protocol.cycle.scope[server_lib._CONNECTION_LOST]
        assert not lost.done()
        loop.run_until_complete(asyncio.sleep(0.1))
        assert not transport.written.startswith(b"HTTP/1.1 408 ")
        # ... and a request's first byte arms it again.
        protocol.on_message_begin()
        assert protocol._header_timer is not None
        protocol.connection_lost(None)
        assert protocol._header_timer is None
        assert lost.done()
        fresh = server_lib._timed_protocol(0.01)(
            uvicorn.Config(_app), ServerState(), {}, _loop=loop)
        silent = _Transport()
        fresh.connection_made(silent)
        loop.run_until_complete(asyncio.sleep(0.05))
        assert silent.written.startswith(b"HTTP/1.1 408 ")
        assert silent.closed
        fresh.connection_lost(None)
    finally:
        loop.close()


def test_writes_in_one_loop_step_leave_as_one_and_close_flushes_first():
    loop = asyncio.new_event_loop()
    try:
        transport = _Transport()
        transport.writes = []
        transport.write = transport.writes.append
        corked = server_lib._CorkedTransport(transport, loop)
        corked.write(b"HTTP/1.1 200 OK\r\n\r\n")
        corked.write(memoryview(b"body"))
        assert transport.writes == []
        loop.run_until_complete(asyncio.sleep(0))
        assert transport.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody"]
        corked.write(b"last")
        corked.close()
        assert transport.writes[-1] == b"last" and transport.closed
        loop.run_until_complete(asyncio.sleep(0))
        assert len(transport.writes) == 2
    finally:
        loop.close()
