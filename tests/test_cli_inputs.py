"""Acceptance: no command prints a traceback, whatever its options say."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from smsgate.cli import app

runner = CliRunner()

# Any text, and the shapes that reach the deeper checks: numbers, URLs, keys.
values = st.one_of(
    st.text(max_size=20),
    st.from_regex(r"-?[0-9]{1,6}(\.[0-9]{1,3})?", fullmatch=True),
    st.sampled_from(["", "known", "-", "--", "ZZ", "KE", "0", "-5", "7", "not-a-url", "http://x.example/a",
                     "smpp://a:b@h:1?window=abc", "smpp://a:b@127.0.0.1:2775?tps=-1",
                     "daily_quota=abc", "repliable=maybe", "Africa", "Mars/Base", "2h",
                     "2026-13-45"]),
)  # fmt: skip

COMMANDS = [
    ("accounts", "create", "NAME", "--sender", "V", "--region", "V", "--timezone", "V",
     "--credit", "V", "--callback-url", "V", "--partner-id", "V", "--country", "V",
     "--option", "V"),
    ("accounts", "update", "NAME", "--sender", "V", "--region", "V", "--callback-url", "V",
     "--mo-url", "V", "--option", "V", "--unset", "V", "--country", "V"),
    ("accounts", "credit", "NAME", "V"),
    ("accounts", "keys", "NAME", "--rotate", "V"),
    ("accounts", "show", "V"),
    ("messages", "list", "--account", "V", "--number", "V", "--state", "V", "--since", "V",
     "--batch", "V", "--limit", "V"),
    ("messages", "show", "V"),
    ("callbacks", "list", "--state", "V", "--limit", "V"),
    ("connectors", "add", "V", "--smpp-url", "V"),
    ("routes", "add", "--connector", "V", "--prefix", "V", "--routing-group", "V",
     "--priority", "V"),
]  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("cli-inputs")
    saved = os.environ.get("SMSGATE_DATA_DIR")
    os.environ["SMSGATE_DATA_DIR"] = str(path)
    result = runner.invoke(app, ["accounts", "create", "known", "--credit", "1"])
    assert result.exit_code == 0, result.output
    yield path
    if saved is None:
        del os.environ["SMSGATE_DATA_DIR"]
    else:
        os.environ["SMSGATE_DATA_DIR"] = saved


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    command=st.sampled_from(COMMANDS),
    name=st.sampled_from(["known", "nobody", "", "x" * 120]),
    data=st.data(),
)
def test_no_input_gives_a_traceback(
    command: tuple[str, ...], name: str, data: st.DataObject
) -> None:
    args: list[str] = []
    keep = data.draw(st.lists(st.booleans(), min_size=len(command), max_size=len(command)))
    for index, word in enumerate(command):
        if word == "NAME":
            args.append(name)
        elif word == "V":
            if args and args[-1].startswith("--") and not keep[index]:
                args.pop()  # leave this option out
            else:
                args.append(data.draw(values))
        else:
            args.append(word)
    result = runner.invoke(app, args)
    assert "Traceback" not in result.output and "unexpected failure" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        args,
        repr(result.exception),
    )
    assert result.exit_code in {0, 1, 2}, (args, result.output)
    if result.exit_code:
        # One line that says what is wrong: ours, or click's for a malformed command line.
        complaints = [
            line for line in result.output.splitlines() if line.startswith(("smsgate: ", "Error: "))
        ]
        assert len(complaints) == 1, (args, result.output)


@pytest.mark.parametrize(
    ("raw", "complaint"),
    [
        ("12", "3 to 15 digits"),
        ("254709000991,25470900099x", "3 to 15 digits"),
        (",", "3 to 15 digits"),
        ("254709000991,+254709000991", "listed twice"),
    ],
)
def test_serve_refuses_a_bad_reply_pool_before_it_starts(raw: str, complaint: str) -> None:
    result = runner.invoke(app, ["serve", "--reply-numbers", raw])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("smsgate: --reply-numbers: ") and complaint in result.output


def test_the_reply_pool_comes_from_the_environment_too() -> None:
    from smsgate.config import Settings, SettingsError

    env = {"SMSGATE_REPLY_NUMBERS": " 254709000991, +254709000992 "}
    assert Settings.from_env(env).reply_numbers == ("254709000991", "254709000992")
    assert Settings.from_env({}).reply_numbers == ("254709000999",)
    with pytest.raises(SettingsError, match="SMSGATE_REPLY_WINDOW_HOURS"):
        Settings.from_env({"SMSGATE_REPLY_WINDOW_HOURS": "0"})
