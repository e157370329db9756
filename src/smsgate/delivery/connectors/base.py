"""The connector interface every carrier connection implements.

A connector is handed a claimed batch and answers, per message, whether the
carrier took it (with the carrier's reference), refused it for good, or should
be asked again later. Receipts and inbound messages (MO) arrive
asynchronously and go to the sinks it was given at start, never straight to
the database: the recorder batches them and copes with a receipt that
overtakes its submission.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from smsgate.store.records import InboundMessage, OutboundMessage, Receipt, SubmitOutcome

Ack = Callable[[], None]
"""Called once what was handed over is committed: the moment a connector may
acknowledge it to the carrier (which otherwise sends it again)."""


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

    @property
    def is_up(self) -> bool:
        """Whether it can take messages now; routing fails over when it cannot."""
        ...

    async def start(self, receipts: ReceiptSink, inbound: InboundSink) -> None: ...

    async def submit(self, messages: Sequence[OutboundMessage]) -> list[SubmitOutcome]: ...

    async def stop(self) -> None: ...
