"""What a connection may cost before it is a request: a body over the cap is
refused from its Content-Length or cut off while it streams (memory does not
grow), half-sent requests are closed and cannot starve health probes, and a
body that trickles in is refused, each with the route's dialect's answer."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from tests.conftest import fast_settings
from tests.support.server import GatewayServer

CAP = 1024 * 1024
MAX_CONNECTIONS = 40


@pytest.fixture
def server(tmp_path: Path) -> Iterator[GatewayServer]:
    settings = fast_settings(
        f"sqlite:///{tmp_path / 'limits.sqlite3'}",
        max_body_bytes=CAP,
        header_timeout=1.0,
        body_timeout=1.0,
        max_connections=MAX_CONNECTIONS,
    )
    running = GatewayServer(settings, workers=False).start()
    try:
        yield running
    finally:
        running.stop()


def connect(server: GatewayServer) -> socket.socket:
    host, port = server.base_url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def read_reply(sock: socket.socket) -> tuple[int, str]:
    """Status and body of the one reply the server sends before it closes."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"connection: close" in head.lower()
    return int(head.split()[1]), body.decode("latin-1")


def read_kept_alive_reply(sock: socket.socket) -> int:
    """Status of one whole reply on a connection that stays open.

    The head and the body may arrive in separate segments, so the body is read
    to its Content-Length; otherwise the next reply would start with this body.
    """
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "the server closed a kept-alive connection"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "the server closed a kept-alive connection mid-body"
        body += chunk
    assert len(body) == length
    return int(head.split()[1])


def closed_by_server(sock: socket.socket) -> bool:
    """True once the server has closed ``sock`` without a reply (EOF or reset)."""
    sock.settimeout(10)
    try:
        return sock.recv(1024) == b""
    except ConnectionResetError:
        return True


REFUSALS = {
    "/api/services/sendsms": (200, re.compile(r'"response-code":1009.*larger than 1048576')),
    "/eapi/submission/send_sms/2/2.0": (200, re.compile(r"^24\|data validation failed: .*larger")),
    "/v1/verify/bulk_sms": (413, re.compile(r'"code":-10001.*larger than 1048576')),
    "/healthz": (413, re.compile(r'"error":"request body is larger')),
}


@pytest.mark.parametrize("path", sorted(REFUSALS))
def test_a_declared_oversize_body_is_refused_before_it_is_read(
    server: GatewayServer, path: str
) -> None:
    with connect(server) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {10**12}\r\n\r\n".encode()
        )
        status, body = read_reply(sock)
    expected_status, expected = REFUSALS[path]
    assert status == expected_status and expected.search(body), body


def peak_rss_since_reset() -> int:
    """VmHWM of this process (the server runs in it), in bytes."""
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) * 1024  # type: ignore[union-attr]


def test_a_streamed_body_is_cut_off_at_the_cap_and_memory_does_not_grow(
    server: GatewayServer,
) -> None:
    Path("/proc/self/clear_refs").write_text("5")  # start the peak from the current RSS
    before = peak_rss_since_reset()
    chunk = b"x" * CAP
    framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    sent = 0
    with connect(server) as sock:
        sock.sendall(
            b"POST /api/services/sendbulk HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        with pytest.raises(OSError):  # the server stops reading and closes
            for _ in range(300):  # 300 MB unless it stops us
                sock.sendall(framed)
                sent += len(framed)
    assert sent < 40 * CAP
    growth = peak_rss_since_reset() - before
    assert growth < 60 * 1024 * 1024, f"peak RSS grew by {growth / 2**20:.0f} MB"
    assert requests.get(server.base_url + "/healthz", timeout=10).ok


def test_half_sent_requests_cannot_starve_health_probes(server: GatewayServer) -> None:
    slow = []
    for _ in range(MAX_CONNECTIONS * 4):
        sock = connect(server)
        sock.sendall(b"POST /eapi/submission/send_sms/2/2.0 HTTP/1.1\r\nHost: x\r\nContent-Le")
        slow.append(sock)
    try:
        for _ in range(20):
            assert requests.get(server.base_url + "/healthz", timeout=5).ok
        # Every half-sent request is closed: evicted for newer ones, or at the deadline.
        assert all(closed_by_server(sock) for sock in slow)
    finally:
        for sock in slow:
            sock.close()


def test_a_kept_alive_client_outlives_a_crowd_of_half_sent_requests(
    server: GatewayServer,
) -> None:
    probe = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    with connect(server) as client:
        client.sendall(probe)
        assert read_kept_alive_reply(client) == 200
        crowd = [connect(server) for _ in range(MAX_CONNECTIONS * 2)]
        try:
            for sock in crowd:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost")
            assert requests.get(server.base_url + "/healthz", timeout=5).ok
            client.sendall(probe)  # the same connection, still open
            assert read_kept_alive_reply(client) == 200
        finally:
            for sock in crowd:
                sock.close()


def test_a_connection_that_sends_nothing_is_closed_at_the_header_deadline(
    server: GatewayServer,
) -> None:
    with connect(server) as sock:
        started = time.monotonic()
        assert closed_by_server(sock)
        assert time.monotonic() - started < 5


def test_a_trickling_body_gets_the_dialects_answer(server: GatewayServer) -> None:
    with connect(server) as sock:
        sock.sendall(
            b"POST /eapi/user/get_credits/1/1.1 HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n"
            b"username=a"
        )
        status, body = read_reply(sock)
    assert status == 200
    assert body == "24|data validation failed: request body not received within 1 s|"


def test_requests_within_the_limits_are_served_on_a_kept_alive_connection(
    server: GatewayServer,
) -> None:
    with requests.Session() as session:
        for _ in range(3):
            reply = session.post(
                server.base_url + "/eapi/user/get_credits/1/1.1",
                # A large body within the cap, in a field no door limit shortens.
                data={"username": "nobody", "password": "x", "message": "x" * (CAP // 2)},
                timeout=10,
            )
            assert reply.text.startswith("23|")
