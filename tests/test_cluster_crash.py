"""Acceptance: two API and two worker processes on PostgreSQL, an SMSC over
SMPP, 30,000 messages across the three dialects, and a SIGKILL of the worker
holding the bind and of an API process at moments chosen at random.

Clients do what production clients should: a request that fails (its API
process died) is retried on the other one with the same ``Idempotency-Key``
or ``stop_dup_id``. Afterwards every accepted message is final and was
accepted once, the SMSC got each message once apart from at most the
connection's uncommitted bound per killed bind (reported), and every
account's ledger adds up.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import asyncpg
import pytest
import requests

from smsgate.core.states import FINAL_STATES, State
from smsgate.secret_box import SecretBox
from smsgate.smpp.simulator import SimulatorConfig, SmscSimulator
from smsgate.store.repo import REFUNDED_STATES, Store
from tests.smpp.test_gateway_over_smpp import SimulatorThread
from tests.support.server import TestAccount, provision_account
from tests.support.waiting import wait_until

pytestmark = pytest.mark.postgres

WINDOW = 10
UNCOMMITTED = 50  # what a killed worker can have sent without the store knowing
PER_DIALECT = 10_000
REFUSED_EVERY = 20  # the SMSC refuses every 20th number: rejected, and refunded
SECRET_KEY = "c21zZ2F0ZS10ZXN0LXNlY3JldC1rZXktMzItYnl0ZXM="


def number(dialect: int, index: int) -> str:
    """A distinct number per message; the SMSC's log is read back by number.
    The SMSC refuses those ending in 004 (the sandbox rules)."""
    suffix = "04" if index % REFUSED_EVERY == 0 else "99"
    return f"2547{dialect}{index:05d}{suffix}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Cluster:
    """``smsgate serve --no-workers`` and ``smsgate worker`` processes sharing one database."""

    def __init__(self, database_url: str, smpp_url: str, tmp_path: Path) -> None:
        self.env = {
            **os.environ,
            "SMSGATE_DATABASE_URL": database_url,
            "SMSGATE_DATA_DIR": str(tmp_path / "data"),
            "SMSGATE_SMPP_URL": smpp_url,
            "SMSGATE_SECRET_KEY": SECRET_KEY,
            "SMSGATE_LEASE_SECONDS": "3",
            "SMSGATE_CONNECTOR_LEASE_SECONDS": "2",
            "SMSGATE_DISPATCH_BATCH_SIZE": "200",
        }
        self.logs = tmp_path
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.api_ports: dict[str, int] = {}

    def _spawn(self, name: str, args: list[str], **env: str) -> None:
        log = (self.logs / f"{name}.log").open("ab")
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-m", "smsgate", *args],
            env={**self.env, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def start_api(self, name: str) -> None:
        port = self.api_ports.setdefault(name, free_port())
        self._spawn(name, ["serve", "--no-workers", "--port", str(port)])

    def start_worker(self, name: str) -> None:
        self._spawn(name, ["worker"], SMSGATE_WORKER_ID=name)

    def kill(self, name: str) -> None:
        process = self.processes[name]
        process.send_signal(signal.SIGKILL)
        process.wait(10)

    def wait_healthy(self, name: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self.processes[name].poll() is None, f"{name} exited: see {name}.log"
            with contextlib.suppress(requests.RequestException):
                if requests.get(self.base_url(name) + "/healthz", timeout=1).ok:
                    return
            assert time.monotonic() < deadline, f"{name} did not come up"
            time.sleep(0.05)

    def base_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.api_ports[name]}"

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()


@dataclass
class Send:
    """One request, retried unchanged (same key) until some API process answers."""

    index: int
    dialect: str
    path: str
    body: dict[str, Any] | str
    headers: dict[str, str]
    check: Callable[[requests.Response], Any]
    answer: Any = None
    tries: int = 0


@dataclass
class Clients:
    cluster: Cluster
    apis: list[str]
    answered: int = 0
    retried: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, send: Send) -> None:
        deadline = time.monotonic() + 120
        while True:
            api = self.apis[(send.index + send.tries) % len(self.apis)]
            send.tries += 1
            try:
                response = requests.post(
                    self.cluster.base_url(api) + send.path,
                    **({"json": send.body} if isinstance(send.body, dict) else {"data": send.body}),
                    headers=send.headers,
                    timeout=60,
                )
                answer = send.check(response)
            except (requests.RequestException, Retry):
                assert time.monotonic() < deadline, f"{send.dialect} request never answered"
                with self.lock:
                    self.retried += 1
                time.sleep(0.2)
                continue
            send.answer = answer
            with self.lock:
                self.answered += 1
            return


class Retry(Exception):
    """The gateway asked the client to come back later (busy, or restarting)."""


def advanta_send(account: TestAccount, batch: int) -> Send:
    smslist = [
        {
            **account.creds,
            "pass_type": "plain",
            "clientsmsid": index,
            "mobile": number(1, batch * 1000 + index),
            "message": "hello",
            "shortcode": "SMSGATE",
        }
        for index in range(1000)
    ]

    def check(response: requests.Response) -> list[int]:
        reply = response.json() if response.status_code == 200 else {}
        if "responses" not in reply:
            raise Retry  # 4090: busy
        replies = reply["responses"]
        assert all(r["response-code"] == 200 for r in replies), replies[:3]
        return [int(r["messageid"]) for r in replies]

    body = {"count": len(smslist), "smslist": smslist}
    headers = {"Idempotency-Key": uuid4()}
    return Send(batch, "advanta", "/api/services/sendbulk", body, headers, check)


def telesign_send(account: TestAccount, batch: int) -> Send:
    recipients = ",".join(number(2, batch * 1000 + index) for index in range(1000))
    basic = base64.b64encode(f"{account.customer_id}:{account.telesign_key}".encode()).decode()
    headers = {
        "Authorization": f"Basic {basic}",
        "Content-Type": "application/x-www-form-urlencoded",
        "Idempotency-Key": uuid4(),
    }

    def check(response: requests.Response) -> str:
        if response.status_code in (429, 503) or response.status_code >= 500:
            raise Retry
        assert response.status_code == 200, response.text
        return str(response.json()["reference_id"])

    body = urlencode({"recipients": recipients, "template": "hello"})
    return Send(batch, "telesign", "/v1/verify/bulk_sms", body, headers, check)


def eapi_send(account: TestAccount, batch: int, size: int) -> Send:
    rows = "\n".join(f"{number(3, batch * size + index)},hello" for index in range(size))
    body = {
        **account.eapi_creds,
        "batch_data": "msisdn,message\n" + rows,
        "stop_dup_id": str(batch + 1),
    }

    def check(response: requests.Response) -> int:
        code, _, rest = response.text.partition("|")
        if response.status_code != 200 or code == "40":
            raise Retry
        assert code == "0", response.text
        return int(rest.split("|")[1])

    return Send(
        batch,
        "eapi",
        "/eapi/submission/send_batch/1/1.0",
        urlencode(body),
        {"Content-Type": "application/x-www-form-urlencoded"},
        check,
    )


def uuid4() -> str:
    return str(uuid.uuid4())


async def provision(url: str) -> list[TestAccount]:
    store = await Store.open(url)
    secrets = SecretBox.load(SECRET_KEY, Path("."))
    try:
        return [
            await provision_account(store, secrets, credit="100000", name=dialect)
            for dialect in ("advanta", "telesign", "eapi")
        ]
    finally:
        await store.close()


@contextlib.asynccontextmanager
async def connected(url: str) -> AsyncIterator[asyncpg.Connection]:
    """asyncpg on the test's schema (the ``?search_path=`` of its URL)."""
    dsn, _, query = url.partition("?")
    conn = await asyncpg.connect(dsn, server_settings={"search_path": query.split("=", 1)[1]})
    try:
        yield conn
    finally:
        await conn.close()


