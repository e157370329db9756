"""Pricing, networks, senders, states, report codes, sandbox rules and preparation."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smsgate.core.encoding import Encoding
from smsgate.core.model import (
    Account,
    AccountStatus,
    MessageRequest,
    PartOf,
    PreparedMessage,
    RejectCode,
    Rejection,
)
from smsgate.core.networks import DEFAULT_NETWORK_PREFIXES, NetworkTable
from smsgate.core.pricing import PriceTable, credit_units, format_units, to_units
from smsgate.core.report_codes import advanta_report, eapi_report, telesign_status
from smsgate.core.sandbox_rules import parse_sandbox_rules, rule_for
from smsgate.core.senders import sender_problem
from smsgate.core.states import FINAL_STATES, Reason, State, can_transition
from smsgate.core.submit import prepare


def test_credit_units_are_exact() -> None:
    assert to_units("12.5") == 1250
    assert to_units(3) == 300
    assert format_units(54500) == "545.00"
    assert format_units(-5) == "-0.05"
    with pytest.raises(ValueError, match="two decimals"):
        to_units("0.001")
    with pytest.raises(ValueError):
        to_units("lots")


@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_units_format_and_parse_round_trip(units: int) -> None:
    assert to_units(format_units(units)) == units


def test_price_table_longest_prefix() -> None:
    table = PriceTable.parse("*=1.5, 254=0.8, 25471=0.5")
    assert table.per_segment("+254712345678") == 50
    assert table.per_segment("+254733000000") == 80
    assert table.per_segment("+447911123456") == 150
    with pytest.raises(ValueError):
        PriceTable.parse("uk=3")
    with pytest.raises(ValueError):
        PriceTable.parse("254")


def test_kenyan_networks() -> None:
    table = NetworkTable(DEFAULT_NETWORK_PREFIXES)
    assert table.lookup("+254712345678") == 1
    assert table.lookup("+254110345678") == 1
    assert table.lookup("+254733345678") == 2
    assert table.lookup("+254756345678") == 2
    assert table.lookup("+254770345678") == 3
    assert table.lookup("+447911123456") == 0


@pytest.mark.parametrize(
    ("sender", "registered", "ok"),
    [
        ("SMSGATE", (), True),
        ("My Shop", (), True),
        ("254700123456", (), True),
        ("TOOLONGSENDER", (), False),
        ("", (), False),
        ("bad<tag>", (), False),
        ("SMSGATE", ("SMSGATE",), True),
        ("smsgate", ("SMSGATE",), False),
    ],
)
def test_sender_rules(sender: str, registered: tuple[str, ...], ok: bool) -> None:
    assert (sender_problem(sender, registered) is None) is ok


def test_final_states_are_terminal() -> None:
    for final in FINAL_STATES:
        assert not any(can_transition(final, target) for target in State)
    assert can_transition(State.QUEUED, State.SUBMITTED)
    assert can_transition(State.SUBMITTED, State.DELIVERED)
    assert not can_transition(State.SUBMITTED, State.QUEUED)


@pytest.mark.parametrize(
    ("state", "reason", "expected"),
    [
        (State.SCHEDULED, Reason.NONE, "Scheduled"),
        (State.QUEUED, Reason.NONE, None),
        (State.SUBMITTED, Reason.NONE, "SentToNetwork"),
        (State.DELIVERED, Reason.NONE, "DeliveredToTerminal"),
        (State.UNDELIVERABLE, Reason.ABSENT_SUBSCRIBER, "AbsentSubscriber"),
        (State.UNDELIVERABLE, Reason.SENDER_BLOCKED, "SenderName Blacklisted"),
        (State.UNDELIVERABLE, Reason.UNKNOWN_SUBSCRIBER, "DeliveryImpossible"),
        (State.REJECTED, Reason.CARRIER_REJECTED, "DeliveryImpossible"),
        (State.EXPIRED, Reason.VALIDITY_EXPIRED, "SentToNetwork"),
        (State.CANCELLED, Reason.NONE, "Unknown"),
        (State.UNKNOWN, Reason.NO_RECEIPT, "Unknown"),
    ],
)
def test_advanta_descriptions(state: State, reason: Reason, expected: str | None) -> None:
    report = advanta_report(state, reason)
    assert (report[1] if report else None) == expected


def test_every_state_has_an_advanta_answer_and_codes_are_distinct() -> None:
    seen = {}
    for state in State:
        for reason in Reason:
            report = advanta_report(state, reason)
            if report:
                assert seen.setdefault(report[0], report[1]) == report[1]


def test_sandbox_rules() -> None:
    rules = parse_sandbox_rules("0=absent,000=expired,5=replies")

    def outcome(number: str) -> tuple[State, Reason, bool]:
        rule = rule_for(rules, number)
        return rule.state, rule.reason, rule.replies

    assert outcome("+254700000000") == (State.EXPIRED, Reason.VALIDITY_EXPIRED, False)
    assert outcome("+254700000010") == (State.UNDELIVERABLE, Reason.ABSENT_SUBSCRIBER, False)
    assert outcome("+254700000011") == (State.DELIVERED, Reason.NONE, False)
    assert outcome("+254700000015") == (State.DELIVERED, Reason.NONE, True)
    with pytest.raises(ValueError, match="unknown outcome"):
        parse_sandbox_rules("1=exploded")


ACCOUNT = Account(
    id=1,
    name="a",
    status=AccountStatus.ACTIVE,
    region="KE",
    timezone="Africa/Nairobi",
    balance=0,
    senders=("SHOP",),
    allowed_country_codes=(254,),
)


def test_prepare_validates_each_message_and_keeps_order() -> None:
    now = 1_700_000_000_000
    requests = [
        MessageRequest("0712345678", "hello", "SHOP"),
        MessageRequest("not a number", "hello", "SHOP"),
        MessageRequest("+447911123456", "hello", "SHOP"),
        MessageRequest("0712345678", "hello", "OTHER"),
        MessageRequest("0712345678", "", "SHOP"),
        MessageRequest("0733345678", "€" * 100, "SHOP", "ref", now + 60_000),
        MessageRequest("0712345678", "Привет", "SHOP", None, now + 10**12),
    ]
    result = prepare(
        ACCOUNT,
        requests,
        now_ms=now,
        networks=NetworkTable(DEFAULT_NETWORK_PREFIXES),
        prices=PriceTable.parse("*=1,2547=2"),
        reply_numbers=("254709000999",),
    )
    first, bad_number, abroad, bad_sender, empty, scheduled, too_late = result.items
    assert isinstance(first, PreparedMessage)
    assert (first.recipient, first.network_id, first.cost, first.state) == (
        "+254712345678",
        1,
        200,
        State.QUEUED,
    )
    assert [
        r.code.value
        for r in (bad_number, abroad, bad_sender, empty, too_late)
        if isinstance(r, Rejection)
    ] == [
        "invalid_number",
        "network_not_allowed",
        "invalid_sender",
        "empty_message",
        "invalid_send_time",
    ]
    assert isinstance(scheduled, PreparedMessage)
    assert scheduled.state is State.SCHEDULED and scheduled.due_at == now + 60_000
    assert (scheduled.encoding, scheduled.segments, scheduled.cost) == (Encoding.GSM7, 2, 400)
    assert result.total_cost == 600


def test_a_customers_own_part_is_one_sms_that_must_fit_beside_its_header() -> None:
    place, wide = PartOf(7, 3, 2), PartOf(300, 3, 2)
    requests = [
        MessageRequest("0712345678", "x" * 153, "SHOP", part_of=place),
        MessageRequest("0712345678", "x" * 153, "SHOP", part_of=wide),
        MessageRequest("0712345678", "€" * 76, "SHOP", part_of=place),  # 152 septets
        MessageRequest("0712345678", "你" * 67, "SHOP", part_of=place),
        MessageRequest("0712345678", "你" * 67, "SHOP", part_of=wide),
    ]
    fits, too_wide, escaped, ucs2, ucs2_too_wide = prepare(
        ACCOUNT,
        requests,
        now_ms=1_700_000_000_000,
        networks=NetworkTable(DEFAULT_NETWORK_PREFIXES),
        prices=PriceTable.parse("*=1"),
        reply_numbers=("254709000999",),
    ).items
    for kept in (fits, escaped, ucs2):
        assert isinstance(kept, PreparedMessage)
        assert (kept.segments, kept.cost, kept.part_of) == (1, 100, place)
    for refused in (too_wide, ucs2_too_wide):
        assert isinstance(refused, Rejection) and refused.code is RejectCode.TOO_LONG
        assert "one part holds" in refused.detail


@pytest.mark.parametrize(
    ("state", "reason", "code"),
    [
        (State.SCHEDULED, Reason.NONE, 0),
        (State.QUEUED, Reason.NONE, 0),
        (State.SUBMITTED, Reason.NONE, 10),
        (State.DELIVERED, Reason.NONE, 11),
        (State.CANCELLED, Reason.NONE, 29),
        (State.REJECTED, Reason.UNROUTABLE, 31),
        (State.REJECTED, Reason.BLOCKED, 32),
        (State.UNDELIVERABLE, Reason.ABSENT_SUBSCRIBER, 51),
        (State.REJECTED, Reason.CARRIER_REJECTED, 52),
        (State.EXPIRED, Reason.VALIDITY_EXPIRED, 53),
        (State.UNDELIVERABLE, Reason.NETWORK_ERROR, 54),
        (State.UNDELIVERABLE, Reason.SENDER_BLOCKED, 55),
        (State.UNDELIVERABLE, Reason.HANDSET_ERROR, 57),
        (State.FAILED, Reason.RETRIES_EXHAUSTED, 50),
        (State.UNKNOWN, Reason.NO_RECEIPT, 70),
    ],
)
def test_eapi_report_codes(state: State, reason: Reason, code: int) -> None:
    assert eapi_report(state, reason) == code


@pytest.mark.parametrize(
    ("state", "reason", "code"),
    [
        (State.QUEUED, Reason.NONE, 290),
        (State.SUBMITTED, Reason.NONE, 203),
        (State.DELIVERED, Reason.NONE, 200),
        (State.UNDELIVERABLE, Reason.ABSENT_SUBSCRIBER, 210),
        (State.EXPIRED, Reason.VALIDITY_EXPIRED, 221),
        (State.UNKNOWN, Reason.NO_RECEIPT, 250),
    ],
)
def test_telesign_status_codes(state: State, reason: Reason, code: int) -> None:
    assert telesign_status(state, reason)[0] == code


def test_an_upstreams_credit_is_read_in_units_or_not_at_all() -> None:
    assert credit_units("545.00") == 545_00
    assert credit_units(" 2101.157 ") == 2101_15  # never more than it said
    assert credit_units(12) == 12_00
    for unreadable in ("", "abc", "NaN", "inf", None, [], "1" * 30):
        assert credit_units(unreadable) is None


@given(st.text(max_size=30) | st.integers() | st.floats())
def test_no_credit_text_makes_the_reader_raise(text: object) -> None:
    value = credit_units(text)
    assert value is None or isinstance(value, int)
