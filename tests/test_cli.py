"""The command line as a new user meets it: a real process, a real port."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from smsgate.store.migrate import head_revision
from smsgate.store.repo import Store


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_serving(base: str, deadline: float) -> None:
    """Poll the health endpoint until the server answers (or the deadline passes)."""
    while True:
        try:
            requests.get(base + "/healthz", timeout=1)
            return
        except requests.ConnectionError:
            assert time.monotonic() < deadline, f"{base} did not come up"
            time.sleep(0.05)


def smsgate(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "smsgate", *args],
        env=env,
        text=True,
        capture_output=True,
        timeout=60,
    )


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "SMSGATE_DATA_DIR": str(tmp_path / "data"),
        "SMSGATE_SANDBOX_RECEIPT_DELAY_MS": "50",
        "COLUMNS": "200",
    }


@pytest.fixture
def demo(env: dict[str, str]) -> Iterator[tuple[str, dict[str, str]]]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "smsgate", "demo", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 60
    while not any(line.startswith("  balance") for line in lines):
        line = process.stdout.readline()
        assert line and time.monotonic() < deadline, "".join(lines)
        lines.append(line)
    banner = "".join(lines)
    creds = {
        "partnerID": re.search(r"partnerID : (\d+)", banner).group(1),  # type: ignore[union-attr]
        "apikey": re.search(r"apikey    : ([0-9a-f]+)", banner).group(1),  # type: ignore[union-attr]
        "eapi_password": re.search(r"password (\S+)", banner).group(1),  # type: ignore[union-attr]
        "customer_id": re.search(r"customer id (\S+)", banner).group(1),  # type: ignore[union-attr]
        "telesign_key": re.search(r"api key (\S+)", banner).group(1),  # type: ignore[union-attr]
    }
    base = f"http://127.0.0.1:{port}"
    wait_until_serving(base, deadline)
    try:
        yield base, creds
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(30)


def test_demo_prints_working_credentials(demo: tuple[str, dict[str, str]]) -> None:
    base, printed = demo
    creds = {"partnerID": printed["partnerID"], "apikey": printed["apikey"]}
    eapi = requests.get(
        f"{base}/eapi/user/get_credits/1/1.1",
        params={"username": "demo", "password": printed["eapi_password"]},
    )
    assert eapi.text == "0|1000.00"
    telesign = requests.post(
        f"{base}/v1/verify/bulk_sms",
        auth=(printed["customer_id"], printed["telesign_key"]),
        data={"recipients": "254712345678", "template": "Your code is 1234"},
    )
    assert telesign.status_code == 200 and telesign.json()["status"]["code"] == 293
    reply = requests.get(
        f"{base}/api/services/sendsms",
        params={**creds, "message": "demo", "shortcode": "SMSGATE", "mobile": "0712345678"},
    ).json()
    [entry] = reply["responses"]
    assert entry["response-code"] == 200
    balance = requests.post(f"{base}/api/services/getbalance", json=creds).json()
    assert balance["credit"] == "998.00"
    deadline = time.monotonic() + 10
    while True:
        report = requests.post(
            f"{base}/api/services/getdlr", json={**creds, "messageID": entry["messageid"]}
        ).json()
        if report.get("delivery-description") == "DeliveredToTerminal":
            break
        assert time.monotonic() < deadline, report
        time.sleep(0.05)


def test_accounts_commands(env: dict[str, str]) -> None:
    created = smsgate(
        "accounts",
        "create",
        "shop",
        "--sender",
        "SHOP",
        "--credit",
        "12.5",
        "--partner-id",
        "424242",
        "--eapi-username",
        "shopuser",
        "--telesign",
        env=env,
    )
    assert created.returncode == 0, created.stderr
    assert re.search(
        r"telesign  customer id [0-9A-F-]{36}\n +api key +[A-Za-z0-9+/=]{88}", created.stdout
    )
    assert "partnerID 424242" in created.stdout
    assert re.search(r"apikey    [0-9a-f]{32}", created.stdout)
    assert "balance   12.50" in created.stdout
    assert re.search(r"eapi      shopuser / [A-Za-z0-9]{16}", created.stdout)
    duplicate = smsgate("accounts", "create", "other", "--partner-id", "424242", env=env)
    assert duplicate.returncode != 0
    credited = smsgate("accounts", "credit", "shop", "7.5", "--note", "top up", env=env)
    assert "balance 20.00" in credited.stdout
    updated = smsgate("accounts", "update", "shop", "--callback-url", "http://x/dlr", env=env)
    assert "callback http://x/dlr" in updated.stdout
    listed = smsgate("accounts", "list", env=env)
    assert "shop" in listed.stdout and "20.00" in listed.stdout
    shown = smsgate("accounts", "show", "shop", env=env)
    assert "partner_apikey: 424242" in shown.stdout and "top up" in shown.stdout
    assert "eapi_password: shopuser" in shown.stdout
    missing = smsgate("accounts", "show", "nobody", env=env)
    assert missing.returncode == 1
    bad = smsgate("accounts", "credit", "shop", "1.234", env=env)
    assert bad.returncode == 2 and "two decimals" in bad.stdout
    assert head_revision() in smsgate("migrate", env=env).stdout


def test_separate_api_and_worker_processes_share_the_database(env: dict[str, str]) -> None:
    """``serve --no-workers`` accepts, a separate ``worker`` delivers: the scale-out shape."""
    created = smsgate(
        "accounts", "create", "split", "--credit", "5", "--partner-id", "515151", env=env
    )
    apikey = re.search(r"apikey    ([0-9a-f]{32})", created.stdout).group(1)  # type: ignore[union-attr]
    creds = {"partnerID": "515151", "apikey": apikey}
    port = free_port()
    api = subprocess.Popen(
        [sys.executable, "-m", "smsgate", "serve", "--no-workers", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    worker = None
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_serving(base, time.monotonic() + 30)
        reply = requests.post(
            f"{base}/api/services/sendsms",
            json={**creds, "message": "split", "shortcode": "SHOP", "mobile": "0712345678"},
        ).json()
        message_id = reply["responses"][0]["messageid"]

        def description() -> str:
            report = requests.post(
                f"{base}/api/services/getdlr", json={**creds, "messageID": message_id}
            ).json()
            return str(report.get("delivery-description", report["response-description"]))

        assert description() == "No dlr"  # nobody dispatches yet
        worker = subprocess.Popen(
            [sys.executable, "-m", "smsgate", "worker"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while description() != "DeliveredToTerminal":
            assert time.monotonic() < deadline, description()
            time.sleep(0.05)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(20) == 0
    finally:
        api.send_signal(signal.SIGINT)
        api.wait(20)
        if worker is not None and worker.poll() is None:
            worker.kill()


def test_connectors_and_routes_commands(env: dict[str, str]) -> None:
    url = "smpp://esme:s3cret@127.0.0.1:2775?window=20&tps=50"
    assert smsgate("connectors", "add", "smsc1", "--smpp-url", url, env=env).returncode == 0
    listed = smsgate("connectors", "list", env=env).stdout
    assert "smsc1" in listed and "127.0.0.1:2775" in listed and "s3cret" not in listed
    assert "worker-a" not in listed

    async def bind_elsewhere() -> None:  # as a running worker would
        store = await Store.open(f"sqlite:///{env['SMSGATE_DATA_DIR']}/smsgate.sqlite3")
        try:
            assert await store.hold_connector_lease("smsc1", "worker-a", 60_000)
        finally:
            await store.close()

    asyncio.run(bind_elsewhere())
    assert "worker-a" in smsgate("connectors", "list", env=env).stdout  # who binds it
    bad = smsgate("connectors", "add", "x", "--smpp-url", "http://nope", env=env)
    assert bad.returncode == 2
    added = smsgate("routes", "add", "--connector", "smsc1", "--prefix", "25471", env=env)
    assert added.returncode == 0 and "route 1 added" in added.stdout
    assert smsgate("routes", "add", "--connector", "ghost", env=env).returncode != 0
    assert "25471" in smsgate("routes", "list", env=env).stdout
    assert smsgate("connectors", "remove", "smsc1", env=env).returncode == 0
    assert "25471" not in smsgate("routes", "list", env=env).stdout  # its routes went too
    assert smsgate("routes", "remove", "1", env=env).returncode == 1
