"""Accepting a batch: its messages, their charge and the reply memo in one transaction.

A reply of success always means all of it is on disk and a failure means
none of it is. Small batches share a transaction through group commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from smsgate.core.model import MessageFlag, PreparedMessage, Priority
from smsgate.store import schema as t
from smsgate.store.base import ENUM_TEXT, adjust_balance
from smsgate.store.driver_sql import RowUpdate
from smsgate.store.group_commit import GroupCommit
from smsgate.store.records import (
    AcceptedBatch,
    AlreadyAccepted,
    BatchTerms,
    DailyQuota,
    DailyQuotaExceeded,
    InsufficientCredit,
    ReplyMemo,
    ReplyPool,
)
from smsgate.store.reply_routes import ReplyRouteStore

PLAIN_BATCH = BatchTerms()
_REPLIABLE = int(MessageFlag.REPLIABLE)
# Batches up to this size are accepted by group commit (see
# store/group_commit.py): a sendbulk, or the submit_sm an SMPP session has in
# flight, costs a few statements shared with its group instead of a
# transaction of its own (about 1.5 ms less for 100 messages on SQLite). A
# larger one (an EAPI CSV) is a transaction of its own, so it never holds
# small ones up.
GROUPED_BATCH_SIZE = 1000


class AcceptingStore(ReplyRouteStore):
    """Accepting batches and remembering their replies."""

    _group: GroupCommit[_AcceptJob, AcceptedBatch]

    async def accept(
        self,
        account_id: int,
        *,
        dialect: str,
        messages: Sequence[PreparedMessage],
        priority: Priority = Priority.NORMAL,
        memo: ReplyMemo | None = None,
        terms: BatchTerms = PLAIN_BATCH,
        reply_pool: ReplyPool | None = None,
        request: str | None = None,
    ) -> AcceptedBatch:
        """Store a batch, its messages, their charge (and the reply memo) in one
        transaction.

        Raises ``InsufficientCredit`` (and writes nothing) if the balance does not
        cover the total cost, ``DailyQuotaExceeded`` if the batch would take the
        account past its daily message quota, and ``AlreadyAccepted`` (writing
        nothing) if a concurrent request stored a memo under the same key first.
        Repliable messages are sent from a number of ``reply_pool`` that opens
        a conversation with their handset for this account; ``NoReplyNumber``
        (nothing written) if one of them has none free. A test-mode batch is
        recorded without messages or charge. ``request`` is the batch's bounded,
        redacted request record (api/request_record.py), stored on its row.
        """
        job = _AcceptJob(account_id, dialect, messages, priority, memo, terms, reply_pool, request)
        try:
            if len(messages) <= GROUPED_BATCH_SIZE:
                return await self._group.run(job)
            async with self._write() as conn:
                return await self._accept_in(conn, job)
        except IntegrityError:
            if memo is None:
                raise
            earlier = await self.remembered_reply(
                account_id, memo.scope, memo.key, memo.window_start_ms
            )
            if earlier is None:
                raise
            raise AlreadyAccepted(earlier) from None

    async def _accept_group(
        self, conn: AsyncConnection, jobs: Sequence[_AcceptJob]
    ) -> list[AcceptedBatch | Exception]:
        """A group commit's batches: the plain ones written together, the rest
        (reply memo, daily quota, test mode, repliable messages) each in a
        savepoint of its own, so that its failure undoes only itself."""
        if len(jobs) == 1 and not jobs[0].plain:
            return [await self._accept_in(conn, jobs[0])]  # a failure fails its transaction
        outcomes: dict[int, AcceptedBatch | Exception] = {}
        for job in jobs:
            if not job.plain:
                try:
                    async with conn.begin_nested():
                        outcomes[id(job)] = await self._accept_in(conn, job)
                except Exception as exc:
                    outcomes[id(job)] = exc
        plain = [job for job in jobs if job.plain]
        if plain:
            outcomes.update(await self._accept_plain(conn, plain))
        return [outcomes[id(job)] for job in jobs]

    async def _accept_plain(
        self, conn: AsyncConnection, jobs: Sequence[_AcceptJob]
    ) -> dict[int, AcceptedBatch | Exception]:
        """Plain batches in a few statements for all of them: balances read
        under lock and charged in order (a batch the balance cannot cover is
        refused, the rest go on), then batches, messages and ledger entries
        each inserted at once."""
        now = self.clock()
        sql = self._sql
        accounts = sorted({job.account_id for job in jobs})
        balance = {
            int(account_id): int(amount)
            for account_id, amount in await sql.fetch(
                conn,
                f"SELECT id, balance FROM accounts WHERE {sql.member_of('id')}{sql.lock_rows}",
                (sql.members(accounts),),
            )
        }
        outcomes: dict[int, AcceptedBatch | Exception] = {}
        taken: list[tuple[_AcceptJob, int, int]] = []  # job, cost, balance after
        for job in jobs:
            cost = sum(message.cost for message in job.messages)
            have = balance.get(job.account_id, 0)
            if have < cost:
                outcomes[id(job)] = InsufficientCredit(have, cost)
                continue
            balance[job.account_id] = have - cost
            taken.append((job, cost, have - cost))
        if not taken:
            return outcomes
        charged = {job.account_id for job, _, _ in taken}
        await sql.update_many(conn, _BALANCE, [(balance[a], a) for a in sorted(charged)])
        batch_ids, message_id_list = await self._allocate_ids(
            conn,
            ("batches", len(taken)),
            ("messages", sum(len(job.messages) for job, _, _ in taken)),
        )
        message_ids = iter(message_id_list)
        batches: list[tuple[Any, ...]] = []
        messages: list[tuple[Any, ...]] = []
        ledger: list[tuple[Any, ...]] = []
        for (job, cost, after), batch_id in zip(taken, batch_ids, strict=True):
            ids = [next(message_ids) for _ in job.messages]
            batches.append(
                _batch_row(batch_id, job.account_id, job.dialect, len(ids), cost, now, job.request)
            )
            rows = _message_rows(batch_id, job.account_id, job.messages, job.priority, now)
            messages.extend((mid, *row) for mid, row in zip(ids, rows, strict=True))
            if cost:
                ledger.append(_charge_entry(job.account_id, batch_id, cost, after, len(ids), now))
            outcomes[id(job)] = AcceptedBatch(batch_id, ids, after)
        await sql.insert_many(conn, "batches", _BATCH_COLUMNS, batches)
        await sql.insert_many(conn, "messages", ("id", *_MESSAGE_COLUMNS), messages)
        await sql.insert_many(conn, "ledger", _LEDGER_COLUMNS, ledger)
        return outcomes

    async def _allocate_ids(
        self, conn: AsyncConnection, *wanted: tuple[str, int]
    ) -> list[list[int]]:
        """Ids for rows about to be inserted, ``count`` for each ``(table,
        count)``, in one statement and without a RETURNING per row: on SQLite
        counted up from MAX(id) (the caller holds the write lock), on
        PostgreSQL drawn from the column's sequence."""
        if self.is_postgres:
            columns = ", ".join(
                f"array(SELECT nextval(pg_get_serial_sequence('{table}', 'id'))"
                f" FROM generate_series(1, ?::int))"
                for table, _ in wanted
            )
            [row] = await self._sql.fetch(conn, f"SELECT {columns}", [n for _, n in wanted])
            return [[int(i) for i in ids] for ids in row]
        columns = ", ".join(f"(SELECT MAX(id) FROM {table})" for table, _ in wanted)
        [row] = await self._sql.fetch(conn, f"SELECT {columns}")
        return [
            list(range(int(highest or 0) + 1, int(highest or 0) + 1 + count))
            for highest, (_, count) in zip(row, wanted, strict=True)
        ]

    async def _accept_in(self, conn: AsyncConnection, job: _AcceptJob) -> AcceptedBatch:
        """One batch with everything it may need, in the caller's transaction."""
        account_id, dialect, priority, memo, terms = (
            job.account_id,
            job.dialect,
            job.priority,
            job.memo,
            job.terms,
        )
        now = self.clock()
        messages = [] if terms.test_mode else job.messages
        cost = sum(message.cost for message in messages)
        # The guarded update also locks the account row, which serialises
        # concurrent batches of one account for the quota count below.
        balance = await adjust_balance(conn, account_id, -cost, keep_at_least=0)
        if balance is None:
            current = (
                await conn.execute(
                    select(t.accounts.c.balance).where(t.accounts.c.id == account_id)
                )
            ).scalar_one()
            raise InsufficientCredit(int(current), cost)
        if terms.daily_quota is not None and messages:
            await _check_daily_quota(conn, account_id, terms.daily_quota, len(messages))
        messages = await self._choose_reply_numbers(conn, account_id, messages, job.reply_pool, now)
        [[batch_id]] = await self._allocate_ids(conn, ("batches", 1))
        await self._sql.insert_many(
            conn,
            "batches",
            _BATCH_COLUMNS,
            [
                _batch_row(
                    batch_id,
                    account_id,
                    dialect,
                    len(messages),
                    cost,
                    now,
                    job.request,
                    terms=terms,
                )
            ],
        )
        message_ids: list[int] = []
        if messages:
            rows = _message_rows(batch_id, account_id, messages, priority, now)
            message_ids = await self._insert_messages(conn, batch_id, rows)
            await self._open_conversations(
                conn, account_id, batch_id, message_ids, messages, job.reply_pool, now
            )
        if cost:
            await self._sql.insert_many(
                conn,
                "ledger",
                _LEDGER_COLUMNS,
                [_charge_entry(account_id, batch_id, cost, balance, len(messages), now)],
            )
        accepted = AcceptedBatch(int(batch_id), message_ids, int(balance))
        if memo is not None:
            await self._store_memo(conn, account_id, memo, accepted, now)
        return accepted

    async def _store_memo(
        self,
        conn: AsyncConnection,
        account_id: int,
        memo: ReplyMemo,
        accepted: AcceptedBatch,
        now: int,
    ) -> None:
        keys = t.idempotency_keys.c
        await conn.execute(
            delete(t.idempotency_keys).where(
                keys.account_id == account_id,
                keys.scope == memo.scope,
                keys.key == memo.key,
                keys.created_at < memo.window_start_ms,
            )
        )
        await conn.execute(
            insert(t.idempotency_keys),
            {
                "account_id": account_id,
                "scope": memo.scope,
                "key": memo.key,
                "batch_id": accepted.batch_id,
                "response": memo.render(accepted),
                "created_at": now,
            },
        )

    async def _insert_messages(
        self, conn: AsyncConnection, batch_id: int, rows: list[tuple[Any, ...]]
    ) -> list[int]:
        """The batch insert, straight to the driver, returning the ids in row order.

        At 30,000 rows SQLAlchemy's per-row parameter processing costs more than
        the database's own work, and asking for RETURNING ids costs a statement
        per row on SQLite. So SQLite, whose write lock the caller holds, gets ids
        counted up from MAX(id) and one ``executemany``; PostgreSQL takes the rows
        by COPY on the same connection (so in the same transaction) with ids from
        the column's sequence, which increase in row order, and hands them back
        through the batch index: far cheaper than asking the sequence 30,000 times.
        """
        if self.is_postgres:
            raw = await conn.get_raw_connection()
            await raw.driver_connection.copy_records_to_table(  # type: ignore[union-attr]
                "messages", records=rows, columns=_MESSAGE_COLUMNS
            )
            m = t.messages.c
            stored = await conn.execute(select(m.id).where(m.batch_id == batch_id).order_by(m.id))
            return list(stored.scalars())
        [ids] = await self._allocate_ids(conn, ("messages", len(rows)))
        await self._sql.insert_many(
            conn,
            "messages",
            ("id", *_MESSAGE_COLUMNS),
            [(message_id, *row) for message_id, row in zip(ids, rows, strict=True)],
        )
        return ids

    async def remembered_reply(
        self, account_id: int, scope: str, key: str, since_ms: int = 0
    ) -> str | None:
        """The stored reply of an earlier request with the same key, if still remembered."""
        async with self._read() as conn:
            return (
                await conn.execute(
                    select(t.idempotency_keys.c.response).where(
                        t.idempotency_keys.c.account_id == account_id,
                        t.idempotency_keys.c.scope == scope,
                        t.idempotency_keys.c.key == key,
                        t.idempotency_keys.c.created_at >= since_ms,
                    )
                )
            ).scalar_one_or_none()


