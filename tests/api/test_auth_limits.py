"""Guessing credentials: after a few failures the guesser's address and the
identifier it guesses at are locked (each dialect's "try later" code), in
the store so every API process sees it, while the account's own client
keeps working."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from tests.conftest import fast_settings
from tests.support.attempts import DIALECTS, Attempt
from tests.support.server import GatewayServer, TestAccount
from tests.support.waiting import answers_health, wait_until
from tests.test_cli import free_port

from smsgate.auth_guard import AuthGuard
from smsgate.credentials import CredentialKind

FREE = 3
GOOD, GUESSER, OTHER_GUESSER = "192.0.2.10", "198.51.100.7", "198.51.100.8"
KINDS = {
    "advanta": CredentialKind.PARTNER_APIKEY,
    "eapi": CredentialKind.EAPI_PASSWORD,
    "telesign": CredentialKind.TELESIGN_KEY,
}


@pytest.fixture
def guarded(database_url: str) -> Iterator[GatewayServer]:
    settings = fast_settings(database_url, auth_free_failures=FREE, auth_lock_seconds=60.0)
    server = GatewayServer(settings, workers=False).start()
    try:
        yield server
    finally:
        server.stop()


def identifier(dialect: str, account: TestAccount) -> str:
    return {
        "advanta": account.partner_id,
        "eapi": account.eapi_creds["username"],
        "telesign": account.customer_id,
    }[dialect]


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
def test_guessing_locks_the_guesser_not_the_client(guarded: GatewayServer, dialect: str) -> None:
    attempt: Attempt = DIALECTS[dialect]
    base = guarded.base_url
    victim, bystander = guarded.create_account(), guarded.create_account()
    assert attempt(base, victim, True, GOOD) == "ok"  # the account's client, before the attack

    assert [attempt(base, victim, False, GUESSER) for _ in range(FREE + 1)] == ["denied"] * (
        FREE + 1
    )
    # Locked: refused with the dialect's "try later", right secret or not ...
    assert attempt(base, victim, False, GUESSER) == "throttled"
    assert attempt(base, bystander, False, GUESSER) == "throttled"
    # ... from another address too, for the identifier guessed at ...
    assert attempt(base, victim, False, OTHER_GUESSER) == "throttled"
    # ... and the refusals were not counted (nothing written for them).
    keys = AuthGuard.keys(KINDS[dialect], identifier(dialect, victim), GUESSER)
    counts = guarded.call(guarded.rt.store.auth_failures(keys, 60_000))
    assert {key: c.failures for key, c in counts.items()} == dict.fromkeys(keys, FREE + 1)

    # The account's own client, whose secret this process has seen work, is not held up,
    assert attempt(base, victim, True, GOOD) == "ok"
    # and other accounts from other addresses are untouched.
    assert attempt(base, bystander, True, GOOD) == "ok"
    assert attempt(base, bystander, False, GOOD) == "denied"


def test_an_unknown_identifier_costs_a_hash_like_a_known_one(guarded: GatewayServer) -> None:
    """Guesses at usernames that do not exist count and lock like the others."""
    ghost = TestAccount(0, "999999", "nokey", "0" * 20, "nokey")
    outcomes = [DIALECTS["eapi"](guarded.base_url, ghost, False, GUESSER) for _ in range(FREE + 2)]
    assert outcomes == ["denied"] * (FREE + 1) + ["throttled"]


def test_no_timing_header_by_default(guarded: GatewayServer) -> None:
    reply = requests.get(guarded.base_url + "/healthz", timeout=10)
    assert reply.ok and "server-timing" not in reply.headers


@pytest.mark.postgres
def test_failures_add_up_across_api_processes(postgres_url: str, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "SMSGATE_DATABASE_URL": postgres_url,
        "SMSGATE_DATA_DIR": str(tmp_path / "data"),
        "SMSGATE_SECRET_KEY": "c21zZ2F0ZS10ZXN0LXNlY3JldC1rZXktMzItYnl0ZXM=",
        "SMSGATE_AUTH_FREE_FAILURES": str(FREE),
        "SMSGATE_AUTH_LOCK_SECONDS": "60",
    }
    created = subprocess.run(
        [sys.executable, "-m", "smsgate", "accounts", "create", "target", "--telesign"],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip

    def printed(label: str) -> str:
        return re.search(rf"^{label}: (\S+)$", created.stdout, re.M).group(1)  # type: ignore[union-attr]

    victim = TestAccount(
        0,
        printed("partnerID"),
        printed("apikey"),
        printed("telesign customer id"),
        printed("telesign api key"),
    )
    ports = [free_port(), free_port()]
    logs = [(tmp_path / f"api{i}.log").open("wb") for i in range(2)]
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "smsgate", "serve", "--no-workers", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        for port, log in zip(ports, logs, strict=True)
    ]
    bases = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        for base in bases:
            wait_until(lambda base=base: answers_health(base), 60, f"{base} to answer")
        for n, dialect in enumerate(("advanta", "telesign")):
            attempt, guesser, other = DIALECTS[dialect], f"198.51.100.{20 + n}", f"203.0.113.{n}"
            # Failures alternate between the processes; neither saw enough alone.
            told = [attempt(bases[i % 2], victim, False, guesser) for i in range(FREE + 1)]
            assert told == ["denied"] * (FREE + 1)
            assert attempt(bases[0], victim, False, other) == "throttled"
            assert attempt(bases[1], victim, False, guesser) == "throttled"
    finally:
        for process in processes:
            process.terminate()
            process.wait(30)
        for log in logs:
            log.close()
