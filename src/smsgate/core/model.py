"""Domain records shared by the core, the store and the dialects."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum, StrEnum

from smsgate.core.encoding import Encoding
from smsgate.core.states import Reason, State


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


@dataclass(frozen=True, slots=True)
class MessageRequest:
    """One message as a dialect understood it, before any validation."""

    recipient: str
    text: str
    sender: str
    client_ref: str | None = None
    send_at_ms: int | None = None


@dataclass(frozen=True, slots=True)
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


class RejectCode(StrEnum):
    """Why one message of a request was refused; each dialect has a code for each."""

    INVALID_NUMBER = "invalid_number"
    NETWORK_NOT_ALLOWED = "network_not_allowed"
    INVALID_SENDER = "invalid_sender"
    EMPTY_MESSAGE = "empty_message"
    INVALID_SEND_TIME = "invalid_send_time"
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
