"""The connector interface every carrier connection implements.

A connector is handed a claimed batch and answers, per message, whether the
carrier took it (with the carrier's reference), refused it for good, or should
be asked again later. Receipts arrive asynchronously and go to the sink the
dispatcher gave it at start, never straight to the database: the dispatcher
batches them and copes with a receipt that overtakes its submission.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from smsgate.store.records import OutboundMessage, Receipt, SubmitOutcome

ReceiptSink = Callable[[Receipt], None]


class Connector(Protocol):
    name: str

    async def start(self, receipts: ReceiptSink) -> None: ...

    async def submit(self, messages: Sequence[OutboundMessage]) -> list[SubmitOutcome]: ...

    async def stop(self) -> None: ...
