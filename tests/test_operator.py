"""What an operator meets running smsgate: the log after a bad session, a
second process on one data directory, a taken port, a database that is not
there, and a simulator stopped from a background job."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.support.waiting import wait_until
from tests.test_cli import free_port, read_banner, smsgate, wait_until_serving


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "SMSGATE_DATA_DIR": str(tmp_path / "data"),
        "SMSGATE_SANDBOX_RECEIPT_DELAY_MS": "50",
        "SMSGATE_CALLBACK_TIME_SCALE": "0.001",
        "PYTHONUNBUFFERED": "1",
    }


def test_the_default_log_names_each_problem_once_without_numbers(
    env: dict[str, str], tmp_path: Path
) -> None:
    sim_port, dead_port, port = free_port(), free_port(), free_port()
    simulator = subprocess.Popen(
        [sys.executable, "-m", "smsgate", "smsc-sim", "--port", str(sim_port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    stderr = (tmp_path / "demo.log").open("w+")
    demo = None
    try:
        assert simulator.stdout is not None and "listening" in simulator.stdout.readline()
        wrong = f"smpp://smsgate:wrong@127.0.0.1:{sim_port}"
        assert smsgate("connectors", "add", "smsc1", "--smpp-url", wrong, env=env).returncode == 0
        demo = subprocess.Popen(
            [sys.executable, "-m", "smsgate", "demo", "--port", str(port)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        banner = read_banner(demo, time.monotonic() + 60)
        creds = {
            "partnerID": re.search(r"partnerID: (\d+)", banner).group(1),  # type: ignore[union-attr]
            "apikey": re.search(r"apikey: (\w+)", banner).group(1),  # type: ignore[union-attr]
        }
        base = f"http://127.0.0.1:{port}"
        wait_until_serving(base, time.monotonic() + 30)
        dead = f"http://127.0.0.1:{dead_port}/dlr"
        assert (
            smsgate("accounts", "update", "demo", "--callback-url", dead, env=env).returncode == 0
        )
        time.sleep(1.1)  # the API trusts a credential lookup (with the account) for a second
        sent = requests.post(
            base + "/api/services/sendsms",
            json={**creds, "message": "hi", "shortcode": "SMSGATE", "mobile": "254712345678"},
        ).json()
        assert sent["responses"][0]["response-code"] == 200
        refused = requests.post(
            base + "/api/services/sendsms",
            json={**creds, "message": "hi", "shortcode": "NOTMINE", "mobile": "254712345678"},
        ).json()
        assert refused["response-code"] == 1001

        def log() -> str:
            stderr.seek(0)
            return stderr.read()

        wait_until(lambda: "callback" in log() and "ESME_RINVPASWD" in log(), 30, "problems")
        # The lease holder's record of the connection reaches /metrics too.
        failing = 'smsgate_connection_state{connector="smsc1",state="failing"} 1.0'
        wait_until(lambda: failing in requests.get(base + "/metrics").text, 30, "failing state")
    finally:
        if demo is not None:
            demo.send_signal(signal.SIGINT)
            demo.wait(30)
        simulator.send_signal(signal.SIGINT)
        simulator.wait(30)
    text = log()
    lines = text.splitlines()
    callback = [line for line in lines if "callback" in line and dead in line]
    bind = [line for line in lines if "refused: ESME_RINVPASWD" in line]
    request = [line for line in lines if "refused advanta" in line and "1001" in line]
    assert len(callback) == 1 and "WARNING" in callback[0], text
    assert len(bind) == 1 and "WARNING" in bind[0], text
    assert len(request) == 1 and "INFO" in request[0], text
    assert "Traceback" not in text, text
    assert not re.search(r"(?<![0-9A-Za-z])\+?\d{9,15}(?![0-9A-Za-z])", text), text
    stderr.close()


def test_a_second_process_on_one_data_directory_refuses(env: dict[str, str]) -> None:
    port = free_port()
    first = subprocess.Popen(
        [sys.executable, "-m", "smsgate", "serve", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_until_serving(f"http://127.0.0.1:{port}", time.monotonic() + 60)
        second = smsgate("worker", env=env)
        assert second.returncode == 1
        [line] = second.stderr.strip().splitlines()
        assert f"pid {first.pid} already runs the delivery workers" in line
        assert "--no-workers" in line
        taken = smsgate("serve", "--no-workers", "--port", str(port), env=env)
        assert taken.returncode == 1
        [line] = taken.stderr.strip().splitlines()
        assert f"cannot listen on 127.0.0.1:{port}" in line and "another --port" in line
        assert "listening" not in taken.stdout
    finally:
        first.send_signal(signal.SIGINT)
        first.wait(30)


@pytest.mark.postgres
def test_database_set_up_errors_are_one_line(env: dict[str, str], postgres_url: str) -> None:
    missing = postgres_url.rsplit("=", 1)[0] + "=no_such_schema"
    refused = f"postgresql://postgres@127.0.0.1:{free_port()}/test"
    runs = {
        says: subprocess.Popen(
            [sys.executable, "-m", "smsgate", "accounts", "list"],
            env={**env, "SMSGATE_DATABASE_URL": url}, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
        )
        for url, says in (
            (missing, "schema in search_path does not exist"),
            (refused, "cannot reach"),
        )
    }  # fmt: skip
    for says, process in runs.items():
        _, err = process.communicate(timeout=60)
        assert process.returncode == 1
        [line] = err.strip().splitlines()
        assert says in line and "SMSGATE_DATABASE_URL" in line


def test_the_simulator_stops_on_signals_even_as_a_background_job(env: dict[str, str]) -> None:
    # A shell starts a background job (smsc-sim … &) with SIGINT ignored.
    processes = {
        sig: subprocess.Popen(
            [sys.executable, "-m", "smsgate", "smsc-sim", "--port", str(free_port())],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
        )
        for sig in (signal.SIGINT, signal.SIGTERM)
    }  # fmt: skip
    for sig, process in processes.items():
        assert process.stdout is not None and "listening" in process.stdout.readline()
        process.send_signal(sig)
    for process in processes.values():
        out, err = process.communicate(timeout=30)
        assert process.returncode == 0, err
        assert "stopped" in out and "Traceback" not in err