async def _check_daily_quota(
    conn: AsyncConnection, account_id: int, quota: DailyQuota, adding: int
) -> None:
    b = t.batches.c
    used = (
        await conn.execute(
            select(func.coalesce(func.sum(b.message_count), 0)).where(
                b.account_id == account_id, b.created_at >= quota.day_start_ms
            )
        )
    ).scalar_one()
    if int(used) + adding > quota.limit:
        raise DailyQuotaExceeded(quota.limit, int(used), adding)


_MESSAGE_COLUMNS = (
    "batch_id",
    "account_id",
    "recipient",
    "network_id",
    "sender",
    "body",
    "encoding",
    "segments",
    "cost",
    "client_ref",
    "priority",
    "want_report",
    "flags",
    "routing_group",
    "state",
    "created_at",
    "due_at",
    "expires_at",
    "part_of",
)


_BATCH_COLUMNS = (
    "id",
    "account_id",
    "dialect",
    "message_count",
    "cost",
    "created_at",
    "description",
    "test_mode",
    "request",
)


_LEDGER_COLUMNS = (
    "account_id",
    "amount",
    "balance_after",
    "kind",
    "batch_id",
    "note",
    "created_at",
)


_BALANCE = RowUpdate("accounts", (("balance", "bigint", "{v}"),))


