"""How long each web console page takes with many messages stored.

Fills a database (a fresh SQLite file, or SMSGATE_BENCH_DATABASE_URL; for
PostgreSQL use ``...?search_path=schema`` with a scratch schema) with
``--messages`` messages in batches of 1,000 over two accounts and the last two
days, runs ``smsgate serve --no-workers`` on it, signs in to the console as an
operator, and asks each page 20 times (after two warm-ups). It reports the
median of the server's own time (``Server-Timing``) per page beside the
median of the page's main query run bare (``sqlite3`` or asyncpg) on the
same database in the same run, so the ratio means something on a noisy box.

    .venv/bin/python bench/console_pages.py [--messages 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any

import asyncpg
import requests
from sqlalchemy.engine import make_url

from local_net import free_port, wait_until_serving
from smsgate.commands.operators import put_login
from smsgate.store.repo import Store

ROUNDS, WARM_UP, BATCH = 20, 2, 1_000
DAY_MS = 86_400_000
STATES = ["delivered"] * 90 + ["undeliverable"] * 5 + ["submitted"] * 3 + ["queued"] * 2
MESSAGE_COLUMNS = (
    "id, batch_id, account_id, recipient, network_id, sender, body, encoding, segments, cost,"
    " client_ref, priority, want_report, state, reason, created_at, due_at, attempts, done_at"
)
BATCH_COLUMNS = "id, account_id, dialect, message_count, cost, created_at"


def rows_of(
    total: int, accounts: Sequence[int], now: int, batch_nos: range
) -> tuple[list[Any], list[Any]]:
    """Those batches and their messages, ids and times rising together as the
    gateway writes them."""
    batches, messages = [], []
    start = now - 2 * DAY_MS
    step = (2 * DAY_MS) / max(total, 1)
    for batch_no in batch_nos:
        batch_id = batch_no + 1
        account = accounts[batch_no % len(accounts)]
        first = batch_no * BATCH
        size = min(BATCH, total - first)
        created = int(start + first * step)
        batches.append((batch_id, account, "advanta", size, size * 100, created))
        for i in range(first, first + size):
            at = int(start + i * step)
            state = STATES[i % len(STATES)]
            messages.append(
                (
                    i + 1,
                    batch_id,
                    account,
                    f"+2547{i % 10_000:08d}",
                    1,
                    "BENCH",
                    f"Dear customer {i}, your order has shipped.",
                    "gsm7",
                    1,
                    100,
                    str(i),
                    1,
                    True,
                    state,
                    "",
                    at,
                    at,
                    1,
                    None if state in ("submitted", "queued") else at + 5_000,
                )
            )
    return batches, messages


def bare_queries(account: int, number: str, batch: int, message: int, now: int) -> dict[str, str]:
    """The main query of each page, as the store sends it (literals inlined)."""
    hour = now - 3_600_000
    listing = (
        "SELECT m.id, m.batch_id, m.account_id, b.dialect, m.recipient, m.sender, m.body,"
        " m.segments, m.cost, m.state, m.reason, m.created_at, m.done_at, m.connector"
        " FROM messages m JOIN batches b ON b.id = m.batch_id {where}"
        " ORDER BY m.id DESC LIMIT 50"
    )
    return {
        "": (  # the dashboard
            "SELECT m.created_at - m.created_at % 60000 AS minute, m.state, m.connector,"
            " CASE WHEN m.done_at - m.submitted_at < 1000 THEN (m.done_at - m.submitted_at) / 100"
            " ELSE 40 END AS bucket, count(*)"
            f" FROM messages m WHERE m.created_at >= {hour} AND m.id >"
            f" (SELECT id FROM messages WHERE created_at < {hour} ORDER BY id DESC LIMIT 1)"
            " GROUP BY minute, m.state, m.connector, bucket"
        ),
        "messages": listing.format(where=""),
        f"messages?account={account}": listing.format(where=f"WHERE m.account_id = {account}"),
        f"messages?number={number[1:]}": listing.format(where=f"WHERE m.recipient = '{number}'"),
        f"messages?batch={batch}": listing.format(where=f"WHERE m.batch_id = {batch}"),
        "messages?state=queued": listing.format(where="WHERE m.state = 'queued'"),
        f"messages/{message}": listing.format(where=f"WHERE m.id = {message}"),
        "batches": (
            "SELECT id, account_id, dialect, message_count, cost, created_at, description"
            " FROM batches ORDER BY id DESC LIMIT 50"
        ),
        f"batches/{batch}": (
            f"SELECT state, count(*) FROM messages WHERE batch_id = {batch} GROUP BY state"
        ),
        f"accounts/{account}": (
            "SELECT id, amount, balance_after, kind, batch_id, message_id, note, created_at"
            f" FROM ledger WHERE account_id = {account} ORDER BY id DESC LIMIT 100"
        ),
    }


class Bare:
    """The database through its own driver: the fill, and the floor of each page."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sqlite = url.startswith("sqlite")

    def fill(self, batches: list[Any], messages: list[Any]) -> None:
        if self.sqlite:
            conn = sqlite3.connect(self.url.removeprefix("sqlite:///"), isolation_level=None)
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(f"INSERT INTO batches ({BATCH_COLUMNS}) VALUES (?,?,?,?,?,?)", batches)
            marks = ",".join("?" * len(MESSAGE_COLUMNS.split(",")))
            conn.executemany(f"INSERT INTO messages ({MESSAGE_COLUMNS}) VALUES ({marks})", messages)
            conn.execute("COMMIT")
            conn.close()
            return
        asyncio.run(self._copy(batches, messages))

    async def _connect(self) -> asyncpg.Connection:
        parsed = make_url(self.url)
        schema = parsed.query.get("search_path")
        dsn = parsed.difference_update_query(["search_path"]).render_as_string(hide_password=False)
        return await asyncpg.connect(
            dsn, server_settings={"search_path": str(schema)} if schema else None
        )

    async def _copy(self, batches: list[Any], messages: list[Any]) -> None:
        conn = await self._connect()
        async with conn.transaction():
            await conn.copy_records_to_table(
                "batches", records=batches, columns=[c.strip() for c in BATCH_COLUMNS.split(",")]
            )
            await conn.copy_records_to_table(
                "messages",
                records=messages,
                columns=[c.strip() for c in MESSAGE_COLUMNS.split(",")],
            )
        for table in ("batches", "messages"):
            sequence = f"pg_get_serial_sequence('{table}', 'id')"
            await conn.execute(f"SELECT setval({sequence}, (SELECT max(id) FROM {table}))")
        await conn.close()

    def analyze(self) -> None:
        """Table statistics, as a database that has run a while has them."""
        if self.sqlite:
            conn = sqlite3.connect(self.url.removeprefix("sqlite:///"), isolation_level=None)
            conn.execute("ANALYZE")
            conn.close()
            return
        asyncio.run(self._analyze_pg())

    async def _analyze_pg(self) -> None:
        conn = await self._connect()
        await conn.execute("ANALYZE")
        await conn.close()

    def median_ms(self, query: str) -> float:
        if self.sqlite:
            conn = sqlite3.connect(self.url.removeprefix("sqlite:///"))
            timings = []
            for _ in range(ROUNDS + WARM_UP):
                started = time.perf_counter()
                conn.execute(query).fetchall()
                timings.append((time.perf_counter() - started) * 1000)
            conn.close()
            return statistics.median(timings[WARM_UP:])
        return asyncio.run(self._median_pg(query))

    async def _median_pg(self, query: str) -> float:
        conn = await self._connect()
        timings = []
        for _ in range(ROUNDS + WARM_UP):
            started = time.perf_counter()
            await conn.fetch(query)
            timings.append((time.perf_counter() - started) * 1000)
        await conn.close()
        return statistics.median(timings[WARM_UP:])


