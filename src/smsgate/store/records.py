"""Plain records crossing the store boundary (no SQLAlchemy types leak out)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from smsgate.core.states import Reason, State


@dataclass(frozen=True, slots=True)
class AcceptedBatch:
    batch_id: int
    message_ids: list[int]
    balance: int


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """A claimed message, with what a connector needs to send it."""

    id: int
    account_id: int
    recipient: str
    sender: str
    body: str
    encoding: str
    segments: int
    priority: int
    want_report: bool
    flags: int
    routing_group: int | None
    attempts: int


@dataclass(frozen=True, slots=True)
class Submitted:
    message_id: int
    connector: str
    carrier_ref: str


@dataclass(frozen=True, slots=True)
class RetryLater:
    """Not sent this time; ask again after ``delay_ms``.

    ``counts_attempt`` is False when the message itself is not at fault (the
    carrier asked us to slow down, or no route is up), so waiting does not
    use up the attempts after which a message fails.
    """

    message_id: int
    delay_ms: int
    error: str
    counts_attempt: bool = True


@dataclass(frozen=True, slots=True)
class Refused:
    """The carrier refused the message for good (or we gave up on it)."""

    message_id: int
    state: State
    reason: Reason
    error: str


SubmitOutcome = Submitted | RetryLater | Refused


@dataclass(frozen=True, slots=True)
class Receipt:
    """A carrier's final word on a message it accepted."""

    connector: str
    carrier_ref: str
    state: State
    reason: Reason
    carrier_status: str
    occurred_at: int


@dataclass(frozen=True, slots=True)
class CallbackJob:
    id: int
    account_id: int
    dialect: str
    kind: str
    url: str
    payload: dict[str, Any]
    attempts: int


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    id: int
    amount: int
    balance_after: int
    kind: str
    batch_id: int | None
    message_id: int | None
    note: str
    created_at: int


class InsufficientCredit(Exception):
    """The account cannot pay for the batch; nothing was written."""

    def __init__(self, balance: int, needed: int) -> None:
        super().__init__(f"balance {balance} is below the {needed} needed")
        self.balance = balance
        self.needed = needed


@dataclass(frozen=True, slots=True)
class DailyQuota:
    """At most ``limit`` messages accepted since ``day_start_ms`` (the account's midnight)."""

    limit: int
    day_start_ms: int


@dataclass(frozen=True, slots=True)
class BatchTerms:
    """How a batch is recorded, beyond its messages."""

    description: str | None = None
    test_mode: bool = False
    daily_quota: DailyQuota | None = None


class DailyQuotaExceeded(Exception):
    """The batch would take the account past its daily quota; nothing was written."""

    def __init__(self, limit: int, used: int, adding: int) -> None:
        super().__init__(f"{used} of {limit} messages used today; {adding} more do not fit")
        self.limit = limit
        self.used = used
        self.adding = adding


@dataclass(frozen=True, slots=True)
class NewCredential:
    """A credential to attach: its secret only as a hash, or sealed where the
    gateway must be able to use it."""

    kind: str
    identifier: str
    secret_hash: str
    sealed_secret: str | None = None


class DuplicateIdentifier(Exception):
    """A credential identifier (partnerID, username, customer id) is already in use."""


@dataclass(frozen=True)
class ReplyMemo:
    """Remember the reply to an accepted request under a client-chosen key.

    Written in the same transaction as the batch, so a repeat of the request
    either finds the reply or finds nothing was accepted: never half of it.
    A memo older than ``window_start_ms`` is forgotten and the key reusable.
    """

    scope: str
    key: str
    render: Callable[[AcceptedBatch], str]
    window_start_ms: int = 0


class AlreadyAccepted(Exception):
    """A concurrent request with the same key won; this one wrote nothing."""

    def __init__(self, reply: str) -> None:
        super().__init__("request already accepted")
        self.reply = reply


@dataclass(frozen=True, slots=True)
class ReportLine:
    """One message of a batch, as a batch report lists it."""

    id: int
    recipient: str
    state: str
    reason: str
    body: str
    sender: str
    cost: int
    client_ref: str | None
    created_at: int
    done_at: int | None


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """A message a handset sent to one of our addresses (MO), as a connector got it."""

    connector: str
    sender: str
    recipient: str
    body: str
    encoding: str
    received_at: int


@dataclass(frozen=True, slots=True)
class InboxEntry:
    """A stored inbound message of an account; ``batch_id`` is what it replied to."""

    id: int
    sender: str
    recipient: str
    body: str
    encoding: str
    received_at: int
    batch_id: int | None


@dataclass(frozen=True, slots=True)
class ConnectorRow:
    name: str
    kind: str
    sealed_url: str


@dataclass(frozen=True, slots=True)
class RouteRow:
    id: int
    prefix: str
    routing_group: int | None
    connector: str
    priority: int


@dataclass(frozen=True, slots=True)
class CallbackView:
    """A callback as the operator sees it (``smsgate callbacks list``)."""

    id: int
    account_id: int
    message_id: int | None
    dialect: str
    kind: str
    url: str
    state: str
    attempts: int
    next_attempt_at: int
    last_error: str | None
    created_at: int
    sent_at: int | None


@dataclass(frozen=True, slots=True)
class CallbackAttempt:
    """One try at a callback and what the receiver answered."""

    callback_id: int
    kind: str
    url: str
    attempt: int
    outcome: str
    answer: str | None
    attempted_at: int


@dataclass(frozen=True, slots=True)
class MessageRow:
    """A stored message as ``smsgate messages list/show`` prints it."""

    id: int
    batch_id: int
    account_id: int
    recipient: str
    sender: str
    body: str
    segments: int
    cost: int
    client_ref: str | None
    state: str
    reason: str
    attempts: int
    created_at: int
    due_at: int
    submitted_at: int | None
    done_at: int | None
    lease_owner: str | None
    connector: str | None
    carrier_ref: str | None


@dataclass(frozen=True, slots=True)
class MessageEvent:
    """A state change of a message, as ``delivery_events`` recorded it."""

    state: str
    reason: str
    carrier_status: str | None
    occurred_at: int
    recorded_at: int


@dataclass(frozen=True, slots=True)
class MessageFilter:
    """What ``smsgate messages list`` narrows to; None means any."""

    account_id: int | None = None
    recipient: str | None = None
    batch_id: int | None = None
    state: str | None = None
    since_ms: int | None = None
    until_ms: int | None = None
    limit: int = 50
