"""Carrier receipts: matched to the part they name, and what that part's message becomes.

A receipt names one submitted part by the id its carrier gave. It matches a
part of the same connector whose key is the receipt's key, sent to the
receipt's handset where the receipt names one, submitted no earlier than the
receipt's ``match_since`` (the connector's validity); of several, the newest
submission wins, so a carrier that reuses ids (a counter restarted) can
never end an old message with a new message's receipt. A connector that
already knows the message (it saw the submission's answer) narrows the match
to that message's parts.

A message ends by its parts: the first part reported undelivered (expired,
rejected…) ends it in that state, and it is delivered once every part is.
A second receipt for a part that has one already is a duplicate (a carrier
resending what it thinks we missed) and changes nothing.

A receipt that matches nothing is stored as unmatched, never dropped: its
submission may not be committed yet (it is matched as soon as it is, see
``store.queue``), or it may name a message this gateway never sent, which
the operator then sees.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from smsgate.core.carrier_ids import handsets_match
from smsgate.core.states import FINAL_STATES, Reason, State
from smsgate.store.driver_sql import RowUpdate
from smsgate.store.finals import FinalStates, storable_status
from smsgate.store.records import CarrierPart, Receipt, ReceiptTally, UnmatchedReceipt

RECEIPT_TEXT_WIDTH = 1_000
"""How much of a receipt's raw text is kept for the operator."""

_PART_RECEIPT = RowUpdate(
    "submitted_parts",
    (
        ("state", "text", "{v}"),
        ("reason", "text", "{v}"),
        ("carrier_status", "text", "{v}"),
        ("receipt_text", "text", "{v}"),
        ("receipt_at", "bigint", "{v}"),
    ),
)
UNMATCHED_COLUMNS = (
    "connector",
    "carrier_key",
    "carrier_ref",
    "handset",
    "message_id",
    "state",
    "reason",
    "carrier_status",
    "receipt_text",
    "occurred_at",
    "match_since",
    "received_at",
)
_RETRIED_PER_ROUND = 1_000


@dataclass(frozen=True, slots=True)
class _Part:
    id: int
    message_id: int
    part: int
    parts: int
    carrier_key: str
    recipient: str
    submitted_at: int
    state: str | None


