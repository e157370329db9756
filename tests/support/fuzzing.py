"""What the fuzz and limit tests check around each request: that a refusal
wrote nothing, that nothing logged a traceback, and that another tenant sending
valid messages at the same time was not affected."""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

import pytest
import requests
from sqlalchemy import select

from smsgate.store.repo import Store
from smsgate.store.schema import metadata
from tests.support.server import GatewayServer, TestAccount

Snapshot = dict[str, list[str]]


def examples(default: int) -> int:
    """A fuzz test's example count: ``default`` for the everyday suite, scaled
    up by ``SMSGATE_FUZZ_EXAMPLES`` (a multiplier) for an acceptance run."""
    return default * int(os.environ.get("SMSGATE_FUZZ_EXAMPLES", "1"))


async def account_tables(store: Store, account_id: int) -> Snapshot:
    """Every table's rows as one account can change them: its own rows where a
    table names an account, whole tables otherwise (with the workers off,
    nothing else writes those)."""
    snapshot: Snapshot = {}
    async with store.engines.reader.connect() as conn:
        for table in metadata.sorted_tables:
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


class WellBehavedTenant:
    """Another account sending valid messages in a loop while the test runs;
    every one of them must be accepted."""

    def __init__(self, server: GatewayServer) -> None:
        self.server = server
        self.account = server.create_account(credit="1000000")
        self.sent = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> WellBehavedTenant:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        with requests.Session() as session:
            while not self._stop.is_set():
                body = {
                    **self.account.creds,
                    "mobile": f"2547{self.sent % 100_000_000:08d}",
                    "message": f"valid {self.sent}",
                    "shortcode": "SMSGATE",
                }
                try:
                    reply = session.post(
                        f"{self.server.base_url}/api/services/sendsms", json=body, timeout=30
                    ).json()
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