async def states(url: str) -> Counter[str]:
    async with connected(url) as conn:
        rows = await conn.fetch("SELECT state, count(*) FROM messages GROUP BY state")
    return Counter({row[0]: row[1] for row in rows})


async def lease_holder(url: str) -> str | None:
    async with connected(url) as conn:
        owner: str | None = await conn.fetchval(
            "SELECT owner FROM connector_leases WHERE connector = 'smsc1'"
        )
    return owner


def test_sigkilled_processes_lose_nothing_and_resend_at_most_the_uncommitted_bound(
    postgres_url: str, tmp_path: Path
) -> None:
    seed = random.randrange(1 << 32)
    rng = random.Random(seed)
    print(f"seed {seed}")
    accounts = asyncio.run(provision(postgres_url))
    config = SimulatorConfig(port=0, receipt_delay_ms=20)
    with SimulatorThread(config) as smsc:
        options = f"name=smsc1&window={WINDOW}&uncommitted={UNCOMMITTED}"
        smpp_url = f"smpp://smsgate:secret@127.0.0.1:{smsc.port}?{options}"
        cluster = Cluster(postgres_url, smpp_url, tmp_path)
        try:
            sends = run_the_storm(cluster, smsc, accounts, rng, postgres_url)
        finally:
            cluster.stop()
    check_the_aftermath(smsc, accounts, sends, postgres_url)


