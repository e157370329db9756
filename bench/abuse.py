"""An API process under attack: do health probes and a well-behaved client
still get quick answers, and does the process stay small?

Runs ``smsgate serve --no-workers`` under a 1,024 open-file limit (systemd's
default) on a fresh SQLite file (or SMSGATE_BENCH_DATABASE_URL), then measures
``/healthz`` (a new connection per probe, as a load balancer probes) and one
client's single-message ``sendsms`` on a kept-alive connection, twice:

- floor: the same probe and client, nothing else running;
- attack: at the same time, ``--slow`` connections that send half a request
  and a byte a second (reopened a second after the server closes one), one ``--body-mb`` upload to
  a dialect route (chunked, re-sent whenever it is cut off) plus one declared
  by Content-Length, and ``--guessers`` clients guessing EAPI passwords as
  fast as they are answered, each from its own address (X-Forwarded-For).

The attackers run in a separate process so the measuring loop is not starved
by them. Figures: p50/p99/max of both probes in each phase, the server's
peak RSS, and what the attackers were told.

    .venv/bin/python bench/abuse.py [--seconds 10] [--slow 2000] [--guessers 50] [--body-mb 1024]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import multiprocessing
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from local_net import free_port

FILE_LIMIT = 1024
PROBE_EVERY = 0.02


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


def limit_files() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (FILE_LIMIT, FILE_LIMIT))


# ------------------------------------------------------------------ a tiny HTTP client


async def request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: bytes
) -> tuple[int, bytes]:
    writer.write(raw)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    length = int(re.search(rb"(?i)content-length: (\d+)", head).group(1))  # type: ignore[union-attr]
    body = await reader.readexactly(length)
    return int(head.split()[1]), body


def post(path: str, body: bytes, content_type: str, extra: str = "") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n{extra}\r\n"
    ).encode() + body


# ------------------------------------------------------------------ measuring


async def probe_health(port: int, until: float, times: list[float]) -> None:
    raw = b"GET /healthz HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"
    while time.monotonic() < until:
        started = time.perf_counter()
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
            status, _ = await asyncio.wait_for(request(reader, writer, raw), 5)
            writer.close()
            ok = status == 200
        except (OSError, TimeoutError, asyncio.IncompleteReadError):
            ok = False
        times.append((time.perf_counter() - started) * 1000 if ok else float("inf"))
        await asyncio.sleep(PROBE_EVERY)


async def well_behaved_sends(
    port: int, creds: dict[str, str], until: float, times: list[float]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    i = 0
    while time.monotonic() < until:
        i += 1
        body = (
            f'{{"partnerID":"{creds["partnerID"]}","apikey":"{creds["apikey"]}",'
            f'"mobile":"2547{i % 10_000_000:07d}9","message":"Your code is {i:04d}",'
            f'"shortcode":"BENCH"}}'
        ).encode()
        started = time.perf_counter()
        try:
            status, reply = await asyncio.wait_for(
                request(reader, writer, post("/api/services/sendsms", body, "application/json")),
                5,
            )
            ok = status == 200 and b'"response-code":200' in reply
        except (OSError, TimeoutError, asyncio.IncompleteReadError):
            ok = False
            writer.close()
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        times.append((time.perf_counter() - started) * 1000 if ok else float("inf"))
        await asyncio.sleep(PROBE_EVERY)
    writer.close()


def sample_rss(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) * 1024  # type: ignore[union-attr]


async def measure(
    port: int, creds: dict[str, str], seconds: float, pid: int
) -> tuple[list[float], list[float], int]:
    until = time.monotonic() + seconds
    health: list[float] = []
    sends: list[float] = []
    peak = 0

    async def watch_memory() -> None:
        nonlocal peak
        while time.monotonic() < until:
            peak = max(peak, sample_rss(pid))
            await asyncio.sleep(0.05)

    await asyncio.gather(
        probe_health(port, until, health),
        well_behaved_sends(port, creds, until, sends),
        watch_memory(),
    )
    return health, sends, peak


# ------------------------------------------------------------------ attacking


class SlowRequest(asyncio.Protocol):
    """As slowloris does: half a request, then (from ``drip``) a header byte a
    second. A protocol, not a stream with a timed read, so that two thousand of
    them cost the attacking process one timer a second rather than one each."""

    def __init__(self) -> None:
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(b"POST /eapi/submission/send_sms/2/2.0 HTTP/1.1\r\nHost: bench\r\nX-A: ")

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


async def slow_connection(
    port: int, until: float, told: Counter[str], opened: set[SlowRequest]
) -> None:
    """One slow request at a time; one the server closed is opened again a second later."""
    loop = asyncio.get_running_loop()
    while time.monotonic() < until:
        try:
            _, slow = await loop.create_connection(SlowRequest, "127.0.0.1", port)
        except OSError:
            told["slow: connect failed"] += 1
            await asyncio.sleep(1.0)
            continue
        told["slow: opened"] += 1
        opened.add(slow)
        await slow.closed
        opened.discard(slow)
        if time.monotonic() < until:
            told["slow: closed by server"] += 1
            await asyncio.sleep(1.0)


async def drip(until: float, opened: set[SlowRequest]) -> None:
    """A byte a second on every open slow request; all closed at the end."""
    while time.monotonic() < until:
        await asyncio.sleep(1.0)
        for slow in opened:
            if slow.transport is not None and not slow.transport.is_closing():
                slow.transport.write(b"a")
    for slow in list(opened):
        if slow.transport is not None:
            slow.transport.close()


async def big_body(port: int, megabytes: int, until: float, told: Counter[str]) -> None:
    chunk = b"x" * (1024 * 1024)
    framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    # One declared by Content-Length: refused from its headers.
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"POST /api/services/sendbulk HTTP/1.1\r\nHost: bench\r\n"
        f"Content-Length: {megabytes * 1024 * 1024}\r\n\r\n".encode()
    )
    answer = await reader.read(4096)
    code = re.search(rb'"response-code":(\d+)', answer)
    shown = code.group(1).decode() if code else repr(answer[:20])
    told[f"declared {megabytes} MB body: answered {shown}"] += 1
    writer.close()
    while time.monotonic() < until:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"POST /api/services/sendbulk HTTP/1.1\r\nHost: bench\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        sent = 0
        try:
            for _ in range(megabytes):
                writer.write(framed)
                await writer.drain()
                sent += 1
            told["chunked body: all sent (not cut off)"] += 1
        except OSError:
            told["chunked body: cut off"] += 1
            told["chunked body: MB written before the cut"] += sent
        writer.close()


async def guesser(port: int, victim: str, address: str, until: float, told: Counter[str]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    n = 0
    while time.monotonic() < until:
        n += 1
        body = f"username={victim}&password=guess{address}-{n}".encode()
        raw = post(
            "/eapi/user/get_credits/1/1.1",
            body,
            "application/x-www-form-urlencoded",
            f"X-Forwarded-For: {address}\r\n",
        )
        try:
            _, reply = await asyncio.wait_for(request(reader, writer, raw), 10)
            told[f"guess: told {reply.split(b'|')[0].decode()}"] += 1
        except (OSError, TimeoutError, asyncio.IncompleteReadError):
            told["guess: no answer"] += 1
            writer.close()
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.close()


def address(i: int) -> str:
    return f"198.51.{i // 250}.{i % 250 + 1}"


def attack(  # type: ignore[type-arg]
    port: int, victim: str, seconds: float, slow: int, guessers: int, body_mb: int, out: dict
) -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    told: Counter[str] = Counter()

    async def run() -> None:
        until = time.monotonic() + seconds
        opened: set[SlowRequest] = set()
        await asyncio.gather(
            *(slow_connection(port, until, told, opened) for _ in range(slow)),
            drip(until, opened),
            big_body(port, body_mb, until, told),
            *(guesser(port, victim, address(i), until, told) for i in range(guessers)),
        )

    asyncio.run(run())
    out.update(told)


# ------------------------------------------------------------------ the run


def figures(name: str, times: list[float]) -> str:
    """p50, p99 and max; an unanswered probe counts as infinitely slow."""
    ordered = sorted(times)
    if not ordered:
        return f"  {name:<34} no probes"
    failed = sum(1 for t in ordered if t == float("inf"))
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return (
        f"  {name:<34} n={len(ordered):5d}  p50 {statistics.median(ordered):6.1f} ms"
        f"  p99 {p99:6.1f} ms  max {ordered[-1]:7.1f} ms  unanswered {failed}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--slow", type=int, default=2000)
    parser.add_argument("--guessers", type=int, default=50)
    parser.add_argument("--body-mb", type=int, default=1024)
    parser.add_argument("--server-log", type=Path, help="where the server's log goes")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = os.environ.get("SMSGATE_BENCH_DATABASE_URL") or f"sqlite:///{tmp}/bench.sqlite3"
        env = {
            **os.environ,
            "SMSGATE_DATABASE_URL": url,
            "SMSGATE_DATA_DIR": str(Path(tmp) / "data"),
            "SMSGATE_SECRET_KEY": base64.b64encode(os.urandom(32)).decode(),
        }
        good = smsgate(
            "accounts", "create", f"good-{os.getpid()}", "--credit", "10000000",
            "--sender", "BENCH", env=env,
        )  # fmt: skip
        creds = {
            "partnerID": re.search(r"partnerID: (\d+)", good).group(1),  # type: ignore[union-attr]
            "apikey": re.search(r"apikey: (\w+)", good).group(1),  # type: ignore[union-attr]
        }
        # A username of its own per run, as a shared PostgreSQL keeps the last run's.
        victim = f"victim{os.getpid()}"
        smsgate("accounts", "create", victim, "--eapi-username", victim, env=env)
        port = free_port()
        log = args.server_log.open("wb") if args.server_log else subprocess.DEVNULL
        server = subprocess.Popen(
            [sys.executable, "-m", "smsgate", "serve", "--no-workers", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=limit_files,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    asyncio.run(asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 1))
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise SystemExit("the API did not come up") from None
                    time.sleep(0.05)
            asyncio.run(measure(port, creds, 1.0, server.pid))  # warm up
            floor = asyncio.run(measure(port, creds, args.seconds, server.pid))
            told = multiprocessing.Manager().dict()
            attacker = multiprocessing.Process(
                target=attack,
                args=(port, victim, args.seconds + 2, args.slow, args.guessers, args.body_mb, told),
            )
            attacker.start()
            time.sleep(2)  # let the attack build up before measuring
            attacked = asyncio.run(measure(port, creds, args.seconds, server.pid))
            attacker.join(60)
            peak_rss = (
                int(
                    re.search(
                        r"VmHWM:\s+(\d+) kB", Path(f"/proc/{server.pid}/status").read_text()
                    ).group(1)  # type: ignore[union-attr]
                )
                * 1024
            )
        finally:
            server.terminate()
            server.wait(30)
    engine = "SQLite" if url.startswith("sqlite") else "PostgreSQL"
    print(
        f"abuse: {args.slow} slow connections, a {args.body_mb} MB body, {args.guessers}"
        f" password guessers; server under a {FILE_LIMIT}-file limit, {engine},"
        f" {args.seconds:g} s per phase"
    )
    print(figures("floor   /healthz (new connection)", floor[0]))
    print(figures("attack  /healthz (new connection)", attacked[0]))
    print(figures("floor   sendsms (well-behaved)", floor[1]))
    print(figures("attack  sendsms (well-behaved)", attacked[1]))
    print(
        f"  server RSS: floor peak {floor[2] / 2**20:.0f} MB, attack peak {attacked[2] / 2**20:.0f}"
        f" MB, process high-water mark {peak_rss / 2**20:.0f} MB"
    )
    for what, count in sorted(dict(told).items()):
        print(f"  attackers: {what}: {count}")


if __name__ == "__main__":
    main()
