"""The command line as a new user meets it: a real process, a real port."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from typer.testing import CliRunner

from smsgate.cli import app
from smsgate.core.states import Reason, State
from smsgate.credentials import secret_verifies
from smsgate.store.migrate import head_revision
from smsgate.store.records import ConnectionHealth, Receipt
from smsgate.store.repo import Store
from tests.support.waiting import wait_until


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
        except requests.RequestException:  # refused, or bound but still starting
            assert time.monotonic() < deadline, f"{base} did not come up"
            time.sleep(0.05)


def smsgate(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run a command in this process: what it prints and its exit status are
    the command group's own, as the installed command's are (the commands
    that serve run as real processes below). Importing the gateway once
    instead of once a command keeps these tests quick."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        result = CliRunner().invoke(app, list(args), env=env)
    finally:
        # A command sets up logging to the runner's stderr, which is closed
        # once it returns; later log lines of this process must not go there.
        root.handlers[:], root.level = handlers, level
    return subprocess.CompletedProcess(list(args), result.exit_code, result.stdout, result.stderr)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "SMSGATE_DATA_DIR": str(tmp_path / "data"),
        "SMSGATE_SANDBOX_RECEIPT_DELAY_MS": "50",
        "COLUMNS": "200",
    }


def read_banner(process: subprocess.Popen[str], deadline: float) -> str:
    """The demo's banner, up to the line that says it listens."""
    assert process.stdout is not None
    lines: list[str] = []
    while not any(" listening on " in line for line in lines):
        line = process.stdout.readline()
        assert line and time.monotonic() < deadline, "".join(lines)
        lines.append(line)
    return "".join(lines)


def banner_credentials(banner: str) -> dict[str, str]:
    fields = {
        "partnerID": r"partnerID: (\d+)",
        "apikey": r"apikey: ([0-9a-f]+)",
        "eapi_password": r"eapi password: (\S+)",
        "customer_id": r"telesign customer id: (\S+)",
        "telesign_key": r"telesign api key: (\S+)",
        "balance": r"balance: (\S+) credits",
    }
    found = {key: re.search(pattern, banner) for key, pattern in fields.items()}
    assert all(found.values()), banner
    return {key: match.group(1) for key, match in found.items() if match}


def start_demo(env: dict[str, str], port: int, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "smsgate", "demo", "--port", str(port), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def stop(process: subprocess.Popen[str]) -> None:
    """Interrupt and wait, reading what it still prints: a full pipe would
    block its last log lines, and with them its exit."""
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=30)


@pytest.fixture
def demo(env: dict[str, str]) -> Iterator[tuple[str, dict[str, str]]]:
    port = free_port()
    process = start_demo(env, port)
    deadline = time.monotonic() + 60
    creds = banner_credentials(read_banner(process, deadline))
    base = f"http://127.0.0.1:{port}"
    wait_until_serving(base, deadline)
    try:
        yield base, creds
    finally:
        stop(process)


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
    assert balance["credit"] == "998.00" and printed["balance"] == "1000.00"
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
        "--option",
        "daily_quota=500",
        env=env,
    )
    assert created.returncode == 0, created.stderr
    # Each secret whole on its own line, however narrow the terminal.
    assert re.search(r"^telesign api key: [A-Za-z0-9+/=]{88}$", created.stdout, re.M)
    assert "partnerID: 424242" in created.stdout
    assert re.search(r"^apikey: [0-9a-f]{32}$", created.stdout, re.M)
    assert "balance 12.50" in created.stdout
    assert re.search(r"^eapi password: [A-Za-z0-9]{16}$", created.stdout, re.M)
    # A clash on an identifier creates nothing: the name stays free.
    for clash in (["--partner-id", "424242"], ["--eapi-username", "shopuser"]):
        duplicate = smsgate("accounts", "create", "other", *clash, env=env)
        assert duplicate.returncode == 1 and "nothing was created" in duplicate.stderr
        assert "other" not in smsgate("accounts", "list", env=env).stdout
    credited = smsgate("accounts", "credit", "shop", "7.5", "--note", "top up", env=env)
    assert "balance 20.00" in credited.stdout
    debited = smsgate("accounts", "credit", "shop", "-2.5", env=env)  # no "--" needed
    assert debited.returncode == 0 and "balance 17.50" in debited.stdout
    updated = smsgate(
        "accounts", "update", "shop", "--callback-url", "http://x.example/dlr",
        "--option", "repliable=yes", "--country", "254",
        "--option", "max_messages_per_second=50", "--option", "max_requests_in_flight=4", env=env,
    )  # fmt: skip
    assert updated.returncode == 0, updated.stderr
    assert "messages per second: 50" in updated.stdout
    assert "requests in flight: 4" in updated.stdout
    assert "delivery reports to: http://x.example/dlr" in updated.stdout
    assert "repliable by default: yes" in updated.stdout and "countries: +254" in updated.stdout
    listed = smsgate("accounts", "list", env=env)
    assert "shop" in listed.stdout and "17.50" in listed.stdout
    shown = smsgate("accounts", "show", "shop", env=env)
    assert "partnerID: 424242" in shown.stdout and "top up" in shown.stdout
    assert "eapi username: shopuser" in shown.stdout and "daily quota: 500" in shown.stdout
    missing = smsgate("accounts", "show", "nobody", env=env)
    assert missing.returncode == 1 and "no account named 'nobody'" in missing.stderr
    bad = smsgate("accounts", "credit", "shop", "1.234", env=env)
    assert bad.returncode == 2 and "two decimals" in bad.stderr
    assert head_revision() in smsgate("migrate", env=env).stdout