def run_the_storm(
    cluster: Cluster,
    smsc: SmscSimulator,
    accounts: list[TestAccount],
    rng: random.Random,
    url: str,
) -> list[Send]:
    """Send everything while an API process and the binding worker are killed
    and restarted; wait until every message is final."""
    for name in ("api-a", "api-b"):
        cluster.start_api(name)
    for name in ("worker-1", "worker-2"):
        cluster.start_worker(name)
    for name in ("api-a", "api-b"):
        cluster.wait_healthy(name)
    advanta, telesign, eapi = accounts
    sends = (
        [advanta_send(advanta, b) for b in range(PER_DIALECT // 1000)]
        + [telesign_send(telesign, b) for b in range(PER_DIALECT // 1000)]
        + [eapi_send(eapi, b, 2_500) for b in range(PER_DIALECT // 2_500)]
    )
    rng.shuffle(sends)
    clients = Clients(cluster, ["api-a", "api-b"])
    kill_api_after = rng.randrange(2, len(sends) // 2)
    kill_worker_at = rng.randrange(2_000, 3 * PER_DIALECT - 5_000)

    def kill_an_api() -> None:
        wait_until(lambda: clients.answered >= kill_api_after, 120, "answers before the API kill")
        cluster.kill("api-a")
        cluster.start_api("api-a")  # as systemd would restart it
        cluster.wait_healthy("api-a")

    def kill_the_binding_worker() -> None:
        wait_until(lambda: len(smsc.submitted) >= kill_worker_at, 180, "the worker kill point")
        holder = asyncio.run(lease_holder(url))
        assert holder in ("worker-1", "worker-2")
        cluster.kill(holder)
        cluster.start_worker(holder)

    with ThreadPoolExecutor(8) as pool:
        killers = [pool.submit(kill_an_api), pool.submit(kill_the_binding_worker)]
        for result in [pool.submit(clients.run, send) for send in sends]:
            result.result()
        for killer in killers:
            killer.result()
    print(f"{len(sends)} requests, {clients.retried} retries after the API kill")
    accepted = 3 * PER_DIALECT
    wait_until(
        lambda: (
            sum(n for s, n in asyncio.run(states(url)).items() if State(s) in FINAL_STATES)
            >= accepted
        ),
        240,
        "every message final",
        interval=0.1,  # each look is a query
    )
    for name in ("api-a", "api-b", "worker-1", "worker-2"):
        assert cluster.processes[name].poll() is None, f"{name} died: see {name}.log"
    return sends


def check_the_aftermath(
    smsc: SmscSimulator, accounts: list[TestAccount], sends: list[Send], url: str
) -> None:
    rows = asyncio.run(_fetch(url))
    messages, ledgers, balances = rows["messages"], rows["ledger"], rows["balances"]

    # Accepted once: one row per number, and the replies name exactly those rows.
    assert len(messages) == 3 * PER_DIALECT
    recipients = {m["recipient"].lstrip("+") for m in messages}
    assert len(recipients) == len(messages)
    assert all(State(m["state"]) in FINAL_STATES for m in messages)
    by_account = Counter(m["account_id"] for m in messages)
    assert set(by_account.values()) == {PER_DIALECT}
    advanta_ids = {i for s in sends if s.dialect == "advanta" for i in s.answer}
    advanta = accounts[0]
    assert advanta_ids == {m["id"] for m in messages if m["account_id"] == advanta.id}
    eapi_batches = {s.answer for s in sends if s.dialect == "eapi"}
    assert eapi_batches == {m["batch_id"] for m in messages if m["account_id"] == accounts[2].id}
    assert len({s.answer for s in sends if s.dialect == "telesign"}) == PER_DIALECT // 1000

    # The SMSC got every message, and twice only what was in flight at the kill.
    sent = Counter(m.destination.lstrip("+") for m in smsc.submitted)
    assert set(sent) == recipients
    resent = sum(count - 1 for count in sent.values())
    print(f"in flight at the worker kill, sent twice: {resent} (uncommitted bound {UNCOMMITTED})")
    assert resent <= UNCOMMITTED

    # Every account's ledger adds up: balance = sum of entries, each entry
    # follows from the one before, charges = what was stored, refunds = what failed.
    for account in accounts:
        entries = [e for e in ledgers if e["account_id"] == account.id]
        running = 0
        for entry in entries:
            running += entry["amount"]
            assert entry["balance_after"] == running
        assert balances[account.id] == running
        own = [m for m in messages if m["account_id"] == account.id]
        charged = -sum(e["amount"] for e in entries if e["kind"] == "charge")
        refunded = sum(e["amount"] for e in entries if e["kind"] == "refund")
        assert charged == sum(m["cost"] for m in own)
        unrefunded = {m["id"] for m in own if State(m["state"]) in REFUNDED_STATES} - {
            e["message_id"] for e in entries if e["kind"] == "refund"
        }
        assert not unrefunded, [
            (m["id"], m["state"], m["reason"], m["recipient"]) for m in own if m["id"] in unrefunded
        ] + [tuple(e) for e in rows["events"] if e["message_id"] in unrefunded]
        assert refunded == sum(m["cost"] for m in own if State(m["state"]) in REFUNDED_STATES)
        assert refunded > 0


async def _fetch(url: str) -> dict[str, Any]:
    async with connected(url) as conn:
        return {
            "messages": await conn.fetch(
                "SELECT id, account_id, batch_id, recipient, state, reason, cost FROM messages"
            ),
            "ledger": await conn.fetch(
                "SELECT account_id, message_id, amount, balance_after, kind FROM ledger ORDER BY id"
            ),
            "balances": dict(await conn.fetch("SELECT id, balance FROM accounts")),
            "events": await conn.fetch(
                "SELECT message_id, state, reason, carrier_status, recorded_at"
                " FROM delivery_events ORDER BY id"
            ),
        }
