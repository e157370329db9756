"""Conversations: which account a handset's reply to one of our numbers belongs to.

A repliable message is sent from a number of the operator's reply pool, and
the pair (reply number, handset) is then that account's conversation, held
for the pool's window after its latest message. A reply is routed by that
pair, so the one rule that keeps replies with their account is: a pair has
one account at a time. Another account asking the same handset gets
another number of the pool; when every number is in conversation with that
handset for other accounts, its request is refused (``NoReplyNumber``) and
nothing is written.

Each pair is one row of ``reply_routes``, taken by a conditional upsert (the
row is this account's already, or its window has passed), so two API
processes that choose the same free number for the same handset cannot both
have it: the loser's upsert takes nothing, and it chooses again. Once the
window has passed, the row stays until another account takes the pair, so
a late reply still reaches the account that asked, unless another one has
asked that handset from that number since.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import orjson
from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from smsgate.core.model import MessageFlag, PreparedMessage
from smsgate.store import schema as t
from smsgate.store.base import StoreBase
from smsgate.store.records import NoReplyNumber, ReplyPool

_REPLIABLE = int(MessageFlag.REPLIABLE)

_TAKE = """
INSERT INTO reply_routes
    (address, recipient, message_id, account_id, batch_id, created_at, expires_at)
SELECT {rows}
ON CONFLICT (address, recipient) DO UPDATE SET
    account_id = excluded.account_id, message_id = excluded.message_id,
    batch_id = excluded.batch_id, created_at = excluded.created_at,
    expires_at = excluded.expires_at
WHERE reply_routes.account_id = excluded.account_id OR reply_routes.expires_at <= ?
RETURNING recipient
"""
_ROWS_PG = (
    "u.a, u.r, u.m, ?::bigint, ?::bigint, ?::bigint, ?::bigint"
    " FROM unnest(?::text[], ?::text[], ?::bigint[]) AS u(a, r, m)"
)
# "WHERE true": without it, SQLite reads the ON CONFLICT as a join's ON.
_ROWS_SQLITE = "value ->> 0, value ->> 1, value ->> 2, ?, ?, ?, ? FROM json_each(?) WHERE true"


class ReplyRouteStore(StoreBase):
    """Reply numbers chosen for repliable messages, and the conversations they open."""

    async def _choose_reply_numbers(
        self,
        conn: AsyncConnection,
        account_id: int,
        messages: Sequence[PreparedMessage],
        pool: ReplyPool | None,
        now: int,
    ) -> Sequence[PreparedMessage]:
        """``messages`` with each repliable one sent from its handset's number:
        the account's own conversation with the handset if it has one, else
        the first number of the pool no other account is in conversation on."""
        handsets = {m.recipient for m in messages if m.flags & _REPLIABLE}
        if not handsets:
            return messages
        if pool is None or not pool.numbers:
            raise ValueError("repliable messages need a pool of reply numbers")
        numbers = await self._free_numbers(conn, account_id, handsets, pool, now, {})
        return [
            replace(m, sender=numbers[m.recipient]) if m.flags & _REPLIABLE else m for m in messages
        ]

    async def _open_conversations(
        self,
        conn: AsyncConnection,
        account_id: int,
        batch_id: int,
        message_ids: Sequence[int],
        messages: Sequence[PreparedMessage],
        pool: ReplyPool | None,
        now: int,
    ) -> None:
        """Take each (number, handset) pair of the batch's repliable messages
        for the account, pointing at its latest message. A pair another
        process took since it was chosen means choosing again for that
        handset and moving its messages to the new number."""
        latest: dict[str, tuple[str, int]] = {}
        for message_id, m in zip(message_ids, messages, strict=True):
            if m.flags & _REPLIABLE:
                latest[m.recipient] = (m.sender, message_id)
        if not latest or pool is None:
            return
        tried: dict[str, set[str]] = defaultdict(set)
        while latest:
            taken = await self._take(conn, account_id, batch_id, latest, pool, now)
            lost = {handset: pair for handset, pair in latest.items() if handset not in taken}
            if not lost:
                return
            for handset, (number, _) in lost.items():
                tried[handset].add(number)
            numbers = await self._free_numbers(conn, account_id, set(lost), pool, now, tried)
            for handset, number in numbers.items():
                await self._sql.execute(
                    conn,
                    "UPDATE messages SET sender = ? WHERE batch_id = ? AND recipient = ?"
                    f" AND (flags & {_REPLIABLE}) <> 0",
                    (number, batch_id, handset),
                )
            latest = {handset: (numbers[handset], lost[handset][1]) for handset in lost}

    async def _take(
        self,
        conn: AsyncConnection,
        account_id: int,
        batch_id: int,
        latest: dict[str, tuple[str, int]],
        pool: ReplyPool,
        now: int,
    ) -> set[str]:
        """The handsets whose (number, handset) pair the account now holds."""
        sql = self._sql
        rows = [(number, handset, mid) for handset, (number, mid) in latest.items()]
        fixed = (account_id, batch_id, now, now + pool.window_ms)
        params: tuple[Any, ...]
        if self.is_postgres:
            statement = _TAKE.format(rows=_ROWS_PG)
            columns = [list(column) for column in zip(*rows, strict=True)]
            params = (*fixed, *columns, now)
        else:
            statement = _TAKE.format(rows=_ROWS_SQLITE)
            params = (*fixed, orjson.dumps(rows).decode(), now)
        return {str(row[0]) for row in await sql.fetch(conn, statement, params)}

    async def _free_numbers(
        self,
        conn: AsyncConnection,
        account_id: int,
        handsets: set[str],
        pool: ReplyPool,
        now: int,
        tried: dict[str, set[str]],
    ) -> dict[str, str]:
        """A number per handset: its latest conversation with this account,
        else the first of the pool no other account holds open with it (and
        not in ``tried``). Raises ``NoReplyNumber`` if one has none."""
        sql = self._sql
        found = await sql.fetch(
            conn,
            "SELECT address, recipient, account_id, expires_at FROM reply_routes"
            f" WHERE {sql.member_of('recipient', 'text')} AND {sql.member_of('address', 'text')}",
            (sql.members(sorted(handsets)), sql.members(pool.numbers)),
        )
        own: dict[str, tuple[int, str]] = {}
        busy: dict[str, set[str]] = defaultdict(set)
        for address, handset, owner, expires_at in found:
            if int(owner) == account_id:
                if handset not in own or own[handset][0] < int(expires_at):
                    own[handset] = (int(expires_at), str(address))
            elif int(expires_at) > now:
                busy[handset].add(str(address))
        chosen: dict[str, str] = {}
        for handset in handsets:
            if handset in own and own[handset][1] not in tried.get(handset, ()):
                chosen[handset] = own[handset][1]
                continue
            unavailable = busy[handset] | tried.get(handset, set())
            number = next((n for n in pool.numbers if n not in unavailable), None)
            if number is None:
                raise NoReplyNumber(handset, len(pool.numbers))
            chosen[handset] = number
        return chosen

    async def _conversations_in(
        self, conn: AsyncConnection, pairs: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], Any]:
        """The conversation row of each (our number, handset) pair that has one,
        open or past its window: who a reply on that pair belongs to."""
        r = t.reply_routes.c
        found = await conn.execute(
            select(r.address, r.recipient, r.account_id, r.message_id, r.batch_id).where(
                tuple_(r.address, r.recipient).in_(pairs)
            )
        )
        return {(row.address, row.recipient): row for row in found.all()}
