"""How many single-message requests per second the API accepts, durably.

Workload: 64 (``--clients``) concurrent HTTP/1.1 keep-alive connections, each
sending one partnerID/apikey ``sendsms`` GET with one recipient after
another, for ``--seconds`` (default 10) after a 2 s warm-up, to one
``smsgate serve [--processes N]`` with its default settings (the delivery
workers run too) on a fresh SQLite file (or the database in
SMSGATE_BENCH_DATABASE_URL; for PostgreSQL, ``...?search_path=schema`` with
an empty scratch schema). A reply counts as accepted only with
``response-code`` 200, and the messages stored during the measured run are
counted in the database afterwards: the bench fails if they differ from the
accepted replies (every reply is sent only after its commit).

The floor, measured in the same run against the same server by the same
client: ``GET /healthz``, which touches no database, so the ratio is what
accepting a message costs over the HTTP stack itself.

The load comes from ``wrk`` (``--client wrk``, the default; a Lua script
varies the recipient and reads each reply's ``response-code``), a C load
generator that takes the server's cores far less than a Python client
would; the bench installs the Debian package with apt-get when it runs as
root and wrk is missing. With ``--kannel``, the same run also drives
Kannel's ``sendsms`` (see bench/kannel.py) and prints the ratio.
``--client asyncio`` uses a small asyncio HTTP/1.1
loop in this process instead.

    .venv/bin/python bench/single_requests.py [--clients 64] [--seconds 10] [--processes 2]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import functools
import os
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from kannel import need_kannel, running_kannel
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
    warm_accepted: int = 0  # stored during the warm-up, not counted


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
                tally.warm_accepted += _accepted(head, body)
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


# Per connection: a request with the next recipient, and each reply's
# response-code read, so that only a stored message counts as accepted.
WRK_SCRIPT = """
local paths, count = {}, 0
for line in io.lines("%(paths)s") do paths[#paths + 1] = line end
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) accepted, other = 0, 0 end
function request()
  count = count + 1
  return wrk.format("GET", paths[(count %% #paths) + 1])
end
function response(status, headers, body)
  if (status == 200 or status == 202) and (not string.find(body, '"response-code"', 1, true)
      or string.find(body, '"response-code":200', 1, true)) then
    accepted = accepted + 1
  else
    other = other + 1
  end
end
function done(summary, latency, requests)
  local a, o = 0, 0
  for _, t in ipairs(threads) do a = a + t:get("accepted"); o = o + t:get("other") end
  io.write(string.format("RESULT %%d %%d %%f %%f %%f\\n", a, o, summary.duration / 1e6,
    latency:percentile(50) / 1e3, latency:percentile(99) / 1e3))
end
"""


@dataclass
class Figures:
    accepted: int
    other: int
    seconds: float
    p50_ms: float
    p99_ms: float

    def line(self, what: str) -> str:
        return (
            f"  {what:<44} {self.accepted / self.seconds:8,.0f} /s   p50 {self.p50_ms:6.1f} ms"
            f"   p99 {self.p99_ms:6.1f} ms   ({self.other:,} not accepted)"
        )


def from_tally(tally: Tally, seconds: float) -> Figures:
    ordered = sorted(tally.latencies) or [0.0]
    return Figures(
        tally.accepted,
        tally.other,
        seconds,
        statistics.median(ordered) * 1000,
        ordered[max(int(len(ordered) * 0.99) - 1, 0)] * 1000,
    )


def need_wrk() -> str:
    """wrk's path, installing the Debian package when root may and it is missing."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise SystemExit(
            "wrk is not installed: run `sudo apt-get install -y wrk`, or use --client asyncio"
        )
    subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=True, stdout=subprocess.DEVNULL)
    return shutil.which("wrk") or "wrk"


def run_wrk(
    wrk: str, base: str, paths: list[bytes], clients: int, seconds: float, threads: int, tmp: Path
) -> Figures:
    listing, script = tmp / f"paths-{len(paths)}.txt", tmp / "sendsms.lua"
    listing.write_bytes(b"\n".join(paths) + b"\n")
    script.write_text(WRK_SCRIPT % {"paths": listing})
    command = [
        wrk,
        "-t",
        str(threads),
        "-c",
        str(clients),
        "-s",
        str(script),
        "-d",
        f"{seconds:g}s",
    ]
    done = subprocess.run([*command, base], check=True, capture_output=True, text=True)
    found = re.search(r"RESULT (\d+) (\d+) ([\d.]+) ([\d.]+) ([\d.]+)", done.stdout)
    if found is None:
        raise SystemExit(f"wrk said: {done.stdout}{done.stderr}")
    accepted, other, duration, p50, p99 = found.groups()
    return Figures(int(accepted), int(other), float(duration), float(p50), float(p99))


def stored_messages(url: str) -> int:
    """Messages in the database, counted by the database itself."""
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            return int(conn.execute("SELECT count(*) FROM messages").fetchone()[0])
    dsn, _, schema = url.partition("?search_path=")

    async def count() -> int:
        conn = await asyncpg.connect(
            dsn.replace("postgresql+asyncpg://", "postgresql://"),
            server_settings={"search_path": schema} if schema else None,
        )
        try:
            return int(await conn.fetchval("SELECT count(*) FROM messages"))
        finally:
            await conn.close()

    return asyncio.run(count())


def measure_kannel(wrk: str, args: argparse.Namespace, tmp: Path) -> tuple[Figures, int]:
    """Kannel's figures under the same wrk load, and what its store gained."""
    with running_kannel(tmp) as kannel:
        run = functools.partial(
            run_wrk, wrk, kannel.base, kannel.paths(10_000), args.clients,
            threads=args.wrk_threads, tmp=tmp,
        )  # fmt: skip
        run(seconds=2.0)  # warm-up
        before = kannel.stored()
        figures = run(seconds=args.seconds)
        return figures, kannel.stored() - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--processes", type=int, default=None, help="smsgate serve --processes [its default]"
    )
    parser.add_argument("--client", choices=("wrk", "asyncio"), default="wrk")
    parser.add_argument("--wrk-threads", type=int, default=1)
    parser.add_argument(
        "--kannel",
        action="store_true",
        help="also drive Kannel's sendsms (installed with apt-get if missing) and print the ratio",
    )
    args = parser.parse_args()
    if args.kannel:
        if args.client != "wrk":
            raise SystemExit("--kannel needs --client wrk")
        need_kannel()
    wrk = need_wrk() if args.client == "wrk" else ""
    with tempfile.TemporaryDirectory() as tmp:
        url = os.environ.get("SMSGATE_BENCH_DATABASE_URL") or f"sqlite:///{tmp}/bench.sqlite3"
        env = {
            **os.environ,
            "SMSGATE_DATABASE_URL": url,
            "SMSGATE_DATA_DIR": str(Path(tmp) / "data"),
            "SMSGATE_SECRET_KEY": base64.b64encode(os.urandom(32)).decode(),
        }
        env.pop("SMSGATE_PROCESSES", None)
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
        port = free_port()
        command = [sys.executable, "-m", "smsgate", "serve", "--port", str(port)]
        if args.processes is not None:
            command += ["--processes", str(args.processes)]
        server = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        sends = [
            (
                f"/api/services/sendsms/?apikey={apikey.group(1)}&partnerID={PARTNER_ID}"
                f"&message=Your+code+is+{i:04d}&shortcode=BENCH&mobile=2547{i:07d}9"
            ).encode()
            for i in range(10_000)
        ]

        def measure(paths: list[bytes]) -> tuple[Figures, int]:
            """The figures of one run and the messages stored during it (after warm-up)."""
            if args.client == "wrk":
                run = functools.partial(
                    run_wrk, wrk, f"http://127.0.0.1:{port}", paths, args.clients,
                    threads=args.wrk_threads, tmp=Path(tmp),
                )  # fmt: skip
                run(seconds=2.0)  # warm-up
                before = stored_messages(url)
                figures = run(seconds=args.seconds)
                return figures, stored_messages(url) - before
            # The asyncio client's warm-up is inside ``load``: count around it all.
            before = stored_messages(url)
            tally, seconds = asyncio.run(load([port], paths, args.clients, args.seconds))
            return from_tally(tally, seconds), stored_messages(url) - before - tally.warm_accepted

        try:
            wait_serving(port)
            floor, _ = measure([b"/healthz"])
            sent, stored = measure(sends)
        finally:
            server.terminate()
            server.wait(30)
        kannel = measure_kannel(wrk, args, Path(tmp)) if args.kannel else None
    engine = "SQLite" if url.startswith("sqlite") else "PostgreSQL"
    processes = "its default" if args.processes is None else str(args.processes)
    print(
        f"single-message sendsms, {args.clients} keep-alive connections from {args.client}, "
        f"smsgate serve --processes {processes}, {engine}, {args.seconds:g} s each"
    )
    print(sent.line("sendsms accepted (durable)"))
    print(floor.line("floor: GET /healthz, same server"))
    print(f"  stored during the run: {stored:,}; accepted replies: {sent.accepted:,}")
    if sent.accepted:
        ratio = (floor.accepted / floor.seconds) / (sent.accepted / sent.seconds)
        print(f"  ratio floor/sendsms {ratio:.1f}x")
    if kannel is not None:
        figures, kept = kannel
        print(figures.line("Kannel 1.4.5 sendsms accepted (queued)"))
        print(f"  Kannel stored during the run: {kept:,}; accepted replies: {figures.accepted:,}")
        if figures.accepted:
            rate = figures.accepted / figures.seconds
            print(f"  ratio smsgate/Kannel {sent.accepted / sent.seconds / rate:.2f}x")
    # wrk stops with requests in flight, at most one a connection, at the end
    # of the warm-up and of the run: the server may commit those without wrk
    # reading their replies, before or after the count. A reply counted as
    # accepted without its message stored, though, is a failure.
    if not sent.accepted <= stored <= sent.accepted + 2 * args.clients:
        raise SystemExit("stored messages do not match the accepted replies")


if __name__ == "__main__":
    main()
