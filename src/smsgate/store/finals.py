"""Final states: the one place a message ends, with its event, refund and callback.

A refusal at submission and a carrier receipt both end here, so a refund
and a delivery report are written in the same transaction as the state
that owes them, whichever path got there.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from smsgate.core.states import Reason, State
from smsgate.observe import events as observed
from smsgate.store import schema as t
from smsgate.store.base import LEASE_ENDS, StoreBase, adjust_balance, after_commit
from smsgate.store.driver_sql import RowUpdate
from smsgate.store.outbox import SESSION_DIALECT, SESSION_URL

REFUNDED_STATES = frozenset({State.REJECTED, State.FAILED})
# A connector's words for an outcome are cut to the column rather than let one
# long description fail the transaction that records a whole group of outcomes.
_CARRIER_STATUS_WIDTH: int = t.delivery_events.c.carrier_status.type.length  # type: ignore[attr-defined]


class _Finished(NamedTuple):
    """A message that just reached its final state, with what its refund, callback and
    metrics need."""

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
    connector: str | None
    account_name: str
    sender: str
    preview: str


_FINISHED = RowUpdate(
    "messages",
    (("state", "text", "{v}"), ("reason", "text", "{v}"), ("done_at", "bigint", "{v}")),
    LEASE_ENDS,
)


# Only these rows are read back after a final state: refunds and callbacks
# need them (the metrics count the rest from what the caller knows).
_OWING_SQL = (
    f"SELECT {', '.join('m.' + name for name in _Finished._fields[:13])},"
    " b.dialect, a.dlr_callback_url, a.timezone, m.connector, a.name,"
    " m.sender, substr(m.body, 1, 20)"
    " FROM messages m JOIN batches b ON b.id = m.batch_id JOIN accounts a ON a.id = m.account_id"
    " WHERE {ids} AND (m.submitted_at IS NULL OR m.state IN ("
    + ", ".join(f"'{state.value}'" for state in sorted(REFUNDED_STATES))
    + ") OR (m.want_report AND (a.dlr_callback_url IS NOT NULL"
    f" OR b.dialect = '{SESSION_DIALECT}')))"
)


def _owes_refund(row: _Finished) -> bool:
    """A message is refunded when it failed by the carrier's refusal or the
    gateway's giving up, or when no carrier ever took it (it expired before
    it could be sent): the customer pays only for what a carrier carried."""
    return row.submitted_at is None or State(row.state) in REFUNDED_STATES


class FinalStates(StoreBase):
    """Writing final states with what they owe."""

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
                    status if status is None else storable_status(status),
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
        events: bool = True,
        connector: str | Mapping[int, str] | None = None,
        submitted: Mapping[int, int] | None = None,
    ) -> None:
        """Write final states, their events, refunds and callbacks.

        The caller has already locked the rows and checked they may move. A
        final state a carrier's receipt decided needs no event
        (``events=False``): the receipt is recorded on its part, with its text.
        Only the rows that owe a refund or a callback are read back; the
        metrics count the others from ``connector`` (one for all, or per
        message) and ``submitted`` (when each was submitted, where known).
        """
        done = occurred or {}
        await self._sql.update_many(
            conn,
            _FINISHED,
            [
                (state.value, reason.value, done.get(mid, now), mid)
                for mid, state, reason, _ in finals
            ],
        )
        await self._settle_finals(
            conn,
            finals,
            now,
            occurred=occurred,
            events=events,
            connector=connector,
            submitted=submitted,
        )

    async def _settle_finals(
        self,
        conn: AsyncConnection,
        finals: Sequence[tuple[int, State, Reason, str | None]],
        now: int,
        *,
        occurred: dict[int, int] | None = None,
        events: bool = True,
        connector: str | Mapping[int, str] | None = None,
        submitted: Mapping[int, int] | None = None,
    ) -> None:
        """What final states already written owe (``_finish`` without the
        state update): for a message whose submission and receipt are
        written as one row version (``store.queue``)."""
        sql = self._sql
        done = occurred or {}
        if events:
            await self._insert_events(conn, finals, now, occurred)
        rows = [
            _Finished(*row)
            for row in await sql.fetch(
                conn,
                _OWING_SQL.format(ids=sql.member_of("m.id")),
                (sql.members([mid for mid, *_ in finals]),),
            )
        ]
        after_commit(conn, lambda: _count_finished(finals, rows, done, connector, submitted))
        await self._refund(conn, [row for row in rows if _owes_refund(row)], now)
        callbacks = [
            {
                "account_id": row.account_id,
                "message_id": row.id,
                "dialect": row.dialect,
                "kind": "dlr",
                "url": url,
                "payload": _dlr_payload(row),
                "next_attempt_at": now,
                "created_at": now,
            }
            for row in rows
            if row.want_report and (url := _report_url(row))
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
            balance = await adjust_balance(conn, account_id, total)
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


def _count_finished(
    finals: Sequence[tuple[int, State, Reason, str | None]],
    owing: Sequence[_Finished],
    done: Mapping[int, int],
    connector: str | Mapping[int, str] | None,
    submitted: Mapping[int, int] | None,
) -> None:
    counts: Counter[tuple[str | None, str, str]] = Counter()
    times: dict[str | None, list[int]] = defaultdict(list)
    for mid, state, reason, _ in finals:
        name = connector if connector is None or isinstance(connector, str) else connector.get(mid)
        counts[name, state.value, reason.value] += 1
        at = None if submitted is None else submitted.get(mid)
        if at is not None and mid in done:
            times[name].append(done[mid] - at)
    observed.finished(counts, times)
    for row in owing:
        if State(row.state) in REFUNDED_STATES and row.cost:
            observed.refunded(row.account_name, row.cost)


def storable_status(status: str) -> str:
    """A carrier's status word as its column holds it: cut to the width and
    without NUL, so one odd status cannot fail a whole group's transaction."""
    return status.replace("\x00", "")[:_CARRIER_STATUS_WIDTH]


def _report_url(row: _Finished) -> str | None:
    """Where a message's report goes: the customer's bound SMPP sessions for a
    message submitted over SMPP (whatever URL the account has), else its URL."""
    return SESSION_URL if row.dialect == SESSION_DIALECT else row.dlr_callback_url


def _dlr_payload(row: _Finished) -> dict[str, Any]:
    """The canonical facts a dialect renders its delivery callback from; a
    receipt over SMPP also names the sender it goes to and the text's start."""
    if row.dialect == SESSION_DIALECT:
        return {**_dlr_facts(row), "sender": row.sender, "preview": row.preview}
    return _dlr_facts(row)


def _dlr_facts(row: _Finished) -> dict[str, Any]:
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
