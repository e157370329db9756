"""Accounts, their credentials and their ledger.

A credential identifier is unique per kind among live credentials, secrets
are stored only as hashes (or sealed, where the gateway must use them), and
every balance change is a ledger entry written with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, delete, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from smsgate.core.model import Account, AccountStatus
from smsgate.store import schema as t
from smsgate.store.base import StoreBase, adjust_balance, columns_of, records_of
from smsgate.store.records import DuplicateIdentifier, LedgerEntry, NewCredential


class AccountStore(StoreBase):
    """Accounts, credentials, signed-request nonces and the ledger."""

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
        credentials: Sequence[NewCredential] = (),
        credit: int = 0,
    ) -> Account:
        """Create an account with its credentials and opening credit, all or
        nothing: a clash on an identifier (``DuplicateIdentifier``) or on the
        name (``IntegrityError``) leaves nothing behind."""
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
            for credential in credentials:
                await self._insert_credential(conn, account_id, credential)
            if credit:
                await self._credit(conn, account_id, credit, "opening credit")
        account = await self.account(account_id)
        assert account is not None
        return account

    async def delete_account(self, account_id: int) -> None:
        """Remove an account and everything it owns (messages, their events,
        claims and submitted parts, callbacks, ledger, inbox, credentials,
        console logins) in one transaction."""
        own = {"account_id": account_id}
        of_messages = "message_id IN (SELECT id FROM messages WHERE account_id = :account_id)"
        statements = (
            "DELETE FROM callback_attempts WHERE callback_id IN"
            " (SELECT id FROM callback_outbox WHERE account_id = :account_id)",
            "DELETE FROM callback_outbox WHERE account_id = :account_id",
            f"DELETE FROM delivery_events WHERE {of_messages}",
            f"DELETE FROM claims WHERE {of_messages}",
            f"DELETE FROM submitted_parts WHERE {of_messages}",
            "DELETE FROM ledger WHERE account_id = :account_id",
            "DELETE FROM reply_routes WHERE account_id = :account_id",
            "DELETE FROM inbound_messages WHERE account_id = :account_id",
            f"UPDATE inbound_messages SET message_id = NULL, batch_id = NULL WHERE {of_messages}",
            "DELETE FROM idempotency_keys WHERE account_id = :account_id",
            "DELETE FROM messages WHERE account_id = :account_id",
            "DELETE FROM batches WHERE account_id = :account_id",
            "DELETE FROM credentials WHERE account_id = :account_id",
            "DELETE FROM console_sessions WHERE user_id IN"
            " (SELECT id FROM console_users WHERE account_id = :account_id)",
            "DELETE FROM console_users WHERE account_id = :account_id",
            "DELETE FROM accounts WHERE id = :account_id",
        )
        async with self._write() as conn:
            for statement in statements:
                await conn.execute(text(statement), own)

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
            await self._insert_credential(
                conn, account_id, NewCredential(kind, identifier, secret_hash, sealed_secret)
            )

    async def replace_credential(self, account_id: int, credential: NewCredential) -> None:
        """Revoke the account's credentials of this kind and add the new one, in
        one transaction (a clash leaves the old ones in force)."""
        async with self._write() as conn:
            await conn.execute(
                update(t.credentials)
                .where(
                    t.credentials.c.account_id == account_id,
                    t.credentials.c.kind == credential.kind,
                    t.credentials.c.revoked_at.is_(None),
                )
                .values(revoked_at=self.clock())
            )
            await self._insert_credential(conn, account_id, credential)

    async def _insert_credential(
        self, conn: AsyncConnection, account_id: int, credential: NewCredential
    ) -> None:
        taken = (
            await conn.execute(
                select(t.credentials.c.account_id).where(
                    t.credentials.c.kind == credential.kind,
                    t.credentials.c.identifier == credential.identifier,
                    t.credentials.c.revoked_at.is_(None),
                    t.credentials.c.account_id != account_id,
                )
            )
        ).first()
        if taken:
            raise DuplicateIdentifier(
                f"{credential.kind} identifier {credential.identifier!r} is in use"
            )
        await conn.execute(
            insert(t.credentials),
            {
                "account_id": account_id,
                "kind": credential.kind,
                "identifier": credential.identifier,
                "secret_hash": credential.secret_hash,
                "sealed_secret": credential.sealed_secret,
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
            return await self._credit(conn, account_id, amount, note)

    async def set_balance(self, account_id: int, target: int, note: str) -> int:
        """Bring the balance to ``target`` with one ledger entry of the difference."""
        async with self._write() as conn:
            current = (
                await conn.execute(
                    select(t.accounts.c.balance).where(t.accounts.c.id == account_id)
                )
            ).scalar_one()
            if int(current) == target:
                return target
            return await self._credit(conn, account_id, target - int(current), note)

    async def _credit(self, conn: AsyncConnection, account_id: int, amount: int, note: str) -> int:
        balance = await adjust_balance(conn, account_id, amount)
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
                    select(*columns_of(t.ledger, LedgerEntry))
                    .where(t.ledger.c.account_id == account_id)
                    .order_by(t.ledger.c.id)
                )
            ).all()
        return records_of(LedgerEntry, rows)


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
