"""What the web console reads and writes: its users and sessions, message search,
a message's receipts, an account's recent ledger, traffic per minute, and the
sandbox's handsets.

Message search pages by keyset (``id < before``, newest first), so a page
costs the same on the millionth row as on the first: an account's pages walk
``ix_messages_account_id``, a number's ``ix_messages_recipient``, a batch's
``ix_messages_batch``, and the rest the primary key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import case, delete, func, insert, select, update

from smsgate.store import schema as t
from smsgate.store.base import StoreBase, columns_of, records_of
from smsgate.store.records import LedgerEntry


@dataclass(frozen=True, slots=True)
class ConsoleUser:
    """A console login; ``account_id`` None is an operator."""

    id: int
    login: str
    password_hash: str
    account_id: int | None
    failed_logins: int
    locked_until: int | None

    @property
    def is_operator(self) -> bool:
        return self.account_id is None


@dataclass(frozen=True, slots=True)
class MessageQuery:
    """A console message search; None means any. ``before`` is the keyset cursor."""

    account_id: int | None = None
    recipient: str | None = None
    batch_id: int | None = None
    state: str | None = None
    dialect: str | None = None
    since_ms: int | None = None
    until_ms: int | None = None
    before: int | None = None
    limit: int = 50


@dataclass(frozen=True, slots=True)
class ConsoleMessage:
    """A message as the console lists it, with the dialect it came in by."""

    id: int
    batch_id: int
    account_id: int
    dialect: str
    recipient: str
    sender: str
    body: str
    segments: int
    cost: int
    state: str
    reason: str
    created_at: int
    due_at: int
    done_at: int | None
    connector: str | None
    # The batch's redacted request record (request_record.py): only the
    # message page reads it, so lists do not carry up to 2 KB a row.
    request: str | None = None


@dataclass(frozen=True, slots=True)
class TrafficCount:
    """Messages accepted in one minute that are now in ``state``, by the
    connector that took them and the time from submission to their final
    state, in tenths of a decade (``latency_bucket_ms``; 40 beyond 1,000 s
    or not final)."""

    minute: int
    state: str
    connector: str | None
    bucket: int
    messages: int


@dataclass(frozen=True, slots=True)
class Handset:
    """A number the sandbox delivered to: one conversation of the sandbox's phones."""

    number: str
    messages: int
    last_at: int


@dataclass(frozen=True, slots=True)
class ConversationLine:
    """One message of a handset's conversation, either way."""

    at: int
    outbound: bool
    peer: str  # the sender id (outbound) or the address written to (inbound)
    body: str
    state: str  # the outbound message's state, "received" for inbound ones
    message_id: int | None


_MESSAGE_COLUMNS = (
    t.messages.c.id,
    t.messages.c.batch_id,
    t.messages.c.account_id,
    t.batches.c.dialect,
    t.messages.c.recipient,
    t.messages.c.sender,
    t.messages.c.body,
    t.messages.c.segments,
    t.messages.c.cost,
    t.messages.c.state,
    t.messages.c.reason,
    t.messages.c.created_at,
    t.messages.c.due_at,
    t.messages.c.done_at,
    t.messages.c.connector,
)


