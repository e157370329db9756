"""The store: the only code that speaks SQL.

``Store`` is the one object the rest of the gateway holds. It is assembled
from one module per concern, each readable on its own:

- ``accounts``: accounts, credentials, nonces and the ledger;
- ``accepting``: a batch, its messages and their charge in one transaction;
- ``status``: what the dialects' query endpoints read;
- ``inbox``: inbound messages, their attribution and forwarding;
- ``reply_routes``: reply numbers for repliable messages, and the
  conversations (number, handset) that route replies to one account;
- ``connections``: connectors, routes, upstream conditions, connector leases;
- ``queue``: claims of due messages and the outcomes connectors report;
- ``receipts``: carrier receipts matched to submitted messages;
- ``finals``: a final state with its event, refund and callback;
- ``outbox``: callbacks to customer URLs and each attempt at them;
- ``observing``: what ``/metrics`` and ``/readyz`` read, and worker heartbeats;
- ``admin``: what the operator's message commands read;
- ``auth_limits``: failed authentications per client address and identifier.
- ``console``: the web console's users, sessions and pages;
- ``batches``: batches' progress, and cancelling what has not left.

Every write that the gateway promises to a customer is one transaction:
accepting a batch writes the batch, its messages (which are also the queue
entries) and the ledger charge together, so a reply of success always means
all of it is on disk and a failure means none of it is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from smsgate.store.accepting import AcceptingStore, _AcceptJob
from smsgate.store.accounts import AccountStore
from smsgate.store.admin import AdminStore
from smsgate.store.auth_limits import AuthLimitStore
from smsgate.store.base import Clock, wall_clock_ms
from smsgate.store.batches import BatchStore
from smsgate.store.connections import ConnectionStore
from smsgate.store.console import ConsoleStore
from smsgate.store.driver_sql import DriverSql
from smsgate.store.engine import Engines, open_engines
from smsgate.store.finals import REFUNDED_STATES
from smsgate.store.group_commit import GroupCommit
from smsgate.store.inbox import InboxStore
from smsgate.store.migrate import upgrade
from smsgate.store.observing import ObservingStore
from smsgate.store.outbox import OutboxStore
from smsgate.store.queue import QueueStore
from smsgate.store.records import (
    AcceptedBatch,
    InboundMessage,
    Receipt,
    ReceiptTally,
    SubmitOutcome,
)
from smsgate.store.status import StatusStore

__all__ = ["REFUNDED_STATES", "Store", "wall_clock_ms"]


class Store(
    AccountStore,
    AcceptingStore,
    StatusStore,
    InboxStore,
    ObservingStore,
    ConnectionStore,
    QueueStore,
    OutboxStore,
    AdminStore,
    AuthLimitStore,
    ConsoleStore,
    BatchStore,
):
    def __init__(self, engines: Engines, clock: Clock = wall_clock_ms) -> None:
        self.engines = engines
        self.clock = clock
        self._sql = DriverSql(postgres=engines.is_postgres)
        self._group: GroupCommit[_AcceptJob, AcceptedBatch] = GroupCommit(
            self._write, self._accept_group
        )

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        sqlite_synchronous: str = "FULL",
        migrate: bool = True,
        clock: Clock = wall_clock_ms,
    ) -> Store:
        engines = open_engines(url, sqlite_synchronous=sqlite_synchronous)
        if migrate:
            await upgrade(engines)
        return cls(engines, clock)

    async def close(self) -> None:
        await self.engines.dispose()

    async def record_delivery(
        self,
        owner: str,
        outcomes: Sequence[SubmitOutcome],
        claims: Mapping[int, int],
        receipts: Sequence[Receipt],
        inbound: Sequence[InboundMessage],
    ) -> ReceiptTally:
        """Everything a worker learned from its carriers since the last call,
        in one transaction: outcomes first (so a receipt that came right
        behind its part's answer finds the part, or is written with it,
        see ``_record_submissions_in``), then inbound messages and receipts.
        On SQLite's single writer, one commit for all three instead of one
        each is what lets delivery run at the carrier's rate."""
        if not (outcomes or receipts or inbound):
            return ReceiptTally()
        now = self.clock()
        async with self._write() as conn:
            receipts, ended = await self._record_submissions_in(
                conn, owner, outcomes, claims, now, receipts
            )
            await self._record_inbound_in(conn, inbound, now)
            tally = await self._record_receipts_in(conn, receipts, now)
        return replace(tally, matched=tally.matched + ended)
