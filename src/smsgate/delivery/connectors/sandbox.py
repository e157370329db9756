"""The sandbox carrier: behaves like a real SMSC without leaving the machine.

It answers submissions after a configurable latency with its own message
references, refuses some numbers outright, and later reports delivery outcomes
chosen by rule (number suffix), so a developer sees every path a real carrier
takes (delivered, absent subscriber, expired, refused, refund) on a laptop.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import Sequence

from smsgate.core.sandbox_rules import SandboxRule, outcome_for
from smsgate.core.states import State
from smsgate.delivery.connectors.base import ReceiptSink
from smsgate.store.records import (
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
    def __init__(
        self,
        *,
        name: str = "sandbox",
        latency_ms: float = 20.0,
        receipt_delay_ms: float = 500.0,
        rules: tuple[SandboxRule, ...] = (),
    ) -> None:
        self.name = name
        self._latency = latency_ms / 1000
        self._receipt_delay = receipt_delay_ms / 1000
        self._rules = rules
        # References unique across processes sharing one database.
        self._refs = (f"{os.getpid():x}-{wall_clock_ms():x}-{n}" for n in itertools.count(1))
        self._sink: ReceiptSink | None = None
        self._pending: dict[str, asyncio.TimerHandle] = {}

    async def start(self, receipts: ReceiptSink) -> None:
        self._sink = receipts

    async def submit(self, messages: Sequence[OutboundMessage]) -> list[SubmitOutcome]:
        if self._latency:
            await asyncio.sleep(self._latency)
        outcomes: list[SubmitOutcome] = []
        for message in messages:
            state, reason = outcome_for(self._rules, message.recipient)
            if state is State.REJECTED:
                outcomes.append(Refused(message.id, state, reason, "sandbox refused the number"))
                continue
            ref = next(self._refs)
            outcomes.append(Submitted(message.id, self.name, ref))
            self._schedule_receipt(ref, message.recipient)
        return outcomes

    def resume(self, submitted: Sequence[tuple[str, str]]) -> None:
        """Schedule receipts again for messages taken before a restart.

        A real SMSC keeps its pending receipts across our restarts; the sandbox
        keeps them in memory, so the runtime hands back what is still open.
        """
        for ref, recipient in submitted:
            if ref not in self._pending:
                self._schedule_receipt(ref, recipient)

    def _schedule_receipt(self, ref: str, recipient: str) -> None:
        state, reason = outcome_for(self._rules, recipient)
        receipt = Receipt(
            self.name, ref, state, reason, _CARRIER_STATUS.get(state, "UNKNOWN"), occurred_at=0
        )
        loop = asyncio.get_running_loop()
        self._pending[ref] = loop.call_later(self._receipt_delay, self._emit, receipt)

    def _emit(self, receipt: Receipt) -> None:
        self._pending.pop(receipt.carrier_ref, None)
        if self._sink is not None:
            stamped = Receipt(
                receipt.connector,
                receipt.carrier_ref,
                receipt.state,
                receipt.reason,
                receipt.carrier_status,
                wall_clock_ms(),
            )
            self._sink(stamped)

    async def stop(self) -> None:
        for handle in self._pending.values():
            handle.cancel()
        self._pending.clear()
