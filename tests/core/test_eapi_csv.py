"""The send_batch ``batch_data`` reader: the seed's examples, its lenient rules, and speed."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smsgate.core.eapi_csv import (
    DEFAULT_MAX_LENGTHS,
    MAX_RECORD_LINES,
    BatchFormatError,
    BatchRow,
    BatchTooLarge,
    ParsedBatch,
    parse_batch,
)

# The two request URLs of the seed (BulkSMS send_batch documentation), verbatim
# apart from the host; batch_data arrives form-decoded, as parse_qs gives it.
SEED_SIMPLE_URL = (
    "https://eapi.example/submission/send_batch/1/1.0?username=john&password=abcd1234"
    "&batch_data=msisdn,message%0a%22111111111%22,%22Hi+there%22%0a%22333333333%22,"
    "%22Hello+again%22"
)
SEED_ESCAPED_URL = (
    "https://eapi.example/submission/send_batch/1/1.0?username=john&password=abcd1234"
    "&batch_data=msisdn,message%0a%22111111111%22,%22Hi+there%22%0a%22333333333%22,"
    "%22Hello+again.+Here+is+some+%5C%22quoted+text%5C%22.%5C%0aThis+text+follows+a+newline%22"
)


def batch_data(url: str) -> str:
    return parse_qs(urlsplit(url).query)["batch_data"][0]


def messages(parsed: ParsedBatch) -> list[tuple[int, str, str]]:
    return [(row.line, row.msisdn, row.message) for row in parsed.rows]


# --- the seed's examples ------------------------------------------------------------------


def test_seed_simple_example() -> None:
    parsed = parse_batch(batch_data(SEED_SIMPLE_URL))
    assert parsed == ParsedBatch(
        rows=[
            BatchRow(2, "111111111", "Hi there", {}),
            BatchRow(3, "333333333", "Hello again", {}),
        ],
        skipped_lines=[],
    )


def test_seed_escaped_newline_and_quotes_example() -> None:
    parsed = parse_batch(batch_data(SEED_ESCAPED_URL))
    assert messages(parsed) == [
        (2, "111111111", "Hi there"),
        (
            3,
            "333333333",
            'Hello again. Here is some "quoted text".\nThis text follows a newline',
        ),
    ]
    assert parsed.skipped_lines == []


def test_seed_unencoded_rows_under_a_header() -> None:
    text = 'msisdn,message\n"111111111","Hi there"\n"333333333","Hello again"\n'
    assert messages(parse_batch(text)) == [
        (2, "111111111", "Hi there"),
        (3, "333333333", "Hello again"),
    ]


# --- the header ---------------------------------------------------------------------------


def test_header_only_gives_no_rows() -> None:
    assert parse_batch("msisdn,message\n") == ParsedBatch([], [])
    assert parse_batch("msisdn,message") == ParsedBatch([], [])


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("\n \r\n\n", "empty"),
        ("msisdn\n123\n", "lacks the column(s) message"),
        ("to,message\n123,hi\n", "lacks the column(s) msisdn"),
        ("phone,text\n123,hi\n", "lacks the column(s) msisdn, message"),
        ("msisdn,message,MSISDN\n1,2,3\n", "'msisdn' twice"),
        ('"msisdn,message\n123,hi\n', "cannot be read"),
    ],
)
def test_unusable_header_rejects_the_batch(text: str, reason: str) -> None:
    with pytest.raises(BatchFormatError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        parse_batch(text)


def test_batch_format_error_is_a_value_error() -> None:
    assert issubclass(BatchFormatError, ValueError)


def test_header_names_are_case_insensitive_and_trimmed_after_blank_lines() -> None:
    parsed = parse_batch('\n\r\n  \n MSISDN , "Message",Sender\n27821234567,hi,ACME\n')
    assert parsed.rows == [BatchRow(5, "27821234567", "hi", {"sender": "ACME"})]


def test_columns_may_come_in_any_order() -> None:
    parsed = parse_batch("message,source_id,msisdn\nhello,abc,123\n")
    assert parsed.rows == [BatchRow(2, "123", "hello", {"source_id": "abc"})]


# --- per-row overrides --------------------------------------------------------------------


def test_extra_columns_become_overrides_by_lower_case_name() -> None:
    text = (
        "msisdn,message,Sender,SOURCE_ID,dca,want_report,Routing_Group,stop_dup_id,msg_class\n"
        "123,hi,ACME,acct-7,16bit,0,3,42,0\n"
    )
    (row,) = parse_batch(text).rows
    assert row.overrides == {
        "sender": "ACME",
        "source_id": "acct-7",
        "dca": "16bit",
        "want_report": "0",
        "routing_group": "3",
        "stop_dup_id": "42",
        "msg_class": "0",
    }


def test_blank_overrides_are_left_out_and_values_trimmed() -> None:
    text = 'msisdn,message,sender,source_id\n123,hi,, x \n456,yo,"  ",""\n'
    parsed = parse_batch(text)
    assert [row.overrides for row in parsed.rows] == [{"source_id": "x"}, {}]


def test_unnamed_columns_are_ignored() -> None:
    parsed = parse_batch("msisdn,message,\n123,hi,whatever\n456,yo,\n")
    assert [(row.msisdn, row.overrides) for row in parsed.rows] == [("123", {}), ("456", {})]


# --- quoting and escapes ------------------------------------------------------------------


def test_quoted_fields_keep_commas_and_line_breaks_and_lines_are_counted() -> None:
    text = 'msisdn,message\n"1","a, b\nc\r\nd"\n2,"x"\n'
    parsed = parse_batch(text)
    assert messages(parsed) == [(2, "1", "a, b\nc\r\nd"), (5, "2", "x")]


def test_backslash_quote_and_doubled_quote_both_mean_a_quote() -> None:
    text = 'msisdn,message\n1,"say \\"hi\\""\n2,"say ""hi"""\n3,"\\""\n'
    assert [row.message for row in parse_batch(text).rows] == ['say "hi"', 'say "hi"', '"']


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_backslash_newline_is_a_newline(newline: str) -> None:
    text = f'msisdn,message{newline}1,"one\\{newline}two"{newline}2,next{newline}'
    assert messages(parse_batch(text)) == [(2, "1", f"one{newline}two"), (4, "2", "next")]


