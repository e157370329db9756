"""Failed authentications in the store: counted per key, a lock that doubles
with each failure past the free ones, and counts forgotten after the window."""

from __future__ import annotations

from tests.support.store import advance

from smsgate.store.auth_limits import LockPolicy
from smsgate.store.repo import Store

POLICY = LockPolicy(free_failures=2, base_lock_ms=1_000, max_lock_ms=5_000, window_ms=60_000)


def test_the_lock_doubles_past_the_free_failures_up_to_its_cap() -> None:
    assert [POLICY.lock_ms(n) for n in range(1, 8)] == [0, 0, 1_000, 2_000, 4_000, 5_000, 5_000]
    assert POLICY.lock_ms(10**6) == 5_000  # no overflow however long the attack


async def test_failures_lock_each_key_and_are_forgotten_after_the_window(store: Store) -> None:
    advance(store, 0)  # a clock that stands still
    keys = ("ip:198.51.100.7", "id:abc")
    assert await store.record_auth_failure(keys, POLICY) == {}
    assert await store.record_auth_failure(keys, POLICY) == {}
    now = store.clock()
    assert await store.record_auth_failure(keys, POLICY) == dict.fromkeys(keys, now + 1_000)
    # A failure for one key only moves that key on.
    locked = await store.record_auth_failure(keys[:1], POLICY)
    assert locked == {keys[0]: now + 2_000}
    counts = await store.auth_failures([*keys, "id:other"], POLICY.window_ms)
    assert {key: c.failures for key, c in counts.items()} == {keys[0]: 4, keys[1]: 3}
    advance(store, POLICY.window_ms + 1)
    assert await store.auth_failures(keys, POLICY.window_ms) == {}
    assert await store.record_auth_failure(keys, POLICY) == {}  # counting starts again
