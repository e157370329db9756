"""Each dialect's status vocabulary as a function of the canonical state.

Defined once, here, so a message reads the same through every query endpoint
and every callback of a dialect.
"""

from __future__ import annotations

from smsgate.core.states import Reason, State

# partnerID/apikey dialect: (delivery-status, delivery-description). The public
# samples show 32 for DeliveredToTerminal; the other numbers are smsgate's own
# stable numbering of the platform's documented descriptions.
ADVANTA_SCHEDULED = (10, "Scheduled")
ADVANTA_SENT = (31, "SentToNetwork")
ADVANTA_DELIVERED = (32, "DeliveredToTerminal")
ADVANTA_ABSENT = (33, "AbsentSubscriber")
ADVANTA_IMPOSSIBLE = (34, "DeliveryImpossible")
ADVANTA_BLACKLISTED = (35, "SenderName Blacklisted")
ADVANTA_UNKNOWN = (36, "Unknown")


def advanta_report(state: State, reason: Reason) -> tuple[int, str] | None:
    """The delivery report of a message, or None while there is none to give.

    A queued message has no report yet ("No dlr"); "SentToNetwork" is what the
    platform shows once the carrier has it, and also what stays when a carrier
    never sends a final receipt (expiry without a handset answer).
    """
    if state is State.SCHEDULED:
        return ADVANTA_SCHEDULED
    if state in (State.ACCEPTED, State.QUEUED):
        return None
    if state in (State.SUBMITTED, State.EXPIRED):
        return ADVANTA_SENT
    if state is State.DELIVERED:
        return ADVANTA_DELIVERED
    if reason is Reason.SENDER_BLOCKED:
        return ADVANTA_BLACKLISTED
    if reason is Reason.ABSENT_SUBSCRIBER:
        return ADVANTA_ABSENT
    if state in (State.CANCELLED, State.UNKNOWN) or reason is Reason.UNKNOWN:
        return ADVANTA_UNKNOWN
    return ADVANTA_IMPOSSIBLE


# EAPI per-message report codes (get_report lines and pushed reports).
EAPI_IN_PROGRESS = 0
EAPI_UNKNOWN_UPSTREAM_STATUS = 70
_EAPI_UNDELIVERABLE = {
    Reason.ABSENT_SUBSCRIBER: 51,
    Reason.UNKNOWN_SUBSCRIBER: 51,
    Reason.HANDSET_ERROR: 57,
    Reason.SENDER_BLOCKED: 55,
    Reason.BLOCKED: 55,
    Reason.NETWORK_ERROR: 54,
    Reason.UNROUTABLE: 31,
}
_EAPI_REJECTED = {
    Reason.UNROUTABLE: 31,
    Reason.BLOCKED: 32,
    Reason.SENDER_BLOCKED: 32,
    Reason.CARRIER_REJECTED: 52,
}


def eapi_report(state: State, reason: Reason) -> int:
    """The EAPI status code of a message: 0 while waiting, 10 once upstream,
    11 delivered, and the 2x/3x/5x failure family by reason."""
    if state in (State.ACCEPTED, State.SCHEDULED, State.QUEUED):
        return EAPI_IN_PROGRESS
    if state is State.SUBMITTED:
        return 10
    if state is State.DELIVERED:
        return 11
    if state is State.EXPIRED:
        return 53
    if state is State.CANCELLED:
        return 29
    if state is State.UNKNOWN:
        return EAPI_UNKNOWN_UPSTREAM_STATUS
    if state is State.UNDELIVERABLE:
        return _EAPI_UNDELIVERABLE.get(reason, 50)
    if state is State.REJECTED:
        return _EAPI_REJECTED.get(reason, 50)
    if reason is Reason.UPSTREAM_NO_CREDIT:
        return 26
    if reason is Reason.UPSTREAM_QUOTA:
        return 28
    return 50  # FAILED: we could not get it delivered


# Telesign-style status codes (callbacks and the status extension).
TELESIGN_IN_PROGRESS = (290, "Message in progress")
TELESIGN_SENT = (203, "Delivered to gateway")
TELESIGN_DELIVERED = (200, "Delivered to handset")
TELESIGN_UNKNOWN_ERROR = (207, "Error delivering SMS to handset (reason unknown)")
TELESIGN_TEMPORARY_PHONE_ERROR = (210, "Temporary phone error")
TELESIGN_PERMANENT_PHONE_ERROR = (211, "Permanent phone error")
TELESIGN_CANNOT_ROUTE = (220, "Cannot route message")
TELESIGN_EXPIRED = (221, "Message expired")
TELESIGN_BLOCKED = (230, "Message blocked")
TELESIGN_FINAL_UNKNOWN = (250, "Final status unknown")
_TELESIGN_BY_REASON = {
    Reason.ABSENT_SUBSCRIBER: TELESIGN_TEMPORARY_PHONE_ERROR,
    Reason.HANDSET_ERROR: TELESIGN_TEMPORARY_PHONE_ERROR,
    Reason.UNKNOWN_SUBSCRIBER: TELESIGN_PERMANENT_PHONE_ERROR,
    Reason.SENDER_BLOCKED: TELESIGN_BLOCKED,
    Reason.BLOCKED: TELESIGN_BLOCKED,
    Reason.UNROUTABLE: TELESIGN_CANNOT_ROUTE,
    Reason.CARRIER_REJECTED: TELESIGN_CANNOT_ROUTE,
}


def telesign_status(state: State, reason: Reason) -> tuple[int, str]:
    """The Telesign-style status of a message: 290 while ours, 203 with the
    carrier, 200 on the handset, and the 2xx failure family by reason."""
    if state in (State.ACCEPTED, State.SCHEDULED, State.QUEUED):
        return TELESIGN_IN_PROGRESS
    if state is State.SUBMITTED:
        return TELESIGN_SENT
    if state is State.DELIVERED:
        return TELESIGN_DELIVERED
    if state is State.EXPIRED:
        return TELESIGN_EXPIRED
    if state in (State.CANCELLED, State.UNKNOWN):
        return TELESIGN_FINAL_UNKNOWN
    return _TELESIGN_BY_REASON.get(reason, TELESIGN_UNKNOWN_ERROR)
