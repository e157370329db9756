"""A refusal for a locked key is held back before it is answered, so a
guesser that asks again at once asks about once a second, not thousands of
times, while everyone else is answered without delay."""

from __future__ import annotations

import asyncio
import time

import pytest

from smsgate.auth_guard import HELD_REFUSALS, AuthGuard, AuthThrottled
from smsgate.credentials import CredentialKind
from smsgate.store.auth_limits import LockPolicy
from smsgate.store.repo import Store

LONG_LOCK = LockPolicy(free_failures=0, base_lock_ms=60_000, max_lock_ms=60_000, window_ms=60_000)
GUESSED = AuthGuard.keys(CredentialKind.PARTNER_APIKEY, "12345", "198.51.100.7")
INNOCENT = AuthGuard.keys(CredentialKind.PARTNER_APIKEY, "67890", "192.0.2.10")


async def test_a_locked_key_is_refused_only_after_the_hold(store: Store) -> None:
    guard = AuthGuard(store, LONG_LOCK, hold_seconds=0.3)
    await guard.failed(GUESSED)
    started = time.monotonic()
    with pytest.raises(AuthThrottled):
        await guard.admit(GUESSED)
    assert time.monotonic() - started >= 0.3


async def test_held_refusals_do_not_hold_up_anyone_else(store: Store) -> None:
    guard = AuthGuard(store, LONG_LOCK, hold_seconds=60.0)
    await guard.failed(GUESSED)
    held = [asyncio.create_task(guard.admit(GUESSED)) for _ in range(HELD_REFUSALS)]
    try:
        # The lock is known here, so each refusal starts its hold on its first step.
        await asyncio.sleep(0)
        assert guard.held == HELD_REFUSALS
        # An unlocked client is admitted while every hold is still running,
        await asyncio.wait_for(guard.admit(INNOCENT), 5)
        # and past the most that are held, a refusal is answered at once.
        with pytest.raises(AuthThrottled):
            await asyncio.wait_for(guard.admit(GUESSED), 5)
        assert guard.held == HELD_REFUSALS and not any(task.done() for task in held)
    finally:
        for task in held:
            task.cancel()
        await asyncio.gather(*held, return_exceptions=True)
    assert guard.held == 0


async def test_a_refusal_is_held_no_longer_than_the_lock_lasts(store: Store) -> None:
    short_lock = LockPolicy(free_failures=0, base_lock_ms=200, max_lock_ms=200, window_ms=60_000)
    guard = AuthGuard(store, short_lock, hold_seconds=60.0)
    await guard.failed(GUESSED)
    with pytest.raises(AuthThrottled):
        await asyncio.wait_for(guard.admit(GUESSED), 5)
    await guard.admit(GUESSED)  # the lock has run out by the time it was answered
