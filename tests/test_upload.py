"""``smsgate upload-batch``: splitting a CSV file into whole-record submissions,
retrying safely, and the whole command against a real gateway on a socket."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from smsgate.cli import app
from smsgate.core.eapi_csv import BatchFormatError, parse_batch
from smsgate.eapi_upload import (
    Backoff,
    Chunk,
    UploadSummary,
    parse_params,
    split_batches,
    upload_batches,
)
from tests.api.test_eapi import GET_CREDITS, call, report
from tests.support.server import GatewayServer

HEADER = "msisdn,message,source_id"

# --- writing CSV the ways EAPI clients do -------------------------------------------------

Row = tuple[str, str, str]

# Message pieces: CSV syntax, both escape styles' raw material, every line break,
# and Latin-1 letters (ISO-8859-1 is the wire charset).
PIECES = ["a", "Z", " ", ",", '"', "\\", "\n", "\r\n", "\r", "é", "ß", "Ñ", "ÿ", "£", "x\\y"]
messages = st.lists(st.sampled_from(PIECES), max_size=12).map("".join)
rows = st.tuples(
    st.integers(1, 10**11).map(str),
    messages,
    st.text(alphabet="abc123", max_size=4),
)
breaks = st.sampled_from(["\n", "\r\n", "\r"])
blank_lines = st.sampled_from(["", "", "", "\n", "\r\n", "   \n"])


@st.composite
def quoted(draw: st.DrawFn, value: str) -> str:
    """``value`` quoted, each quote and line break written in a randomly chosen style."""
    out = [draw(st.sampled_from(["", "  "])), '"']
    for char in value:
        if char == "\\":
            out.append("\\\\")
        elif char == '"':
            out.append(draw(st.sampled_from(['""', '\\"'])))
        elif char in "\r\n":
            out.append(draw(st.sampled_from([char, "\\" + char])))
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


@st.composite
def csv_files(draw: st.DrawFn, data_rows: list[Row]) -> str:
    """A CSV file of ``data_rows``: random quoting, line breaks and blank lines."""
    lines = [draw(blank_lines), HEADER, draw(breaks)]
    for index, (msisdn, message, source_id) in enumerate(data_rows):
        lines.append(draw(blank_lines))
        plain = message and not any(c in message for c in '",\\\r\n') and message[0] != " "
        text = message if plain and draw(st.booleans()) else draw(quoted(message))
        lines.append(f"{msisdn},{text},{source_id}")
        if index < len(data_rows) - 1 or draw(st.booleans()):
            lines.append(draw(breaks))
    return "".join(lines)


def parsed_rows(text: str) -> list[Row]:
    return [
        (row.msisdn, row.message, row.overrides.get("source_id", ""))
        for row in parse_batch(text).rows
    ]


@settings(max_examples=300, deadline=None)
@given(data=st.data(), data_rows=st.lists(rows, max_size=12), per_batch=st.integers(1, 5))
def test_chunks_reparse_to_the_original_rows(
    data: st.DataObject, data_rows: list[Row], per_batch: int
) -> None:
    text = data.draw(csv_files(data_rows))
    encoding = data.draw(st.sampled_from(["utf-8", "iso-8859-1"]))
    assert parsed_rows(text) == data_rows  # the file says what it should

    chunks = list(
        split_batches(
            io.BytesIO(text.encode(encoding)), rows_per_batch=per_batch, encoding=encoding
        )
    )

    got: list[Row] = []
    for index, chunk in enumerate(chunks):
        assert chunk.text.startswith(HEADER)
        assert chunk.index == index and chunk.first_row == len(got) + 1
        chunk_rows = parsed_rows(chunk.text)
        assert len(chunk_rows) == chunk.rows <= per_batch
        got += chunk_rows
    assert got == data_rows
    assert all(chunk.rows == per_batch for chunk in chunks[:-1])


def test_broken_records_stay_whole_and_count_as_rows() -> None:
    # The gateway skips a broken record but counts it against the 30,000 rows,
    # so the split must cut around it the same way; a backslash and a space is
    # not a blank line to it. A quote never closed is a stray one: its line
    # alone is the broken record, and the line after it is a row of its own.
    text = 'msisdn,message\n1,"ok"\n2,"text"after\n\\ \n3,"multi\nline"\n4,"never closed\n5,x\n'
    chunks = list(split_batches(io.BytesIO(text.encode()), rows_per_batch=2))
    assert [chunk.text for chunk in chunks] == [
        'msisdn,message\n1,"ok"\n2,"text"after\n',
        'msisdn,message\n\\ \n3,"multi\nline"\n',
        'msisdn,message\n4,"never closed\n5,x\n',
    ]
    assert [chunk.rows for chunk in chunks] == [2, 2, 2]
    whole = parse_batch(text)
    assert len(whole.rows) + len(whole.skipped_lines) == 6


def test_byte_order_mark_and_missing_final_line_break() -> None:
    text = "\ufeffmsisdn,message"
    assert list(split_batches(io.BytesIO(text.encode()))) == []
    chunks = list(split_batches(io.BytesIO((text + "\n1,hi").encode())))
    assert chunks == [Chunk(0, 1, 1, "msisdn,message\n1,hi")]


@pytest.mark.parametrize(
    ("text", "reason"),
    [("", "empty"), ("\n  \n", "empty"), ("number,text\n1,hi\n", "lacks the column")],
)
def test_unusable_header_is_refused_before_anything(text: str, reason: str) -> None:
    with pytest.raises(BatchFormatError, match=reason):
        list(split_batches(io.BytesIO(text.encode())))


def test_params() -> None:
    assert parse_params(["sender=SHOP", "send_time=2026-01-01 10:00:00", "x=a=b"]) == {
        "sender": "SHOP",
        "send_time": "2026-01-01 10:00:00",
        "x": "a=b",
    }
    for bad in ["sender", "=x", "stop_dup_id=4", "password=x"]:
        with pytest.raises(ValueError):
            parse_params([bad])


# --- the uploader against a scripted transport -------------------------------------------


class Scripted:
    """An EAPI endpoint answering from a script; keeps every decoded request."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[dict[str, str]] = []
        self.raw: list[bytes] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.raw.append(request.content)
        fields = parse_qs(request.content.decode("ascii"), encoding="iso-8859-1")
        self.requests.append({key: values[0] for key, values in fields.items()})
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self))


