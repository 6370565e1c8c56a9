"""Unit tests open no network connection.

A unit test that connects a TCP socket (IPv4 or IPv6, localhost included: the sandbox is a server
too) fails, naming the address; such a test belongs in ``tests/integration``. Unix sockets stay
allowed. The guard covers every thread for the test's duration, its fixtures included.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

_NETWORK_FAMILIES = (socket.AF_INET, socket.AF_INET6)


class NetworkInUnitTestError(ConnectionRefusedError):
    """What a unit test's TCP connection attempt raises instead of connecting."""


@pytest.fixture(autouse=True)
def no_network_connections(request: pytest.FixtureRequest) -> Iterator[None]:
    attempts: list[str] = []
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def refuse(sock: socket.socket, address: Any) -> None:
        attempts.append(repr(address))
        raise NetworkInUnitTestError(
            f"{request.node.nodeid} connected to {address!r}: a unit test opens no network "
            "connection; move this test to tests/integration"
        )

    def connect(sock: socket.socket, address: Any) -> None:
        if sock.family in _NETWORK_FAMILIES:
            refuse(sock, address)
        real_connect(sock, address)

    def connect_ex(sock: socket.socket, address: Any) -> int:
        if sock.family in _NETWORK_FAMILIES:
            refuse(sock, address)
        return real_connect_ex(sock, address)

    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
    try:
        yield
    finally:
        socket.socket.connect = real_connect  # type: ignore[method-assign]
        socket.socket.connect_ex = real_connect_ex  # type: ignore[method-assign]
    if attempts:
        pytest.fail(
            f"{request.node.nodeid} opened network connections ({', '.join(sorted(set(attempts)))}); "
            "unit tests open none: move this test to tests/integration",
            pytrace=False,
        )
