"""Domain records shared by the core, the store and the dialects."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum, IntFlag, StrEnum

from smsgate.core.encoding import Encoding
from smsgate.core.states import Reason, State

DEFAULT_MAX_PARTS = 10
"""Parts one text may be split into unless the account's ``max_parts`` option says otherwise."""

MAX_PARTS_CEILING = 255
"""The concatenation header counts parts in one octet: no account may go beyond."""


class Priority(IntEnum):
    """Lower is sooner: the dispatcher claims in ascending priority order."""

    URGENT = 0  # one-time passwords
    NORMAL = 1


class AccountStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    name: str
    status: AccountStatus
    region: str
    timezone: str
    balance: int
    senders: tuple[str, ...] = ()
    allowed_country_codes: tuple[int, ...] = ()
    dlr_callback_url: str | None = None
    options: dict[str, object] = field(default_factory=dict)

    @property
    def is_active(self) -> bool:
        return self.status is AccountStatus.ACTIVE


class MessageFlag(IntFlag):
    """Per-message delivery options, stored as one small integer."""

    NONE = 0
    FLASH = 1  # message class 0: shown on the screen, not stored on the handset
    REPLIABLE = 2  # sent from the gateway's reply address; replies reach the inbox


@dataclass(frozen=True, slots=True)
class PartOf:
    """A part the customer cut from a long text itself (SMPP: a concatenation
    UDH or the SAR TLVs), sent on as that part, under the customer's own
    reference, so the handset joins it with its siblings: reference (8 or 16
    bits), how many parts there are, which one this is (from 1)."""

    reference: int
    total: int
    seq: int

    @property
    def wide(self) -> bool:
        """Whether the reference needs the 16-bit concatenation element."""
        return self.reference > 0xFF

    def __str__(self) -> str:
        """As the store keeps it."""
        return f"{self.reference}/{self.total}/{self.seq}"

    @classmethod
    def parse(cls, stored: str) -> PartOf:
        reference, total, seq = (int(n) for n in stored.split("/"))
        return cls(reference, total, seq)


# Not frozen: a frozen dataclass costs three times as much to build, and a
# bulk request builds 30,000 of these. Treat instances as immutable.
@dataclass(slots=True)
class MessageRequest:
    """One message as a dialect understood it, before any validation.

    ``binary`` carries the octets (user data header included) of an 8-bit
    message; ``text`` is then ignored. ``max_parts`` caps how many SMS parts a
    long text may be split into (1 forbids concatenation).
    """

    recipient: str
    text: str
    sender: str
    client_ref: str | None = None
    send_at_ms: int | None = None
    want_report: bool = True
    flags: int = 0  # MessageFlag bits, kept a plain int: IntFlag arithmetic is slow per row
    routing_group: int | None = None
    max_parts: int | None = None
    binary: bytes | None = None
    # The instant after which it must not be sent any more (SMPP's
    # validity_period); None: no limit of its own.
    expires_at_ms: int | None = None
    part_of: PartOf | None = None  # a text part the customer cut itself


# Not frozen: a frozen dataclass costs three times as much to build, and a
# bulk request builds 30,000 of these. Treat instances as immutable.
@dataclass(slots=True)
class PreparedMessage:
    """A validated, priced message ready to be stored."""

    recipient: str
    network_id: int
    sender: str
    text: str
    encoding: Encoding
    segments: int
    cost: int
    client_ref: str | None
    due_at: int
    state: State
    want_report: bool = True
    flags: int = 0  # MessageFlag bits
    routing_group: int | None = None
    expires_at: int | None = None
    part_of: PartOf | None = None


class RejectCode(StrEnum):
    """Why one message of a request was refused; each dialect has a code for each."""

    INVALID_NUMBER = "invalid_number"
    NETWORK_NOT_ALLOWED = "network_not_allowed"
    INVALID_SENDER = "invalid_sender"
    EMPTY_MESSAGE = "empty_message"
    INVALID_SEND_TIME = "invalid_send_time"
    TOO_LONG = "too_long"  # more SMS parts than the request allows
    MALFORMED = "malformed"  # the dialect could not read this message's fields


@dataclass(frozen=True, slots=True)
class Rejection:
    code: RejectCode
    detail: str


@dataclass(frozen=True, slots=True)
class MessageView:
    """What a status query needs to know about one stored message."""

    id: int
    batch_id: int
    recipient: str
    state: State
    reason: Reason
    network_id: int
    created_at: int
    submitted_at: int | None
    done_at: int | None
    client_ref: str | None
