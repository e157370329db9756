"""``smsgate smpp-server`` as a process of its own, and ``serve --smpp``: an
account made with the command line binds with its SMPP credentials, and what
it submits is in the database the other roles share."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from smsgate.smpp.pdu import Bind, CommandId, Status
from tests.smpp.test_smpp_server import RawEsme, submit
from tests.support.waiting import wait_until
from tests.test_cli import env, free_port, smsgate, stop  # noqa: F401 (env is a fixture)


def connectable(port: int) -> bool:
    try:
        RawEsme(port).close()
    except OSError:
        return False
    return True


@pytest.mark.parametrize(
    "command", [["smpp-server"], ["serve", "--smpp", "--no-workers"]], ids=["role", "serve"]
)
def test_the_command_serves_binds_with_the_accounts_credentials(
    env: dict[str, str],  # noqa: F811
    command: list[str],
) -> None:
    created = smsgate(
        "accounts", "create", "esme", "--credit", "100", "--smpp-system-id", "esme01", env=env
    )
    password = re.search(r"smpp password: (\S+)", created.stdout).group(1)  # type: ignore[union-attr]
    port = free_port()
    extra = ["--port", str(free_port())] if command[0] == "serve" else []
    process = subprocess.Popen(
        [sys.executable, "-m", "smsgate", *command, *extra, "--smpp-port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: connectable(port), timeout=60, what="the SMPP server listening")
        esme = RawEsme(port)
        sequence = esme.request(CommandId.BIND_TRANSMITTER, Bind("esme01", password))
        assert esme.answer_to(sequence).command_status == Status.ROK
        sequence = esme.request(CommandId.SUBMIT_SM, submit())
        answer = esme.answer_to(sequence)
        assert answer.command_status == Status.ROK
        assert answer.body.message_id.isdigit()  # type: ignore[union-attr]
        esme.close()
    finally:
        stop(process)
    listed = smsgate("accounts", "show", "esme", env=env)
    assert "smpp system_id: esme01" in listed.stdout
    assert re.search(r"messages: .*\b1\b", listed.stdout), listed.stdout