class ReceiptStore(FinalStates):
    """Recording carrier receipts, matched or not."""

    async def record_receipts(self, receipts: Sequence[Receipt]) -> ReceiptTally:
        """Apply each receipt to its part and message, and keep those that
        match nothing as unmatched; all in one transaction, so a connector may
        acknowledge every one of them once this returns."""
        if not any(r.state in FINAL_STATES for r in receipts):
            return ReceiptTally()
        async with self._write() as conn:
            return await self._record_receipts_in(conn, receipts, self.clock())

    async def _record_receipts_in(
        self, conn: AsyncConnection, receipts: Sequence[Receipt], now: int
    ) -> ReceiptTally:
        """``record_receipts`` in the caller's transaction."""
        finals = [r for r in receipts if r.state in FINAL_STATES]
        if not finals:
            return ReceiptTally()
        matched, duplicates = await self._apply_receipts(conn, finals, now)
        unmatched = [r for index, r in enumerate(finals) if index not in matched]
        await self._keep_unmatched(conn, unmatched, now)
        return ReceiptTally(len(matched) - duplicates, len(unmatched), duplicates)

    async def rematch_receipts(self, received_since_ms: int) -> int:
        """Match again the unmatched receipts stored since ``received_since_ms``
        (their submission may have been committed by another worker since);
        those that match leave the unmatched list. Returns how many matched."""
        sql = self._sql
        now = self.clock()
        async with self._write() as conn:
            rows = await sql.fetch(
                conn,
                f"SELECT id, {', '.join(UNMATCHED_COLUMNS)} FROM unmatched_receipts"
                f" WHERE received_at >= ? ORDER BY id LIMIT {_RETRIED_PER_ROUND}",
                (received_since_ms,),
            )
            return await self._retry_unmatched(conn, rows, now)

    async def unmatched_receipts(self, limit: int = 100) -> list[UnmatchedReceipt]:
        """The newest receipts that matched no submitted part, for the operator."""
        async with self._read() as conn:
            rows = await self._sql.fetch(
                conn,
                "SELECT id, connector, carrier_ref, handset, state, carrier_status,"
                " receipt_text, received_at FROM unmatched_receipts ORDER BY id DESC LIMIT ?",
                (limit,),
            )
        return [UnmatchedReceipt(*row) for row in rows]

    async def end_unreported(
        self, connector: str, submitted_before_ms: int, limit: int = 1_000
    ) -> int:
        """End, as ``unknown``, up to ``limit`` messages the connector took
        before ``submitted_before_ms`` and never reported on (its receipt
        timeout); how many ended. Not refunded: the carrier took them."""
        now = self.clock()
        sql = self._sql
        async with self._write() as conn:
            rows = await sql.fetch(
                conn,
                "SELECT id FROM messages WHERE connector = ? AND state = 'submitted'"
                f" AND submitted_at < ? ORDER BY submitted_at LIMIT ?{sql.lock_rows_skip_locked}",
                (connector, submitted_before_ms, limit),
            )
            ids = [int(row[0]) for row in rows]
            if ids:
                await self._finish(
                    conn,
                    [(mid, State.UNKNOWN, Reason.NO_RECEIPT, "no receipt") for mid in ids],
                    now,
                    connector=connector,
                )
        return len(ids)

    async def _retry_unmatched(
        self, conn: AsyncConnection, rows: Sequence[Sequence[Any]], now: int
    ) -> int:
        """Apply stored unmatched receipts that match now, and forget those."""
        if not rows:
            return 0
        receipts = [_stored_receipt(row) for row in rows]
        matched, _ = await self._apply_receipts(conn, receipts, now)
        if matched:
            sql = self._sql
            await sql.execute(
                conn,
                f"DELETE FROM unmatched_receipts WHERE {sql.member_of('id')}",
                (sql.members([rows[index][0] for index in matched]),),
            )
        return len(matched)

    async def _apply_receipts(
        self, conn: AsyncConnection, receipts: Sequence[Receipt], now: int
    ) -> tuple[set[int], int]:
        """Match receipts to parts, record them there, and end the messages
        their parts decide. Returns the indexes of the receipts that matched a
        part (duplicates included) and how many of those were duplicates."""
        chosen = await self._choose_parts(conn, receipts)
        if not chosen:
            return set(), 0
        sql = self._sql
        per_message: dict[int, list[tuple[_Part, Receipt]]] = defaultdict(list)
        for index, part in chosen.items():
            per_message[part.message_id].append((part, receipts[index]))
        open_messages = {
            int(row[0])
            for row in await sql.fetch(
                conn,
                f"SELECT id FROM messages WHERE {sql.member_of('id')}"
                f" AND state = 'submitted'{sql.lock_rows}",
                (sql.members(sorted(per_message)),),
            )
        }
        updates: list[tuple[Any, ...]] = []
        recorded: dict[int, list[tuple[_Part, Receipt]]] = defaultdict(list)
        duplicates = 0
        for message_id, items in per_message.items():
            for part, receipt in items:
                if part.state is not None or any(p.id == part.id for p, _ in recorded[message_id]):
                    duplicates += 1
                    continue
                recorded[message_id].append((part, receipt))
                updates.append(
                    (
                        receipt.state.value,
                        receipt.reason.value,
                        storable_status(receipt.carrier_status),
                        storable_receipt_text(receipt.text),
                        receipt.occurred_at,
                        part.id,
                    )
                )
        await sql.update_many(conn, _PART_RECEIPT, updates)
        finals = await self._decided_by_parts(
            conn, {mid: recorded[mid] for mid in open_messages if recorded.get(mid)}
        )
        if finals:
            first_parts = {mid: items[0][0] for mid, items in recorded.items()}
            await self._finish(
                conn,
                [(mid, state, reason, status) for mid, state, reason, status, _ in finals],
                now,
                occurred={mid: at for mid, _, _, _, at in finals},
                events=False,
                connector={mid: recorded[mid][0][1].connector for mid, *_ in finals},
                submitted={mid: first_parts[mid].submitted_at for mid, *_ in finals},
            )
        return set(chosen), duplicates

    async def _choose_parts(
        self, conn: AsyncConnection, receipts: Sequence[Receipt]
    ) -> dict[int, _Part]:
        """The part each receipt names, by index; receipts naming none are absent."""
        sql = self._sql
        by_connector: dict[str, list[int]] = defaultdict(list)
        for index, receipt in enumerate(receipts):
            by_connector[receipt.connector].append(index)
        chosen: dict[int, _Part] = {}
        for connector, indexes in by_connector.items():
            keys = sorted({receipts[i].carrier_key for i in indexes})
            rows = await sql.fetch(
                conn,
                "SELECT id, message_id, part, parts, carrier_key, recipient, submitted_at, state"
                f" FROM submitted_parts WHERE connector = ?"
                f" AND {sql.member_of('carrier_key', 'text')} AND submitted_at >= ?",
                (connector, sql.members(keys), min(receipts[i].match_since for i in indexes)),
            )
            by_key: dict[str, list[_Part]] = defaultdict(list)
            for row in rows:
                part = _Part(*row)
                by_key[part.carrier_key].append(part)
            for index in indexes:
                best = _newest_match(receipts[index], by_key.get(receipts[index].carrier_key, ()))
                if best is not None:
                    chosen[index] = best
        return chosen

    async def _decided_by_parts(
        self, conn: AsyncConnection, recorded: dict[int, list[tuple[_Part, Receipt]]]
    ) -> list[tuple[int, State, Reason, str, int]]:
        """(message, state, reason, carrier status, when) of each message whose
        parts now decide it: the first part not delivered ends it so; a
        message is delivered once all its parts are."""
        multipart = [mid for mid, items in recorded.items() if items[0][0].parts > 1]
        delivered: dict[int, int] = {}
        if multipart:
            sql = self._sql
            delivered = {
                int(mid): int(count)
                for mid, count in await sql.fetch(
                    conn,
                    "SELECT message_id, COUNT(DISTINCT part) FROM submitted_parts"
                    f" WHERE {sql.member_of('message_id')} AND state = 'delivered'"
                    " GROUP BY message_id",
                    (sql.members(multipart),),
                )
            }
        finals = []
        for message_id, items in recorded.items():
            failing = next((r for _, r in items if r.state is not State.DELIVERED), None)
            if failing is not None:
                finals.append(
                    (
                        message_id,
                        failing.state,
                        failing.reason,
                        failing.carrier_status,
                        failing.occurred_at,
                    )
                )
                continue
            parts = items[0][0].parts
            if parts == 1 or delivered.get(message_id, 0) >= parts:
                last = items[-1][1]
                finals.append(
                    (
                        message_id,
                        State.DELIVERED,
                        last.reason,
                        last.carrier_status,
                        last.occurred_at,
                    )
                )
        return finals

    async def _keep_unmatched(
        self, conn: AsyncConnection, receipts: Sequence[Receipt], now: int
    ) -> None:
        """Store receipts that matched nothing, once each (a carrier resending
        one we have already stored adds nothing)."""
        if not receipts:
            return
        sql = self._sql
        fresh: dict[tuple[str, str, str], Receipt] = {}
        by_connector: dict[str, list[Receipt]] = defaultdict(list)
        for receipt in receipts:
            by_connector[receipt.connector].append(receipt)
        for connector, group in by_connector.items():
            stored = {
                (str(key), str(state))
                for key, state in await sql.fetch(
                    conn,
                    "SELECT carrier_key, state FROM unmatched_receipts WHERE connector = ?"
                    f" AND {sql.member_of('carrier_key', 'text')}",
                    (connector, sql.members(sorted({r.carrier_key for r in group}))),
                )
            }
            for receipt in group:
                if (receipt.carrier_key, receipt.state.value) not in stored:
                    fresh[(connector, receipt.carrier_key, receipt.state.value)] = receipt
        await sql.insert_many(
            conn,
            "unmatched_receipts",
            UNMATCHED_COLUMNS,
            [
                (
                    r.connector,
                    r.carrier_key,
                    r.carrier_ref[:64] or r.carrier_key,
                    r.handset[:20],
                    r.message_id,
                    r.state.value,
                    r.reason.value,
                    storable_status(r.carrier_status),
                    storable_receipt_text(r.text),
                    r.occurred_at,
                    r.match_since,
                    now,
                )
                for r in fresh.values()
            ],
        )


