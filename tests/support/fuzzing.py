"""What the fuzz and limit tests check around each request: that a refusal
wrote nothing, that nothing logged a traceback, and that another tenant sending
valid messages at the same time was not affected. On PostgreSQL the requests
are spread over two API processes sharing the database (``ApiProcesses``)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import select

from smsgate.store.repo import Store
from smsgate.store.schema import metadata
from tests.support.server import GatewayServer, TestAccount
from tests.support.waiting import answers_health, wait_until
from tests.test_cli import free_port

Snapshot = dict[str, list[str]]


def examples(default: int) -> int:
    """A fuzz test's example count: ``default`` for the everyday suite, scaled
    up by ``SMSGATE_FUZZ_EXAMPLES`` (a multiplier) for an acceptance run."""
    return default * int(os.environ.get("SMSGATE_FUZZ_EXAMPLES", "1"))


async def account_tables(store: Store, account_id: int) -> Snapshot:
    """Every table's rows as one account can change them: its own rows where a
    table names an account, whole tables otherwise (with the workers off,
    nothing else writes those), but for the count of failed authentications."""
    snapshot: Snapshot = {}
    async with store.engines.reader.connect() as conn:
        for table in metadata.sorted_tables:
            if table.name == "auth_failures":
                # The one write a refusal makes on purpose: a wrong secret is
                # counted, so guessing locks the guesser (see Limits and abuse).
                continue
            query = select(table)
            if "account_id" in table.c:
                query = query.where(table.c.account_id == account_id)
            elif table.name == "accounts":
                query = query.where(table.c.id == account_id)
            rows = (await conn.execute(query)).all()
            snapshot[table.name] = sorted(repr(tuple(row)) for row in rows)
    return snapshot


def snapshot(server: GatewayServer, account: TestAccount) -> Snapshot:
    return server.call(account_tables(server.rt.store, account.id))


def changed_tables(before: Snapshot, after: Snapshot) -> list[str]:
    return [name for name in before if before[name] != after[name]]


def tracebacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Log records that carry a traceback or report an error."""
    return [
        record.getMessage()
        for record in caplog.records
        if record.exc_info or record.levelno >= logging.ERROR
    ]


class ApiProcesses:
    """Where a fuzz test sends: the in-process server, and on PostgreSQL also
    a second API process (``smsgate serve --no-workers``) on the same
    database, so a refusal is checked for writes however its requests are
    spread, and the caches of one process cannot hide what the other wrote."""

    def __init__(self, server: GatewayServer, log: Path | None = None) -> None:
        self.bases = [server.base_url]
        self._log = log

    def tracebacks(self) -> list[str]:
        """Lines of the second process's log that carry a traceback or an error."""
        if self._log is None:
            return []
        lines = self._log.read_text(errors="replace").splitlines()
        return [line for line in lines if "Traceback" in line or " ERROR " in line]


@contextmanager
def spread_over_processes(server: GatewayServer, tmp_path: Path) -> Iterator[ApiProcesses]:
    """``server`` alone on SQLite (one API process per file is the model
    there); on PostgreSQL, with a second API process beside it."""
    settings = server.settings
    if not settings.database_url.startswith("postgresql"):
        yield ApiProcesses(server)
        return
    port, log = free_port(), tmp_path / "second-api.log"
    env = {
        **os.environ,
        "SMSGATE_DATABASE_URL": settings.database_url,
        "SMSGATE_DATA_DIR": str(tmp_path / "second-api"),
        "SMSGATE_SECRET_KEY": str(settings.secret_key),
        # Guessed credentials lock the fuzzer's address; answer it at once.
        "SMSGATE_AUTH_REFUSAL_HOLD_SECONDS": "0",
    }
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "smsgate", "serve", "--no-workers", "--port", str(port)],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        processes = ApiProcesses(server, log)
        processes.bases.append(f"http://127.0.0.1:{port}")
        try:
            wait_until(lambda: answers_health(processes.bases[1]), 60, "the second API process")
            yield processes
        finally:
            process.terminate()
            process.wait(30)


class WellBehavedTenant:
    """Another account sending valid messages in a loop while the test runs,
    to each of ``bases`` in turn (the server's own by default); every one of
    them must be accepted."""

    def __init__(self, server: GatewayServer, bases: list[str] | None = None) -> None:
        self.server = server
        self.bases = bases or [server.base_url]
        self.account = server.create_account(credit="1000000")
        self.sent = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> WellBehavedTenant:
        # One send to each process first, so each has seen this secret work
        # before the fuzzer's wrong guesses lock the address they share.
        with requests.Session() as session:
            for base in self.bases:
                self._send(session, base)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        with requests.Session() as session:
            while not self._stop.is_set():
                self._send(session, self.bases[self.sent % len(self.bases)])

    def _send(self, session: requests.Session, base: str) -> None:
        body = {
            **self.account.creds,
            "mobile": f"2547{self.sent % 100_000_000:08d}",
            "message": f"valid {self.sent}",
            "shortcode": "SMSGATE",
        }
        try:
            reply = session.post(f"{base}/api/services/sendsms", json=body, timeout=30).json()
            if reply["responses"][0]["response-code"] != 200:
                self.failures.append(repr(reply))
        except Exception as exc:  # recorded, asserted by the test
            self.failures.append(repr(exc))
        self.sent += 1

    def assert_unaffected(self) -> None:
        assert self.sent > 0, "the well-behaved tenant sent nothing"
        assert not self.failures, self.failures[:3]
        stored = snapshot(self.server, self.account)["messages"]
        assert len(stored) == self.sent, (len(stored), self.sent)
