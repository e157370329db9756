"""``smsgate serve --processes 2`` over real sockets, on both engines: both
processes accept connections from the one port, a message accepted by the
API-only process is delivered by the worker process at once (not at its
next idle poll), /metrics counts both, SIGTERM ends them all, and a child
that dies ends the server with a line saying so.

Which process holds a connection is read from the kernel (/proc), not from
anything the server says about itself.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg
import pytest
import requests

from tests.conftest import PG_ADMIN_DSN
from tests.support.waiting import wait_until
from tests.test_cli import free_port


def children(pid: int) -> list[int]:
    """The processes ``pid`` forked, in the order it forked them."""
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def owner_of(connection: socket.socket, pids: list[int]) -> int:
    """Which of ``pids`` holds the server end of ``connection``."""
    address = int.from_bytes(socket.inet_aton("127.0.0.1"), "little")
    server_end = f"{address:08X}:{connection.getsockname()[1]:04X}"  # as /proc/net/tcp has it
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[2] == server_end and fields[3] == "01":  # remote = our end, ESTABLISHED
            inode = fields[9]
    assert inode is not None, "connection not found in /proc/net/tcp"
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                if os.readlink(fd) == f"socket:[{inode}]":
                    return pid
            except OSError:
                continue
    raise AssertionError("no child holds the connection")


def http_get(connection: socket.socket, path: str) -> bytes:
    connection.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    reply = b""
    while b"\r\n\r\n" not in reply:
        reply += connection.recv(65536)
    head, _, body = reply.partition(b"\r\n\r\n")
    length = int(re.search(rb"content-length: (\d+)", head, re.I).group(1))  # type: ignore[union-attr]
    while len(body) < length:
        body += connection.recv(65536)
    return body


def state_of(url: str, message_id: int) -> str | None:
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            row = conn.execute("SELECT state FROM messages WHERE id = ?", (message_id,)).fetchone()
        return None if row is None else str(row[0])
    schema = url.rsplit("search_path=", 1)[1]

    async def read() -> str | None:
        conn = await asyncpg.connect(PG_ADMIN_DSN, server_settings={"search_path": schema})
        try:
            value = await conn.fetchval("SELECT state FROM messages WHERE id = $1", message_id)
        finally:
            await conn.close()
        return None if value is None else str(value)

    return asyncio.run(read())


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str, str]]:
    """A two-process server whose dispatcher would sleep 30 s between idle polls."""
    env = {
        **os.environ,
        "SMSGATE_DATABASE_URL": database_url,
        "SMSGATE_DATA_DIR": str(tmp_path / "data"),
        "SMSGATE_SECRET_KEY": "c21zZ2F0ZS10ZXN0LXNlY3JldC1rZXktMzItYnl0ZXM=",
        "SMSGATE_SANDBOX_LATENCY_MS": "1",
        "SMSGATE_SANDBOX_RECEIPT_DELAY_MS": "1",
        "SMSGATE_DISPATCH_IDLE_POLL": "30",
        "SMSGATE_PROCESSES": "2",
    }
    created = subprocess.run(
        [sys.executable, "-m", "smsgate", "accounts", "create", "two", "--credit", "1000"],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    query = "partnerID={}&apikey={}".format(
        re.search(r"partnerID: (\d+)", created).group(1),  # type: ignore[union-attr]
        re.search(r"apikey: (\w+)", created).group(1),  # type: ignore[union-attr]
    )
    port = free_port()
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "smsgate", "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"

    def answering() -> bool:
        try:
            return requests.get(base + "/healthz", timeout=1).ok and len(children(process.pid)) == 2
        except (requests.RequestException, OSError):
            return False

    try:
        wait_until(answering, 60, "both processes to serve")
        yield process, base, query
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)
        log.close()


def spread_connections(port: int, pids: list[int]) -> dict[int, list[socket.socket]]:
    """Keep-alive connections opened together, by the process that took each."""

    def connect(_: int) -> socket.socket:
        connection = socket.create_connection(("127.0.0.1", port), timeout=10)
        http_get(connection, "/healthz")
        return connection

    held: dict[int, list[socket.socket]] = {pid: [] for pid in pids}
    with ThreadPoolExecutor(16) as pool:
        for connection in pool.map(connect, range(64)):
            held[owner_of(connection, pids)].append(connection)
    return held


def test_both_processes_serve_and_the_api_process_wakes_the_dispatcher(
    server: tuple[subprocess.Popen[bytes], str, str], database_url: str
) -> None:
    process, base, query = server
    worker, api_only = children(process.pid)
    port = int(base.rsplit(":", 1)[1])
    held = spread_connections(port, [worker, api_only])
    try:
        assert held[worker] and held[api_only], {pid: len(c) for pid, c in held.items()}
        # Both processes count into one /metrics, whichever answers it.
        for pid in (worker, api_only):
            body = http_get(
                held[pid][0],
                f"/api/services/sendsms/?{query}&message=hi&shortcode=SMSGATE&mobile=254712345678",
            )
            assert b'"response-code":200' in body, body
        accepted_at = time.monotonic()
        message_id = int(re.search(rb'"messageid":"?(\d+)', body).group(1))  # type: ignore[union-attr]
        # Accepted by the API-only process; the worker's dispatcher would not
        # poll again for 30 s: only the wake-up can deliver it this soon.
        wait_until(lambda: state_of(database_url, message_id) == "delivered", 10, "delivered")
        assert time.monotonic() - accepted_at < 10
        for pid in (worker, api_only):
            metrics = http_get(held[pid][0], "/metrics").decode()
            counted = re.search(
                r'smsgate_messages_accepted_total\{dialect="advanta"\} (\S+)', metrics
            )
            assert counted is not None and float(counted.group(1)) == 2, metrics[-2000:]
    finally:
        for connections in held.values():
            for connection in connections:
                connection.close()


def test_sigterm_ends_every_process(server: tuple[subprocess.Popen[bytes], str, str]) -> None:
    process, _, _ = server
    pids = children(process.pid)
    process.send_signal(signal.SIGTERM)
    assert process.wait(30) == 0
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text()


def test_a_killed_process_ends_the_server_with_a_line(
    server: tuple[subprocess.Popen[bytes], str, str], tmp_path: Path
) -> None:
    process, _, _ = server
    worker, api_only = children(process.pid)
    os.kill(api_only, signal.SIGKILL)
    assert process.wait(30) == 1
    assert not Path(f"/proc/{worker}").exists()
    assert (
        "process 1 (API only) was killed by SIGKILL; stopping the server"
        in (tmp_path / "serve.log").read_text()
    )
