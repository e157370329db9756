"""Shared fixtures: real SQLite files, a real PostgreSQL schema per test, a real
HTTP server on a socket, and a real HTTP receiver for callbacks.

PostgreSQL tests skip with a reason on a machine without the server, but fail
in CI (``CI`` set), where the server is part of the environment.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from smsgate.config import Settings
from smsgate.store.repo import Store
from tests.support.fuzzing import ApiProcesses, spread_over_processes
from tests.support.receiver import CallbackReceiver
from tests.support.server import GatewayServer

# The ``peers`` fixture: independent SMPP peers as subprocesses (tests/peers/README.md).
pytest_plugins = ["tests.support.peers"]

PG_ADMIN_DSN = os.environ.get("SMSGATE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = bool(os.environ.get("CI"))
# Every `smsgate serve` a test starts runs one process, whatever the default,
# as each test expects (one set of counters, one pid to signal);
# tests/test_processes.py asks for more.
os.environ["SMSGATE_PROCESSES"] = "1"


def _pg_available() -> str | None:
    async def probe() -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=3)
        await conn.close()

    try:
        asyncio.run(probe())
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


_PG_PROBLEM: str | None = None
_PG_PROBED = False


def require_postgres() -> None:
    global _PG_PROBLEM, _PG_PROBED
    if not _PG_PROBED:
        _PG_PROBLEM, _PG_PROBED = _pg_available(), True
    if _PG_PROBLEM:
        message = f"PostgreSQL at {PG_ADMIN_DSN} is not reachable ({_PG_PROBLEM})"
        if IN_CI:
            pytest.fail(message + "; PostgreSQL tests are required in CI")
        pytest.skip(message)


def _create_schema() -> str:
    schema = f"t_{uuid.uuid4().hex[:12]}"

    async def create() -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        await conn.execute(f'CREATE SCHEMA "{schema}"')
        await conn.close()

    asyncio.run(create())
    return schema


def _drop_schema(schema: str) -> None:
    async def drop() -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await conn.close()

    asyncio.run(drop())


def _fresh_postgres() -> Iterator[str]:
    require_postgres()
    schema = _create_schema()
    try:
        yield f"{PG_ADMIN_DSN}?search_path={schema}"
    finally:
        _drop_schema(schema)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database of each engine."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'smsgate.sqlite3'}"
        return
    yield from _fresh_postgres()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL schema, for behaviour only a server database has."""
    yield from _fresh_postgres()


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    opened = await Store.open(database_url)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def receiver() -> Iterator[CallbackReceiver]:
    with CallbackReceiver() as running:
        yield running


def fast_settings(database_url: str, **overrides: object) -> Settings:
    """Settings for tests: instant sandbox, quick polls, callback delays in ms."""
    values: dict[str, object] = {
        "database_url": database_url,
        "sandbox_latency_ms": 1.0,
        "sandbox_receipt_delay_ms": 50.0,
        "dispatch_idle_poll": 0.02,
        "callback_time_scale": 0.001,
        # Refusals of locked keys answered at once; tests/api/test_auth_refusal_hold.py
        # holds them.
        "auth_refusal_hold_seconds": 0.0,
        "worker_id": f"test-{uuid.uuid4().hex[:6]}",
        # One fixed installation key, so tests never write a key file and
        # several servers in one test share it like one deployment would.
        "secret_key": "c21zZ2F0ZS10ZXN0LXNlY3JldC1rZXktMzItYnl0ZXM=",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def gateway(database_url: str) -> Iterator[GatewayServer]:
    """The whole gateway (API + workers) serving on a real socket."""
    server = GatewayServer(fast_settings(database_url)).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def sqlite_gateway(tmp_path: Path) -> Iterator[GatewayServer]:
    """The whole gateway on SQLite only, for wire-level tests that do not depend
    on the engine (the engine-dependent paths run on both via ``gateway``)."""
    server = GatewayServer(fast_settings(f"sqlite:///{tmp_path / 'api.sqlite3'}")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def api_gateway(database_url: str) -> Iterator[GatewayServer]:
    """The HTTP API alone, on each engine: with no workers, only requests write,
    so a test can tell exactly what one request stored."""
    server = GatewayServer(fast_settings(database_url), workers=False).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def api_processes(api_gateway: GatewayServer, tmp_path: Path) -> Iterator[ApiProcesses]:
    """``api_gateway``, and on PostgreSQL a second API process beside it."""
    with spread_over_processes(api_gateway, tmp_path) as running:
        yield running
