"""The canonical message state machine.

Every dialect code (partnerID/apikey delivery description, EAPI report code,
Telesign status code) is a function of ``(State, Reason)`` defined once here or
in the dialect's table, so the dialects can never disagree about a message.
"""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    ACCEPTED = "accepted"
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    SUBMITTED = "submitted"
    DELIVERED = "delivered"
    UNDELIVERABLE = "undeliverable"
    EXPIRED = "expired"
    REJECTED = "rejected"
    FAILED = "failed"
    CANCELLED = "cancelled"
    # The carrier took it and never said what became of it within the
    # connection's receipt timeout: final, and not refunded (the carrier was paid).
    UNKNOWN = "unknown"


class Reason(StrEnum):
    """Why a message ended where it did; ``NONE`` for the ordinary path."""

    NONE = ""
    ABSENT_SUBSCRIBER = "absent_subscriber"
    UNKNOWN_SUBSCRIBER = "unknown_subscriber"
    SENDER_BLOCKED = "sender_blocked"
    BLOCKED = "blocked"
    HANDSET_ERROR = "handset_error"
    NETWORK_ERROR = "network_error"
    UNROUTABLE = "unroutable"
    VALIDITY_EXPIRED = "validity_expired"
    CARRIER_REJECTED = "carrier_rejected"
    RETRIES_EXHAUSTED = "retries_exhausted"
    UPSTREAM_NO_CREDIT = "upstream_no_credit"
    UPSTREAM_QUOTA = "upstream_quota"
    NO_RECEIPT = "no_receipt"
    UNKNOWN = "unknown"


class UpstreamCondition(StrEnum):
    """Why a connector's upstream takes no traffic for a while; new submissions
    are refused while it holds, since they could not leave either."""

    NONE = ""
    NO_CREDIT = "no_credit"
    QUOTA_EXCEEDED = "quota_exceeded"


UPSTREAM_REASONS = {
    UpstreamCondition.NO_CREDIT: Reason.UPSTREAM_NO_CREDIT,
    UpstreamCondition.QUOTA_EXCEEDED: Reason.UPSTREAM_QUOTA,
}


FINAL_STATES = frozenset(
    {
        State.DELIVERED,
        State.UNDELIVERABLE,
        State.EXPIRED,
        State.REJECTED,
        State.FAILED,
        State.CANCELLED,
        State.UNKNOWN,
    }
)

_ALLOWED: dict[State, frozenset[State]] = {
    State.ACCEPTED: frozenset({State.SCHEDULED, State.QUEUED, State.REJECTED, State.CANCELLED}),
    State.SCHEDULED: frozenset(
        {State.QUEUED, State.SUBMITTED, State.CANCELLED, State.FAILED, State.REJECTED}
    ),
    State.QUEUED: frozenset({State.SUBMITTED, State.CANCELLED, State.FAILED, State.REJECTED}),
    State.SUBMITTED: FINAL_STATES - {State.CANCELLED},
}


def can_transition(current: State, target: State) -> bool:
    """Whether ``current -> target`` is a legal move.

    Final states are terminal: a late or duplicated carrier receipt must not
    resurrect or flip a message that already ended.
    """
    return target in _ALLOWED.get(current, frozenset())
