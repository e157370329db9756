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
    if state is State.CANCELLED or reason is Reason.UNKNOWN:
        return ADVANTA_UNKNOWN
    return ADVANTA_IMPOSSIBLE