def test_other_backslashes_are_kept_and_a_doubled_one_is_one() -> None:
    text = 'msisdn,message\n1,"C:\\temp\\new \\o/"\n2,"ends in \\\\"\n3,C:\\dir\n'
    assert [row.message for row in parse_batch(text).rows] == [
        "C:\\temp\\new \\o/",
        "ends in \\",
        "C:\\dir",
    ]


def test_unquoted_and_quoted_fields_mix_and_space_before_a_quote_is_allowed() -> None:
    text = 'msisdn,message,sender\n123, "hi there",  "ACME"\n"456",plain text,X\n'
    parsed = parse_batch(text)
    assert [(r.msisdn, r.message, r.overrides) for r in parsed.rows] == [
        ("123", "hi there", {"sender": "ACME"}),
        ("456", "plain text", {"sender": "X"}),
    ]


def test_a_quote_inside_an_unquoted_field_is_data() -> None:
    assert parse_batch('msisdn,message\n1,5" screen\n').rows[0].message == '5" screen'


# --- line ends and blank lines ------------------------------------------------------------


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_line_ends(newline: str) -> None:
    text = newline.join(["msisdn,message", "1,a", '"2","b"', "3,c"]) + newline
    assert messages(parse_batch(text)) == [(2, "1", "a"), (3, "2", "b"), (4, "3", "c")]


def test_blank_lines_are_ignored_but_counted_for_line_numbers() -> None:
    text = "msisdn,message\r\n\r\n1,a\r\n   \r\n\t\r\n2,b\r\n\r\n"
    parsed = parse_batch(text)
    assert messages(parsed) == [(3, "1", "a"), (6, "2", "b")]
    assert parsed.skipped_lines == []


# --- invalid lines are skipped ------------------------------------------------------------


def test_wrong_field_counts_and_blank_msisdn_are_skipped_and_reported() -> None:
    text = "msisdn,message\n1,ok\n2,too,many\n3\n,no number\n  ,blank number\n4,fine\n"
    parsed = parse_batch(text)
    assert messages(parsed) == [(2, "1", "ok"), (7, "4", "fine")]
    assert parsed.skipped_lines == [3, 4, 5, 6]


def test_text_after_a_closing_quote_skips_only_that_line() -> None:
    # The two-line record is broken, so its quote is taken as a stray one:
    # line 2 is skipped and line 3 read on its own (and skipped: one field).
    text = 'msisdn,message\n1,"multi\nline"junk\n2,"x" \n3,ok\n'
    parsed = parse_batch(text)
    assert messages(parsed) == [(5, "3", "ok")]
    assert parsed.skipped_lines == [2, 3, 4]


def test_a_quote_never_closed_skips_only_its_line() -> None:
    parsed = parse_batch('msisdn,message\n1,ok\n2,"open\n3,kept\n')
    assert messages(parsed) == [(2, "1", "ok"), (4, "3", "kept")]
    assert parsed.skipped_lines == [3]


