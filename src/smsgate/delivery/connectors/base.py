"""The connector interface every carrier connection implements.

A connector is handed a claimed batch and says, per message and as soon as it
knows, whether the carrier took it (with the carrier's reference), refused it
for good, or should be asked again later. Each of those outcomes is
acknowledged once it is committed, and a connector to a real carrier sends at
most its window ahead of those acknowledgements: a worker killed at any moment
has then sent at most a window of messages whose fate the store does not know,
and only those can reach the carrier twice. Receipts and inbound messages (MO) arrive
asynchronously and go to the sinks it was given at start, never straight to
the database: the recorder batches them and stores every one, matched or
not, before it is acknowledged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Protocol

from smsgate.store.records import (
    ConnectionHealth,
    InboundMessage,
    OutboundMessage,
    Receipt,
    RetryLater,
    SubmitOutcome,
)

Ack = Callable[[], None]
"""Called once what was handed over is committed: the moment a connector may
acknowledge it to the carrier (which otherwise sends it again)."""


class ClaimCheck(Protocol):
    def live(self, message_id: int) -> bool:
        """Whether the claim on the message is still this worker's: a connector
        sends a message only while it is (see ``delivery.claims``)."""
        ...


class SubmissionSink(Protocol):
    def __call__(self, outcome: SubmitOutcome, ack: Ack) -> None: ...


class ReceiptSink(Protocol):
    def __call__(self, receipt: Receipt, ack: Ack | None = None) -> None: ...


class InboundSink(Protocol):
    def __call__(self, message: InboundMessage, ack: Ack | None = None) -> None: ...


class Connector(Protocol):
    name: str
    shared: bool
    """Reached through an account the whole cluster shares (an SMSC bind), so
    only the worker holding its lease binds it; otherwise every process runs
    its own."""
    receipt_timeout_ms: int
    """How long after submission a message without a receipt ends unknown."""

    @property
    def is_up(self) -> bool:
        """Whether it can take messages now; routing fails over when it cannot."""
        ...

    async def start(self, receipts: ReceiptSink, inbound: InboundSink) -> None: ...

    async def submit(
        self, messages: Sequence[OutboundMessage], record: SubmissionSink, claims: ClaimCheck
    ) -> None:
        """Hand each message's outcome to ``record``; return once all are acknowledged.

        A message whose claim is no longer live when its turn comes is not
        sent: its outcome is a retry that uses no attempt.
        """
        ...

    async def stop(self) -> None: ...

    def health(self) -> ConnectionHealth:
        """What the connection is doing now, for the operator."""
        ...


class AckCounter:
    """The acknowledgements still owed for outcomes handed over, to wait for all of them."""

    __slots__ = ("_all_paid", "_owed")

    def __init__(self) -> None:
        self._owed = 0
        self._all_paid: asyncio.Future[None] | None = None

    def owe(self) -> Ack:
        self._owed += 1
        return self._paid

    def _paid(self) -> None:
        self._owed -= 1
        if self._owed == 0 and self._all_paid is not None and not self._all_paid.done():
            self._all_paid.set_result(None)

    async def all_paid(self) -> None:
        if self._owed:
            self._all_paid = asyncio.get_running_loop().create_future()
            await self._all_paid


def claim_lapsed(message_id: int) -> RetryLater:
    """The outcome of a message not sent because its claim lapsed."""
    return RetryLater(message_id, 0, "claim lapsed before sending", counts_attempt=False)
