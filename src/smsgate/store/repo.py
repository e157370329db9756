"""The store: the only code that speaks SQL.

Every write that the gateway promises to a customer is one transaction here:
accepting a batch writes the batch, its messages (which are also the queue
entries) and the ledger charge together, so a reply of success always means
all of it is on disk and a failure means none of it is.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, fields, replace
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import (
    Row,
    delete,
    func,
    insert,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from smsgate.core.encoding import Encoding
from smsgate.core.model import (
    Account,
    AccountStatus,
    MessageFlag,
    MessageView,
    PreparedMessage,
    Priority,
)
from smsgate.core.states import Reason, State, UpstreamCondition, can_transition
from smsgate.store import schema as t
from smsgate.store.driver_sql import DriverSql, RowUpdate
from smsgate.store.engine import Engines, open_engines
from smsgate.store.group_commit import GroupCommit
from smsgate.store.migrate import upgrade
from smsgate.store.records import (
    AcceptedBatch,
    AlreadyAccepted,
    BatchTerms,
    CallbackJob,
    ConnectorRow,
    DailyQuota,
    DailyQuotaExceeded,
    DuplicateIdentifier,
    InboundMessage,
    InboxEntry,
    InsufficientCredit,
    LedgerEntry,
    OutboundMessage,
    Receipt,
    Refused,
    ReplyMemo,
    ReportLine,
    RetryLater,
    RouteRow,
    SubmitOutcome,
    Submitted,
)

log = logging.getLogger(__name__)

Clock = Callable[[], int]
R = TypeVar("R")

PLAIN_BATCH = BatchTerms()
_REPLIABLE = int(MessageFlag.REPLIABLE)
REFUNDED_STATES = frozenset({State.REJECTED, State.FAILED})
# A connector's words for an outcome are cut to the column rather than let one
# long description fail the transaction that records a whole group of outcomes.
_CARRIER_STATUS_WIDTH: int = t.delivery_events.c.carrier_status.type.length  # type: ignore[attr-defined]
# Batches this small are accepted by group commit (see store/group_commit.py);
# a larger one is a transaction of its own, so it never holds small ones up.
GROUPED_BATCH_SIZE = 10


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class Store:
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

    @property
    def is_postgres(self) -> bool:
        return self.engines.is_postgres

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        async with self.engines.writer.begin() as conn:
            yield conn

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncConnection]:
        async with self.engines.reader.connect() as conn:
            yield conn

    # ---------------------------------------------------------------- accounts

    async def create_account(
        self,
        *,
        name: str,
        region: str,
        timezone: str,
        senders: Sequence[str] = (),
        allowed_country_codes: Sequence[int] = (),
        dlr_callback_url: str | None = None,
        options: dict[str, object] | None = None,
    ) -> Account:
        async with self._write() as conn:
            result = await conn.execute(
                insert(t.accounts).returning(t.accounts.c.id),
                {
                    "name": name,
                    "status": AccountStatus.ACTIVE.value,
                    "region": region,
                    "timezone": timezone,
                    "balance": 0,
                    "senders": list(senders),
                    "allowed_country_codes": list(allowed_country_codes),
                    "dlr_callback_url": dlr_callback_url,
                    "options": options or {},
                    "created_at": self.clock(),
                },
            )
            account_id = result.scalar_one()
        account = await self.account(account_id)
        assert account is not None
        return account

    async def update_account(self, account_id: int, **changes: Any) -> Account:
        allowed = {
            "status",
            "senders",
            "dlr_callback_url",
            "allowed_country_codes",
            "options",
            "region",
            "timezone",
        }
        unknown = set(changes) - allowed
        if unknown:
            raise ValueError(f"cannot change {', '.join(sorted(unknown))}")
        async with self._write() as conn:
            await conn.execute(
                update(t.accounts).where(t.accounts.c.id == account_id).values(**changes)
            )
        account = await self.account(account_id)
        if account is None:
            raise LookupError(f"no account {account_id}")
        return account

    async def account(self, account_id: int) -> Account | None:
        async with self._read() as conn:
            row = (
                await conn.execute(select(t.accounts).where(t.accounts.c.id == account_id))
            ).first()
        return _account(row) if row else None

    async def account_by_name(self, name: str) -> Account | None:
        async with self._read() as conn:
            row = (await conn.execute(select(t.accounts).where(t.accounts.c.name == name))).first()
        return _account(row) if row else None

    async def accounts(self) -> list[Account]:
        async with self._read() as conn:
            rows = (await conn.execute(select(t.accounts).order_by(t.accounts.c.id))).all()
        return [_account(row) for row in rows]

    async def add_credential(
        self,
        account_id: int,
        *,
        kind: str,
        identifier: str,
        secret_hash: str,
        sealed_secret: str | None = None,
    ) -> None:
        """Attach a credential; identifiers are unique per kind across accounts."""
        async with self._write() as conn:
            taken = (
                await conn.execute(
                    select(t.credentials.c.account_id).where(
                        t.credentials.c.kind == kind,
                        t.credentials.c.identifier == identifier,
                        t.credentials.c.revoked_at.is_(None),
                        t.credentials.c.account_id != account_id,
                    )
                )
            ).first()
            if taken:
                raise DuplicateIdentifier(f"{kind} identifier {identifier!r} is in use")
            await conn.execute(
                insert(t.credentials),
                {
                    "account_id": account_id,
                    "kind": kind,
                    "identifier": identifier,
                    "secret_hash": secret_hash,
                    "sealed_secret": sealed_secret,
                    "created_at": self.clock(),
                },
            )

    async def revoke_credentials(self, account_id: int, kind: str) -> int:
        """Revoke every active credential of a kind (key rotation); returns how many."""
        async with self._write() as conn:
            result = await conn.execute(
                update(t.credentials)
                .where(
                    t.credentials.c.account_id == account_id,
                    t.credentials.c.kind == kind,
                    t.credentials.c.revoked_at.is_(None),
                )
                .values(revoked_at=self.clock())
            )
        return int(result.rowcount)

    async def credentials_for(self, kind: str, identifier: str) -> list[tuple[Account, str]]:
        """Active secret hashes registered under ``identifier``, with their account.

        Several rows are possible while a key is being rotated.
        """
        return await self._active_secrets(kind, identifier, t.credentials.c.secret_hash)

    async def sealed_secrets(self, kind: str, identifier: str) -> list[tuple[Account, str]]:
        """Like ``credentials_for``, but the sealed (usable) secrets."""
        return await self._active_secrets(kind, identifier, t.credentials.c.sealed_secret)

    async def _active_secrets(
        self, kind: str, identifier: str, column: Any
    ) -> list[tuple[Account, str]]:
        c = t.credentials.c
        query = (
            select(t.accounts, column.label("secret"))
            .join(t.credentials, c.account_id == t.accounts.c.id)
            .where(
                c.kind == kind,
                c.identifier == identifier,
                c.revoked_at.is_(None),
                column.is_not(None),
            )
        )
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
        return [(_account(row), row.secret) for row in rows]

    async def account_sealed_secret(self, account_id: int, kind: str) -> tuple[str, str] | None:
        """(identifier, sealed secret) of an account's newest credential of ``kind``."""
        c = t.credentials.c
        query = (
            select(c.identifier, c.sealed_secret)
            .where(
                c.account_id == account_id,
                c.kind == kind,
                c.revoked_at.is_(None),
                c.sealed_secret.is_not(None),
            )
            .order_by(c.id.desc())
            .limit(1)
        )
        async with self._read() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else (row.identifier, row.sealed_secret)

    async def first_use_of_nonce(
        self, identifier: str, nonce: str, *, forget_before_ms: int
    ) -> bool:
        """Record a signed request's nonce; False if it was seen before.

        Nonces older than ``forget_before_ms`` are dropped as they can no longer
        pass the date check anyway, which keeps the table to one window's worth.
        """
        n = t.request_nonces.c
        try:
            async with self._write() as conn:
                await conn.execute(delete(t.request_nonces).where(n.seen_at < forget_before_ms))
                await conn.execute(
                    insert(t.request_nonces),
                    {"identifier": identifier, "nonce": nonce, "seen_at": self.clock()},
                )
        except IntegrityError:
            return False
        return True

    async def identifiers(self, account_id: int) -> list[tuple[str, str]]:
        async with self._read() as conn:
            rows = (
                await conn.execute(
                    select(t.credentials.c.kind, t.credentials.c.identifier)
                    .where(
                        t.credentials.c.account_id == account_id,
                        t.credentials.c.revoked_at.is_(None),
                    )
                    .order_by(t.credentials.c.id)
                )
            ).all()
        return [(row.kind, row.identifier) for row in rows]

    # ------------------------------------------------------------------ ledger

    async def add_credit(self, account_id: int, amount: int, note: str = "") -> int:
        """Top up (or, with a negative amount, debit) an account; returns the new balance."""
        async with self._write() as conn:
            balance = await _adjust_balance(conn, account_id, amount)
            if balance is None:
                raise LookupError(f"no account {account_id}")
            await conn.execute(
                insert(t.ledger),
                {
                    "account_id": account_id,
                    "amount": amount,
                    "balance_after": balance,
                    "kind": "topup" if amount >= 0 else "debit",
                    "note": note,
                    "created_at": self.clock(),
                },
            )
        return int(balance)

    async def balance(self, account_id: int) -> int:
        async with self._read() as conn:
            value = (
                await conn.execute(
                    select(t.accounts.c.balance).where(t.accounts.c.id == account_id)
                )
            ).scalar_one()
        return int(value)

    async def ledger_entries(self, account_id: int) -> list[LedgerEntry]:
        async with self._read() as conn:
            rows = (
                await conn.execute(
                    select(*_columns(t.ledger, LedgerEntry))
                    .where(t.ledger.c.account_id == account_id)
                    .order_by(t.ledger.c.id)
                )
            ).all()
        return _records(LedgerEntry, rows)

    # -------------------------------------------------------------- submission

    async def accept(
        self,
        account_id: int,
        *,
        dialect: str,
        messages: Sequence[PreparedMessage],
        priority: Priority = Priority.NORMAL,
        memo: ReplyMemo | None = None,
        terms: BatchTerms = PLAIN_BATCH,
    ) -> AcceptedBatch:
        """Store a batch, its messages, their charge (and the reply memo) in one
        transaction.

        Raises ``InsufficientCredit`` (and writes nothing) if the balance does not
        cover the total cost, ``DailyQuotaExceeded`` if the batch would take the
        account past its daily message quota, and ``AlreadyAccepted`` (writing
        nothing) if a concurrent request stored a memo under the same key first.
        A test-mode batch is recorded without messages or charge.
        """
        job = _AcceptJob(account_id, dialect, messages, priority, memo, terms)
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
        batch_ids = await self._allocate_ids(conn, "batches", len(taken))
        message_ids = iter(
            await self._allocate_ids(
                conn, "messages", sum(len(job.messages) for job, _, _ in taken)
            )
        )
        batches: list[tuple[Any, ...]] = []
        messages: list[tuple[Any, ...]] = []
        ledger: list[tuple[Any, ...]] = []
        for (job, cost, after), batch_id in zip(taken, batch_ids, strict=True):
            ids = [next(message_ids) for _ in job.messages]
            batches.append(_batch_row(batch_id, job.account_id, job.dialect, len(ids), cost, now))
            rows = _message_rows(batch_id, job.account_id, job.messages, job.priority, now)
            messages.extend((mid, *row) for mid, row in zip(ids, rows, strict=True))
            if cost:
                ledger.append(_charge_entry(job.account_id, batch_id, cost, after, len(ids), now))
            outcomes[id(job)] = AcceptedBatch(batch_id, ids, after)
        await sql.insert_many(conn, "batches", _BATCH_COLUMNS, batches)
        await sql.insert_many(conn, "messages", ("id", *_MESSAGE_COLUMNS), messages)
        await sql.insert_many(conn, "ledger", _LEDGER_COLUMNS, ledger)
        return outcomes

    async def _allocate_ids(self, conn: AsyncConnection, table: str, count: int) -> list[int]:
        """Ids for rows about to be inserted, without a RETURNING per row: on
        SQLite counted up from MAX(id) (the caller holds the write lock), on
        PostgreSQL drawn from the column's sequence."""
        if not count:
            return []
        if self.is_postgres:
            rows = await self._sql.fetch(
                conn,
                f"SELECT nextval(pg_get_serial_sequence('{table}', 'id'))"
                " FROM generate_series(1, ?::int)",
                (count,),
            )
            return [int(row[0]) for row in rows]
        rows = await self._sql.fetch(conn, f"SELECT MAX(id) FROM {table}")
        highest = int(rows[0][0] or 0)
        return list(range(highest + 1, highest + 1 + count))

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
        balance = await _adjust_balance(conn, account_id, -cost, keep_at_least=0)
        if balance is None:
            current = (
                await conn.execute(
                    select(t.accounts.c.balance).where(t.accounts.c.id == account_id)
                )
            ).scalar_one()
            raise InsufficientCredit(int(current), cost)
        if terms.daily_quota is not None and messages:
            await _check_daily_quota(conn, account_id, terms.daily_quota, len(messages))
        [batch_id] = await self._allocate_ids(conn, "batches", 1)
        await self._sql.insert_many(
            conn,
            "batches",
            _BATCH_COLUMNS,
            [_batch_row(batch_id, account_id, dialect, len(messages), cost, now, terms=terms)],
        )
        message_ids: list[int] = []
        if messages:
            rows = _message_rows(batch_id, account_id, messages, priority, now)
            message_ids = await self._insert_messages(conn, batch_id, rows)
            await _remember_reply_routes(conn, account_id, batch_id, message_ids, messages, now)
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
        ids = await self._allocate_ids(conn, "messages", len(rows))
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

    # ------------------------------------------------------------------ status

    async def message(self, account_id: int, message_id: int) -> MessageView | None:
        """One message of this account; another account's id reads as absent."""
        if not _storable_id(message_id):
            return None
        m = t.messages.c
        async with self._read() as conn:
            row = (
                await conn.execute(
                    select(
                        m.id,
                        m.batch_id,
                        m.recipient,
                        m.state,
                        m.reason,
                        m.network_id,
                        m.created_at,
                        m.submitted_at,
                        m.done_at,
                        m.client_ref,
                    ).where(m.id == message_id, m.account_id == account_id)
                )
            ).first()
        if row is None:
            return None
        return MessageView(
            id=row.id,
            batch_id=row.batch_id,
            recipient=row.recipient,
            state=State(row.state),
            reason=Reason(row.reason),
            network_id=row.network_id,
            created_at=row.created_at,
            submitted_at=row.submitted_at,
            done_at=row.done_at,
            client_ref=row.client_ref,
        )

    async def batch_report(
        self, account_id: int, batch_id: int, recipient: str | None = None
    ) -> list[ReportLine] | None:
        """A batch's messages in submission order; None if the account has no such batch."""
        if not _storable_id(batch_id):
            return None
        m = t.messages.c
        async with self._read() as conn:
            owner = (
                await conn.execute(select(t.batches.c.account_id).where(t.batches.c.id == batch_id))
            ).scalar_one_or_none()
            if owner != account_id:
                return None
            query = select(*_columns(t.messages, ReportLine)).where(m.batch_id == batch_id)
            if recipient is not None:
                query = query.where(m.recipient == recipient)
            rows = (await conn.execute(query.order_by(m.id))).all()
        return _records(ReportLine, rows)

    # ----------------------------------------------------------------- inbound

    async def record_inbound(self, messages: Sequence[InboundMessage]) -> None:
        """Store inbound messages and queue a forward to the account's
        ``mo_callback_url``, in one transaction.

        An inbound message belongs to the repliable message it answers (the
        latest one sent to that handset from that address); failing that, to
        the one account whose registered sender ids include the address the
        handset wrote to (its shortcode); else to nobody.
        """
        if not messages:
            return
        now = self.clock()
        r = t.reply_routes.c
        messages = [replace(mo, sender=_international(mo.sender)) for mo in messages]
        async with self._write() as conn:
            pairs = list({(mo.recipient, mo.sender) for mo in messages})
            found = await conn.execute(
                select(r.address, r.recipient, r.account_id, r.message_id, r.batch_id).where(
                    tuple_(r.address, r.recipient).in_(pairs)
                )
            )
            routes = {(row.address, row.recipient): row for row in found.all()}
            unanswered = {
                mo.recipient for mo in messages if (mo.recipient, mo.sender) not in routes
            }
            owners = await _shortcode_owners(conn, unanswered) if unanswered else {}
            rows = []
            for mo in messages:
                route = routes.get((mo.recipient, mo.sender))
                rows.append(
                    {
                        "account_id": route.account_id if route else owners.get(mo.recipient),
                        "message_id": route.message_id if route else None,
                        "batch_id": route.batch_id if route else None,
                        "connector": mo.connector,
                        "sender": mo.sender,
                        "recipient": mo.recipient,
                        "body": mo.body,
                        "encoding": mo.encoding,
                        "received_at": mo.received_at,
                        "created_at": now,
                    }
                )
            inserted = await conn.execute(
                insert(t.inbound_messages).returning(
                    t.inbound_messages.c.id, sort_by_parameter_order=True
                ),
                rows,
            )
            ids = list(inserted.scalars())
            await _queue_mo_forwards(
                conn, [(i, row) for i, row in zip(ids, rows, strict=True)], now
            )

    async def inbox(self, account_id: int, after_id: int, limit: int) -> list[InboxEntry]:
        """An account's inbound messages with ids above ``after_id``, oldest first."""
        i = t.inbound_messages.c
        query = (
            select(*_columns(t.inbound_messages, InboxEntry))
            .where(i.account_id == account_id, i.id > after_id)
            .order_by(i.id)
            .limit(limit)
        )
        async with self._read() as conn:
            return _records(InboxEntry, (await conn.execute(query)).all())

    # ---------------------------------------------------- connectors and routes

    async def add_connector(self, name: str, kind: str, sealed_url: str) -> None:
        """Register (or replace) a carrier connection by name."""
        async with self._write() as conn:
            await conn.execute(delete(t.connectors).where(t.connectors.c.name == name))
            await conn.execute(
                insert(t.connectors),
                {"name": name, "kind": kind, "sealed_url": sealed_url, "created_at": self.clock()},
            )

    async def connectors(self) -> list[ConnectorRow]:
        async with self._read() as conn:
            rows = (
                await conn.execute(
                    select(*_columns(t.connectors, ConnectorRow)).order_by(t.connectors.c.name)
                )
            ).all()
        return _records(ConnectorRow, rows)

    async def remove_connector(self, name: str) -> bool:
        """Forget a connector and its routes; False if there was none."""
        async with self._write() as conn:
            await conn.execute(delete(t.routes).where(t.routes.c.connector == name))
            result = await conn.execute(delete(t.connectors).where(t.connectors.c.name == name))
        return bool(result.rowcount)

    async def add_route(
        self, *, prefix: str, routing_group: int | None, connector: str, priority: int
    ) -> int:
        async with self._write() as conn:
            return int(
                (
                    await conn.execute(
                        insert(t.routes).returning(t.routes.c.id),
                        {
                            "prefix": prefix,
                            "routing_group": routing_group,
                            "connector": connector,
                            "priority": priority,
                            "created_at": self.clock(),
                        },
                    )
                ).scalar_one()
            )

    async def routes(self) -> list[RouteRow]:
        async with self._read() as conn:
            rows = (
                await conn.execute(select(*_columns(t.routes, RouteRow)).order_by(t.routes.c.id))
            ).all()
        return _records(RouteRow, rows)

    async def remove_route(self, route_id: int) -> bool:
        async with self._write() as conn:
            result = await conn.execute(delete(t.routes).where(t.routes.c.id == route_id))
        return bool(result.rowcount)

    # ---------------------------------------------------- upstream conditions

    async def report_condition(
        self, connector: str, condition: UpstreamCondition, until_ms: int
    ) -> None:
        """Record that a connector's upstream refuses traffic until ``until_ms``."""
        c = t.connector_conditions.c
        async with self._write() as conn:
            await conn.execute(delete(t.connector_conditions).where(c.connector == connector))
            await conn.execute(
                insert(t.connector_conditions),
                {
                    "connector": connector,
                    "condition": condition.value,
                    "until_at": until_ms,
                    "reported_at": self.clock(),
                },
            )

    async def hold_connector_lease(self, connector: str, owner: str, lease_ms: int) -> bool:
        """Take or renew ``owner``'s lease on a shared connector; whether it holds it.

        The lease moves only when its holder stopped renewing it (or gave it
        up), so of several workers asking at once exactly one gets it.
        """
        now = self.clock()
        sql = self._sql
        async with self._write() as conn:
            rows = await sql.fetch(
                conn,
                "INSERT INTO connector_leases (connector, owner, lease_until, taken_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (connector) DO UPDATE"
                " SET owner = excluded.owner, lease_until = excluded.lease_until,"
                " taken_at = CASE WHEN connector_leases.owner = excluded.owner"
                " THEN connector_leases.taken_at ELSE excluded.taken_at END"
                " WHERE connector_leases.owner = excluded.owner"
                " OR connector_leases.lease_until < ? RETURNING owner",
                (connector, owner, now + lease_ms, now, now),
            )
        return bool(rows)

    async def release_connector_lease(self, connector: str, owner: str) -> None:
        c = t.connector_leases.c
        async with self._write() as conn:
            await conn.execute(
                update(t.connector_leases)
                .where(c.connector == connector, c.owner == owner)
                .values(lease_until=0)
            )

    async def connector_leases(self) -> dict[str, tuple[str, int]]:
        """Connector -> (owner, lease_until) of every lease ever taken."""
        c = t.connector_leases.c
        async with self._read() as conn:
            rows = (await conn.execute(select(c.connector, c.owner, c.lease_until))).all()
        return {row.connector: (row.owner, row.lease_until) for row in rows}

    async def active_conditions(self) -> dict[str, UpstreamCondition]:
        """Connectors whose upstream currently refuses traffic, and why."""
        c = t.connector_conditions.c
        async with self._read() as conn:
            rows = (
                await conn.execute(
                    select(c.connector, c.condition).where(c.until_at > self.clock())
                )
            ).all()
        return {row.connector: UpstreamCondition(row.condition) for row in rows}

    async def count_by_state(self, account_id: int | None = None) -> dict[State, int]:
        m = t.messages.c
        query = select(m.state, func.count()).group_by(m.state)
        if account_id is not None:
            query = query.where(m.account_id == account_id)
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
        return {State(state): int(count) for state, count in rows}

    # ----------------------------------------------------------- dispatch queue

    async def claim_due(self, owner: str, limit: int, lease_ms: int) -> list[OutboundMessage]:
        """Lease up to ``limit`` due messages to ``owner``, most urgent first.

        A lease that runs out (its worker died) makes the message claimable again;
        on PostgreSQL ``SKIP LOCKED`` lets many workers claim side by side.
        """
        now = self.clock()
        sql = self._sql
        claim = (
            "UPDATE messages SET lease_owner = ?, lease_until = ?, attempts = attempts + 1"
            " WHERE id IN (SELECT id FROM messages"
            f" WHERE {t.WAITING_FOR_DISPATCH} AND due_at <= ?"
            " AND (lease_until IS NULL OR lease_until < ?)"
            f" ORDER BY priority, due_at LIMIT ?{sql.lock_rows_skip_locked})"
            f" RETURNING {_OUTBOUND_COLUMNS}"
        )
        async with self._write() as conn:
            rows = await sql.fetch(conn, claim, (owner, now + lease_ms, now, now, limit))
        return [_outbound(row) for row in rows]

    async def record_submissions(self, owner: str, outcomes: Sequence[SubmitOutcome]) -> None:
        """Apply what the connector said about each claimed message, in one transaction."""
        now = self.clock()
        sql = self._sql
        async with self._write() as conn:
            # Only the current lease holder may decide; a worker whose lease ran
            # out (and whose messages another worker re-claimed) is ignored.
            mine = {
                row[0]
                for row in await sql.fetch(
                    conn,
                    f"SELECT id FROM messages WHERE {sql.member_of('id')}"
                    f" AND lease_owner = ? AND {t.WAITING_FOR_DISPATCH}{sql.lock_rows}",
                    (sql.members([o.message_id for o in outcomes]), owner),
                )
            }
            outcomes = [o for o in outcomes if o.message_id in mine]
            submitted = [o for o in outcomes if isinstance(o, Submitted)]
            retries = [o for o in outcomes if isinstance(o, RetryLater)]
            refused = [o for o in outcomes if isinstance(o, Refused)]
            await sql.update_many(
                conn,
                _SUBMITTED,
                [(o.connector, o.carrier_ref, now, o.message_id) for o in submitted],
            )
            await self._insert_events(
                conn, [(o.message_id, State.SUBMITTED, Reason.NONE, None) for o in submitted], now
            )
            await sql.update_many(
                conn,
                _RETRY,
                [(now + o.delay_ms, 0 if o.counts_attempt else 1, o.message_id) for o in retries],
            )
            if refused:
                await self._finish(
                    conn, [(o.message_id, o.state, o.reason, o.error) for o in refused], now
                )

    async def awaiting_receipts(self, connector: str) -> list[tuple[str, str]]:
        """(carrier_ref, recipient) of messages a connector took but has not reported on."""
        m = t.messages.c
        async with self._read() as conn:
            rows = (
                await conn.execute(
                    select(m.carrier_ref, m.recipient).where(
                        m.connector == connector, m.state == State.SUBMITTED.value
                    )
                )
            ).all()
        return [(row.carrier_ref, row.recipient) for row in rows]

    async def record_receipts(self, receipts: Sequence[Receipt]) -> list[Receipt]:
        """Move receipted messages to their final state; return the receipts that matched
        no submitted message (yet) so the caller can try them again later."""
        if not receipts:
            return []
        now = self.clock()
        by_connector: dict[str, dict[str, Receipt]] = defaultdict(dict)
        for receipt in receipts:
            if can_transition(State.SUBMITTED, receipt.state):
                by_connector[receipt.connector][receipt.carrier_ref] = receipt
            else:
                log.warning(
                    "ignoring receipt %s: %s is not a final state",
                    receipt.carrier_ref,
                    receipt.state,
                )
        unmatched: list[Receipt] = []
        sql = self._sql
        async with self._write() as conn:
            for connector, by_ref in by_connector.items():
                rows = await sql.fetch(
                    conn,
                    "SELECT id, carrier_ref FROM messages WHERE connector = ?"
                    f" AND {sql.member_of('carrier_ref', 'text')}"
                    f" AND state = 'submitted'{sql.lock_rows}",
                    (connector, sql.members(list(by_ref))),
                )
                found = {ref: mid for mid, ref in rows}
                unmatched.extend(r for ref, r in by_ref.items() if ref not in found)
                finals = [
                    (found[ref], r.state, r.reason, r.carrier_status, r.occurred_at)
                    for ref, r in by_ref.items()
                    if ref in found
                ]
                if finals:
                    await self._finish(
                        conn, [f[:4] for f in finals], now, occurred={f[0]: f[4] for f in finals}
                    )
        return unmatched

    async def _insert_events(
        self,
        conn: AsyncConnection,
        events: Sequence[tuple[int, State, Reason, str | None]],
        now: int,
        occurred: dict[int, int] | None = None,
    ) -> None:
        await self._sql.insert_many(
            conn,
            "delivery_events",
            ("message_id", "state", "reason", "carrier_status", "occurred_at", "recorded_at"),
            [
                (
                    mid,
                    state.value,
                    reason.value,
                    status if status is None else status[:_CARRIER_STATUS_WIDTH],
                    (occurred or {}).get(mid, now),
                    now,
                )
                for mid, state, reason, status in events
            ],
        )

    async def _finish(
        self,
        conn: AsyncConnection,
        finals: Sequence[tuple[int, State, Reason, str | None]],
        now: int,
        *,
        occurred: dict[int, int] | None = None,
    ) -> None:
        """Write final states, their events, refunds and callbacks.

        The caller has already locked the rows and checked they may move. Only
        the rows that owe a refund or a callback are read back.
        """
        sql = self._sql
        done = occurred or {}
        await sql.update_many(
            conn,
            _FINISHED,
            [
                (state.value, reason.value, done.get(mid, now), mid)
                for mid, state, reason, _ in finals
            ],
        )
        await self._insert_events(conn, finals, now, occurred)
        rows = [
            _Finished(*row)
            for row in await sql.fetch(
                conn,
                _OWING_SQL.format(ids=sql.member_of("m.id")),
                (sql.members([mid for mid, *_ in finals]),),
            )
        ]
        await self._refund(conn, [row for row in rows if State(row.state) in REFUNDED_STATES], now)
        callbacks = [
            {
                "account_id": row.account_id,
                "message_id": row.id,
                "dialect": row.dialect,
                "kind": "dlr",
                "url": row.dlr_callback_url,
                "payload": _dlr_payload(row),
                "next_attempt_at": now,
                "created_at": now,
            }
            for row in rows
            if row.want_report and row.dlr_callback_url
        ]
        if callbacks:
            await conn.execute(insert(t.callback_outbox), callbacks)

    async def _refund(self, conn: AsyncConnection, rows: Sequence[Any], now: int) -> None:
        per_account: dict[int, list[Any]] = defaultdict(list)
        for row in rows:
            if row.cost:
                per_account[row.account_id].append(row)
        for account_id, refunds in per_account.items():
            total = sum(row.cost for row in refunds)
            balance = await _adjust_balance(conn, account_id, total)
            assert balance is not None
            running = balance - total
            entries = []
            for row in refunds:
                running += row.cost
                entries.append(
                    {
                        "account_id": account_id,
                        "amount": row.cost,
                        "balance_after": running,
                        "kind": "refund",
                        "batch_id": row.batch_id,
                        "message_id": row.id,
                        "note": f"{row.state} {row.reason}".strip(),
                        "created_at": now,
                    }
                )
            await conn.execute(insert(t.ledger), entries)

    # --------------------------------------------------------------- callbacks

    async def claim_callbacks(self, limit: int, lease_ms: int) -> list[CallbackJob]:
        now = self.clock()
        c = t.callback_outbox.c
        due = (
            select(c.id)
            .where(
                text("state = 'pending'"),
                c.next_attempt_at <= now,
                or_(c.lease_until.is_(None), c.lease_until < now),
            )
            .order_by(c.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        claim = (
            update(t.callback_outbox)
            .where(c.id.in_(due))
            .values(lease_until=now + lease_ms, attempts=c.attempts + 1)
            .returning(*_columns(t.callback_outbox, CallbackJob))
        )
        async with self._write() as conn:
            rows = (await conn.execute(claim)).all()
        return _records(CallbackJob, rows)

    async def callback_finished(
        self, job_id: int, *, delivered: bool, error: str | None = None, retry_at: int | None = None
    ) -> None:
        """Record one attempt: delivered, to be retried at ``retry_at``, or abandoned."""
        now = self.clock()
        if delivered:
            values: dict[str, Any] = {"state": "sent", "sent_at": now, "last_error": None}
        elif retry_at is not None:
            values = {"next_attempt_at": retry_at, "last_error": error}
        else:
            values = {"state": "failed", "last_error": error}
        async with self._write() as conn:
            await conn.execute(
                update(t.callback_outbox)
                .where(t.callback_outbox.c.id == job_id)
                .values(lease_until=None, **values)
            )

    async def callback_states(self, account_id: int) -> dict[str, int]:
        c = t.callback_outbox.c
        async with self._read() as conn:
            rows = (
                await conn.execute(
                    select(c.state, func.count())
                    .where(c.account_id == account_id)
                    .group_by(c.state)
                )
            ).all()
        return {state: int(count) for state, count in rows}


async def _adjust_balance(
    conn: AsyncConnection, account_id: int, delta: int, *, keep_at_least: int | None = None
) -> int | None:
    """Add ``delta`` to the balance in place (no read-modify-write race); None if the
    account is missing or the result would fall below ``keep_at_least``."""
    query = update(t.accounts).where(t.accounts.c.id == account_id)
    if keep_at_least is not None:
        query = query.where(t.accounts.c.balance + delta >= keep_at_least)
    result = await conn.execute(
        query.values(balance=t.accounts.c.balance + delta).returning(t.accounts.c.balance)
    )
    balance = result.scalar_one_or_none()
    return None if balance is None else int(balance)


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


async def _remember_reply_routes(
    conn: AsyncConnection,
    account_id: int,
    batch_id: int,
    message_ids: Sequence[int],
    messages: Sequence[PreparedMessage],
    now: int,
) -> None:
    """Point each repliable message's handset at it, so a reply finds its batch."""
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for message_id, m in zip(message_ids, messages, strict=True):
        if m.flags & _REPLIABLE:
            latest[(m.sender, m.recipient)] = {
                "address": m.sender,
                "recipient": m.recipient,
                "account_id": account_id,
                "message_id": message_id,
                "batch_id": batch_id,
                "created_at": now,
            }
    if not latest:
        return
    upsert = (
        postgresql.insert(t.reply_routes)
        if conn.dialect.name == "postgresql"
        else sqlite.insert(t.reply_routes)
    )
    await conn.execute(
        upsert.on_conflict_do_update(
            index_elements=["address", "recipient"],
            set_={
                name: upsert.excluded[name]
                for name in ("account_id", "message_id", "batch_id", "created_at")
            },
        ),
        list(latest.values()),
    )


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
)


class _Finished(NamedTuple):
    """A message that just reached its final state and owes a refund or a callback."""

    id: int
    account_id: int
    cost: int
    batch_id: int
    want_report: bool
    recipient: str
    network_id: int
    client_ref: str | None
    created_at: int
    submitted_at: int | None
    done_at: int | None
    state: str
    reason: str
    dialect: str
    dlr_callback_url: str | None
    timezone: str


_LEASE_ENDS = "lease_owner = NULL, lease_until = NULL"
_SUBMITTED = RowUpdate(
    "messages",
    (
        ("connector", "text", "{v}"),
        ("carrier_ref", "text", "{v}"),
        ("submitted_at", "bigint", "{v}"),
    ),
    f"state = 'submitted', {_LEASE_ENDS}",
)
_RETRY = RowUpdate(
    "messages",
    (("due_at", "bigint", "{v}"), ("attempts", "smallint", "attempts - {v}")),
    _LEASE_ENDS,
)
_FINISHED = RowUpdate(
    "messages",
    (("state", "text", "{v}"), ("reason", "text", "{v}"), ("done_at", "bigint", "{v}")),
    _LEASE_ENDS,
)

# Only these rows are read back after a final state: refunds and callbacks need them.
_OWING_SQL = (
    f"SELECT {', '.join('m.' + name for name in _Finished._fields[:13])},"
    " b.dialect, a.dlr_callback_url, a.timezone"
    " FROM messages m JOIN batches b ON b.id = m.batch_id JOIN accounts a ON a.id = m.account_id"
    " WHERE {ids} AND (m.state IN ("
    + ", ".join(f"'{state.value}'" for state in sorted(REFUNDED_STATES))
    + ") OR (m.want_report AND a.dlr_callback_url IS NOT NULL))"
)

_OUTBOUND_COLUMNS = ", ".join(field.name for field in fields(OutboundMessage))


def _outbound(row: Sequence[Any]) -> OutboundMessage:
    """A claimed row, its columns in ``_OUTBOUND_COLUMNS`` order; SQLite keeps
    booleans as integers."""
    record = OutboundMessage(*row)
    object.__setattr__(record, "want_report", bool(record.want_report))
    return record


_BATCH_COLUMNS = (
    "id",
    "account_id",
    "dialect",
    "message_count",
    "cost",
    "created_at",
    "description",
    "test_mode",
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

    @property
    def plain(self) -> bool:
        """Nothing but a charge and rows to write: no memo, quota, test mode or
        reply route. Such batches are written together with their group."""
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
            _ENUM_TEXT[m.encoding],
            m.segments,
            m.cost,
            m.client_ref,
            int(priority),
            m.want_report,
            m.flags,
            m.routing_group,
            _ENUM_TEXT[m.state],
            now,
            m.due_at,
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
    *,
    terms: BatchTerms = PLAIN_BATCH,
) -> tuple[Any, ...]:
    """A batch row in ``_BATCH_COLUMNS`` order."""
    return (batch_id, account_id, dialect, count, cost, now, terms.description, terms.test_mode)


def _charge_entry(
    account_id: int, batch_id: int, cost: int, balance_after: int, count: int, now: int
) -> tuple[Any, ...]:
    """A ledger charge in ``_LEDGER_COLUMNS`` order."""
    return (account_id, -cost, balance_after, "charge", batch_id, f"{count} messages", now)


# Enum .value is a descriptor call; a dict probe is several times cheaper per row.
_ENUM_TEXT: dict[Any, str] = {member: member.value for member in (*State, *Encoding)}


def _columns(table: Any, record: Any) -> list[Any]:
    """The table's columns named like the record's fields, in field order."""
    return [table.c[field.name] for field in fields(record)]


def _records(record: type[R], rows: Sequence[Row[Any]]) -> list[R]:
    """Rows whose column names are the record's fields, as records."""
    return [record(**row._asdict()) for row in rows]


SHORTCODE_DIALECT = "advanta"
"""Whose format forwards an inbound message that answers no message: writing
to an account's shortcode is how partnerID/apikey users receive messages."""


async def _shortcode_owners(conn: AsyncConnection, addresses: set[str]) -> dict[str, int]:
    """The account each numeric address is registered to as a sender id, where
    exactly one active account registered it (a shared one names nobody)."""
    numeric = {address for address in addresses if address.isdigit()}
    if not numeric:
        return {}
    a = t.accounts.c
    found = await conn.execute(select(a.id, a.senders).where(a.status == "active"))
    owners: dict[str, list[int]] = defaultdict(list)
    for account_id, senders in found.all():
        for address in numeric.intersection(senders or ()):
            owners[address].append(account_id)
    for address, accounts in owners.items():
        if len(accounts) > 1:
            log.warning("inbound to %s: shortcode of several accounts, forwarded to none", address)
    return {address: accounts[0] for address, accounts in owners.items() if len(accounts) == 1}


async def _queue_mo_forwards(
    conn: AsyncConnection, stored: Sequence[tuple[int, dict[str, Any]]], now: int
) -> None:
    """Outbox rows for attributed inbound messages whose account asked for them:
    in the dialect of the batch a reply answers, or the shortcode dialect."""
    attributed = [(i, row) for i, row in stored if row["account_id"] is not None]
    if not attributed:
        return
    m, b, a = t.messages.c, t.batches.c, t.accounts.c
    answered = {row["message_id"] for _, row in attributed} - {None}
    found = await conn.execute(
        select(m.id, m.client_ref, b.dialect)
        .join(t.batches, b.id == m.batch_id)
        .where(m.id.in_(answered))
    )
    originals = {row.id: row for row in found.all()}
    found = await conn.execute(
        select(a.id, a.options, a.timezone).where(
            a.id.in_({row["account_id"] for _, row in attributed})
        )
    )
    accounts = {row.id: row for row in found.all()}
    jobs = []
    for inbound_id, row in attributed:
        account = accounts[row["account_id"]]
        url = (account.options or {}).get("mo_callback_url")
        original = originals.get(row["message_id"])
        if not url or (row["message_id"] is not None and original is None):
            continue
        jobs.append(
            {
                "account_id": row["account_id"],
                "message_id": None,
                "dialect": original.dialect if original else SHORTCODE_DIALECT,
                "kind": "mo",
                "url": url,
                "payload": {
                    "inbound_id": inbound_id,
                    "sender": row["sender"],
                    "recipient": row["recipient"],
                    "body": row["body"],
                    "encoding": row["encoding"],
                    "received_at": row["received_at"],
                    "batch_id": row["batch_id"],
                    "client_ref": original.client_ref if original else None,
                    "timezone": account.timezone,
                },
                "next_attempt_at": now,
                "created_at": now,
            }
        )
    if jobs:
        await conn.execute(insert(t.callback_outbox), jobs)


def _storable_id(value: int) -> bool:
    """Ids are BIGINT: a client's larger number names nothing (and would not bind)."""
    return 0 < value < 2**63


def _international(address: str) -> str:
    """A handset number as messages store recipients (E.164 with "+"); carriers
    usually deliver it bare. Alphanumeric addresses stay as they are."""
    digits = address.lstrip("+")
    return f"+{digits}" if digits.isdigit() else address


def _account(row: Row[Any]) -> Account:
    return Account(
        id=row.id,
        name=row.name,
        status=AccountStatus(row.status),
        region=row.region,
        timezone=row.timezone,
        balance=int(row.balance),
        senders=tuple(row.senders or ()),
        allowed_country_codes=tuple(int(c) for c in row.allowed_country_codes or ()),
        dlr_callback_url=row.dlr_callback_url,
        options=dict(row.options or {}),
    )


def _dlr_payload(row: Any) -> dict[str, Any]:
    """The canonical facts a dialect renders its delivery callback from."""
    return {
        "message_id": row.id,
        "batch_id": row.batch_id,
        "recipient": row.recipient,
        "network_id": row.network_id,
        "client_ref": row.client_ref,
        "state": row.state,
        "reason": row.reason,
        "created_at": row.created_at,
        "submitted_at": row.submitted_at,
        "done_at": row.done_at,
        "timezone": row.timezone,
    }