def test_a_stray_quote_in_thirty_thousand_rows_costs_one_row() -> None:
    """The reproduction: one unterminated quote swallowed 5,508 rows."""
    rows = [f"2547{i:08d},message {i}" for i in range(30_001)]
    rows[100] = f'2547{100:08d},"it is 5 tall'
    rows[5_608] = f'2547{5_608:08d},a "quoted" word'
    parsed = parse_batch("msisdn,message\n" + "\n".join(rows) + "\n")
    assert parsed.skipped_lines == [102]
    assert len(parsed.rows) == 30_000
    assert parsed.rows[100] == BatchRow(103, "254700000101", "message 101", {})


def test_a_quoted_field_may_span_lines_up_to_the_limit() -> None:
    inside = "\n".join(["line"] * MAX_RECORD_LINES)
    parsed = parse_batch(f'msisdn,message\n1,"{inside}"\n2,ok\n')
    assert messages(parsed) == [(2, "1", inside), (2 + MAX_RECORD_LINES, "2", "ok")]
    too_long = "\n".join(["1,line"] * (MAX_RECORD_LINES + 1))
    parsed = parse_batch(f'msisdn,message\n1,"{too_long}"\n')
    assert parsed.skipped_lines == [2] and len(parsed.rows) == MAX_RECORD_LINES


@pytest.mark.parametrize("mark", ["\ufeff", "\u00ef\u00bb\u00bf"], ids=["text", "latin-1 bytes"])
def test_a_byte_order_mark_before_the_header_is_ignored(mark: str) -> None:
    parsed = parse_batch(mark + "msisdn,message\n1,hi\n")
    assert messages(parsed) == [(2, "1", "hi")]


@settings(max_examples=200)
@given(
    rows=st.lists(
        st.tuples(st.text("0123456789", min_size=1, max_size=12), st.text("ab ,", max_size=8)),
        min_size=1,
        max_size=30,
    ),
    stray=st.data(),
)
def test_one_stray_quote_loses_at_most_its_own_line(
    rows: list[tuple[str, str]], stray: st.DataObject
) -> None:
    """Clean rows, one of them given an unterminated quote: every other row is kept."""
    lines = [f"{msisdn},{message.replace(',', ' ')}" for msisdn, message in rows]
    broken = stray.draw(st.integers(0, len(lines) - 1))
    lines[broken] = lines[broken].split(",")[0] + ',"open'
    parsed = parse_batch("msisdn,message\n" + "\n".join(lines) + "\n")
    kept = {row.line for row in parsed.rows}
    assert kept >= {index + 2 for index in range(len(lines)) if index != broken}


def test_empty_message_is_not_the_parsers_business() -> None:
    assert messages(parse_batch('msisdn,message\n1,\n2,""\n')) == [(2, "1", ""), (3, "2", "")]


# --- truncation ---------------------------------------------------------------------------


def test_over_long_values_are_truncated_by_default_limits() -> None:
    long_message = "x" * (DEFAULT_MAX_LENGTHS["message"] + 50)
    values = ["123", long_message, "s" * 30, "9" * 20, "o" * 99]
    text = "msisdn,message,source_id,sender,other\n" + ",".join(values) + "\n"
    (row,) = parse_batch(text).rows
    assert row.message == "x" * DEFAULT_MAX_LENGTHS["message"]
    assert row.overrides == {"source_id": "s" * 20, "sender": "9" * 15, "other": "o" * 99}


def test_limits_are_configurable_and_msisdn_is_never_cut() -> None:
    text = "msisdn,message,Source_Id\n123456789012345678901234,héllo wörld,abcdef\n"
    (row,) = parse_batch(text, max_lengths={"message": 5, "source_id": 3, "msisdn": 4}).rows
    assert (row.msisdn, row.message, row.overrides) == (
        "123456789012345678901234",
        "héllo",
        {"source_id": "abc"},
    )


# --- Unicode ------------------------------------------------------------------------------


def test_unicode_text_passes_through() -> None:
    text = 'msisdn,message\n1,"Ελληνικά ΔΦΓ, 中文 😀"\n2,ÐÞ¬ Ç€\n'
    assert [row.message for row in parse_batch(text).rows] == ["Ελληνικά ΔΦΓ, 中文 😀", "ÐÞ¬ Ç€"]


# --- batch size ---------------------------------------------------------------------------


def test_max_rows_allows_exactly_the_limit() -> None:
    text = "msisdn,message\n" + "".join(f"{i},m\n\n" for i in range(5))
    assert len(parse_batch(text, max_rows=5).rows) == 5


def test_max_rows_counts_records_not_line_breaks() -> None:
    text = "msisdn,message\n" + "".join(f'{i},"a\nb\nc"\n' for i in range(5))
    assert len(parse_batch(text, max_rows=5).rows) == 5


