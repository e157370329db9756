"""Receipts and inbound messages back to customers over their own SMPP binds.

A customer that submits over SMPP expects its receipts (and the replies to
its messages) as deliver_sm on a receiver or transceiver session, as from any
SMSC. They wait in the callback outbox (dialect ``smpp``, written with the
final state or the inbound message, see ``store.outbox``), so a receipt whose
customer is not bound is kept until it binds, on whichever server process.

A row is marked delivered only once the customer's deliver_sm_resp said
ESME_ROK; until then it is leased, and a process that dies leaves it to
lease expiry. A session that closes with pushes in hand hands them straight
back (due at once, for its other sessions or its next bind); a customer that
refuses one (a non-zero deliver_sm_resp) gets it again after a backoff, for
as long as it keeps binding: nothing owed to a customer is thrown away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from typing import Protocol

from smsgate.aio import wait_for_event
from smsgate.smpp.customer_pdus import customer_pdu
from smsgate.smpp.pdu import ShortMessage
from smsgate.store.records import CallbackAttempt, CallbackJob
from smsgate.store.repo import Store

log = logging.getLogger(__name__)

# A refused push is offered again after 2, 4, 8 … seconds, at most this long.
_LONGEST_BACKOFF_MS = 60_000


class ReceiverSession(Protocol):
    """What the pump needs of a bound receiver or transceiver session."""

    @property
    def account_id(self) -> int | None:
        """The account it is bound as (None before the bind)."""
        ...

    async def deliver(self, pdu: ShortMessage) -> bool:
        """Send one deliver_sm; True once its deliver_sm_resp said ESME_ROK,
        False when the customer refused it or the session closed first."""
        ...


class Returns:
    """Claims what bound customers are owed and pushes it over their sessions."""

    def __init__(
        self,
        store: Store,
        *,
        batch_size: int = 500,
        per_session: int = 50,
        lease_ms: int = 60_000,
        idle_poll: float = 0.2,
    ) -> None:
        self._store = store
        self._batch_size = batch_size
        self._per_session = per_session
        self._lease_ms = lease_ms
        self._idle_poll = idle_poll
        self._sessions: dict[int, list[ReceiverSession]] = defaultdict(list)
        self._in_hand: dict[int, int] = {}  # id(session) -> pushes it carries
        self._tasks: set[asyncio.Task[None]] = set()
        self._finished: list[CallbackAttempt] = []
        self._wake = asyncio.Event()
        self.delivered = 0

    def attach(self, session: ReceiverSession) -> None:
        """A receiver or transceiver bound: what its account is owed can flow."""
        if session.account_id is None:
            return
        self._sessions[session.account_id].append(session)
        self._in_hand.setdefault(id(session), 0)
        self.wake()

    def detach(self, session: ReceiverSession) -> None:
        """The session ended; its pushes in hand come back as not delivered."""
        account_id = session.account_id
        if account_id is None:
            return
        sessions = self._sessions.get(account_id, [])
        with contextlib.suppress(ValueError):
            sessions.remove(session)
        if not sessions:
            self._sessions.pop(account_id, None)
        if not self._in_hand.get(id(session)):
            self._in_hand.pop(id(session), None)

    def wake(self) -> None:
        """Something may be owed now (a bind, a receipt recorded here)."""
        self._wake.set()

    async def run(self, stopping: asyncio.Event) -> None:
        try:
            while not stopping.is_set():
                self._wake.clear()
                claimed = await self._claim_round()
                await self._flush()
                if not claimed:
                    await wait_for_event(self._wake, self._idle_poll)
        finally:
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._flush()

    async def _claim_round(self) -> int:
        room = {
            account: sum(self._per_session - self._in_hand[id(s)] for s in sessions)
            for account, sessions in self._sessions.items()
        }
        open_accounts = [account for account, free in room.items() if free > 0]
        limit = min(self._batch_size, sum(max(free, 0) for free in room.values()))
        if not open_accounts or limit <= 0:
            return 0
        try:
            jobs = await self._store.claim_session_pushes(open_accounts, limit, self._lease_ms)
        except Exception:
            log.exception("could not claim SMPP pushes; trying again")
            return 0
        for job in jobs:
            task = asyncio.create_task(self._push(job))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return len(jobs)

    def _least_busy(self, account_id: int) -> ReceiverSession | None:
        sessions = self._sessions.get(account_id)
        if not sessions:
            return None
        return min(sessions, key=lambda s: self._in_hand[id(s)])

    async def _push(self, job: CallbackJob) -> None:
        session = self._least_busy(job.account_id)
        if session is None:  # unbound between the claim and now
            self._finished.append(self._handed_back(job))
            return
        self._in_hand[id(session)] += 1
        try:
            pdu = customer_pdu(job.kind, job.payload)
            delivered = await session.deliver(pdu)
        except Exception as exc:  # a poison row fails alone, on the backoff
            log.exception("SMPP push %d could not be sent", job.id)
            self._finished.append(self._refused(job, f"{type(exc).__name__}: {exc}"))
            return
        finally:
            attached = session in self._sessions.get(job.account_id, ())
            left = self._in_hand.get(id(session), 1) - 1
            if left or attached:
                self._in_hand[id(session)] = left
            else:  # the last push of a closed session
                self._in_hand.pop(id(session), None)
            self.wake()
        if delivered:
            self.delivered += 1
            self._finished.append(CallbackAttempt(job.id, True, None, None, None))
        elif attached:
            self._finished.append(self._refused(job, "deliver_sm refused by the customer"))
        else:
            self._finished.append(self._handed_back(job))

    def _handed_back(self, job: CallbackJob) -> CallbackAttempt:
        """Due again at once: the session closed, not the customer's doing."""
        return CallbackAttempt(job.id, False, None, "session closed", self._store.clock())

    def _refused(self, job: CallbackJob, error: str) -> CallbackAttempt:
        backoff = min(2_000 * 2 ** min(job.attempts - 1, 10), _LONGEST_BACKOFF_MS)
        return CallbackAttempt(job.id, False, None, error, self._store.clock() + backoff)

    async def _flush(self) -> None:
        """Record finished pushes in one transaction; kept for the next try
        if the database is away (their leases protect them meanwhile)."""
        if not self._finished:
            return
        finished, self._finished = self._finished, []
        try:
            await self._store.callbacks_finished(finished)
        except Exception:
            log.exception("could not record %d SMPP pushes; trying again", len(finished))
            self._finished[:0] = finished
