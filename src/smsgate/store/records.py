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
    expires_at: int | None = None
    part_of: str | None = None  # core.model.PartOf as stored, "reference/total/seq"


@dataclass(frozen=True, slots=True)
class CarrierPart:
    """One part a carrier took: the id it gave, as written and as a key."""

    part: int  # 1-based, in sending order
    carrier_ref: str
    carrier_key: str


@dataclass(frozen=True, slots=True)
class Submitted:
    """The carrier took every part of the message."""

    message_id: int
    connector: str
    parts: tuple[CarrierPart, ...]

    @property
    def carrier_ref(self) -> str:
        """The first part's id: how the message is shown to the operator."""
        return self.parts[0].carrier_ref


@dataclass(frozen=True, slots=True)
class TakenParts:
    """Parts of a message the carrier took although the message as a whole
    was refused or must be sent again: their receipts still come, and must
    find them."""

    connector: str
    parts: tuple[CarrierPart, ...]
    total: int  # parts the message has, taken or not


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
    taken: TakenParts | None = None


@dataclass(frozen=True, slots=True)
class Refused:
    """The carrier refused the message for good (or we gave up on it)."""

    message_id: int
    state: State
    reason: Reason
    error: str
    taken: TakenParts | None = None


SubmitOutcome = Submitted | RetryLater | Refused


@dataclass(frozen=True, slots=True)
class Receipt:
    """A carrier's final word on one part it accepted.

    ``carrier_key`` is the receipt's id read as the connector declares
    (``core.carrier_ids``); a part matches on it, on the connector, on
    ``handset`` (the receipt's source address, "" when it has none) and on
    having been submitted at or after ``match_since``; the newest such part
    wins. ``message_id`` is set when the connector already knows which
    message the receipt is for (it saw the submission's answer), and then
    only that message's parts can match.
    """

    connector: str
    carrier_key: str
    state: State
    reason: Reason
    carrier_status: str
    occurred_at: int
    match_since: int = 0
    carrier_ref: str = ""
    handset: str = ""
    text: str = ""
    message_id: int | None = None


@dataclass(frozen=True, slots=True)
class ReceiptTally:
    """What recording a group of receipts did with them."""

    matched: int = 0
    unmatched: int = 0
    duplicates: int = 0


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
class CallbackAttempt:
    """How one push went: delivered, to be tried again at ``retry_at``, or (with
    neither) given up. ``status`` is the receiver's HTTP status when it answered."""

    job_id: int
    delivered: bool
    status: int | None
    error: str | None
    retry_at: int | None


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


@dataclass(frozen=True, slots=True)
class ReplyPool:
    """The numbers repliable messages are sent from, and how long a
    conversation holds its number for one handset (see store/reply_routes.py)."""

    numbers: tuple[str, ...]
    window_ms: int


class NoReplyNumber(Exception):
    """Every reply number has an open conversation between this handset and
    another account; nothing was written."""

    def __init__(self, handset: str, pool_size: int) -> None:
        super().__init__(
            f"no reply number is free for {handset.lstrip('+')}"
            f" (other accounts are in conversation with it on all {pool_size})"
        )
        self.handset = handset


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
    price: int | None


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
class CallbackAttemptView:
    """One try at a callback and what the receiver answered, as the operator sees it."""

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
class PartHistory:
    """One submitted part of a message and the carrier's receipt for it, if any."""

    part: int
    parts: int
    connector: str
    carrier_ref: str
    submitted_at: int
    state: str | None
    reason: str | None
    carrier_status: str | None
    receipt_text: str | None
    receipt_at: int | None


@dataclass(frozen=True, slots=True)
class Claim:
    """One lease a dispatcher took on a message: its ``attempt``-th claim."""

    attempt: int
    owner: str
    claimed_at: int
    lease_until: int


@dataclass(frozen=True, slots=True)
class MessageHistory:
    """Everything recorded about one message after it was accepted, each list
    oldest first: what its timeline (timeline.py) is made of."""

    claims: list[Claim]
    parts: list[PartHistory]
    events: list[MessageEvent]
    callbacks: list[CallbackAttemptView]


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


@dataclass(frozen=True, slots=True)
class ConnectionHealth:
    """What a connection is doing, as the worker holding it last said.

    ``state`` is ``bound``, ``binding`` (a first attempt, or again after a
    clean unbind), ``failing`` (binds or connections keep failing; ``since``
    is the first failure of the run) or ``stopped``. ``paced_rate`` is the
    send rate learned from the carrier's throttling (0: not paced).
    """

    connector: str
    state: str
    since: int
    last_error: str | None
    error_at: int | None
    window: int
    in_flight: int
    sent: int
    refused: int
    paced_rate: float
    owner: str = ""
    updated_at: int = 0
    balance: int | None = None  # credit units the upstream holds for us, where it says


@dataclass(frozen=True, slots=True)
class UnmatchedReceipt:
    """A stored receipt that named no part this gateway recorded, for the operator."""

    id: int
    connector: str
    carrier_ref: str
    handset: str
    state: str
    carrier_status: str
    receipt_text: str | None
    received_at: int
