"""Authentication that guessing can neither make expensive nor informative.

Every failed check counts against the client's address and against the
identifier it named (partnerID, EAPI username, Telesign customer id), in the
store so all API processes count together. Past ``free_failures`` a key is
locked, for a time that doubles with every further failure; a request from
a locked address or for a locked identifier is refused before any lookup or
hash (the lock is remembered in the process, so a refusal costs nothing).
Secrets this process has already seen verify skip all of this
(``credentials.recently_verified``): a working client is never slowed, even
while someone guesses at its identifier.

A refusal for a locked key is held back for a moment before it is answered
(``hold_seconds``, at most the rest of the lock). A guesser that asks again
the instant it is answered would otherwise be answered thousands of times a
second, cheap as each refusal is, and keep the event loop from everyone
else; held, it asks about once a second. Held refusals cost no CPU but keep
their connection open, so at most ``HELD_REFUSALS`` are held at once (the
rest are answered at once), well under the connection cap.

Password hashes run on one thread of lowered priority, never on the event
loop (nor on the core it needs), and an
unknown identifier is checked against a stand-in hash of the same kind, so
the time to answer does not reveal which identifiers exist.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import os
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from smsgate.config import Settings
from smsgate.credentials import CredentialKind, secret_verifies, stand_in_hash, uses_scrypt
from smsgate.store.auth_limits import LockPolicy
from smsgate.store.repo import Store

# scrypt releases the GIL, but each hash takes a whole core for tens of ms:
# one thread, below the event loop's priority, leaves the loop a core (and
# the upper hand on a shared one) however many guesses arrive.
HASH_THREADS = 1
HASH_NICENESS = 10
# Checks waiting for a hash thread beyond this are refused as "try later".
MAX_WAITING_HASHES = 64
MAX_REMEMBERED_LOCKS = 10_000
HELD_REFUSALS = 100


class AuthThrottled(Exception):
    """Too many failed authentications from this address or for this identifier."""

    def __init__(self, retry_after_ms: int) -> None:
        self.remaining_ms = retry_after_ms
        self.retry_after = max(1, math.ceil(retry_after_ms / 1000))
        super().__init__(f"too many failed authentications; retry in {self.retry_after} s")


def lock_policy(settings: Settings) -> LockPolicy:
    return LockPolicy(
        free_failures=settings.auth_free_failures,
        base_lock_ms=int(settings.auth_lock_seconds * 1000),
        max_lock_ms=int(settings.auth_max_lock_seconds * 1000),
        window_ms=int(settings.auth_failure_window_seconds * 1000),
    )


class AuthGuard:
    def __init__(self, store: Store, policy: LockPolicy, *, hold_seconds: float = 0.0) -> None:
        self.store = store
        self.policy = policy
        self.hold_seconds = hold_seconds
        self.held = 0  # refusals being held back right now
        self._locked_until: dict[str, int] = {}
        self._hashing = ThreadPoolExecutor(
            HASH_THREADS, thread_name_prefix="smsgate-hash", initializer=_yield_to_the_loop
        )
        self._hash_turn = asyncio.Semaphore(HASH_THREADS)
        self._waiting = 0

    @staticmethod
    def keys(kind: str, identifier: str, address: str) -> tuple[str, str]:
        """The two keys a check counts against. The identifier is digested: it
        is client input of any length, and the table needs no clear copy."""
        digest = hashlib.sha256(f"{kind}\0{identifier}".encode()).hexdigest()[:40]
        return (f"ip:{address[:64]}", f"id:{digest}")

    async def admit(self, keys: Sequence[str]) -> None:
        """Raise ``AuthThrottled`` if any key is locked, after holding it back."""
        try:
            self._refuse_if_known_locked(keys)
            now = self.store.clock()
            counts = await self.store.auth_failures(keys, self.policy.window_ms)
            locked = {key: c.locked_until for key, c in counts.items() if c.locked_until > now}
            self._remember_locks(locked, now)
            self._refuse_if_known_locked(keys)
        except AuthThrottled as refusal:
            await self._hold(refusal)
            raise

    async def _hold(self, refusal: AuthThrottled) -> None:
        """Wait before a refusal is answered, while there is room to hold it."""
        seconds = min(self.hold_seconds, refusal.remaining_ms / 1000)
        if seconds <= 0 or self.held >= HELD_REFUSALS:
            return
        self.held += 1
        try:
            await asyncio.sleep(seconds)
        finally:
            self.held -= 1

    def _refuse_if_known_locked(self, keys: Sequence[str]) -> None:
        """Raise ``AuthThrottled`` if this process knows a key to be locked."""
        now = self.store.clock()
        until = max((self._locked_until.get(key, 0) for key in keys), default=0)
        if until > now:
            raise AuthThrottled(until - now)

    async def failed(self, keys: Sequence[str]) -> None:
        """Count a failed check; the lock it may start is remembered here too."""
        locked = await self.store.record_auth_failure(keys, self.policy)
        self._remember_locks(locked, self.store.clock())

    async def verifies(
        self, kind: CredentialKind, secret: str, stored: Sequence[str], keys: Sequence[str]
    ) -> int:
        """The index of the stored hash ``secret`` verifies against, or -1.

        With nothing stored, the stand-in hash of ``kind`` is checked, so an
        unknown identifier costs what a known one does. A check that waited
        for the hash thread is refused if one of ``keys`` was locked meanwhile:
        guesses admitted together when a lock ran out would otherwise each
        cost a hash after the first of them had locked it again.
        """
        candidates = list(stored) or [stand_in_hash(kind)]
        if not any(uses_scrypt(hashed) for hashed in candidates):
            found = _first_match(secret, candidates)
        else:
            if self._waiting >= MAX_WAITING_HASHES:
                raise AuthThrottled(1000)
            self._waiting += 1
            try:
                async with self._hash_turn:
                    self._refuse_if_known_locked(keys)
                    loop = asyncio.get_running_loop()
                    found = await loop.run_in_executor(
                        self._hashing, _first_match, secret, candidates
                    )
            finally:
                self._waiting -= 1
        return found if stored else -1

    def _remember_locks(self, locked: dict[str, int], now: int) -> None:
        """Locks only ever run to their end, so a remembered one is safe to
        trust until then without asking the store again."""
        if not locked:
            return
        if len(self._locked_until) >= MAX_REMEMBERED_LOCKS:
            self._locked_until = {k: u for k, u in self._locked_until.items() if u > now}
            if len(self._locked_until) >= MAX_REMEMBERED_LOCKS:
                self._locked_until.clear()
        for key, until in locked.items():
            self._locked_until[key] = max(until, self._locked_until.get(key, 0))


def _yield_to_the_loop() -> None:
    """Lower this hash thread's scheduling priority (Linux nices threads one by
    one; elsewhere this would lower the whole process, so it is left alone)."""
    if sys.platform == "linux":
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASH_NICENESS)


def _first_match(secret: str, candidates: Sequence[str]) -> int:
    for index, hashed in enumerate(candidates):
        if secret_verifies(secret, hashed):
            return index
    return -1