def test_keys_rotate_and_delete(env: dict[str, str]) -> None:
    created = smsgate("accounts", "create", "rot", "--partner-id", "717171", env=env).stdout
    old_key = re.search(r"apikey: (\w+)", created).group(1)  # type: ignore[union-attr]
    rotated = smsgate("accounts", "keys", "rot", "--rotate", "partner", env=env)
    new_key = re.search(r"apikey: (\w+)", rotated.stdout).group(1)  # type: ignore[union-attr]
    assert "partnerID: 717171" in rotated.stdout and new_key != old_key
    eapi = smsgate("accounts", "keys", "rot", "--rotate", "eapi", env=env)
    assert "eapi username: rot" in eapi.stdout
    telesign = smsgate("accounts", "keys", "rot", "--rotate", "telesign", env=env)
    assert re.search(r"^telesign api key: \S{88}$", telesign.stdout, re.M)
    wrong = smsgate("accounts", "keys", "rot", "--rotate", "ssh", env=env)
    assert wrong.returncode == 2 and "partner, eapi, telesign or smpp" in wrong.stderr
    smpp = smsgate("accounts", "keys", "rot", "--rotate", "smpp", env=env)
    assert re.search(r"^smpp system_id: rot\nsmpp password: \S{8}$", smpp.stdout, re.M)
    smpp_password = re.search(r"smpp password: (\S+)", smpp.stdout).group(1)  # type: ignore[union-attr]
    too_long = smsgate(
        "accounts", "keys", "rot", "--rotate", "smpp", "--username", "x" * 16, env=env
    )
    assert too_long.returncode == 2 and "1..15" in too_long.stderr
    bound = smsgate("accounts", "create", "esme", "--smpp-system-id", "esme01", env=env).stdout
    assert re.search(r"^smpp system_id: esme01\nsmpp password: \S{8}$", bound, re.M)

    async def check(store: Store) -> None:
        [(account, _)] = await store.credentials_for("partner_apikey", "717171")
        assert account.name == "rot"
        [(account, stored)] = await store.credentials_for("smpp_password", "rot")
        assert account.name == "rot" and secret_verifies(smpp_password, stored)
        assert smpp_password not in stored  # hashed

    asyncio.run(_on_store(env, check))
    assert smsgate("accounts", "delete", "rot", env=env).returncode == 2  # asks for --yes
    deleted = smsgate("accounts", "delete", "rot", "--yes", env=env)
    assert deleted.returncode == 0 and "rot" not in smsgate("accounts", "list", env=env).stdout
    again = smsgate("accounts", "create", "rot", "--partner-id", "717171", env=env)
    assert again.returncode == 0  # its identifiers are free again


async def _on_store(env: dict[str, str], work: Any) -> None:
    store = await Store.open(f"sqlite:///{env['SMSGATE_DATA_DIR']}/smsgate.sqlite3")
    try:
        await work(store)
    finally:
        await store.close()


