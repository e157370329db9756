"""Messages handsets send to us (MO): who they belong to, stored and forwarded."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from smsgate.credentials import CredentialKind
from smsgate.store import schema as t
from smsgate.store.base import columns_of, records_of, storable_text
from smsgate.store.outbox import SESSION_DIALECT, SESSION_URL
from smsgate.store.records import InboundMessage, InboxEntry
from smsgate.store.reply_routes import ReplyRouteStore

log = logging.getLogger(__name__)


SHORTCODE_DIALECT = "advanta"
"""Whose format forwards an inbound message that answers no message: writing
to an account's shortcode is how partnerID/apikey users receive messages."""


class InboxStore(ReplyRouteStore):
    """Inbound messages, their attribution and the account inboxes."""

    async def record_inbound(self, messages: Sequence[InboundMessage]) -> None:
        """Store inbound messages and queue a forward to the account's
        ``mo_callback_url``, in one transaction.

        An inbound message belongs to the account whose conversation the pair
        (the number it was sent to, its handset) is, answering that account's
        latest repliable message there (see store/reply_routes.py); failing
        that, to the one account whose registered sender ids include the
        number the handset wrote to (its shortcode); else to nobody.
        """
        if not messages:
            return
        async with self._write() as conn:
            await self._record_inbound_in(conn, messages, self.clock())

    async def _record_inbound_in(
        self, conn: AsyncConnection, messages: Sequence[InboundMessage], now: int
    ) -> None:
        """``record_inbound`` in the caller's transaction."""
        if not messages:
            return
        messages = [replace(mo, sender=_international(mo.sender)) for mo in messages]
        routes = await self._conversations_in(
            conn, list({(mo.recipient, mo.sender) for mo in messages})
        )
        unanswered = {mo.recipient for mo in messages if (mo.recipient, mo.sender) not in routes}
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
                    "body": storable_text(mo.body),  # a handset can send U+0000
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
        await _queue_mo_forwards(conn, [(i, row) for i, row in zip(ids, rows, strict=True)], now)

    async def inbox(self, account_id: int, after_id: int, limit: int) -> list[InboxEntry]:
        """An account's inbound messages with ids above ``after_id``, oldest first."""
        i = t.inbound_messages.c
        query = (
            select(*columns_of(t.inbound_messages, InboxEntry))
            .where(i.account_id == account_id, i.id > after_id)
            .order_by(i.id)
            .limit(limit)
        )
        async with self._read() as conn:
            return records_of(InboxEntry, (await conn.execute(query)).all())


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
    binding = await _smpp_customers(conn, set(accounts))
    jobs = []
    for inbound_id, row in attributed:
        account = accounts[row["account_id"]]
        original = originals.get(row["message_id"])
        if row["message_id"] is not None and original is None:
            continue
        dialect, url = _mo_destination(
            original.dialect if original else None,
            (account.options or {}).get("mo_callback_url"),
            smpp_customer=account.id in binding,
        )
        if not url:
            continue
        jobs.append(
            {
                "account_id": row["account_id"],
                "message_id": None,
                "dialect": dialect,
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


def _mo_destination(
    answered_dialect: str | None, mo_url: str | None, *, smpp_customer: bool
) -> tuple[str, str | None]:
    """The dialect and URL an inbound message is forwarded in.

    A reply to a message sent over SMPP goes back over the account's SMPP
    sessions, where its platform listens, and so does a message to the
    account's shortcode when the account has SMPP credentials and no MO URL
    (an SMPP customer has nowhere else to hear it). Everything else goes to
    the MO URL, if the account has one, in the dialect of the batch it
    answers or the shortcode dialect.
    """
    if answered_dialect == SESSION_DIALECT or (
        answered_dialect is None and not mo_url and smpp_customer
    ):
        return SESSION_DIALECT, SESSION_URL
    return answered_dialect or SHORTCODE_DIALECT, mo_url


async def _smpp_customers(conn: AsyncConnection, account_ids: set[int]) -> set[int]:
    """Those of ``account_ids`` holding an SMPP credential that is not revoked."""
    c = t.credentials.c
    found = await conn.execute(
        select(c.account_id)
        .distinct()
        .where(
            c.account_id.in_(sorted(account_ids)),
            c.kind == CredentialKind.SMPP_PASSWORD,
            c.revoked_at.is_(None),
        )
    )
    return set(found.scalars())


def _international(address: str) -> str:
    """A handset number as messages store recipients (E.164 with "+"); carriers
    usually deliver it bare. Alphanumeric addresses stay as they are."""
    digits = address.lstrip("+")
    return f"+{digits}" if digits.isdigit() else address