def reply(line: str, status: int = 200) -> httpx.Response:
    return httpx.Response(status, content=line.encode("iso-8859-1"))


def chunks_of(*counts: int) -> list[Chunk]:
    chunks, first = [], 1
    for index, count in enumerate(counts):
        body = "".join(f"2547120000{first + n:02d},hi\n" for n in range(count))
        chunks.append(Chunk(index, first, count, "msisdn,message\n" + body))
        first += count
    return chunks


def upload(
    endpoint: Scripted,
    chunks: list[Chunk],
    *,
    params: dict[str, str] | None = None,
    backoff: Backoff | None = None,
    on_retry: Callable[[Chunk, int, str, float], None] | None = None,
) -> tuple[UploadSummary, list[float]]:
    """Upload with a fixed stop_dup_id base, recording the back-off instead of sleeping."""
    slept: list[float] = []
    summary = upload_batches(
        chunks,
        base_url="http://gateway.test/",
        username="u",
        password="p",
        params=params,
        client=endpoint.client(),
        backoff=backoff,
        stop_dup_base=500,
        sleep=slept.append,
        on_retry=on_retry,
    )
    return summary, slept


def test_code_40_is_retried_with_the_same_stop_dup_id_and_accepted_once() -> None:
    endpoint = Scripted(
        reply("40|temporarily unavailable|"),
        reply("0|IN_PROGRESS|7"),
        reply("1|SCHEDULED|8"),
    )
    retries: list[tuple[int, int, str, float]] = []
    summary, slept = upload(
        endpoint,
        chunks_of(2, 1),
        params={"send_time": "2030-01-01 10:00:00"},
        on_retry=lambda chunk, attempt, problem, delay: retries.append(
            (chunk.index, attempt, problem, delay)
        ),
    )
    assert summary.batch_ids == [7, 8]
    assert (summary.chunks_sent, summary.rows_sent, summary.failures) == (2, 3, [])
    assert [r["stop_dup_id"] for r in endpoint.requests] == ["500", "500", "501"]
    assert endpoint.raw[0] == endpoint.raw[1]
    assert all(r["send_time"] == "2030-01-01 10:00:00" for r in endpoint.requests)
    assert slept == [1.0]
    assert retries == [(0, 1, "40|temporarily unavailable|", 1.0)]


def test_transient_failures_back_off_until_accepted() -> None:
    endpoint = Scripted(
        httpx.ConnectError("refused"),
        reply("busy", status=503),
        httpx.ReadTimeout("slow"),
        reply("26|upstream credits not available|"),
        reply("28|upstream quota exceeded|"),
        reply("0|IN_PROGRESS|9"),
    )
    summary, slept = upload(endpoint, chunks_of(1), backoff=Backoff(max_delay=8))
    assert summary.batch_ids == [9]
    assert slept == [1.0, 2.0, 4.0, 8.0, 8.0]
    assert len({r["stop_dup_id"] for r in endpoint.requests}) == 1


def test_retries_are_bounded() -> None:
    endpoint = Scripted(*[reply("40|temporarily unavailable|")] * 3)
    summary, slept = upload(endpoint, chunks_of(1, 1), backoff=Backoff(max_attempts=3))
    assert slept == [1.0, 2.0]
    assert summary.batch_ids == []
    [failure] = summary.failures
    assert (failure.chunk, failure.first_row, failure.last_row) == (0, 1, 1)
    assert failure.reply == "gave up after 3 attempts; last: 40|temporarily unavailable|"


@pytest.mark.parametrize(
    "answer", ["25|insufficient credits|", "24|data validation failed: x|", "<html>hi</html>"]
)
def test_a_fatal_reply_stops_the_upload(answer: str) -> None:
    endpoint = Scripted(reply("0|IN_PROGRESS|3"), reply(answer))
    summary, slept = upload(endpoint, chunks_of(2, 2, 2))
    assert len(endpoint.requests) == 2 and slept == []  # the third chunk is never sent
    assert (summary.chunks_sent, summary.rows_sent, summary.batch_ids) == (1, 2, [3])
    [failure] = summary.failures
    assert (failure.chunk, failure.first_row, failure.last_row) == (1, 3, 4)
    assert answer in failure.reply


