"""How many single-message requests per second the API accepts, durably.

Workload: ``--clients`` (default 64) concurrent HTTP/1.1 keep-alive
connections, each sending one partnerID/apikey ``sendsms`` GET with one
recipient after another, for ``--seconds`` (default 10) after a 2 s warm-up,
to ``--api-processes`` (default 1) ``smsgate serve --no-workers`` processes
on a fresh SQLite file (or the database in SMSGATE_BENCH_DATABASE_URL; for
PostgreSQL, ``...?search_path=schema`` with an empty scratch schema). Every
reply counted as accepted is a committed message (``response-code`` 200):
concurrent requests share commits through group commit
(src/smsgate/store/group_commit.py), each still answered only after its
commit. The latencies are per request, as the client sees them.

The floor, measured in the same run against the same processes by the same
client: ``GET /healthz``, which touches no database, so the ratio is what
accepting a message costs over the HTTP stack itself.

The client is a small asyncio HTTP/1.1 loop in this process, not a library,
so that it costs the server's cores little.

    .venv/bin/python bench/single_requests.py [--clients 64] [--seconds 10] [--api-processes 1]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from local_net import free_port

PARTNER_ID = "424242"
_LENGTH = re.compile(rb"content-length:\s*(\d+)", re.IGNORECASE)


def smsgate(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "smsgate", *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return done.stdout


def wait_serving(port: int, within: float = 30) -> None:
    deadline = time.monotonic() + within
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(f"the API on port {port} did not come up") from None
            time.sleep(0.05)


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    accepted: int = 0
    other: int = 0


def _accepted(head: bytes, body: bytes) -> bool:
    """HTTP 200 and, where the body carries a ``response-code`` (sendsms), 200 there."""
    if not head.startswith(b"HTTP/1.1 200"):
        return False
    return b'"response-code"' not in body or b'"response-code":200' in body


async def client(
    port: int, paths: list[bytes], until_warm: float, until_done: float, tally: Tally
) -> None:
    """One keep-alive connection sending request after request until ``until_done``."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    index = 0
    try:
        while (now := time.perf_counter()) < until_done:
            path = paths[index % len(paths)]
            index += 1
            writer.write(b"GET " + path + b" HTTP/1.1\r\nHost: bench\r\n\r\n")
            head = await reader.readuntil(b"\r\n\r\n")
            length = _LENGTH.search(head)
            body = await reader.readexactly(int(length.group(1)) if length else 0)
            if now < until_warm:
                continue
            tally.latencies.append(time.perf_counter() - now)
            if _accepted(head, body):
                tally.accepted += 1
            else:
                tally.other += 1
    finally:
        writer.close()


async def load(
    ports: list[int], paths: list[bytes], clients: int, seconds: float
) -> tuple[Tally, float]:
    tally = Tally()
    started = time.perf_counter()
    until_warm, until_done = started + 2.0, started + 2.0 + seconds
    await asyncio.gather(
        *(
            client(ports[i % len(ports)], paths[i::clients] or paths, until_warm, until_done, tally)
            for i in range(clients)
        )
    )
    return tally, seconds


def summary(what: str, tally: Tally, seconds: float) -> str:
    if not tally.latencies:
        return f"  {what}: no replies"
    ordered = sorted(tally.latencies)
    p50 = statistics.median(ordered) * 1000
    p99 = ordered[int(len(ordered) * 0.99) - 1] * 1000
    return (
        f"  {what:<40} {tally.accepted / seconds:8,.0f} /s   p50 {p50:6.1f} ms"
        f"   p99 {p99:6.1f} ms   ({tally.other:,} not accepted)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--api-processes", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = os.environ.get("SMSGATE_BENCH_DATABASE_URL") or f"sqlite:///{tmp}/bench.sqlite3"
        env = {
            **os.environ,
            "SMSGATE_DATABASE_URL": url,
            "SMSGATE_DATA_DIR": str(Path(tmp) / "data"),
            "SMSGATE_SECRET_KEY": base64.b64encode(os.urandom(32)).decode(),
        }
        created = smsgate(
            "accounts",
            "create",
            f"bench-{os.getpid()}",
            "--credit",
            "10000000",
            "--partner-id",
            PARTNER_ID,
            "--sender",
            "BENCH",
            # The bench measures the server, not the account's own limits.
            "--option",
            "max_messages_per_second=1000000000",
            "--option",
            "message_burst=1000000000",
            "--option",
            "max_requests_in_flight=100000",
            env=env,
        )
        apikey = re.search(r"apikey:\s+([0-9a-f]{32})", created)
        if apikey is None:
            raise SystemExit(f"no apikey in: {created}")
        ports = [free_port() for _ in range(args.api_processes)]
        servers = [
            subprocess.Popen(
                [sys.executable, "-m", "smsgate", "serve", "--no-workers", "--port", str(port)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for port in ports
        ]
        try:
            for port in ports:
                wait_serving(port)
            sends = [
                (
                    f"/api/services/sendsms/?apikey={apikey.group(1)}&partnerID={PARTNER_ID}"
                    f"&message=Your+code+is+{i:04d}&shortcode=BENCH&mobile=2547{i:07d}9"
                ).encode()
                for i in range(10_000)
            ]
            floor, floor_seconds = asyncio.run(
                load(ports, [b"/healthz"], args.clients, args.seconds)
            )
            sent, sent_seconds = asyncio.run(load(ports, sends, args.clients, args.seconds))
        finally:
            for server in servers:
                server.terminate()
                server.wait(30)
    engine = "SQLite" if url.startswith("sqlite") else "PostgreSQL"
    print(
        f"single-message sendsms, {args.clients} keep-alive clients, {args.api_processes}"
        f" API process(es), {engine}, {args.seconds:g} s each"
    )
    print(summary("sendsms accepted (durable)", sent, sent_seconds))
    print(summary("floor: GET /healthz, same processes", floor, floor_seconds))
    if sent.accepted:
        ratio = (floor.accepted / floor_seconds) / (sent.accepted / sent_seconds)
        print(f"  ratio floor/sendsms {ratio:.1f}x")


if __name__ == "__main__":
    main()
