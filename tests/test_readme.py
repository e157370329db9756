"""Acceptance: every example of the README and of the demo banner, run
against a fresh ``smsgate demo``, does what the README says it prints."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from tests.support.waiting import wait_until
from tests.test_cli import banner_credentials, free_port, read_banner, start_demo, stop

README = Path(__file__).parents[1] / "README.md"
FIRST_COMMANDS = [
    "python3 -m venv .venv && .venv/bin/pip install . && .venv/bin/smsgate demo",
    "./scripts/check",
]
# Reads may be asked again until the gateway has caught up (a receipt, a reply);
# a send is run once, or the ids the README shows would move on.
PYTHON_NAMES = ("CUSTOMER_ID", "API_KEY")  # variables in the Python example, values elsewhere
READ_ONLY = ("getdlr", "getbalance", "get_report", "get_credits", "get_inbox", "/readyz")
# What each kind of banner example answers when it worked.
BANNER_SUCCESS = (
    '"response-code":200',
    '"code":293',
    '"ready":true',
    "smsgate_messages_accepted_total",
)
_TIMES = [
    (re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(\.\d+)?Z?"), "<time>"),
    (re.compile(r"\b\d\d-\d\d-\d\d \d\d:\d\d:\d\d"), "<time>"),
    (re.compile(r'"delivery-tat":"[0-9:]+"'), '"delivery-tat":"<tat>"'),
]


@dataclass
class Example:
    command: str
    expected: list[str] = field(default_factory=list)
    language: str = "sh"


def blocks(text: str) -> Iterator[tuple[str, str]]:
    for match in re.finditer(r"^```(sh|python)\n(.*?)^```$", text, re.M | re.S):
        yield match.group(1), match.group(2)


def examples(language: str, body: str) -> Iterator[Example]:
    """Commands (with their continuation lines) and the comment lines right after them."""
    current: Example | None = None
    pending = ""
    for line in body.splitlines():
        if pending:
            pending += "\n" + line
        elif line.startswith("#") and current is not None:
            current.expected.append(line[2:] if line.startswith("# ") else line[1:])
            continue
        elif not line.strip() or line.startswith("#"):
            current = None
            continue
        else:
            pending = line
        if language == "sh" and (pending.endswith("\\") or _open_quote(pending)):
            continue
        if language == "python" and pending.rstrip().endswith(","):
            continue
        example = Example(pending, language=language)
        pending = ""
        yield example
        # In Python only an expression shows a value; comments after a statement explain it.
        current = example if language == "sh" or _is_expression(example.command) else None


def _is_expression(code: str) -> bool:
    try:
        compile(code, "<readme>", "eval")
    except SyntaxError:
        return False
    return True


def _open_quote(text: str) -> bool:
    unquoted = re.sub(r"\"[^\"]*\"", "", re.sub(r"\$'[^']*'", "", text))
    return unquoted.count("'") % 2 == 1


def normalise(text: str) -> str:
    for pattern, replacement in _TIMES:
        text = pattern.sub(replacement, text)
    return text


def matches(expected: list[str], actual: str) -> bool:
    want = normalise("\n".join(expected))
    got = normalise(actual)
    if want.lstrip().startswith("{"):
        try:
            return bool(json.loads(want) == json.loads(got))
        except ValueError:
            return False
    lines = [line.rstrip() for line in got.splitlines()]
    position = 0
    for line in want.splitlines():
        try:
            position = lines.index(line.rstrip(), position) + 1
        except ValueError:
            return False
    return True


class Shell:
    """Runs the examples in order, as a reader pasting them into one shell would."""

    def __init__(self, env: dict[str, str], cwd: Path, values: dict[str, str]) -> None:
        self.env, self.cwd, self.values = env, cwd, values
        self.prelude: list[str] = []
        self.background: list[subprocess.Popen[bytes]] = []

    def localise(self, text: str, *, python: bool = False) -> str:
        for old, new in self.values.items():
            if not (python and old in PYTHON_NAMES):
                text = text.replace(old, new)
        return text

    def run(self, example: Example) -> str:
        if example.language == "python":
            return self._python(self.localise(example.command, python=True))
        command = self.localise(example.command)
        if re.fullmatch(r"[A-Z]=\S+(; [A-Z]=\S+)*", command):
            self.prelude.append(command)
            return ""
        bare = re.sub(r"\s+#[^'\"]*$", "", command).rstrip()
        if bare.endswith("&"):
            # A background job (the simulator, a second server): its own group, stopped at the end.
            self.background.append(
                subprocess.Popen(
                    ["bash", "-c", "\n".join([*self.prelude, bare[:-1]])],
                    env=self.env,
                    cwd=self.cwd,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )
            return ""
        script = "\n".join([*self.prelude, command])
        result = subprocess.run(
            ["bash", "-c", script], env=self.env, cwd=self.cwd, capture_output=True, timeout=120
        )
        assert result.returncode == 0, (command, result.stderr.decode())
        return result.stdout.decode()

    def _python(self, code: str) -> str:
        namespace: dict[str, object] = {
            "CUSTOMER_ID": self.values["CUSTOMER_ID"],
            "API_KEY": self.values["API_KEY"],
        }
        self.python_namespace = getattr(self, "python_namespace", namespace)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            try:
                value = eval(code, self.python_namespace)  # an expression: its value is shown
            except SyntaxError:
                exec(code, self.python_namespace)
                return out.getvalue()
        return json.dumps(value) if value is not None else out.getvalue()

    def localise_expected(self, lines: list[str]) -> list[str]:
        return [self.localise(line) for line in lines]

    def stop(self) -> None:
        for process in self.background:
            os.killpg(process.pid, signal.SIGTERM)
        for process in self.background:
            process.wait(30)


@pytest.fixture
def demo_shell(tmp_path: Path) -> Iterator[tuple[Shell, str]]:
    port, sim_port, spare = free_port(), free_port(), free_port()
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
        "SMSGATE_DATA_DIR": str(tmp_path / "data"),
        "SMSGATE_SANDBOX_RECEIPT_DELAY_MS": "100",
        "COLUMNS": "200",
    }
    assert shutil.which("smsgate", path=env["PATH"]) and shutil.which("curl")
    demo = start_demo(env, port)
    try:
        banner = read_banner(demo, time.monotonic() + 60)
        creds = banner_credentials(banner)
        values = {
            "127.0.0.1:8080": f"127.0.0.1:{port}",
            ":2775": f":{sim_port}",
            "--port 2775": f"--port {sim_port}",
            "--port 8081": f"--port {spare}",
            "P=123456": f"P={creds['partnerID']}",
            '"partner-id":"123456"': f'"partner-id":"{creds["partnerID"]}"',
            "K=0123456789abcdef0123456789abcdef": f"K={creds['apikey']}",
            "W=PASSWORD": f"W={creds['eapi_password']}",
            "CUSTOMER_ID": creds["customer_id"],
            "API_KEY": creds["telesign_key"],
        }
        shell = Shell(env, tmp_path, values)
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: requests.get(base + "/readyz").ok, 30, "the demo to be ready")
        try:
            yield shell, banner
        finally:
            shell.stop()
    finally:
        stop(demo)


def test_every_example_does_what_the_readme_says(demo_shell: tuple[Shell, str]) -> None:
    shell, banner = demo_shell
    found = list(blocks(README.read_text()))
    assert [body.strip() for _, body in found[:2]] == FIRST_COMMANDS
    ran = 0
    for language, body in found[2:]:
        for example in list(examples(language, body)):
            output = shell.run(example)
            ran += 1
            if not example.expected:
                continue
            if not matches(shell.localise_expected(example.expected), output) and any(
                word in example.command for word in READ_ONLY
            ):
                wait_until(
                    lambda e=example: matches(shell.localise_expected(e.expected), shell.run(e)),
                    15,
                    f"{example.command!r} to print {example.expected}",
                )
                continue
            assert matches(shell.localise_expected(example.expected), output), (
                example.command,
                output,
            )
    assert ran > 25
    # The banner's own examples: each answers with success.
    commands = re.findall(r"^  (curl .*?(?:\\\n.*?)*)$", banner, re.M)
    assert len(commands) >= 9
    for command in commands:
        output = shell.run(Example(command.replace("\\\n", " ")))
        assert any(sign in output for sign in BANNER_SUCCESS) or output.startswith("0|"), (
            command,
            output,
        )
