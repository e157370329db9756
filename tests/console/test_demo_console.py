"""Acceptance: ``smsgate demo`` prints the console's address and logins, and
they open the demo account's traffic."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import requests

from tests.console.support import csrf_of
from tests.test_cli import free_port, read_banner, start_demo, stop, wait_until_serving


def log_in(console: str, login: str, password: str) -> requests.Session:
    session = requests.Session()
    form = session.get(console + "login", timeout=10).text
    reply = session.post(
        console + "login",
        data={"csrf": csrf_of(form), "login": login, "password": password},
        timeout=10,
    )
    assert reply.url == console, reply.text
    return session


def test_the_demo_banner_opens_the_console_on_the_demo_traffic(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "SMSGATE_DATA_DIR": str(tmp_path / "data")}
    process = start_demo(env, port)
    try:
        banner = read_banner(process, time.monotonic() + 60)
        base = f"http://127.0.0.1:{port}"
        wait_until_serving(base, time.monotonic() + 30)
        found = {
            key: re.search(pattern, banner)
            for key, pattern in {
                "console": r"Web console: (\S+)",
                "operator": r"console operator login: (\S+)",
                "operator_password": r"console operator password: (\S+)",
                "user": r"console account login \(the demo account only\): (\S+)",
                "user_password": r"console account password: (\S+)",
                "partner": r"partnerID: (\d+)",
                "apikey": r"apikey: ([0-9a-f]+)",
            }.items()
        }
        assert all(found.values()), banner
        value = {key: match.group(1) for key, match in found.items() if match}
        console = value["console"]
        assert console == f"{base}/console/"
        sent = requests.post(
            f"{base}/api/services/sendsms/",
            json={
                "partnerID": value["partner"],
                "apikey": value["apikey"],
                "message": "Hello from the demo",
                "shortcode": "SMSGATE",
                "mobile": "0712345678",
            },
            timeout=10,
        ).json()
        message_id = sent["responses"][0]["messageid"]
        for login, password in (
            (value["operator"], value["operator_password"]),
            (value["user"], value["user_password"]),
        ):
            session = log_in(console, login, password)
            listed = session.get(console + "messages", timeout=10).text
            assert f'data-message="{message_id}"' in listed and "Hello from the demo" in listed
        assert "Sandbox phones" not in session.get(console, timeout=10).text  # the account user
    finally:
        stop(process)