@dataclass(frozen=True, slots=True)
class _AcceptJob:
    """One ``accept`` call, as group commit queues it."""

    account_id: int
    dialect: str
    messages: Sequence[PreparedMessage]
    priority: Priority
    memo: ReplyMemo | None
    terms: BatchTerms
    reply_pool: ReplyPool | None
    request: str | None

    @property
    def plain(self) -> bool:
        """Nothing but a charge and rows to write: no memo, quota, test mode or
        reply conversation. Such batches are written together with their group."""
        return (
            self.memo is None
            and self.terms == PLAIN_BATCH
            and not any(m.flags & _REPLIABLE for m in self.messages)
        )


def _message_rows(
    batch_id: int,
    account_id: int,
    messages: Sequence[PreparedMessage],
    priority: Priority,
    now: int,
) -> list[tuple[Any, ...]]:
    """Message rows in ``_MESSAGE_COLUMNS`` order."""
    return [
        (
            batch_id,
            account_id,
            m.recipient,
            m.network_id,
            m.sender,
            m.text,
            ENUM_TEXT[m.encoding],
            m.segments,
            m.cost,
            m.client_ref,
            int(priority),
            m.want_report,
            m.flags,
            m.routing_group,
            ENUM_TEXT[m.state],
            now,
            m.due_at,
            m.expires_at,
            None if m.part_of is None else str(m.part_of),
        )
        for m in messages
    ]


def _batch_row(
    batch_id: int,
    account_id: int,
    dialect: str,
    count: int,
    cost: int,
    now: int,
    request: str | None,
    *,
    terms: BatchTerms = PLAIN_BATCH,
) -> tuple[Any, ...]:
    """A batch row in ``_BATCH_COLUMNS`` order."""
    return (
        batch_id,
        account_id,
        dialect,
        count,
        cost,
        now,
        terms.description,
        terms.test_mode,
        request,
    )


def _charge_entry(
    account_id: int, batch_id: int, cost: int, balance_after: int, count: int, now: int
) -> tuple[Any, ...]:
    """A ledger charge in ``_LEDGER_COLUMNS`` order."""
    return (account_id, -cost, balance_after, "charge", batch_id, f"{count} messages", now)
