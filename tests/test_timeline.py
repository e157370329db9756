"""One message's moments from five sources, merged in time order."""

from __future__ import annotations

from dataclasses import dataclass

from smsgate.store.records import (
    CallbackAttemptView,
    Claim,
    MessageEvent,
    MessageHistory,
    PartHistory,
)
from smsgate.timeline import timeline


@dataclass(frozen=True)
class Row:
    created_at: int
    due_at: int
    done_at: int | None
    state: str
    reason: str


def part(n: int, of: int, at: int, receipt_at: int | None) -> PartHistory:
    return PartHistory(
        part=n,
        parts=of,
        connector="smsc1",
        carrier_ref=f"ref{n}",
        submitted_at=at,
        state="delivered" if receipt_at else None,
        reason="" if receipt_at else None,
        carrier_status="DELIVRD" if receipt_at else None,
        receipt_text=f"id:ref{n} stat:DELIVRD" if receipt_at else None,
        receipt_at=receipt_at,
    )


def test_a_retried_two_part_message_reads_in_order() -> None:
    row = Row(created_at=1_000, due_at=61_000, done_at=100_000, state="delivered", reason="")
    history = MessageHistory(
        claims=[Claim(1, "w1", 61_000, 91_000), Claim(2, "w2", 95_000, 125_000)],
        parts=[part(1, 2, 96_000, 99_000), part(2, 2, 96_000, 100_000)],
        events=[
            MessageEvent("submitted", "", None, 96_000, 96_000),
            MessageEvent("failed", "bind lost", "ESME_RSYSERR", 62_000, 62_000),
        ],
        callbacks=[CallbackAttemptView(7, "dlr", "http://x/dlr", 1, "sent", "OK", 100_000)],
    )
    moments = [(m.at, m.what, m.detail, m.raw) for m in timeline(row, history)]
    assert moments == [
        (1_000, "accepted", "", ""),
        (61_000, "due", "as scheduled when accepted", ""),
        (61_000, "claimed", "attempt 1 by w1", ""),
        (62_000, "failed", "bind lost (carrier said ESME_RSYSERR)", ""),
        (95_000, "claimed", "attempt 2 by w2", ""),
        (96_000, "submitted", "part 1 of 2 to smsc1, carrier id ref1", ""),
        (96_000, "submitted", "part 2 of 2 to smsc1, carrier id ref2", ""),
        (99_000, "receipt", "part 1 of 2 delivered (carrier said DELIVRD)", "id:ref1 stat:DELIVRD"),
        (
            100_000,
            "receipt",
            "part 2 of 2 delivered (carrier said DELIVRD)",
            "id:ref2 stat:DELIVRD",
        ),
        (100_000, "final", "delivered", ""),
        (100_000, "dlr callback", "attempt 1 to http://x/dlr: sent", "OK"),
    ]


def test_a_message_sent_at_once_has_no_due_moment() -> None:
    row = Row(created_at=1_000, due_at=1_000, done_at=None, state="queued", reason="")
    empty = MessageHistory(claims=[], parts=[], events=[], callbacks=[])
    assert [m.what for m in timeline(row, empty)] == ["accepted"]
