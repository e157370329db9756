"""The message table as the delivery queue: claims under leases, and what connectors said."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from smsgate.core.states import Reason, State
from smsgate.observe import events
from smsgate.store import schema as t
from smsgate.store.base import LEASE_ENDS, after_commit
from smsgate.store.driver_sql import RowUpdate
from smsgate.store.finals import storable_status
from smsgate.store.receipts import (
    UNMATCHED_COLUMNS,
    ReceiptStore,
    receipts_ending_submissions,
    storable_receipt_text,
)
from smsgate.store.records import (
    CarrierPart,
    OutboundMessage,
    Receipt,
    Refused,
    RetryLater,
    SubmitOutcome,
    Submitted,
)

_SUBMITTED = RowUpdate(
    "messages",
    (
        ("connector", "text", "{v}"),
        ("carrier_ref", "text", "{v}"),
        ("submitted_at", "bigint", "{v}"),
    ),
    f"state = 'submitted', {LEASE_ENDS}",
)


_SUBMITTED_AND_ENDED = RowUpdate(
    "messages",
    (
        ("connector", "text", "{v}"),
        ("carrier_ref", "text", "{v}"),
        ("submitted_at", "bigint", "{v}"),
        ("state", "text", "{v}"),
        ("reason", "text", "{v}"),
        ("done_at", "bigint", "{v}"),
    ),
    LEASE_ENDS,
)


_RETRY = RowUpdate(
    "messages",
    (("due_at", "bigint", "{v}"), ("attempts", "smallint", "attempts - {v}")),
    LEASE_ENDS,
)


_OUTBOUND_COLUMNS = ", ".join(field.name for field in fields(OutboundMessage))
_ID, _ATTEMPT = (
    [field.name for field in fields(OutboundMessage)].index(name) for name in ("id", "attempts")
)

_CLAIM_COLUMNS = ("message_id", "attempt", "owner", "claimed_at", "lease_until")

# PostgreSQL writes each claim's record from the claiming UPDATE's own rows;
# its last three parameters are the claim's owner, time and lease end again.
_RECORDING_CLAIMS = (
    "WITH claimed AS ({claim}), recorded AS ("
    f"INSERT INTO claims ({', '.join(_CLAIM_COLUMNS)})"
    " SELECT id, attempts, ?::text, ?::bigint, ?::bigint FROM claimed)"
    f" SELECT {_OUTBOUND_COLUMNS} FROM claimed"
)


_PART_COLUMNS = (
    "message_id",
    "part",
    "parts",
    "connector",
    "carrier_key",
    "carrier_ref",
    "recipient",
    "submitted_at",
    "state",
    "reason",
    "carrier_status",
    "receipt_text",
    "receipt_at",
)


def _part_receipt(receipt: Receipt | None) -> tuple[Any, ...]:
    """A part's receipt columns: empty until its receipt is recorded."""
    if receipt is None:
        return (None, None, None, None, None)
    return (
        receipt.state.value,
        receipt.reason.value,
        storable_status(receipt.carrier_status),
        storable_receipt_text(receipt.text),
        receipt.occurred_at,
    )


def _taken_parts(
    outcomes: Sequence[SubmitOutcome],
) -> list[tuple[int, str, int, CarrierPart]]:
    """(message, connector, parts in all, part) of every part a carrier took."""
    taken: list[tuple[int, str, int, CarrierPart]] = []
    for outcome in outcomes:
        if isinstance(outcome, Submitted):
            connector, parts, total = outcome.connector, outcome.parts, len(outcome.parts)
        elif outcome.taken is not None:
            connector, parts, total = (
                outcome.taken.connector,
                outcome.taken.parts,
                outcome.taken.total,
            )
        else:
            continue
        taken.extend((outcome.message_id, connector, total, part) for part in parts)
    return taken


def _outbound(row: Sequence[Any]) -> OutboundMessage:
    """A claimed row, its columns in ``_OUTBOUND_COLUMNS`` order; SQLite keeps
    booleans as integers."""
    record = OutboundMessage(*row)
    object.__setattr__(record, "want_report", bool(record.want_report))
    return record


def _count_submitted(submitted: Sequence[Submitted]) -> None:
    for connector, count in Counter(o.connector for o in submitted).items():
        events.submitted(connector, count)