def receipts_ending_submissions(
    taken: Sequence[tuple[int, str, int, CarrierPart]],
    recipients: Mapping[int, str],
    receipts: Sequence[Receipt],
    awaited: set[tuple[str, str]],
) -> tuple[dict[int, Receipt], list[Receipt]]:
    """The receipts that end a single-part message whose submission is being
    recorded in the same transaction (by message id), and the other receipts.

    ``taken`` are the parts being recorded (message, connector, parts in
    all, part), ``recipients`` their messages' recipients, ``awaited`` the
    (connector, key) pairs a stored unmatched receipt names already. Those
    parts are the newest submissions there are, so under the matching rule
    a receipt naming one's key that fits its handset and message matches it
    and no older part: the message can be written submitted and ended at
    once, one row version instead of two. A key taken twice in the group,
    or already awaited by a stored receipt, is left to the general match.
    """
    keys = Counter((connector, part.carrier_key) for _, connector, _, part in taken)
    single = {
        (connector, part.carrier_key): mid
        for mid, connector, count, part in taken
        if count == 1 and keys[connector, part.carrier_key] == 1
    }
    ending: dict[int, Receipt] = {}
    others: list[Receipt] = []
    for receipt in receipts:
        key = (receipt.connector, receipt.carrier_key)
        mid = single.get(key)
        if (
            mid is None
            or mid in ending
            or key in awaited
            or receipt.state not in FINAL_STATES
            or (receipt.message_id is not None and receipt.message_id != mid)
            or (receipt.handset and not handsets_match(receipt.handset, recipients[mid]))
        ):
            others.append(receipt)
        else:
            ending[mid] = receipt
    return ending, others


