"""Failed authentications, counted in the database so every API process sees them.

A key is a client address or a credential identifier (``auth_guard`` makes
them). Each failure increments its count; past the policy's free failures
the key is locked for a time that doubles with every further failure. A
count is forgotten once the key has gone ``window_ms`` without a failure.
Only failures write (successes are never counted, so they cannot be slowed
or used to wipe a guesser's count); a request refused while locked costs no
write at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import case, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from smsgate.store import schema as t
from smsgate.store.base import StoreBase

PRUNE_EVERY_MS = 60_000


@dataclass(frozen=True)
class LockPolicy:
    free_failures: int
    base_lock_ms: int
    max_lock_ms: int
    window_ms: int

    def lock_ms(self, failures: int) -> int:
        """How long ``failures`` failures lock a key: none up to the free
        ones, then the base lock, doubling with each further failure."""
        beyond = failures - self.free_failures
        if beyond <= 0:
            return 0
        lock: int = self.base_lock_ms * 2 ** min(beyond - 1, 40)
        return min(lock, self.max_lock_ms)


@dataclass(frozen=True)
class FailureCount:
    failures: int
    locked_until: int


class AuthLimitStore(StoreBase):
    _auth_pruned_at: int = 0

    async def auth_failures(self, keys: Sequence[str], window_ms: int) -> dict[str, FailureCount]:
        """The keys with failures inside the window (or a lock still running)."""
        now = self.clock()
        f = t.auth_failures.c
        async with self._read() as conn:
            rows = await conn.execute(
                select(f.key, f.failures, f.locked_until).where(
                    f.key.in_(list(keys)),
                    (f.last_failure_at >= now - window_ms) | (f.locked_until > now),
                )
            )
            return {row.key: FailureCount(row.failures, row.locked_until) for row in rows}

    async def record_auth_failure(self, keys: Sequence[str], policy: LockPolicy) -> dict[str, int]:
        """Count one failure against each key; the keys now locked, with until when."""
        now = self.clock()
        window_start = now - policy.window_ms
        f = t.auth_failures.c
        insert = (postgresql.insert if self.is_postgres else sqlite.insert)(t.auth_failures)
        locked: dict[str, int] = {}
        async with self._write() as conn:
            if now - self._auth_pruned_at >= PRUNE_EVERY_MS:
                self._auth_pruned_at = now
                await conn.execute(
                    delete(t.auth_failures).where(
                        f.last_failure_at < window_start, f.locked_until < now
                    )
                )
            for key in keys:
                counted = await conn.execute(
                    insert.values(key=key, failures=1, last_failure_at=now, locked_until=0)
                    .on_conflict_do_update(
                        index_elements=["key"],
                        set_={
                            "failures": case(
                                (t.auth_failures.c.last_failure_at < window_start, 1),
                                else_=t.auth_failures.c.failures + 1,
                            ),
                            "last_failure_at": now,
                        },
                    )
                    .returning(f.failures, f.locked_until)
                )
                failures, until = counted.one()
                lock = policy.lock_ms(int(failures))
                if lock and now + lock > until:
                    until = now + lock
                    await conn.execute(
                        update(t.auth_failures).where(f.key == key).values(locked_until=until)
                    )
                if until > now:
                    locked[key] = int(until)
        return locked
