"""query_sm and cancel_sm from a customer's session, answered from the store.

The id a customer asks about is the one its submit_sm_resp gave: smsgate's
message id in decimal. Another account's id reads as unknown, exactly like
an id that was never issued, so a session learns nothing about other
tenants' traffic. A cancel takes the message only while it waits for
dispatch (queued or scheduled, not held by a worker), refunds it, and
answers ESME_RCANCELFAIL otherwise: once a worker holds it, it is on its
way to the carrier.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from smsgate.core.states import FINAL_STATES
from smsgate.smpp.customer_pdus import RECEIPT_STAT
from smsgate.smpp.pdu import CancelSm, MessageState, QuerySm, QuerySmResp, Status
from smsgate.smpp.receipt_text import MAP_ERROR_OF_REASON
from smsgate.smpp.smpp_time import format_smpp_time

if TYPE_CHECKING:
    from smsgate.store.repo import Store

log = logging.getLogger(__name__)


def _message_id(text: str) -> int | None:
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 19 else None


async def answer_query(
    store: Store, account_id: int, query: QuerySm
) -> tuple[Status, QuerySmResp | None]:
    """The state of one of the account's messages, as query_sm_resp tells it."""
    message_id = _message_id(query.message_id)
    if message_id is None:
        return Status.RINVMSGID, None
    message = await store.message(account_id, message_id)
    if message is None:
        return Status.RQUERYFAIL, None
    if message.state in FINAL_STATES:
        _, state = RECEIPT_STAT.get(message.state, ("", MessageState.UNKNOWN))
        final_date = format_smpp_time(message.done_at or message.created_at)
    else:
        state, final_date = MessageState.ENROUTE, ""
    error = MAP_ERROR_OF_REASON.get(message.reason, 0)
    return Status.ROK, QuerySmResp(
        query.message_id, final_date, int(state), error if error < 256 else 0
    )


async def answer_cancel(store: Store, account_id: int, cancel: CancelSm) -> Status:
    """Cancel one of the account's messages that has not left yet."""
    if not cancel.message_id:
        # Cancelling every message from a source to a destination is not
        # offered: one id at a time, so a cancel never takes more than meant.
        return Status.RCANCELFAIL
    message_id = _message_id(cancel.message_id)
    if message_id is None:
        return Status.RINVMSGID
    cancelled = await store.cancel_message(account_id, message_id)
    if not cancelled.messages:
        return Status.RCANCELFAIL
    log.info("smpp-server: message %s cancelled, %s refunded", message_id, cancelled.refunded)
    return Status.ROK
