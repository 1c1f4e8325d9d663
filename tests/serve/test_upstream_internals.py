"""The private parts of uvicorn that tfcnn.serve.server uses.

``tfcnn.serve.server`` subclasses uvicorn's ``H11Protocol`` (a header
deadline) and clears ``uvicorn.Server._captured_signals`` (a drained
server returns instead of re-raising the signal). Neither is a documented
API: each test here fails when upstream changes what tfcnn relies on, and
setup.cfg pins uvicorn to the minor version they passed on.
"""

import asyncio
import inspect
import signal

import uvicorn
from uvicorn.protocols.http import h11_impl
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


def test_h11_protocol_hooks_the_header_deadline_uses():
    for name in ("connection_made", "data_received", "connection_lost"):
        assert name in vars(h11_impl.H11Protocol)
    loop = asyncio.new_event_loop()
    try:
        protocol = server_lib._timed_protocol(0.01)(
            uvicorn.Config(_app), ServerState(), {}, _loop=loop)
        transport = _Transport()
        protocol.connection_made(transport)
        assert protocol.loop is loop and protocol.transport is transport
        assert protocol.conn.their_state is h11_impl.h11.IDLE
        loop.run_until_complete(asyncio.sleep(0.05))
        assert transport.written.startswith(b"HTTP/1.1 408 ")
        assert transport.closed
        protocol.connection_lost(None)
        assert protocol._header_timer is None
    finally:
        loop.close()