def test_separate_api_and_worker_processes_share_the_database(env: dict[str, str]) -> None:
    """``serve --no-workers`` accepts, a separate ``worker`` delivers: the scale-out shape."""
    created = smsgate(
        "accounts", "create", "split", "--credit", "5", "--partner-id", "515151", env=env
    )
    apikey = re.search(r"apikey: ([0-9a-f]{32})", created.stdout).group(1)  # type: ignore[union-attr]
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

    assert "never reported" in listed

    async def bind_elsewhere() -> None:  # as a running worker would
        store = await Store.open(f"sqlite:///{env['SMSGATE_DATA_DIR']}/smsgate.sqlite3")
        try:
            assert await store.hold_connector_lease("smsc1", "worker-a", 60_000)
            failing = ConnectionHealth(
                "smsc1", "failing", 0, "bind_transceiver refused: ESME_RINVPASWD", 0, 20, 0, 0, 0, 0
            )
            await store.report_health("worker-a", [failing])
            await store.record_receipts(
                [
                    Receipt(
                        "smsc1", "77", State.DELIVERED, Reason.NONE, "DELIVRD", 1, carrier_ref="4d"
                    )
                ]
            )
        finally:
            await store.close()

    asyncio.run(bind_elsewhere())
    listed = smsgate("connectors", "list", env=env).stdout
    assert "worker-a" in listed  # who binds it, and what the bind is doing
    assert "failing since 1970-01-01 00:00:00Z: bind_transceiver refused: ESME_RINVPASWD" in listed
    unmatched = smsgate("receipts", "unmatched", env=env).stdout
    assert "smsc1" in unmatched and "4d" in unmatched and "delivered" in unmatched
    bad = smsgate("connectors", "add", "x", "--smpp-url", "http://nope", env=env)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    window = smsgate("connectors", "add", "x", "--smpp-url", url + "&window=abc", env=env)
    assert window.returncode == 2 and "window='abc' is not a whole number" in window.stderr
    added = smsgate("routes", "add", "--connector", "smsc1", "--prefix", "25471", env=env)
    assert added.returncode == 0 and "route 1 added" in added.stdout
    assert smsgate("routes", "add", "--connector", "ghost", env=env).returncode != 0
    group = smsgate("routes", "add", "--connector", "smsc1", "--routing-group", "7", env=env)
    assert group.returncode == 2 and "--routing-group" in group.stderr
    assert "25471" in smsgate("routes", "list", env=env).stdout
    priced = smsgate(
        "routes", "add", "--connector", "smsc1", "--prefix", "254", "--price", "0.65", env=env
    )
    assert priced.returncode == 0 and "0.65" in smsgate("routes", "list", env=env).stdout
    for bad in ("-1", "0.001", "abc"):
        refused = smsgate("routes", "add", "--connector", "smsc1", "--price", bad, env=env)
        assert refused.returncode == 2 and "--price" in refused.stderr, bad
    assert smsgate("connectors", "remove", "smsc1", env=env).returncode == 0
    assert "25471" not in smsgate("routes", "list", env=env).stdout  # its routes went too
    assert smsgate("routes", "remove", "1", env=env).returncode == 1