def _newest_match(receipt: Receipt, candidates: Sequence[_Part]) -> _Part | None:
    best: _Part | None = None
    for part in candidates:
        if part.submitted_at < receipt.match_since:
            continue
        if receipt.message_id is not None and part.message_id != receipt.message_id:
            continue
        if receipt.handset and not handsets_match(receipt.handset, part.recipient):
            continue
        if best is None or (part.submitted_at, part.id) > (best.submitted_at, best.id):
            best = part
    return best


def _stored_receipt(row: Sequence[Any]) -> Receipt:
    """An ``unmatched_receipts`` row (id first, then ``UNMATCHED_COLUMNS``) as a receipt."""
    (
        _,
        connector,
        carrier_key,
        carrier_ref,
        handset,
        message_id,
        state,
        reason,
        carrier_status,
        text,
        occurred_at,
        match_since,
        _received_at,
    ) = row
    return Receipt(
        connector,
        carrier_key,
        State(state),
        Reason(reason),
        carrier_status,
        occurred_at,
        match_since=match_since,
        carrier_ref=carrier_ref,
        handset=handset,
        text=text or "",
        message_id=message_id,
    )


def storable_receipt_text(text: str) -> str | None:
    """A receipt's raw text as a column can hold it: bounded, and without NUL
    (which PostgreSQL text refuses and SMSCs put in receipts as padding)."""
    return text.replace("\x00", "")[:RECEIPT_TEXT_WIDTH] or None
