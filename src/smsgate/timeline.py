"""A message's history as one list of moments, oldest first.

The moments live in five places (the message row, its claims, the parts the
carrier took with their receipts, the gateway's own state changes, the
callback attempts), each written by a different path at a different time.
``smsgate messages show`` and the console's message page both tell them as
one timeline, so the merge and the words for each moment are here once; each
caller only formats the times in its own way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from smsgate.core.states import State
from smsgate.store.records import MessageHistory

# A schedule this far past acceptance is a choice, not the queue's latency.
_SCHEDULED_AFTER_MS = 1_000


class MessageMoments(Protocol):
    """What a timeline needs of the message row itself."""

    @property
    def created_at(self) -> int: ...
    @property
    def due_at(self) -> int: ...
    @property
    def done_at(self) -> int | None: ...
    @property
    def state(self) -> str: ...
    @property
    def reason(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Moment:
    """One thing that happened to a message: ``what`` in a word or two,
    ``detail`` in a phrase, ``raw`` what a carrier or receiver said verbatim."""

    at: int
    what: str
    detail: str = ""
    raw: str = ""


def timeline(message: MessageMoments, history: MessageHistory) -> list[Moment]:
    """Every moment of ``message``, in time order. Moments of the same
    millisecond keep the order a message lives them in (claimed, submitted,
    receipt, final, callback), which is the order they are gathered in."""
    moments: list[Moment] = [Moment(message.created_at, "accepted")]
    if message.due_at - message.created_at >= _SCHEDULED_AFTER_MS:
        moments.append(Moment(message.due_at, "due", "as scheduled when accepted"))
    for claim in history.claims:
        moments.append(
            Moment(claim.claimed_at, "claimed", f"attempt {claim.attempt} by {claim.owner}")
        )
    for part in history.parts:
        which = f"part {part.part} of {part.parts} " if part.parts > 1 else ""
        moments.append(
            Moment(
                part.submitted_at,
                "submitted",
                f"{which}to {part.connector}, carrier id {part.carrier_ref}",
            )
        )
        if part.receipt_at is not None:
            said = f" (carrier said {part.carrier_status})" if part.carrier_status else ""
            state = f"{part.state or ''} {part.reason or ''}".strip()
            moments.append(
                Moment(part.receipt_at, "receipt", f"{which}{state}{said}", part.receipt_text or "")
            )
    for event in history.events:
        if event.state == State.SUBMITTED.value:  # told by the parts above
            continue
        said = f" (carrier said {event.carrier_status})" if event.carrier_status else ""
        moments.append(Moment(event.occurred_at, event.state, f"{event.reason}{said}".strip()))
    if message.done_at is not None:
        moments.append(
            Moment(message.done_at, "final", f"{message.state} {message.reason}".strip())
        )
    for attempt in history.callbacks:
        moments.append(
            Moment(
                attempt.attempted_at,
                f"{attempt.kind} callback",
                f"attempt {attempt.attempt} to {attempt.url}: {attempt.outcome}",
                attempt.answer or "",
            )
        )
    return sorted(moments, key=lambda moment: moment.at)  # stable: ties keep that order
