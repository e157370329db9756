"""How long the server takes to accept one bulk request, per dialect.

Workloads:
- ``sendbulk``: one partnerID/apikey ``sendbulk`` of 1,000 distinct messages (JSON);
- ``send_batch``: one EAPI ``send_batch`` of 30,000 CSV rows (ISO-8859-1 form).

Runs ``smsgate serve --no-workers`` on a fresh SQLite file (or the database in
SMSGATE_BENCH_DATABASE_URL; for PostgreSQL use ``...?search_path=schema`` with a
scratch schema), posts the requests over HTTP, and reports the server's own
time (``Server-Timing``) and the client's round trip. The floor is the same
message rows inserted with the bare driver (``sqlite3`` ``executemany``, or
asyncpg ``COPY``) in one transaction, plus, for send_batch, parsing the same CSV
with the stdlib ``csv`` module; it runs on the same machine in the same run, so
the ratio is the figure that means something on a noisy box.

    .venv/bin/python bench/accept.py sendbulk [--rounds 30]
    .venv/bin/python bench/accept.py send_batch [--rounds 8]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg
import requests
from sqlalchemy.engine import make_url

from local_net import free_port, wait_until_serving
from smsgate.core.pricing import to_units
from smsgate.credentials import CredentialKind, hash_password, hash_secret
from smsgate.store.repo import Store

WARM_UP = 2
UNLIMITED = {"max_messages_per_second": 10**9, "message_burst": 10**9}


def number(round_no: int, size: int, i: int) -> str:
    return f"2547{(round_no * size + i) % 100_000_000:08d}"


def text(round_no: int, i: int) -> str:
    return f"Dear customer {i}, your order {round_no}-{i} has shipped."


@dataclass(frozen=True)
class Workload:
    name: str
    size: int
    path: str
    send: Callable[[requests.Session, str, int], requests.Response]
    accepted: Callable[[requests.Response], bool]
    client_side_floor: Callable[[int], float]  # ms of parsing work also in the floor


def send_sendbulk(session: requests.Session, url: str, round_no: int) -> requests.Response:
    entries = [
        {
            "partnerID": "777777",
            "apikey": "benchkey",
            "pass_type": "plain",
            "clientsmsid": i,
            "mobile": number(round_no, 1000, i),
            "message": text(round_no, i),
            "shortcode": "BENCH",
        }
        for i in range(1000)
    ]
    return session.post(url, json={"count": 1000, "smslist": entries})


def batch_csv(round_no: int) -> str:
    rows = "\n".join(
        f'"{number(round_no, 30_000, i)}","{text(round_no, i)}"' for i in range(30_000)
    )
    return "msisdn,message\n" + rows


def send_batch(session: requests.Session, url: str, round_no: int) -> requests.Response:
    return session.post(
        url,
        data={"username": "benchuser", "password": "benchpass", "batch_data": batch_csv(round_no)},
    )


def csv_parse_ms(round_no: int) -> float:
    data = batch_csv(round_no)
    started = time.perf_counter()
    list(csv.reader(io.StringIO(data)))
    return (time.perf_counter() - started) * 1000


WORKLOADS = {
    "sendbulk": Workload(
        "sendbulk",
        1000,
        "/api/services/sendbulk",
        send_sendbulk,
        lambda r: {e["response-code"] for e in r.json()["responses"]} == {200},
        lambda _round: 0.0,
    ),
    "send_batch": Workload(
        "send_batch",
        30_000,
        "/eapi/submission/send_batch/1/1.0",
        send_batch,
        lambda r: r.text.startswith("0|IN_PROGRESS|"),
        csv_parse_ms,
    ),
}


async def make_account(url: str) -> None:
    store = await Store.open(url)
    account = await store.create_account(
        name="bench",
        region="KE",
        timezone="Africa/Nairobi",
        senders=["BENCH"],
        options=UNLIMITED,  # the bench measures the server, not the account's rate
    )
    await store.add_credential(
        account.id,
        kind=CredentialKind.PARTNER_APIKEY,
        identifier="777777",
        secret_hash=hash_secret("benchkey"),
    )
    await store.add_credential(
        account.id,
        kind=CredentialKind.EAPI_PASSWORD,
        identifier="benchuser",
        secret_hash=hash_password("benchpass"),
    )
    await store.add_credit(account.id, to_units(100_000_000), "bench")
    await store.close()


FLOOR_COLUMNS = (
    "batch_id, account_id, recipient, network_id, sender, body, encoding, segments, cost,"
    " client_ref, priority, want_report, state, reason, created_at, due_at, attempts"
)


def floor_rows(round_no: int, size: int, batch_id: int) -> list[tuple[object, ...]]:
    return [
        (
            batch_id,
            1,
            "+" + number(round_no, size, i),
            1,
            "BENCH",
            text(round_no, i),
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
        for i in range(size)
    ]


def sqlite_floor_ms(url: str, size: int, rounds: int) -> list[float]:
    conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    batch_id = conn.execute("SELECT max(id) FROM batches").fetchone()[0]
    timings = []
    for r in range(rounds):
        rows = floor_rows(r + 1000, size, batch_id)
        started = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            f"INSERT INTO messages ({FLOOR_COLUMNS}) VALUES ({','.join('?' * 17)})", rows
        )
        conn.execute("COMMIT")
        timings.append((time.perf_counter() - started) * 1000)
    conn.close()
    return timings


async def postgres_floor_ms(url: str, size: int, rounds: int) -> list[float]:
    parsed = make_url(url)
    schema = parsed.query.get("search_path")
    dsn = parsed.difference_update_query(["search_path"]).render_as_string(hide_password=False)
    conn = await asyncpg.connect(
        dsn, server_settings={"search_path": str(schema)} if schema else None
    )
    batch_id = await conn.fetchval("SELECT max(id) FROM batches")
    columns = [c.strip() for c in FLOOR_COLUMNS.split(",")]
    timings = []
    for r in range(rounds):
        rows = floor_rows(r + 1000, size, batch_id)
        started = time.perf_counter()
        async with conn.transaction():
            await conn.copy_records_to_table("messages", records=rows, columns=columns)
        timings.append((time.perf_counter() - started) * 1000)
    await conn.close()
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workload", choices=sorted(WORKLOADS))
    parser.add_argument("--rounds", type=int, default=None)
    args = parser.parse_args()
    work = WORKLOADS[args.workload]
    rounds = args.rounds or (30 if work.size <= 1000 else 8)
    with tempfile.TemporaryDirectory() as tmp:
        url = os.environ.get("SMSGATE_BENCH_DATABASE_URL") or f"sqlite:///{tmp}/bench.sqlite3"
        asyncio.run(make_account(url))
        port = free_port()
        env = {
            **os.environ,
            "SMSGATE_DATABASE_URL": url,
            "SMSGATE_PORT": str(port),
            "SMSGATE_SERVER_TIMING": "1",
        }
        server = subprocess.Popen(
            [sys.executable, "-m", "smsgate", "serve", "--no-workers"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        server_ms, client_ms = [], []
        try:
            base = f"http://127.0.0.1:{port}"
            wait_until_serving(base)
            session = requests.Session()
            for r in range(rounds + WARM_UP):
                started = time.perf_counter()
                response = work.send(session, base + work.path, r)
                elapsed = (time.perf_counter() - started) * 1000
                assert work.accepted(response), response.text[:200]
                if r >= WARM_UP:
                    server_ms.append(float(response.headers["server-timing"].split("dur=")[1]))
                    client_ms.append(elapsed)
        finally:
            server.terminate()
            server.wait(10)
        if url.startswith("sqlite"):
            engine, inserts = "SQLite", sqlite_floor_ms(url, work.size, rounds)
            floor_name = "bare sqlite3 insert"
        else:
            engine = "PostgreSQL"
            inserts = asyncio.run(postgres_floor_ms(url, work.size, rounds))
            floor_name = "bare asyncpg COPY"
        parsing = [work.client_side_floor(r) for r in range(rounds)]
    floor = statistics.median(i + p for i, p in zip(inserts, parsing, strict=True))
    if work.name == "send_batch":
        floor_name = "stdlib csv parse + " + floor_name
    median = statistics.median(server_ms)
    p90 = statistics.quantiles(server_ms, n=10)[-1] if len(server_ms) > 1 else median
    print(f"{work.name} of {work.size} messages, {rounds} rounds, {engine}")
    print(f"  server time   median {median:8.1f} ms   p90 {p90:8.1f} ms")
    print(f"  client round  median {statistics.median(client_ms):8.1f} ms")
    print(f"  floor ({floor_name} of the same rows, one txn) {floor:8.1f} ms")
    print(f"  ratio server/floor {median / floor:5.1f}x")


if __name__ == "__main__":
    main()