class ConsoleStore(StoreBase):
    """The console's own queries; everything else it shows comes from the other concerns."""

    # ------------------------------------------------------------ users

    async def put_console_user(
        self, login: str, password_hash: str, account_id: int | None
    ) -> ConsoleUser:
        """Create the login, or give an existing one this password and account."""
        u = t.console_users.c
        async with self._write() as conn:
            found = await conn.execute(
                update(t.console_users)
                .where(u.login == login)
                .values(
                    password_hash=password_hash,
                    account_id=account_id,
                    failed_logins=0,
                    locked_until=None,
                )
                .returning(u.id)
            )
            if found.scalar_one_or_none() is None:
                await conn.execute(
                    insert(t.console_users),
                    {
                        "login": login,
                        "password_hash": password_hash,
                        "account_id": account_id,
                        "created_at": self.clock(),
                    },
                )
        user = await self.console_user(login)
        assert user is not None
        return user

    async def console_user(self, login: str) -> ConsoleUser | None:
        query = select(*_USER_COLUMNS).where(t.console_users.c.login == login)
        async with self._read() as conn:
            found = records_of(ConsoleUser, (await conn.execute(query)).all())
        return found[0] if found else None

    async def console_users(self) -> list[ConsoleUser]:
        query = select(*_USER_COLUMNS).order_by(t.console_users.c.login)
        async with self._read() as conn:
            return records_of(ConsoleUser, (await conn.execute(query)).all())

    async def console_login_failed(self, user_id: int, *, limit: int, lockout_ms: int) -> None:
        """Count a failed log-in; the ``limit``-th in a row locks the login for ``lockout_ms``."""
        u = t.console_users.c
        async with self._write() as conn:
            failures = (
                await conn.execute(
                    update(t.console_users)
                    .where(u.id == user_id)
                    .values(failed_logins=u.failed_logins + 1)
                    .returning(u.failed_logins)
                )
            ).scalar_one()
            if failures >= limit:
                await conn.execute(
                    update(t.console_users)
                    .where(u.id == user_id)
                    .values(failed_logins=0, locked_until=self.clock() + lockout_ms)
                )

    async def console_login_succeeded(self, user_id: int) -> None:
        u = t.console_users.c
        async with self._write() as conn:
            await conn.execute(
                update(t.console_users)
                .where(u.id == user_id)
                .values(failed_logins=0, locked_until=None)
            )

    # ------------------------------------------------------------ sessions

    async def open_console_session(
        self, user_id: int, token_hash: str, csrf_token: str, lifetime_ms: int
    ) -> None:
        now = self.clock()
        s = t.console_sessions.c
        async with self._write() as conn:
            await conn.execute(delete(t.console_sessions).where(s.expires_at < now))
            await conn.execute(
                insert(t.console_sessions),
                {
                    "token_hash": token_hash,
                    "user_id": user_id,
                    "csrf_token": csrf_token,
                    "created_at": now,
                    "expires_at": now + lifetime_ms,
                },
            )

    async def console_session(self, token_hash: str) -> tuple[ConsoleUser, str] | None:
        """The user and CSRF token of an unexpired session."""
        s = t.console_sessions.c
        query = (
            select(*_USER_COLUMNS, s.csrf_token)
            .join(t.console_users, t.console_users.c.id == s.user_id)
            .where(s.token_hash == token_hash, s.expires_at > self.clock())
        )
        async with self._read() as conn:
            row = (await conn.execute(query)).one_or_none()
        if row is None:
            return None
        values = row._asdict()
        csrf = values.pop("csrf_token")
        return ConsoleUser(**values), csrf

    async def close_console_session(self, token_hash: str) -> None:
        async with self._write() as conn:
            await conn.execute(
                delete(t.console_sessions).where(t.console_sessions.c.token_hash == token_hash)
            )

    # ------------------------------------------------------------ messages

    async def search_messages(self, where: MessageQuery) -> list[ConsoleMessage]:
        m, b = t.messages.c, t.batches.c
        query = (
            select(*_MESSAGE_COLUMNS)
            .join(t.batches, b.id == m.batch_id)
            .order_by(m.id.desc())
            .limit(where.limit)
        )
        equal = {
            m.account_id: where.account_id,
            m.recipient: where.recipient,
            m.batch_id: where.batch_id,
            m.state: where.state,
            b.dialect: where.dialect,
        }
        for column, value in equal.items():
            if value is not None:
                query = query.where(column == value)
        if where.before is not None:
            query = query.where(m.id < where.before)
        if where.since_ms is not None:
            query = query.where(m.created_at >= where.since_ms)
        if where.until_ms is not None:
            query = query.where(m.created_at < where.until_ms)
        async with self._read() as conn:
            return records_of(ConsoleMessage, (await conn.execute(query)).all())

    async def console_message(self, message_id: int) -> ConsoleMessage | None:
        query = (
            select(*_MESSAGE_COLUMNS, t.batches.c.request)
            .join(t.batches, t.batches.c.id == t.messages.c.batch_id)
            .where(t.messages.c.id == message_id)
        )
        async with self._read() as conn:
            found = records_of(ConsoleMessage, (await conn.execute(query)).all())
        return found[0] if found else None

    async def recent_traffic(
        self, since_ms: int, account_id: int | None = None
    ) -> list[TrafficCount]:
        """The messages accepted since ``since_ms``, counted by minute, state,
        connector and latency bucket in one pass: the dashboard's chart and
        its per-connection figures both read these counts.

        Ids grow with acceptance time, so the rows of the period are the ids
        above the newest one accepted before it: walking the primary key (or
        an account's index) down from the newest stops there, having read the
        period's rows, which are counted anyway.
        """
        m = t.messages.c
        older = select(m.id).where(m.created_at < since_ms).order_by(m.id.desc()).limit(1)
        minute = m.created_at - m.created_at % 60_000
        latency = m.done_at - m.submitted_at
        bucket = case(
            (latency < 1_000, latency // 100),
            (latency < 10_000, 10 + latency // 1_000),
            (latency < 100_000, 20 + latency // 10_000),
            (latency < 1_000_000, 30 + latency // 100_000),
            else_=40,
        )
        query = (
            select(
                minute.label("minute"),
                m.state,
                m.connector,
                bucket.label("bucket"),
                func.count(),
            )
            .where(m.created_at >= since_ms)
            .group_by("minute", m.state, m.connector, "bucket")
        )
        if account_id is not None:
            older = older.where(m.account_id == account_id)
            query = query.where(m.account_id == account_id)
        async with self._read() as conn:
            floor = (await conn.execute(older)).scalar_one_or_none()
            if floor is not None:
                query = query.where(m.id > floor)
            rows = (await conn.execute(query)).all()
        return [
            TrafficCount(int(at), str(state), connector, int(b), int(n))
            for at, state, connector, b, n in rows
        ]

    async def accepted_per_period(
        self, since_ms: int, period_ms: int, account_id: int | None = None
    ) -> list[tuple[int, int]]:
        """(period start, messages accepted) since ``since_ms``, counted from the
        batches (one row per request, not per message), so a day of traffic is
        read from its batches' rows; test-mode batches sent nothing and are left out."""
        b = t.batches.c
        older = select(b.id).where(b.created_at < since_ms).order_by(b.id.desc()).limit(1)
        period = b.created_at - b.created_at % period_ms
        query = (
            select(period.label("period"), func.sum(b.message_count))
            .where(b.created_at >= since_ms, b.test_mode.is_(False))
            .group_by("period")
        )
        if account_id is not None:
            older = older.where(b.account_id == account_id)
            query = query.where(b.account_id == account_id)
        async with self._read() as conn:
            floor = (await conn.execute(older)).scalar_one_or_none()
            if floor is not None:
                query = query.where(b.id > floor)
            rows = (await conn.execute(query)).all()
        return [(int(at), int(n)) for at, n in rows]

    async def recent_ledger(self, account_id: int, limit: int = 100) -> list[LedgerEntry]:
        """An account's newest ledger lines first (``ix_ledger_account``)."""
        ledger = t.ledger.c
        query = (
            select(*columns_of(t.ledger, LedgerEntry))
            .where(ledger.account_id == account_id)
            .order_by(ledger.id.desc())
            .limit(limit)
        )
        async with self._read() as conn:
            return records_of(LedgerEntry, (await conn.execute(query)).all())

    # ------------------------------------------------------------ sandbox phones

    async def sandbox_handsets(self, connectors: Sequence[str], limit: int = 200) -> list[Handset]:
        """Numbers the given (sandbox) connectors took messages for, latest first."""
        m = t.messages.c
        last = func.max(m.created_at)
        query = (
            select(m.recipient, func.count(), last)
            .where(m.connector.in_(connectors))
            .group_by(m.recipient)
            .order_by(last.desc())
            .limit(limit)
        )
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
        return [Handset(number, int(count), int(at)) for number, count, at in rows]

    async def conversation(
        self, connectors: Sequence[str], number: str, limit: int = 200
    ) -> list[ConversationLine]:
        """What the sandbox delivered to ``number`` and what it sent back, oldest first."""
        m, i = t.messages.c, t.inbound_messages.c
        outbound = (
            select(m.id, m.created_at, m.sender, m.body, m.state)
            .where(m.recipient == number, m.connector.in_(connectors))
            .order_by(m.id.desc())
            .limit(limit)
        )
        inbound = (
            select(i.received_at, i.recipient, i.body)
            .where(i.sender == number, i.connector.in_(connectors))
            .order_by(i.id.desc())
            .limit(limit)
        )
        async with self._read() as conn:
            sent = (await conn.execute(outbound)).all()
            received = (await conn.execute(inbound)).all()
        lines = [
            ConversationLine(int(r.created_at), True, r.sender, r.body, r.state, int(r.id))
            for r in sent
        ] + [
            ConversationLine(int(r.received_at), False, r.recipient, r.body, "received", None)
            for r in received
        ]
        return sorted(lines, key=lambda line: line.at)[-limit:]


def latency_bucket_ms(bucket: int) -> float | None:
    """The middle of a latency bucket (``TrafficCount.bucket``) in ms; None past 1,000 s."""
    if bucket >= 40:
        return None
    decade, step = divmod(bucket, 10)
    return (step + 0.5) * 100.0 * 10.0**decade


_USER_COLUMNS = (
    t.console_users.c.id,
    t.console_users.c.login,
    t.console_users.c.password_hash,
    t.console_users.c.account_id,
    t.console_users.c.failed_logins,
    t.console_users.c.locked_until,
)