def test_messages_and_callbacks_commands(env: dict[str, str]) -> None:
    """A message's whole history, its failed callback attempts and the receiver's answer."""
    created = smsgate("accounts", "create", "hist", "--credit", "5", env=env).stdout
    creds = {
        "partnerID": re.search(r"partnerID: (\d+)", created).group(1),  # type: ignore[union-attr]
        "apikey": re.search(r"apikey: (\w+)", created).group(1),  # type: ignore[union-attr]
    }
    dead = f"http://127.0.0.1:{free_port()}/dlr"
    assert smsgate("accounts", "update", "hist", "--callback-url", dead, env=env).returncode == 0
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "smsgate", "serve", "--port", str(port)],
        env={**env, "SMSGATE_CALLBACK_TIME_SCALE": "0.001"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_serving(base, time.monotonic() + 60)
        reply = requests.post(
            f"{base}/api/services/sendsms",
            json={
                **creds,
                "message": "secret text",
                "shortcode": "SMSGATE",
                "mobile": "0712345678",
            },
        ).json()
        message_id = reply["responses"][0]["messageid"]

        def attempts() -> int:
            shown = smsgate("messages", "show", str(message_id), env=env).stdout
            return shown.count("dlr callback attempt")

        wait_until(lambda: attempts() >= 2, 60, "two callback attempts")
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(30)
    shown = smsgate("messages", "show", str(message_id), env=env).stdout
    assert f"message {message_id} of batch" in shown and "account hist" in shown
    history = shown[shown.index("history:") :]
    assert re.search(
        r"accepted\n.*claimed attempt 1 by \S+\n.*submitted to sandbox, carrier id ", history
    )
    assert "receipt delivered" in shown and "final delivered" in shown
    assert f"dlr callback attempt 1 to {dead}: retry (ClientConnectorError" in shown
    assert "secret text" not in shown and "(11 characters)" in shown
    listed = smsgate(
        "messages", "list", "--account", "hist", "--state", "delivered",
        "--number", "254712345678", env=env,
    )  # fmt: skip
    assert "+254712345678" in listed.stdout and "1 message(s)" in listed.stdout
    assert "0 message(s)" in smsgate("messages", "list", "--until", "1d", env=env).stdout
    callbacks = smsgate("callbacks", "list", "--account", "hist", env=env).stdout
    assert dead in callbacks and "ClientConnectorError" in callbacks and "pending" in callbacks
    bad = smsgate("messages", "list", "--state", "lost", env=env)
    assert bad.returncode == 2 and "expected one of" in bad.stderr


def test_demo_keeps_its_credentials_and_resets_its_balance(env: dict[str, str]) -> None:
    port = free_port()
    first = start_demo(env, port)
    try:
        printed = banner_credentials(read_banner(first, time.monotonic() + 60))
        base = f"http://127.0.0.1:{port}"
        wait_until_serving(base, time.monotonic() + 30)
        creds = {"partnerID": printed["partnerID"], "apikey": printed["apikey"]}
        requests.post(
            f"{base}/api/services/sendsms",
            json={**creds, "message": "x", "shortcode": "SMSGATE", "mobile": "0712345678"},
        )
        busy = smsgate("demo", "--port", str(port), env=env)  # port taken: nothing replaced
        assert busy.returncode == 1 and len(busy.stderr.strip().splitlines()) == 1
    finally:
        stop(first)
    again = start_demo(env, port)
    try:
        reprinted = banner_credentials(read_banner(again, time.monotonic() + 60))
    finally:
        stop(again)
    assert reprinted == {**printed, "balance": "1000.00"}
    fresh = start_demo(env, port, "--new-credentials")
    try:
        renewed = banner_credentials(read_banner(fresh, time.monotonic() + 60))
        wait_until_serving(f"http://127.0.0.1:{port}", time.monotonic() + 30)
        old = requests.post(f"http://127.0.0.1:{port}/api/services/getbalance", json=creds)
        assert old.json()["response-code"] == 1006  # the old key no longer works
    finally:
        stop(fresh)
    assert renewed["apikey"] != printed["apikey"]
    assert renewed["eapi_password"] != printed["eapi_password"]


def test_an_upstream_http_connection(env: dict[str, str]) -> None:
    url = "advanta+https://12345:K3Y@sms.example.com/api/services?in_flight=2&tps=20"
    added = smsgate("connectors", "add", "up1", "--http-url", url, env=env)
    assert added.returncode == 0, added.stderr
    [path] = re.findall(r"/upstream/[0-9a-f]{32}", added.stdout)
    listed = smsgate("connectors", "list", env=env).stdout
    assert "up1" in listed and "advanta" in listed and "K3Y" not in listed
    assert path in listed  # the same secret path, derived again
    bad = smsgate("connectors", "add", "x", "--http-url", url + "&batch=5000", env=env)
    assert bad.returncode != 0 and "batch: advanta takes at most 1,000" in bad.stderr
    assert "Traceback" not in bad.stderr
    both = smsgate("connectors", "add", "x", env=env)
    assert both.returncode != 0 and "--smpp-url" in both.stderr
    apart = smsgate(
        "connectors", "add", "up2", "--http-url", "https://rest.example.com", "--dialect",
        "telesign", "--username", "CUST", "--password", "a/b+c==", env=env,
    )  # fmt: skip
    assert apart.returncode == 0, apart.stderr
    assert "telesign" in smsgate("connectors", "list", env=env).stdout
    half = smsgate(
        "connectors", "add", "x", "--http-url", "https://h.example", "--dialect", "eapi", env=env
    )
    assert half.returncode != 0 and "--username and --password" in half.stderr
