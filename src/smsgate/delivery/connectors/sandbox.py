"""The sandbox carrier: behaves like a real SMSC without leaving the machine.

It answers submissions after a configurable latency with its own message
references, refuses some numbers outright, and later reports delivery outcomes
chosen by rule (number suffix), so a developer sees every path a real carrier
takes (delivered, absent subscriber, expired, refused, refund) on a laptop.
Handsets under a ``replies`` rule answer each message they receive, which is
how the inbox fills on a laptop; an ``upstream`` condition makes it refuse
everything the way a provider out of credit (or over quota) does.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import Sequence
from dataclasses import replace

from smsgate.core.encoding import Encoding, is_gsm7
from smsgate.core.sandbox_rules import SandboxRule, rule_for
from smsgate.core.states import UPSTREAM_REASONS, State, UpstreamCondition
from smsgate.delivery.connectors.base import (
    AckCounter,
    ClaimCheck,
    InboundSink,
    ReceiptSink,
    SubmissionSink,
    claim_lapsed,
)
from smsgate.store.records import (
    CarrierPart,
    ConnectionHealth,
    InboundMessage,
    OutboundMessage,
    Receipt,
    Refused,
    SubmitOutcome,
    Submitted,
)
from smsgate.store.repo import wall_clock_ms

_CARRIER_STATUS = {
    State.DELIVERED: "DELIVRD",
    State.UNDELIVERABLE: "UNDELIV",
    State.EXPIRED: "EXPIRED",
    State.REJECTED: "REJECTD",
}


class SandboxConnector:
    shared = False  # each process simulates its own carrier

    def __init__(
        self,
        *,
        name: str = "sandbox",
        latency_ms: float = 20.0,
        receipt_delay_ms: float = 500.0,
        rules: tuple[SandboxRule, ...] = (),
        upstream: UpstreamCondition = UpstreamCondition.NONE,
        receipt_timeout_ms: int = 48 * 3_600_000,
    ) -> None:
        self.name = name
        self.receipt_timeout_ms = receipt_timeout_ms
        self._latency = latency_ms / 1000
        self._receipt_delay = receipt_delay_ms / 1000
        self._rules = rules
        self._upstream = upstream
        # References unique across processes sharing one database.
        self._refs = (f"{os.getpid():x}-{wall_clock_ms():x}-{n}" for n in itertools.count(1))
        self._sink: ReceiptSink | None = None
        self._inbound: InboundSink | None = None
        self._pending: dict[str, asyncio.TimerHandle] = {}

    @property
    def is_up(self) -> bool:
        return True

    def health(self) -> ConnectionHealth:
        """Always bound: the sandbox is in this process."""
        return ConnectionHealth(self.name, "bound", 0, None, None, 0, 0, 0, 0, 0.0)

    async def start(self, receipts: ReceiptSink, inbound: InboundSink) -> None:
        self._sink = receipts
        self._inbound = inbound

    async def submit(
        self, messages: Sequence[OutboundMessage], record: SubmissionSink, claims: ClaimCheck
    ) -> None:
        if self._latency:
            await asyncio.sleep(self._latency)
        acks = AckCounter()
        for outcome in self._outcomes(messages, claims):
            record(outcome, acks.owe())
        await acks.all_paid()

    def _outcomes(
        self, messages: Sequence[OutboundMessage], claims: ClaimCheck
    ) -> list[SubmitOutcome]:
        if self._upstream is not UpstreamCondition.NONE:
            reason = UPSTREAM_REASONS[self._upstream]
            return [
                Refused(m.id, State.FAILED, reason, f"sandbox upstream: {self._upstream.value}")
                for m in messages
            ]
        outcomes: list[SubmitOutcome] = []
        for message in messages:
            if not claims.live(message.id):
                outcomes.append(claim_lapsed(message.id))
                continue
            rule = rule_for(self._rules, message.recipient)
            if rule.state is State.REJECTED:
                outcomes.append(
                    Refused(message.id, rule.state, rule.reason, "sandbox refused the number")
                )
                continue
            ref = next(self._refs)
            outcomes.append(Submitted(message.id, self.name, (CarrierPart(1, ref, ref),)))
            reply = _reply_to(message) if rule.replies else None
            self._schedule_receipt(ref, message.recipient, reply, message.id)
        return outcomes

    def resume(self, submitted: Sequence[tuple[str, str]]) -> None:
        """Schedule receipts again for messages taken before a restart.

        A real SMSC keeps its pending receipts across our restarts; the sandbox
        keeps them in memory, so the runtime hands back what is still open.
        """
        for ref, recipient in submitted:
            if ref not in self._pending:
                self._schedule_receipt(ref, recipient)

    def _schedule_receipt(
        self,
        ref: str,
        recipient: str,
        reply: InboundMessage | None = None,
        message_id: int | None = None,
    ) -> None:
        rule = rule_for(self._rules, recipient)
        receipt = Receipt(
            self.name,
            ref,
            rule.state,
            rule.reason,
            _CARRIER_STATUS.get(rule.state, "UNKNOWN"),
            occurred_at=0,
            carrier_ref=ref,
            message_id=message_id,
        )
        loop = asyncio.get_running_loop()
        self._pending[ref] = loop.call_later(self._receipt_delay, self._emit, receipt, reply)

    def _emit(self, receipt: Receipt, reply: InboundMessage | None) -> None:
        self._pending.pop(receipt.carrier_ref, None)
        if reply is not None and self._inbound is not None:
            self._inbound(
                InboundMessage(
                    reply.connector,
                    reply.sender,
                    reply.recipient,
                    reply.body,
                    reply.encoding,
                    wall_clock_ms(),
                )
            )
        if self._sink is not None:
            self._sink(replace(receipt, occurred_at=wall_clock_ms()))

    async def handset_sends(self, sender: str, recipient: str, body: str) -> bool:
        """A message typed on one of the sandbox's handsets (the console's
        phones), handed on exactly as a carrier's inbound message is; returns
        True once it is stored, False when this process's sandbox is not running."""
        if self._inbound is None:
            return False
        loop = asyncio.get_running_loop()
        stored: asyncio.Future[None] = loop.create_future()
        encoding = Encoding.GSM7 if is_gsm7(body) else Encoding.UCS2
        # Like an SMSC, the handset's number arrives without the "+".
        message = InboundMessage(
            self.name, sender.lstrip("+"), recipient, body, encoding, wall_clock_ms()
        )

        def committed() -> None:
            if not stored.done():
                stored.set_result(None)

        self._inbound(message, committed)
        await stored
        return True

    async def stop(self) -> None:
        for handle in self._pending.values():
            handle.cancel()
        self._pending.clear()


def _reply_to(message: OutboundMessage) -> InboundMessage:
    """What the sandbox handset answers: a short text quoting the message."""
    if message.encoding == Encoding.BINARY:
        quoted, encoding = "your message", Encoding.GSM7
    else:
        quoted, encoding = message.body[:40], Encoding(message.encoding)
    # Like an SMSC, the handset's number arrives without the "+".
    return InboundMessage(
        "sandbox", message.recipient.lstrip("+"), message.sender, f"Re: {quoted}", encoding, 0
    )
