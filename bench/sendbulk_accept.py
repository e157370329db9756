"""How long the server takes to accept one sendbulk of 1,000 distinct messages.

Runs ``smsgate serve --no-workers`` on a fresh SQLite file (or the database in
SMSGATE_BENCH_DATABASE_URL), posts N sendbulk requests of 1,000 messages over
HTTP, and reports the server's own time (``Server-Timing``) and the client's
round trip. The floor is the same 1,000 message rows inserted with bare
``sqlite3`` in one transaction, with the same pragmas, on the same machine in
the same run; the ratio is the figure that means something on a noisy box.

    .venv/bin/python bench/sendbulk_accept.py [--rounds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

import asyncpg
import requests
from sqlalchemy.engine import make_url

from smsgate.core.pricing import to_units
from smsgate.credentials import CredentialKind, hash_secret
from smsgate.store.repo import Store

MESSAGES = 1000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def make_account(url: str) -> None:
    store = await Store.open(url)
    account = await store.create_account(
        name="bench", region="KE", timezone="Africa/Nairobi", senders=["BENCH"]
    )
    await store.add_credential(
        account.id,
        kind=CredentialKind.PARTNER_APIKEY,
        identifier="777777",
        secret_hash=hash_secret("benchkey"),
    )
    await store.add_credit(account.id, to_units(10_000_000), "bench")
    await store.close()


def payload(round_no: int) -> dict[str, object]:
    entries = [
        {
            "partnerID": "777777",
            "apikey": "benchkey",
            "pass_type": "plain",
            "clientsmsid": i,
            "mobile": f"2547{(round_no * MESSAGES + i) % 100_000_000:08d}",
            "message": f"Dear customer {i}, your order {round_no}-{i} has shipped.",
            "shortcode": "BENCH",
        }
        for i in range(MESSAGES)
    ]
    return {"count": MESSAGES, "smslist": entries}


FLOOR_COLUMNS = (
    "batch_id, account_id, recipient, network_id, sender, body, encoding, segments, cost,"
    " client_ref, priority, want_report, state, reason, created_at, due_at, attempts"
)


def floor_rows(round_no: int, batch_id: int) -> list[tuple[object, ...]]:
    return [
        (
            batch_id,
            1,
            f"+2547{(round_no * MESSAGES + i) % 100_000_000:08d}",
            1,
            "BENCH",
            f"Dear customer {i}, your order {round_no}-{i} has shipped.",
            "gsm7",
            1,
            100,
            str(i),
            1,
            True,
            "queued",
            "",
            0,
            0,
            0,
        )
        for i in range(MESSAGES)
    ]


def sqlite_floor_ms(url: str, rounds: int) -> float:
    """Bare sqlite3: the same rows into the same table, one transaction each."""
    conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    batch_id = conn.execute("SELECT max(id) FROM batches").fetchone()[0]
    timings = []
    for r in range(rounds):
        rows = floor_rows(r, batch_id)
        started = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            f"INSERT INTO messages ({FLOOR_COLUMNS}) VALUES ({','.join('?' * 17)})", rows
        )
        conn.execute("COMMIT")
        timings.append((time.perf_counter() - started) * 1000)
    conn.close()
    return statistics.median(timings)


async def postgres_floor_ms(url: str, rounds: int) -> float:
    """Bare asyncpg: the same rows into the same table, one transaction each."""
    parsed = make_url(url)
    schema = parsed.query.get("search_path")
    dsn = parsed.difference_update_query(["search_path"]).render_as_string(hide_password=False)
    conn = await asyncpg.connect(
        dsn, server_settings={"search_path": str(schema)} if schema else None
    )
    batch_id = await conn.fetchval("SELECT max(id) FROM batches")
    placeholders = ",".join(f"${n}" for n in range(1, 18))
    timings = []
    for r in range(rounds):
        rows = floor_rows(r + 10_000, batch_id)
        started = time.perf_counter()
        async with conn.transaction():
            await conn.executemany(
                f"INSERT INTO messages ({FLOOR_COLUMNS}) VALUES ({placeholders})", rows
            )
        timings.append((time.perf_counter() - started) * 1000)
    await conn.close()
    return statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = os.environ.get("SMSGATE_BENCH_DATABASE_URL") or f"sqlite:///{tmp}/bench.sqlite3"
        asyncio.run(make_account(url))
        port = free_port()
        env = {**os.environ, "SMSGATE_DATABASE_URL": url, "SMSGATE_PORT": str(port)}
        server = subprocess.Popen(
            [sys.executable, "-m", "smsgate", "serve", "--no-workers"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            while True:
                try:
                    requests.get(base + "/healthz", timeout=1)
                    break
                except requests.ConnectionError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            session = requests.Session()
            bodies = [payload(r) for r in range(args.rounds + 3)]
            server_ms, client_ms = [], []
            for r, body in enumerate(bodies):
                started = time.perf_counter()
                response = session.post(base + "/api/services/sendbulk", json=body)
                elapsed = (time.perf_counter() - started) * 1000
                codes = {e["response-code"] for e in response.json()["responses"]}
                assert codes == {200}, codes
                if r >= 3:  # warm-up rounds excluded
                    server_ms.append(float(response.headers["server-timing"].split("dur=")[1]))
                    client_ms.append(elapsed)
        finally:
            server.terminate()
            server.wait(10)
        if url.startswith("sqlite"):
            floor, floor_name = sqlite_floor_ms(url, args.rounds), "bare sqlite3"
        else:
            floor = asyncio.run(postgres_floor_ms(url, args.rounds))
            floor_name = "bare asyncpg executemany"
    server_median = statistics.median(server_ms)
    print(
        f"sendbulk of {MESSAGES} messages, {args.rounds} rounds, "
        f"{'SQLite' if url.startswith('sqlite') else 'PostgreSQL'}"
    )
    print(
        f"  server time   median {server_median:7.1f} ms   "
        f"p90 {statistics.quantiles(server_ms, n=10)[-1]:7.1f} ms"
    )
    print(f"  client round  median {statistics.median(client_ms):7.1f} ms")
    print(f"  floor ({floor_name} insert of the same rows, one txn) {floor:7.1f} ms")
    print(f"  ratio server/floor {server_median / floor:5.1f}x")


if __name__ == "__main__":
    main()
