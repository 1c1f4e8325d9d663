"""Fixtures of the serve tests: small exported models, hostile images."""

import socket
import struct
import zlib

import pytest

from tests.export import contract_model


def publish(base, name="tiny", favour=0, version=0):
    """Exports a contract model whose top class is ``favour``."""
    from tfcnn.export import publish as publish_lib

    return publish_lib.export_model(
        contract_model.build(favour=favour), export_dir=base, name=name,
        version=version, top_k=2, class_names=contract_model.CLASS_NAMES,
        verify=False)


@pytest.fixture(scope="module")
def model_base(tmp_path_factory):
    """A base directory with 'tiny' version 1 (top class 'ant')."""
    base = tmp_path_factory.mktemp("models")
    publish(base, "tiny", favour=0)
    return base


def bomb_png(width=20000, height=20000):
    """A few hundred bytes of PNG whose header claims ``width x height``."""

    def chunk(kind, data):
        body = kind + data
        return (struct.pack(">I", len(data)) + body
                + struct.pack(">I", zlib.crc32(body)))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\0" * 1000))
            + chunk(b"IEND", b""))


def free_port():
    """A TCP port no one listens on now (for a server started by flags)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