def test_more_rows_than_allowed_raise_batch_too_large_with_the_count() -> None:
    text = "msisdn,message\n" + "".join(f"{i},m\n" for i in range(7)) + "bad line,,\n\n"
    with pytest.raises(BatchTooLarge) as caught:
        parse_batch(text, max_rows=5)
    assert (caught.value.count, caught.value.limit) == (8, 5)
    assert isinstance(caught.value, BatchFormatError)
    assert "8 rows" in str(caught.value)


def test_thirty_thousand_rows_with_escapes() -> None:
    lines = ["msisdn,message,source_id"]
    lines += [
        f'"2782{i:07d}","Hello {i}, your code is \\"{i % 9973}\\".\\\nThanks!",src{i % 50}'
        for i in range(30_000)
    ]
    text = "\r\n".join(lines) + "\r\n"
    parsed = parse_batch(text, max_rows=30_000)
    assert len(parsed.rows) == 30_000
    assert parsed.rows[-1].message == 'Hello 29999, your code is "80".\nThanks!'
    assert parsed.rows[-1].overrides == {"source_id": "src49"}


# --- properties ---------------------------------------------------------------------------

CSV_ALPHABET = st.one_of(
    st.sampled_from(list('",\\\r\n \tmsisdnmessage0123')),
    st.characters(exclude_categories=("Cs",)),
)


@settings(max_examples=300)
@given(
    text=st.one_of(
        st.text(),
        st.text(CSV_ALPHABET),
        st.text(CSV_ALPHABET).map(lambda body: "msisdn,message,sender\n" + body),
    ),
    max_rows=st.none() | st.integers(min_value=0, max_value=5),
)
def test_any_text_parses_or_raises_batch_format_error(text: str, max_rows: int | None) -> None:
    try:
        parsed = parse_batch(text, max_rows=max_rows)
    except BatchFormatError:
        return
    assert all(row.msisdn and row.msisdn == row.msisdn.strip() for row in parsed.rows)
    lines = [row.line for row in parsed.rows] + parsed.skipped_lines
    assert len(set(lines)) == len(lines)
    assert all(line >= 2 for line in lines)
    if max_rows is not None:
        assert len(lines) <= max_rows


def line_breaks(text: str) -> int:
    return text.count("\n") + text.count("\r") - text.count("\r\n")


def write_quoted(value: str, *, doubled_quotes: bool, escape_newlines: bool) -> str:
    """The seed's escaping: ``\\"`` (or RFC 4180 ``""``) and ``\\`` before newlines."""
    out = ['"']
    for index, char in enumerate(value):
        following = value[index + 1 : index + 2]
        if char == "\\":
            # A lone backslash is data; one that precedes what would read as an
            # escape, or the closing quote, is written doubled.
            out.append("\\\\" if following in ('"', "\\", "\r", "\n", "") else "\\")
        elif char == '"':
            out.append('""' if doubled_quotes else '\\"')
        elif char in "\r\n" and escape_newlines:
            out.append("\\" + char)
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


MESSAGE_TEXT = st.text(
    st.one_of(
        st.sampled_from(list('"\\,\r\n \t')),
        st.characters(exclude_categories=("Cs",)),
    ),
    max_size=40,
)
ROW = st.tuples(
    st.text("0123456789", min_size=1, max_size=15),  # msisdn
    MESSAGE_TEXT,
    st.text("abcdefghijklmnopqrstuvwxyz0123456789-_", max_size=20),  # source_id
    st.booleans(),  # quote the msisdn
    st.booleans(),  # doubled quotes instead of \"
    st.booleans(),  # escape newlines with a backslash
)


@settings(max_examples=300)
@given(rows=st.lists(ROW, max_size=12), newline=st.sampled_from(["\n", "\r\n"]))
def test_round_trip_through_the_seeds_escaping(
    rows: list[tuple[str, str, str, bool, bool, bool]], newline: str
) -> None:
    text = "Source_ID,msisdn,message" + newline
    expected: list[BatchRow] = []
    for msisdn, message, source_id, quote_msisdn, doubled, escape_nl in rows:
        line = 1 + line_breaks(text)
        record = ",".join(
            [
                source_id,
                f'"{msisdn}"' if quote_msisdn else msisdn,
                write_quoted(message, doubled_quotes=doubled, escape_newlines=escape_nl),
            ]
        )
        text += record + newline
        overrides = {"source_id": source_id} if source_id else {}
        expected.append(BatchRow(line, msisdn, message, overrides))
    assert parse_batch(text, max_rows=len(rows)) == ParsedBatch(expected, [])