def test_the_body_is_iso_8859_1_whatever_the_file_was() -> None:
    endpoint = Scripted(reply("0|IN_PROGRESS|1"))
    text = "msisdn,message\n254712000001,Café Δ€\n"
    chunks = list(split_batches(io.BytesIO(text.encode("utf-8"))))
    upload(endpoint, chunks, params={"sender": "Zoë"})
    body = endpoint.raw[0].decode("ascii")
    # é as itself, Δ as its Latin-1 carriage (0xD0), € (not in Latin-1) as "?".
    assert "Caf%E9+%D0%3F" in body and "sender=Zo%EB" in body
    assert endpoint.requests[0]["batch_data"] == "msisdn,message\n254712000001,Café Ð?\n"


# --- the command against the real gateway ------------------------------------------------


def csv_file(path: Path, count: int) -> list[str]:
    numbers = [f"25471{i:06d}9" for i in range(count)]
    lines = ["msisdn,message"] + [f'{n},"Hi \\"{i}\\", see\\\nyou"' for i, n in enumerate(numbers)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return numbers


def upload_command(server: GatewayServer, creds: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        app,
        [
            "upload-batch",
            *args,
            "--url",
            server.base_url,
            "--username",
            creds["username"],
            "--password",
            creds["password"],
        ],
    )
    # Rich wraps long lines at the terminal width; the words are what matter.
    return result.exit_code, " ".join(result.output.split())


def test_upload_batch_command(gateway: GatewayServer, tmp_path: Path) -> None:
    account = gateway.create_account(credit="3000")
    numbers = csv_file(tmp_path / "rows.csv", 2500)
    code, output = upload_command(
        gateway,
        account.eapi_creds,
        str(tmp_path / "rows.csv"),
        "--rows-per-batch",
        "1000",
        "--param",
        "source_id=upload-1",
    )
    assert code == 0, output
    batch_ids = re.findall(r"batch (\d+)", output)
    assert len(batch_ids) == 3
    assert "accepted 2,500 of 2,500 rows in 3 submission(s) (2,500 sent;" in output
    for batch_id, expected in zip(
        batch_ids, [numbers[:1000], numbers[1000:2000], numbers[2000:]], strict=True
    ):
        lines = report(gateway, account, batch_id, optional_fields="body,source_id")
        assert [line[0] for line in lines] == expected
        assert {line[3] for line in lines} == {"upload-1"}
    assert lines[-1][2] == 'Hi "2499", see\\nyou'  # the report escapes the line break
    assert call(gateway, GET_CREDITS, account.eapi_creds) == "0|500.00"


def test_upload_batch_command_stops_at_a_refused_submission(
    sqlite_gateway: GatewayServer, tmp_path: Path
) -> None:
    account = sqlite_gateway.create_account(credit="1500")
    csv_file(tmp_path / "rows.csv", 2500)
    code, output = upload_command(
        sqlite_gateway, account.eapi_creds, str(tmp_path / "rows.csv"), "--rows-per-batch", "1000"
    )
    assert code == 1
    assert len(re.findall(r"batch (\d+)", output)) == 1
    assert "rows 1,001–2,000 (submission 2) failed: 25|insufficient credits|" in output
    assert call(sqlite_gateway, GET_CREDITS, account.eapi_creds) == "0|500.00"


def test_upload_batch_command_refuses_bad_input(
    sqlite_gateway: GatewayServer, tmp_path: Path
) -> None:
    account = sqlite_gateway.create_account()
    (tmp_path / "bad.csv").write_text("number,text\n254712345678,hi\n")
    code, output = upload_command(sqlite_gateway, account.eapi_creds, str(tmp_path / "bad.csv"))
    assert code == 2 and "lacks the column" in output
    (tmp_path / "latin1.csv").write_bytes(
        "msisdn,message\n254712345678,Caf\xe9\n".encode("latin-1")
    )
    code, output = upload_command(sqlite_gateway, account.eapi_creds, str(tmp_path / "latin1.csv"))
    assert code == 2 and "utf-8" in output
    assert call(sqlite_gateway, GET_CREDITS, account.eapi_creds) == "0|100.00"


def test_default_split_is_30000_rows(sqlite_gateway: GatewayServer, tmp_path: Path) -> None:
    account = sqlite_gateway.create_account(credit="30001")
    numbers = csv_file(tmp_path / "rows.csv", 30_001)
    code, output = upload_command(sqlite_gateway, account.eapi_creds, str(tmp_path / "rows.csv"))
    assert code == 0, output
    first, second = re.findall(r"batch (\d+)", output)
    assert len(report(sqlite_gateway, account, first)) == 30_000
    assert [line[0] for line in report(sqlite_gateway, account, second)] == numbers[-1:]
    assert call(sqlite_gateway, GET_CREDITS, account.eapi_creds) == "0|0.00"
