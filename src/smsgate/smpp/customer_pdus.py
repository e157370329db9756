"""The deliver_sm that smsgate, as an SMSC, sends to a customer's bound session.

A customer's SMPP platform reads receipts the way every SMSC writes them: the
appendix B text (``id:… sub:… dlvrd:… submit date:… done date:… stat:…
err:… text:…``) in a deliver_sm with esm_class 0x04, from the handset to the
sender, plus the SMPP 3.4 TLVs ``receipted_message_id``, ``message_state``
and (on a failure) ``network_error_code``. The id is smsgate's message id in
decimal, exactly as submit_sm_resp gave it, so a client needs no id style.

The facts come from the outbox payloads written with the final state
(``store.finals``) or the inbound message (``store.inbox``), so a push can be
rebuilt after any restart.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from smsgate.core.encoding import encode_gsm7, is_gsm7
from smsgate.core.states import Reason, State
from smsgate.smpp.pdu import (
    ESM_DELIVERY_RECEIPT,
    MessageState,
    ShortMessage,
    Tag,
    cstring_tlv,
    int_tlv,
)
from smsgate.smpp.receipt_text import MAP_ERROR_OF_REASON, format_receipt_text

RECEIPT_STAT: Final[Mapping[State, tuple[str, MessageState]]] = MappingProxyType(
    {
        State.DELIVERED: ("DELIVRD", MessageState.DELIVERED),
        State.UNDELIVERABLE: ("UNDELIV", MessageState.UNDELIVERABLE),
        State.EXPIRED: ("EXPIRED", MessageState.EXPIRED),
        State.REJECTED: ("REJECTD", MessageState.REJECTED),
        State.FAILED: ("UNDELIV", MessageState.UNDELIVERABLE),
        State.CANCELLED: ("DELETED", MessageState.DELETED),
        State.UNKNOWN: ("UNKNOWN", MessageState.UNKNOWN),
    }
)
"""The ``stat:`` word and message_state of each final state (a failure that
smsgate decided, such as exhausted retries, reads as undeliverable)."""

_NETWORK_TYPE_GSM: Final = 3
_TON_INTERNATIONAL: Final = 1
_TON_ALPHANUMERIC: Final = 5
_NPI_ISDN: Final = 1
_DATA_CODING_GSM: Final = 0
_DATA_CODING_UCS2: Final = 8
# A deliver_sm's short_message holds at most 254 octets; a longer MO travels
# whole in the message_payload TLV, which every SMPP 3.4 receiver reads.
_SHORT_MESSAGE_LIMIT: Final = 254


def ton_npi(address: str) -> tuple[int, int]:
    """International/E.164 (TON 1, NPI 1) for a number, alphanumeric (TON 5)
    for a name, as SMSCs address what they deliver."""
    if address.lstrip("+").isdigit() and address.isascii():
        return _TON_INTERNATIONAL, _NPI_ISDN
    return _TON_ALPHANUMERIC, 0


def addressed(source: str, destination: str, **fields: Any) -> ShortMessage:
    """A deliver_sm body from ``source`` to ``destination``, each with its TON/NPI."""
    source_ton, source_npi = ton_npi(source)
    dest_ton, dest_npi = ton_npi(destination)
    return ShortMessage(
        source_addr=source,
        source_addr_ton=source_ton,
        source_addr_npi=source_npi,
        destination_addr=destination,
        dest_addr_ton=dest_ton,
        dest_addr_npi=dest_npi,
        **fields,
    )


def receipt_tlvs(message_id: str, state: MessageState, error: int) -> dict[int, bytes]:
    """The SMPP 3.4 receipt TLVs: the id, its state and (on a failure with a
    known cause) the GSM network error."""
    tlvs = {
        int(Tag.RECEIPTED_MESSAGE_ID): cstring_tlv(message_id),
        int(Tag.MESSAGE_STATE): int_tlv(int(state), 1),
    }
    if error:
        tlvs[Tag.NETWORK_ERROR_CODE] = bytes((_NETWORK_TYPE_GSM,)) + error.to_bytes(2)
    return tlvs


def _printable(text: str) -> str:
    return "".join(c if " " <= c <= "~" else "?" for c in text[:20])


def receipt_pdu(payload: Mapping[str, Any]) -> ShortMessage:
    """The receipt of one message from its outbox payload (``store.finals``)."""
    state = State(payload["state"])
    stat, message_state = RECEIPT_STAT.get(state, ("UNKNOWN", MessageState.UNKNOWN))
    error = MAP_ERROR_OF_REASON.get(Reason(payload["reason"]), 0)
    message_id = str(payload["message_id"])
    done = payload["done_at"] or payload["created_at"]
    text = format_receipt_text(
        message_id=message_id,
        stat=stat,
        err=f"{error:03d}",
        submit_ms=payload["submitted_at"] or payload["created_at"],
        done_ms=done,
        text=_printable(payload.get("preview") or ""),
    )
    return addressed(
        payload["recipient"].removeprefix("+"),
        payload.get("sender") or "",
        esm_class=ESM_DELIVERY_RECEIPT,
        data_coding=_DATA_CODING_GSM,
        short_message=text.encode("ascii", "replace"),
        tlvs=receipt_tlvs(message_id, message_state, error),
    )


def inbound_pdu(payload: Mapping[str, Any]) -> ShortMessage:
    """An inbound message (MO) from its outbox payload (``store.inbox``): GSM
    7-bit when the text allows, UCS-2 otherwise, in message_payload when long."""
    body: str = payload["body"]
    if is_gsm7(body):
        data, coding = encode_gsm7(body), _DATA_CODING_GSM
    else:
        data, coding = body.encode("utf-16-be", "surrogatepass"), _DATA_CODING_UCS2
    long = len(data) > _SHORT_MESSAGE_LIMIT
    return addressed(
        payload["sender"].removeprefix("+"),
        payload["recipient"].removeprefix("+"),
        data_coding=coding,
        short_message=b"" if long else data,
        tlvs={int(Tag.MESSAGE_PAYLOAD): data} if long else {},
    )


def customer_pdu(kind: str, payload: Mapping[str, Any]) -> ShortMessage:
    """The deliver_sm body for one outbox row: a receipt (``dlr``) or an MO."""
    return receipt_pdu(payload) if kind == "dlr" else inbound_pdu(payload)