class QueueStore(ReceiptStore):
    """Claiming due messages and recording submission outcomes."""

    async def claim_due(self, owner: str, limit: int, lease_ms: int) -> list[OutboundMessage]:
        """Lease up to ``limit`` due messages to ``owner``, most urgent first.

        A lease that runs out (its worker died) makes the message claimable again;
        on PostgreSQL ``SKIP LOCKED`` lets many workers claim side by side.
        A claimed message past its ``expires_at`` is not handed out: it ends
        expired in the same transaction, refunded (no carrier took it).
        """
        now = self.clock()
        lease_until = now + lease_ms
        sql = self._sql
        claim = (
            "UPDATE messages SET lease_owner = ?, lease_until = ?, attempts = attempts + 1"
            " WHERE id IN (SELECT id FROM messages"
            f" WHERE {t.WAITING_FOR_DISPATCH} AND due_at <= ?"
            " AND (lease_until IS NULL OR lease_until < ?)"
            f" ORDER BY priority, due_at LIMIT ?{sql.lock_rows_skip_locked})"
            f" RETURNING {_OUTBOUND_COLUMNS}"
        )
        params = (owner, lease_until, now, now, limit)
        async with self._write() as conn:
            if sql.postgres:  # the claim and its record in one statement
                rows = await sql.fetch(
                    conn,
                    _RECORDING_CLAIMS.format(claim=claim),
                    (*params, owner, now, lease_until),
                )
            else:
                rows = await sql.fetch(conn, claim, params)
                await sql.insert_many(
                    conn,
                    "claims",
                    _CLAIM_COLUMNS,
                    [(row[_ID], row[_ATTEMPT], owner, now, lease_until) for row in rows],
                )
            claimed = [_outbound(row) for row in rows]
            expired = [m.id for m in claimed if m.expires_at is not None and m.expires_at <= now]
            if expired:
                await self._finish(
                    conn,
                    [(mid, State.EXPIRED, Reason.VALIDITY_EXPIRED, None) for mid in expired],
                    now,
                )
                claimed = [m for m in claimed if m.id not in set(expired)]
        self.last_claim_ms = now  # the worker heartbeat reports it: this worker claims
        return claimed

    async def record_submissions(
        self, owner: str, outcomes: Sequence[SubmitOutcome], claims: Mapping[int, int]
    ) -> None:
        """Apply what the connector said about each claimed message, in one transaction.

        ``claims`` names, per message, the claim the outcome was decided
        under (its attempt number): only the holder of that very claim may
        decide. An outcome from a claim that ran out (the message was claimed
        again since, by another worker or by this one) is ignored, so a late
        answer can never overwrite a newer attempt's.

        Every part the carrier took is recorded with its id, and receipts
        stored unmatched because they overtook this record are matched now.
        """
        async with self._write() as conn:
            await self._record_submissions_in(conn, owner, outcomes, claims, self.clock())

    async def _record_submissions_in(
        self,
        conn: AsyncConnection,
        owner: str,
        outcomes: Sequence[SubmitOutcome],
        claims: Mapping[int, int],
        now: int,
        receipts: Sequence[Receipt] = (),
    ) -> tuple[list[Receipt], int]:
        """``record_submissions`` in the caller's transaction.

        A receipt among ``receipts`` that ends a single-part message these
        outcomes submit (an SMSC answering at once) is written with the
        submission, the message going straight to its final state: one
        message row version and no part update, where recording the two one
        after the other writes each twice. Returns the receipts left for the
        general match and how many were written so.
        """
        if not outcomes:
            return list(receipts), 0
        sql = self._sql
        held = {
            int(mid): str(recipient).lstrip("+")
            for mid, recipient, attempts in await sql.fetch(
                conn,
                f"SELECT id, recipient, attempts FROM messages WHERE {sql.member_of('id')}"
                f" AND lease_owner = ? AND {t.WAITING_FOR_DISPATCH}{sql.lock_rows}",
                (sql.members([o.message_id for o in outcomes]), owner),
            )
            if claims.get(int(mid)) == int(attempts)
        }
        outcomes = [o for o in outcomes if o.message_id in held]
        taken = _taken_parts(outcomes)
        awaiting = await self._receipts_awaiting(conn, taken)
        ending, receipts = receipts_ending_submissions(
            taken, held, receipts, {(str(row[1]), str(row[2])) for row in awaiting}
        )
        submitted = [o for o in outcomes if isinstance(o, Submitted)]
        retries = [o for o in outcomes if isinstance(o, RetryLater)]
        refused = [o for o in outcomes if isinstance(o, Refused)]
        await sql.update_many(
            conn,
            _SUBMITTED,
            [
                (o.connector, o.carrier_ref, now, o.message_id)
                for o in submitted
                if o.message_id not in ending
            ],
        )
        await sql.update_many(
            conn,
            _SUBMITTED_AND_ENDED,
            [
                (o.connector, o.carrier_ref, now, r.state.value, r.reason.value, r.occurred_at, mid)
                for o in submitted
                if (r := ending.get(mid := o.message_id)) is not None
            ],
        )
        if submitted:
            after_commit(conn, lambda: _count_submitted(submitted))
        await sql.insert_many(
            conn,
            "submitted_parts",
            _PART_COLUMNS,
            [
                (
                    mid,
                    part.part,
                    count,
                    connector,
                    part.carrier_key,
                    part.carrier_ref,
                    held[mid],
                    now,
                    *_part_receipt(ending.get(mid)),
                )
                for mid, connector, count, part in taken
            ],
        )
        await sql.update_many(
            conn,
            _RETRY,
            [(now + o.delay_ms, 0 if o.counts_attempt else 1, o.message_id) for o in retries],
        )
        if refused:
            await self._finish(
                conn,
                [(o.message_id, o.state, o.reason, o.error) for o in refused],
                now,
                connector={o.message_id: o.taken.connector for o in refused if o.taken},
            )
        if ending:
            await self._settle_finals(
                conn,
                [(mid, r.state, r.reason, r.carrier_status) for mid, r in ending.items()],
                now,
                occurred={mid: r.occurred_at for mid, r in ending.items()},
                events=False,
                connector={mid: r.connector for mid, r in ending.items()},
                submitted=dict.fromkeys(ending, now),
            )
        await self._retry_unmatched(conn, awaiting, now)
        return receipts, len(ending)

    async def renew_claims(self, owner: str, claims: Mapping[int, int], lease_ms: int) -> set[int]:
        """Extend ``owner``'s claims (message id -> attempt number) by a lease;
        the ids of those still held, the rest having been lost."""
        if not claims:
            return set()
        sql = self._sql
        async with self._write() as conn:
            rows = await sql.fetch(
                conn,
                f"UPDATE messages SET lease_until = ? WHERE {sql.member_of('id')}"
                f" AND lease_owner = ? AND {t.WAITING_FOR_DISPATCH} RETURNING id, attempts",
                (self.clock() + lease_ms, sql.members(sorted(claims)), owner),
            )
        return {int(mid) for mid, attempts in rows if claims.get(int(mid)) == int(attempts)}

    async def _receipts_awaiting(
        self, conn: AsyncConnection, taken: Sequence[tuple[int, str, int, CarrierPart]]
    ) -> list[Sequence[Any]]:
        """Stored unmatched receipts naming a part being recorded: they came
        before the submission they name was recorded, and are matched once it is."""
        sql = self._sql
        keys: dict[str, set[str]] = defaultdict(set)
        for _, connector, _, part in taken:
            keys[connector].add(part.carrier_key)
        rows: list[Sequence[Any]] = []
        for connector, connector_keys in keys.items():
            rows += await sql.fetch(
                conn,
                f"SELECT id, {', '.join(UNMATCHED_COLUMNS)} FROM unmatched_receipts"
                f" WHERE connector = ? AND {sql.member_of('carrier_key', 'text')}",
                (connector, sql.members(sorted(connector_keys))),
            )
        return rows

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

    async def unreported(
        self, connector: str, *, after: tuple[int, int], submitted_before_ms: int, limit: int
    ) -> list[tuple[int, int, str]]:
        """(submitted_at, message id, carrier_ref) of messages the connector took
        before ``submitted_before_ms`` and has no final word on, in submission
        order after the ``after`` (submitted_at, id) cursor: what a poller asks
        the upstream about next."""
        m = t.messages.c
        query = (
            select(m.submitted_at, m.id, m.carrier_ref)
            .where(
                m.connector == connector,
                m.state == State.SUBMITTED.value,
                m.submitted_at < submitted_before_ms,
                tuple_(m.submitted_at, m.id) > tuple_(*after),
            )
            .order_by(m.submitted_at, m.id)
            .limit(limit)
        )
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
        return [(int(row[0]), int(row[1]), str(row[2])) for row in rows]