async def prepare(url: str, total: int) -> tuple[list[int], str, int]:
    """Accounts and an operator login; returns the account ids, password and now."""
    store = await Store.open(url)
    try:
        accounts = []
        for name in ("bench-a", "bench-b"):
            account = await store.create_account(
                name=name, region="KE", timezone="Africa/Nairobi", senders=["BENCH"]
            )
            await store.add_credit(account.id, 100_000, "bench")
            accounts.append(account.id)
        _, password = await put_login(store, "bench", None)
        return accounts, password, store.clock()
    finally:
        await store.close()


def signed_in(base: str, password: str) -> requests.Session:
    session = requests.Session()
    form = session.get(f"{base}/console/login", timeout=10).text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form)
    assert csrf, form
    reply = session.post(
        f"{base}/console/login",
        data={"csrf": csrf.group(1), "login": "bench", "password": password},
        timeout=10,
    )
    assert reply.url.endswith("/console/"), reply.text[:300]
    return session


def page_ms(session: requests.Session, url: str) -> float:
    timings = []
    for _ in range(ROUNDS + WARM_UP):
        response = session.get(url, timeout=30)
        assert response.status_code == 200, (url, response.status_code)
        timings.append(float(response.headers["server-timing"].split("dur=")[1]))
    return statistics.median(timings[WARM_UP:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = os.environ.get("SMSGATE_BENCH_DATABASE_URL") or f"sqlite:///{tmp}/bench.sqlite3"
        accounts, password, now = asyncio.run(prepare(url, args.messages))
        bare = Bare(url)
        started = time.perf_counter()
        count = -(-args.messages // BATCH)
        chunk = 100  # batches (100,000 messages) in memory at a time
        for first in range(0, count, chunk):
            span = range(first, min(first + chunk, count))
            bare.fill(*rows_of(args.messages, accounts, now, span))
        bare.analyze()
        filled_s = time.perf_counter() - started
        middle_batch = count // 2
        middle = rows_of(args.messages, accounts, now, range(middle_batch, middle_batch + 1))[1][0]
        queries = bare_queries(accounts[0], middle[3], middle[1], middle[0], now)
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
        results = []
        try:
            base = f"http://127.0.0.1:{port}"
            wait_until_serving(base)
            session = signed_in(base, password)
            for page, query in queries.items():
                results.append((page, page_ms(session, f"{base}/console/{page}"), query))
        finally:
            server.terminate()
            server.wait(10)
        floors = [(page, served, bare.median_ms(query)) for page, served, query in results]
    engine = "SQLite" if url.startswith("sqlite") else "PostgreSQL"
    print(f"{engine}, {args.messages:,} messages (filled in {filled_s:.1f} s)")
    print(f"{'page':40} {'server ms':>10} {'floor: bare query ms':>21} {'ratio':>7}")
    for page, served, floor in floors:
        ratio = served / floor if floor else float("inf")
        print(f"{'/console/' + page:40} {served:10.2f} {floor:21.2f} {ratio:6.1f}x")


if __name__ == "__main__":
    main()
